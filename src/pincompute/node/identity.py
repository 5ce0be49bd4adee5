"""Pod identities: one unprivileged uid/gid per pod, unique on the machine.

Theory of operation
-------------------
When the agent runs as root, each pod is a security principal of its own: its
processes run as a uid/gid no other pod has, its directories belong to that uid
with mode 0700, so the kernel itself keeps tenants apart — one pod can neither
read another's files nor signal its processes (signals need a matching uid).

Several agents (nodes) can share one machine, so uniqueness must hold across
processes, not only within one.  A :class:`UidAllocator` keeps a registry
directory (default ``/run/pincompute/uids``) with one file per uid in use, named
after the uid and holding the pod's uid and node.  ``O_CREAT | O_EXCL`` makes
taking a uid atomic across processes; the pod's teardown deletes the file.  A
restarted agent reclaims the files of its own node (its pods get their uids
back, or release them) with :meth:`UidAllocator.owned_by`.

The range (default 200000-299999) stays clear of system accounts and of the
65534 ``nobody``; the uids need no passwd entry.

Pods of one project (namespace) that mount the same ``shared`` volume must all
reach it, so each project also gets a *group* (from 300000), held by every pod of
the project as a supplementary group: the registry file ``ns-<namespace>`` holds
its gid, created with ``O_EXCL`` so the first agent to need it decides for all.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

DEFAULT_REGISTRY = Path("/run/pincompute/uids")
DEFAULT_FIRST = 200_000
DEFAULT_COUNT = 100_000
PROJECT_GID_FIRST = 300_000


class UidExhausted(RuntimeError):
    """Every uid of the range is held by a pod on this machine."""


class UidAllocator:
    def __init__(self, *, node: str, registry: Path = DEFAULT_REGISTRY,
                 first: int = DEFAULT_FIRST, count: int = DEFAULT_COUNT) -> None:
        self.node = node
        self.registry = registry
        self.first = first
        self.count = count
        registry.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._by_pod: dict[str, int] = {}
        self._next = first

    def allocate(self, pod_uid: str) -> int:
        """A uid for the pod (the same one on repeated calls)."""
        if pod_uid in self._by_pod:
            return self._by_pod[pod_uid]
        for _ in range(self.count):
            uid = self._next
            self._next = self.first + (self._next + 1 - self.first) % self.count
            try:
                fd = os.open(self.registry / str(uid), os.O_WRONLY | os.O_CREAT | os.O_EXCL,
                             0o600)
            except FileExistsError:
                continue
            with os.fdopen(fd, "w") as f:
                f.write(f"{pod_uid} {self.node}\n")
            self._by_pod[pod_uid] = uid
            return uid
        raise UidExhausted(f"all {self.count} pod uids from {self.first} are in use")

    def release(self, pod_uid: str) -> None:
        uid = self._by_pod.pop(pod_uid, None)
        if uid is not None:
            with contextlib.suppress(FileNotFoundError):
                (self.registry / str(uid)).unlink()

    def owned_by(self) -> dict[str, int]:
        """pod uid → uid for the registry entries of this node (after an agent restart)."""
        found: dict[str, int] = {}
        with contextlib.suppress(FileNotFoundError):
            for entry in os.scandir(self.registry):
                if not entry.name.isdigit():
                    continue
                try:
                    pod_uid, node = Path(entry.path).read_text().split()
                except (OSError, ValueError):
                    continue
                if node == self.node:
                    found[pod_uid] = int(entry.name)
        return found

    def adopt(self, pod_uid: str, uid: int) -> None:
        """Take back a registry entry of this node found by :meth:`owned_by`."""
        self._by_pod[pod_uid] = uid

    def project_gid(self, namespace: str) -> int:
        """The supplementary group shared by every pod of ``namespace`` on the machine."""
        path = self.registry / f"ns-{namespace}"
        with contextlib.suppress(FileNotFoundError, ValueError):
            return int(path.read_text())
        for gid in range(PROJECT_GID_FIRST, PROJECT_GID_FIRST + self.count):
            claim = self.registry / f"g{gid}"
            try:
                fd = os.open(claim, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            except FileExistsError:
                continue
            with os.fdopen(fd, "w") as f:
                f.write(str(gid))
            try:
                # A hard link appears complete or not at all, so nobody reads a
                # half-written name file; it fails if another agent named it first.
                os.link(claim, path)
            except FileExistsError:
                claim.unlink()
                return int(path.read_text())
            return gid
        raise UidExhausted("no project gid left")

    def release_all(self) -> None:
        for pod_uid in list(self._by_pod):
            self.release(pod_uid)


__all__ = ["DEFAULT_REGISTRY", "UidAllocator", "UidExhausted"]
