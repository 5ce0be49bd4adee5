"""Safe file-system primitives for trees a tenant can write to.

Theory of operation
-------------------
The node agent runs as root and prepares directories that pods (unprivileged
uids) write into: volumes, container roots, config files.  A path string
handed to ``open``/``mkdir``/``chown``/``rmtree`` is resolved by the kernel
*with root's rights*, following every symbolic link and ``..`` on the way, so a
tenant who plants ``containers/main -> /`` turns the agent's next ``chown``
into a chown of the whole machine.

The rule here: the agent never resolves a path through a directory a tenant
can write.  It starts from a directory it trusts (its own, root-owned: the
node's ``pods/`` or storage directory) held open as a file descriptor, and
walks one component at a time with ``openat(O_NOFOLLOW | O_DIRECTORY)``
(:func:`open_dir`): a symbolic link anywhere is refused (:class:`UnsafePath`),
not followed.  Every name coming from a pod spec is checked to be one
component (:func:`check_name`) and every path normalised into components with
``..`` refused (:func:`relative_parts`), so nothing climbs out of its tree even
before the walk.  Changes are made to the descriptor itself (``fchown``,
``fchmod``) or to a name relative to it (``mkdir``/``unlink``/``symlink`` with
``dir_fd``), and whole trees are removed and re-owned by walking descriptors
(:func:`remove` uses ``shutil.rmtree(dir_fd=...)``, which is symlink-attack safe
where ``shutil.rmtree.avoids_symlink_attacks``; :func:`chown_tree` never
follows a link and only re-owns what the previous owner owned, so a hard link
to a system file keeps its owner).

The layout that makes this sufficient (:mod:`.processruntime`): a pod's
directory and the directories holding its volumes, config and container roots
belong to root; only the leaves (a volume, a container root) belong to the pod.
A tenant can then rearrange only its leaves, and the agent treats each leaf as
hostile: it opens it without following links, and container roots are rebuilt
fresh at every start.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import stat
from collections.abc import Collection, Iterator
from pathlib import Path

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_FILE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


class UnsafePath(OSError):
    """A name or path that would leave its tree, or a link where a directory must be."""


def check_name(name: object, *, what: str = "name") -> str:
    """``name`` if it is exactly one path component (no ``/``, not ``.``/``..``, no NUL)."""
    if not isinstance(name, str) or name in ("", ".", "..") or "/" in name or "\0" in name:
        raise UnsafePath(f"{what} {name!r} is not a single path component")
    return name


def relative_parts(path: object, *, what: str = "path") -> tuple[str, ...]:
    """``path`` normalised to its components: empty and ``.`` dropped, ``..`` refused.

    A leading ``/`` is ignored (container paths are read relative to the container's
    root), so ``"/var//db/."`` is ``("var", "db")``.
    """
    if not isinstance(path, str) or "\0" in path:
        raise UnsafePath(f"{what} {path!r} is not a path")
    parts = tuple(p for p in path.split("/") if p not in ("", "."))
    if ".." in parts:
        raise UnsafePath(f"{what} {path!r} must not contain '..'")
    return parts


@contextlib.contextmanager
def opened_dir(path: Path | str) -> Iterator[int]:
    """A trusted directory (the agent's own) as a descriptor; its last component no link."""
    fd = os.open(path, _DIR_FLAGS)
    try:
        yield fd
    finally:
        os.close(fd)


def open_dir(parent_fd: int, name: str) -> int:
    """The directory ``name`` in ``parent_fd``, opened without following a link."""
    check_name(name)
    try:
        return os.open(name, _DIR_FLAGS, dir_fd=parent_fd)
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.ENOTDIR):
            raise UnsafePath(f"{name!r} is not a directory (a link or a file)") from exc
        raise


def _lstat(parent_fd: int, name: str) -> os.stat_result | None:
    try:
        return os.stat(name, dir_fd=parent_fd, follow_symlinks=False)
    except FileNotFoundError:
        return None


def remove(parent_fd: int, name: str) -> None:
    """Remove ``name`` from ``parent_fd`` whatever it is, never following a link."""
    check_name(name)
    st = _lstat(parent_fd, name)
    if st is None:
        return
    if stat.S_ISDIR(st.st_mode):
        try:
            shutil.rmtree(name, dir_fd=parent_fd)
        except RecursionError as exc:  # one descriptor and frame per level
            raise UnsafePath(f"{name!r} is nested too deeply to remove") from exc
    else:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(name, dir_fd=parent_fd)


def _set(fd: int, *, mode: int | None, uid: int, gid: int) -> None:
    if uid != -1 or gid != -1:
        os.fchown(fd, uid, gid)
    if mode is not None:
        os.fchmod(fd, mode)


