"""A config volume's files, replaced atomically while a pod reads them (the kubelet's way).

Theory of operation
-------------------
A ConfigMap or Secret volume (and the discovery volume, :mod:`.configsync`) is a
root-owned directory the pod's group may read but not write.  Its content must
change while the pod runs without a reader ever seeing half a file or a mix of
two versions, so — as the kubelet's ``AtomicWriter`` does — the files never
change in place::

    <volume>/..2026_11_30_08_00_00.123456789/<key>   one version, written whole
    <volume>/..data -> ..2026_11_30_08_00_00.123456789
    <volume>/<key>  -> ..data/<key>                   what the pod opens

:func:`write` puts the new version in a fresh timestamped directory, makes a link
``..data_tmp`` to it and renames that over ``..data`` (``rename(2)`` is atomic:
a path lookup sees the old version or the new one, never a mix), then removes
the old version and adds or drops the top-level links of keys that came or went.
A reader holding an old file open keeps reading it whole.  Only names starting
with ``..`` are the writer's own, so a key can never collide with them (keys
starting with ``..`` are refused).

Everything is done relative to the descriptor of the volume's parent with the
:mod:`.fsguard` primitives and never follows a link: the links here are the
agent's, in a directory only root may write, and are only ever created,
renamed or removed, never resolved by the agent.
"""

from __future__ import annotations

import contextlib
import os
import stat
import time
from collections.abc import Mapping

from . import fsguard

DATA = "..data"
"""The link naming the current version."""
_DATA_TMP = "..data_tmp"


class ConfigVolumeError(ValueError):
    """A key or item path that cannot be a file of the volume."""


def _version_name() -> str:
    ns = time.time_ns()
    stamp = time.strftime("%Y_%m_%d_%H_%M_%S", time.gmtime(ns // 10**9))
    return f"..{stamp}.{ns % 10**9:09d}"


def files_of(data: Mapping[str, str], items: object) -> dict[tuple[str, ...], bytes]:
    """The volume's files: path components → content (``items`` select and rename keys)."""
    wanted: Mapping[str, str]
    if items:
        wanted = {i["key"]: i["path"] for i in items}  # type: ignore[attr-defined]
    else:
        wanted = {k: k for k in data}
    out: dict[tuple[str, ...], bytes] = {}
    for key, rel in wanted.items():
        if key not in data:
            continue
        try:
            parts = fsguard.relative_parts(rel, what="config item path")
        except fsguard.UnsafePath as exc:
            raise ConfigVolumeError(str(exc)) from exc
        if not parts:
            raise ConfigVolumeError(f"config item path {rel!r} names no file")
        if parts[0].startswith(".."):
            raise ConfigVolumeError(f"config item path {rel!r} must not start with '..'")
        out[parts] = data[key].encode()
    return out


def write(parent_fd: int, name: str, files: Mapping[tuple[str, ...], bytes], *,
          uid: int | None, gid: int) -> None:
    """Make the volume ``name`` of ``parent_fd`` hold exactly ``files``, atomically.

    ``uid`` None: the agent is not root (files are the agent's, 0700/0400); else the
    volume is root's and readable by group ``gid`` (0750/0440).  Creates the volume if
    it is missing; anything at ``name`` that is not a root-owned directory is replaced.
    """
    dir_mode, file_mode = (0o700, 0o400) if uid is None else (0o750, 0o440)
    owner = -1 if uid is None else 0
    top = fsguard.ensure_dir(parent_fd, name, mode=dir_mode, uid=owner, gid=gid,
                             owners=None if uid is None else (0,))
    try:
        old = _current_version(top)
        version = _version_name()
        vfd = fsguard.fresh_dir(top, version, mode=dir_mode, uid=owner, gid=gid)
        try:
            for parts, content in files.items():
                fds = fsguard.make_dirs(vfd, parts[:-1], mode=dir_mode, uid=owner, gid=gid)
                try:
                    fsguard.write_file(fds[-1] if fds else vfd, parts[-1], content,
                                       mode=file_mode, uid=owner, gid=gid)
                finally:
                    for fd in fds:
                        os.close(fd)
        finally:
            os.close(vfd)
        fsguard.remove(top, _DATA_TMP)
        os.symlink(version, _DATA_TMP, dir_fd=top)
        os.rename(_DATA_TMP, DATA, src_dir_fd=top, dst_dir_fd=top)
        if old is not None and old != version:
            fsguard.remove(top, old)
        _link_keys(top, {parts[0] for parts in files}, current=version)
    finally:
        os.close(top)


def _current_version(top: int) -> str | None:
    try:
        target = os.readlink(DATA, dir_fd=top)
    except (FileNotFoundError, OSError):
        return None
    # Only a name of this directory written by us; anything else is not removed.
    return target if target.startswith("..") and "/" not in target and \
        target not in (DATA, _DATA_TMP) else None


def _link_keys(top: int, names: set[str], *, current: str) -> None:
    """Top-level ``<name> -> ..data/<name>`` for each of ``names``; other entries go."""
    for entry in os.listdir(top):
        if entry.startswith(".."):
            if entry not in (DATA, current):
                fsguard.remove(top, entry)  # a version an interrupted write left
            continue
        if entry not in names:
            fsguard.remove(top, entry)
    for key in names:
        want = f"{DATA}/{key}"
        st = None
        with contextlib.suppress(FileNotFoundError):
            st = os.stat(key, dir_fd=top, follow_symlinks=False)
        if st is not None and stat.S_ISLNK(st.st_mode) and \
                os.readlink(key, dir_fd=top) == want:
            continue
        fsguard.symlink(want, top, key)


__all__ = ["DATA", "ConfigVolumeError", "files_of", "write"]
