"""Local storage eviction: volume ``sizeLimit`` and the disk reserve, as the kubelet's.

Theory of operation
-------------------
A pod's ``emptyDir`` and ``logging`` volumes are directories on the node's disk
(:mod:`.volumes`), on the same filesystem as its neighbours and, often, the
region's stores.  Nothing stops a process from writing there, so, as the
kubelet's eviction manager does, the agent *measures* and *evicts*: every
``interval`` seconds :class:`StorageEviction` runs one pass (in a thread: it
walks directories):

1. **sizeLimit** — for each running pod, the use of each volume declaring a
   ``sizeLimit`` is measured as ``du`` does (:func:`tree_usage`: allocated
   blocks, links never followed, hard links once, one filesystem).  A
   ``logging`` volume over its limit first has its oldest files rotated away
   (:func:`rotate`: files at its top, oldest first, never the newest — the one
   being written); any volume still over its limit gets the pod evicted (it
   ends ``Failed``, reason ``Evicted``, with the kubelet's message naming the
   volume and the limit) and its sandbox, volumes included, is removed.
2. **the reserve** — when free space on a guarded filesystem (the node's own,
   and the region's data directory when on the same device) drops below
   ``reserve_bytes``, the node has ``DiskPressure`` and evicts the pod using the
   most local storage (its whole sandbox), one per pass, until space is back.
   The stores then keep the room they need to commit.

Why measure rather than mount a size-limited tmpfs per volume: a tmpfs holds
its data in memory (a pod's ``sizeLimit: 10Gi`` would be 10 GiB of RAM), the
process runtime has no mount namespace to keep such mounts private, and mounts
left behind by a crashed agent would need their own clean-up.  Measuring lets a
pod overshoot by what it writes within one interval — the kubelet's own
trade-off; the reserve is what protects the node meanwhile.

The walk is as the agent's root over directories the pod owns, so it never
follows a link, opens each directory relative to its parent's descriptor
(``os.fwalk``, so a directory swapped for a link mid-walk is not entered),
does not cross into other filesystems, and stops counting once past the limit.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import stat
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pincompute.kube.quantity import QuantityError, format_bytes, to_int
from pincompute.runtime.logging import get_logger

_log = get_logger(__name__)

EVICTED = "Evicted"
DEFAULT_INTERVAL = 10.0
"""Seconds between passes (the kubelet's housekeeping period)."""
DEFAULT_RESERVE = 512 * 1024 * 1024
"""Free bytes kept on the node's filesystem for the stores and the node itself."""

_KINDS = {"emptyDir": "EmptyDir", "logging": "Logging"}


def tree_usage(path: Path | str, *, stop_above: int | None = None) -> int:
    """Bytes allocated below ``path`` (``du``): no links followed, one filesystem.

    Stops early, returning what it counted so far, once above ``stop_above``.
    A missing ``path`` uses nothing.
    """
    try:
        top = os.stat(path, follow_symlinks=False)
    except FileNotFoundError:
        return 0
    if not stat.S_ISDIR(top.st_mode):
        return top.st_blocks * 512
    total = top.st_blocks * 512
    seen: set[tuple[int, int]] = set()
    for _, dirnames, filenames, dirfd in os.fwalk(path, follow_symlinks=False):
        keep = []
        for name in dirnames:
            try:
                st = os.stat(name, dir_fd=dirfd, follow_symlinks=False)
            except OSError:
                continue
            total += st.st_blocks * 512
            if st.st_dev == top.st_dev and stat.S_ISDIR(st.st_mode):
                keep.append(name)
        dirnames[:] = keep
        for name in filenames:
            try:
                st = os.stat(name, dir_fd=dirfd, follow_symlinks=False)
            except OSError:
                continue
            if st.st_nlink > 1:
                if (st.st_dev, st.st_ino) in seen:
                    continue
                seen.add((st.st_dev, st.st_ino))
            total += st.st_blocks * 512
        if stop_above is not None and total > stop_above:
            return total
    return total


@dataclass(frozen=True, slots=True)
class VolumeLimit:
    volume: str
    kind: str
    """``EmptyDir`` or ``Logging``."""
    path: Path
    limit: int
    limit_text: str
    """The limit as the pod wrote it (for the message)."""


def volume_limits(pod: Mapping[str, Any], paths: Mapping[str, Path]) -> list[VolumeLimit]:
    """The size-limited volumes of ``pod`` with their directories on this node."""
    out = []
    for vol in (pod.get("spec") or {}).get("volumes") or ():
        for key, kind in _KINDS.items():
            source = vol.get(key)
            if not isinstance(source, Mapping) or source.get("sizeLimit") is None:
                continue
            path = paths.get(vol.get("name", ""))
            try:
                limit = to_int(source["sizeLimit"])
            except QuantityError:
                continue  # validation refuses it; nothing to enforce
            if path is not None:
                out.append(VolumeLimit(vol["name"], kind, path, limit,
                                       str(source["sizeLimit"])))
    return out


def over_limit(limits: Iterable[VolumeLimit]) -> str | None:
    """The eviction message for the first volume over its limit, or None.

    Logging volumes over their limit are rotated first (:func:`rotate`).
    """
    for v in limits:
        if tree_usage(v.path, stop_above=v.limit) <= v.limit:
            continue
        if v.kind == "Logging" and rotate(v.path, limit=v.limit):
            continue
        return f'Usage of {v.kind} volume "{v.volume}" exceeds the limit "{v.limit_text}". '
    return None


def rotate(path: Path, *, limit: int) -> bool:
    """Delete the oldest files at the top of ``path`` until it holds ``limit``; True if so.

    The newest file stays (it is the one being written).  Runs as root in a
    directory the pod owns: the directory is opened without following a link
    and each file is unlinked relative to it, so nothing outside can be hit.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        files = []
        for entry in os.scandir(fd):
            with contextlib.suppress(OSError):
                st = entry.stat(follow_symlinks=False)
                if stat.S_ISREG(st.st_mode):
                    files.append((st.st_mtime_ns, entry.name))
        files.sort()
        for _, name in files[:-1]:
            with contextlib.suppress(OSError):
                os.unlink(name, dir_fd=fd)
            if tree_usage(path, stop_above=limit) <= limit:
                return True
        return tree_usage(path, stop_above=limit) <= limit
    finally:
        os.close(fd)


def free_bytes(path: Path) -> int | None:
    try:
        return shutil.disk_usage(path).free
    except OSError:
        return None


@dataclass(slots=True)
class Candidate:
    """What a pass needs of one running pod (taken on the loop, used in the thread)."""

    key: str
    pod: Mapping[str, Any]
    volumes: Mapping[str, Path]
    sandbox_dir: Path | None


class StorageEviction:
    """The node's storage eviction passes (see the module's docstring)."""

    def __init__(self, *, node_dirs: Sequence[Path], guarded: Sequence[Path] = (),
                 reserve_bytes: int = DEFAULT_RESERVE,
                 interval: float = DEFAULT_INTERVAL) -> None:
        self.node_dirs = [p for p in node_dirs]
        self.reserve_bytes = reserve_bytes
        self.interval = interval
        devices = {_device(p) for p in self.node_dirs} - {None}
        # Only a filesystem the pods write to can be helped by evicting them.
        self.guarded = [p for p in (*self.node_dirs, *guarded) if _device(p) in devices]
        self.pressure: str | None = None
        """Why the node is short of disk (None: it is not)."""

    def check(self, candidates: Sequence[Candidate]) -> list[tuple[str, str]]:
        """One pass (blocking): the pods to evict, as (key, message)."""
        evict: list[tuple[str, str]] = []
        for c in candidates:
            message = over_limit(volume_limits(c.pod, c.volumes))
            if message is not None:
                evict.append((c.key, message))
        self.pressure = self._pressure()
        if self.pressure is not None and not evict:
            biggest = max(((tree_usage(c.sandbox_dir), c) for c in candidates
                           if c.sandbox_dir is not None), default=None, key=lambda t: t[0])
            if biggest is not None and biggest[0] > 0:
                used, c = biggest
                evict.append((c.key, f"The node was low on resource: ephemeral-storage. "
                                     f"Container usage of the pod was {format_bytes(used)}, "
                                     f"the largest on the node ({self.pressure}). "))
        return evict

    def _pressure(self) -> str | None:
        for path in self.guarded:
            free = free_bytes(path)
            if free is not None and free < self.reserve_bytes:
                return (f"{format_bytes(free)} free at {path}, below the reserve of "
                        f"{format_bytes(self.reserve_bytes)}")
        return None

    async def run(self, candidates: Callable[[], Sequence[Candidate]],
                  evict: Callable[[str, str], None]) -> None:
        """Pass after pass, forever (a task of the agent's)."""
        while True:
            await asyncio.sleep(self.interval)
            try:
                for key, message in await asyncio.to_thread(self.check, candidates()):
                    _log.warning("evicting pod %s: %s", key, message)
                    evict(key, message)
            except OSError as exc:
                _log.warning("storage eviction pass failed: %s", exc)


def _device(path: Path) -> int | None:
    try:
        return os.stat(path).st_dev
    except OSError:
        return None


__all__ = ["DEFAULT_INTERVAL", "DEFAULT_RESERVE", "EVICTED", "Candidate", "StorageEviction",
           "VolumeLimit", "free_bytes", "over_limit", "rotate", "tree_usage", "volume_limits"]