def ensure_dir(parent_fd: int, name: str, *, mode: int, uid: int = -1, gid: int = -1,
               owners: Collection[int] | None = None) -> int:
    """The directory ``name`` of ``parent_fd`` (created if missing), owned and moded as asked.

    Whatever else stands at ``name`` — a link, a file, a directory whose owner is not in
    ``owners`` (when given) — is removed and replaced by a new directory.  Returns the
    directory's descriptor (the caller closes it).
    """
    check_name(name)
    for _ in range(3):
        created = False
        with contextlib.suppress(FileExistsError):
            os.mkdir(name, 0o700, dir_fd=parent_fd)
            created = True
        try:
            fd = open_dir(parent_fd, name)
        except (UnsafePath, FileNotFoundError):
            remove(parent_fd, name)
            continue
        if not created and owners is not None and os.fstat(fd).st_uid not in owners:
            os.close(fd)
            remove(parent_fd, name)
            continue
        try:
            _set(fd, mode=mode, uid=uid, gid=gid)
        except BaseException:
            os.close(fd)
            raise
        return fd
    raise UnsafePath(f"{name!r} keeps changing under the agent")


def fresh_dir(parent_fd: int, name: str, *, mode: int, uid: int = -1, gid: int = -1) -> int:
    """A new, empty directory ``name`` in ``parent_fd`` (whatever was there is removed)."""
    remove(parent_fd, name)
    return ensure_dir(parent_fd, name, mode=mode, uid=uid, gid=gid, owners=())


def make_dirs(root_fd: int, parts: tuple[str, ...], *, mode: int, uid: int = -1,
              gid: int = -1, owners: Collection[int] | None = None) -> list[int]:
    """Walk (creating what is missing) ``parts`` below ``root_fd``; the descriptors, in order.

    An existing component must be a real directory (never a link) owned by one of
    ``owners`` (when given); directories created get ``mode`` and the owner ``uid:gid``.
    Existing directories keep theirs.  The caller closes every descriptor returned.
    """
    fds: list[int] = []
    parent = root_fd
    try:
        for name in parts:
            check_name(name)
            created = False
            try:
                os.mkdir(name, 0o700, dir_fd=parent)
                created = True
            except FileExistsError:
                pass
            fd = open_dir(parent, name)
            fds.append(fd)
            if created:
                _set(fd, mode=mode, uid=uid, gid=gid)
            elif owners is not None and os.fstat(fd).st_uid not in owners:
                raise UnsafePath(f"{name!r} belongs to someone else")
            parent = fd
    except BaseException:
        for fd in fds:
            os.close(fd)
        raise
    return fds


def symlink(target: str, parent_fd: int, name: str) -> None:
    """Make ``name`` in ``parent_fd`` a link to ``target``, replacing what was there."""
    remove(parent_fd, name)
    os.symlink(target, name, dir_fd=parent_fd)


def write_file(dir_fd: int, name: str, data: bytes, *, mode: int, uid: int = -1,
               gid: int = -1) -> None:
    """A new file ``name`` in ``dir_fd`` holding ``data`` (whatever was there is removed)."""
    remove(dir_fd, name)
    fd = os.open(name, _FILE_FLAGS, 0o600, dir_fd=dir_fd)
    try:
        _set(fd, mode=mode, uid=uid, gid=gid)
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
    finally:
        os.close(fd)


MAX_DEPTH = 256
"""How deep :func:`chown_tree` goes (one descriptor per level; a tenant controls the depth)."""


def chown_tree(fd: int, uid: int, gid: int, *, only_from: int, _depth: int = 0) -> None:
    """Give everything in the tree of ``fd`` owned by ``only_from`` to ``uid:gid``.

    Links are re-owned themselves, never followed; what another uid owns is left alone,
    with its subtree (it is not the previous owner's to hand on).  When ``only_from`` is
    root, files with more than one hard link are left too: one may be a system file linked
    in.  A tree deeper than :data:`MAX_DEPTH` is refused (:class:`UnsafePath`).
    """
    if _depth > MAX_DEPTH:
        raise UnsafePath(f"a tree deeper than {MAX_DEPTH} levels")
    for name in os.listdir(fd):
        st = _lstat(fd, name)
        if st is None or st.st_uid != only_from:
            continue
        if stat.S_ISDIR(st.st_mode):
            try:
                child = open_dir(fd, name)
            except (UnsafePath, FileNotFoundError):
                continue
            try:
                chown_tree(child, uid, gid, only_from=only_from, _depth=_depth + 1)
            finally:
                os.close(child)
        elif only_from == 0 and st.st_nlink > 1 and not stat.S_ISLNK(st.st_mode):
            continue
        else:
            with contextlib.suppress(FileNotFoundError):
                os.chown(name, uid, gid, dir_fd=fd, follow_symlinks=False)
    if os.fstat(fd).st_uid == only_from:
        os.fchown(fd, uid, gid)


__all__ = ["MAX_DEPTH", "UnsafePath", "check_name", "chown_tree", "ensure_dir", "fresh_dir",
           "make_dirs", "open_dir", "opened_dir", "relative_parts", "remove", "symlink",
           "write_file"]
