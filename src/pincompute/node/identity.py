"""Pod identities: one unprivileged uid/gid per pod, unique on the machine.

Theory of operation
-------------------
When the agent runs as root, each pod is a security principal of its own: its
processes run as a uid/gid no other pod has, its directories belong to that uid
with mode 0700, so the kernel itself keeps tenants apart — one pod can neither
read another's files nor signal its processes (signals need a matching uid).

Several agents (nodes) can share one machine, so uniqueness must hold across
processes, not only within one.  A :class:`UidAllocator` keeps a registry
directory (default ``/run/pincompute/uids``) with one file per uid, named after
the uid.  ``O_CREAT | O_EXCL`` makes taking a free uid atomic across processes.
A registry file is in one of two states (the table :data:`ENTRY_STATES`):

=============== ============================ ===================================
state           content                      meaning
=============== ============================ ===================================
``held``        ``<pod uid> <node>``         a pod of that node runs as the uid
``quarantined`` ``- <node> <released at>``   released; not reusable before the
                                             quarantine has passed *and* no
                                             process runs as the uid any more
=============== ============================ ===================================

Why quarantine: files a pod leaves outside its sandbox (a persistent volume not
yet handed back, a stray daemon) still carry its uid; the next pod to get the
uid would inherit them.  Teardown hands persistent volumes back to root
(:func:`disown`); the quarantine covers whatever teardown could not reach.
Reclaiming a quarantined uid happens under a registry lock and replaces the
file atomically (``rename``), so the file never disappears and no other agent's
``O_EXCL`` can slip in between.

A restarted agent must not start over at the first uid (its previous pods' uids
would come round first): with a ``state`` file (one per node, mode 0600, in the
node's own directory) the allocator persists where it stopped and its
quarantine, which also survives a reboot that empties ``/run``.  A restarted
agent reclaims the ``held`` entries of its own node (its pods get their uids
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
import errno
import fcntl
import json
import os
import stat
import time
from collections.abc import Callable, Iterator
from pathlib import Path

DEFAULT_REGISTRY = Path("/run/pincompute/uids")
DEFAULT_FIRST = 200_000
DEFAULT_COUNT = 100_000
DEFAULT_QUARANTINE = 300.0
"""Seconds a released uid waits before another pod may get it."""
PROJECT_GID_FIRST = 300_000

_QUARANTINED = "-"
ENTRY_STATES = {
    "held": "<pod uid> <node>: a pod of the node runs as the uid",
    "quarantined": "- <node> <released at>: reusable once the delay passed and no process "
                   "runs as the uid",
}


class UidExhausted(RuntimeError):
    """Every uid of the range is held (or quarantined) on this machine."""


def uid_has_processes(uid: int) -> bool:
    """Whether any process of the machine has ``uid`` as its real, effective or saved uid."""
    with contextlib.suppress(FileNotFoundError):
        for entry in os.scandir("/proc"):
            if not entry.name.isdigit():
                continue
            try:
                with open(f"/proc/{entry.name}/status", "rb") as f:
                    for line in f:
                        if line.startswith(b"Uid:"):
                            if uid in {int(x) for x in line.split()[1:4]}:
                                return True
                            break
            except OSError:
                continue  # gone meanwhile
    return False


class UidAllocator:
    def __init__(self, *, node: str, registry: Path = DEFAULT_REGISTRY,
                 first: int = DEFAULT_FIRST, count: int = DEFAULT_COUNT,
                 state: Path | None = None, quarantine: float = DEFAULT_QUARANTINE,
                 clock: Callable[[], float] = time.time,
                 in_use: Callable[[int], bool] = uid_has_processes) -> None:
        self.node = node
        self.registry = registry
        self.first = first
        self.count = count
        self.state = state
        self.quarantine = quarantine
        self._clock = clock
        self._in_use = in_use
        registry.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._by_pod: dict[str, int] = {}
        self._next = first
        self._quarantined: dict[int, float] = {}
        self._load_state()

    # -- persistence --

    def _load_state(self) -> None:
        if self.state is None:
            return
        try:
            data = json.loads(self.state.read_text())
            nxt = int(data.get("next", self.first))
            quarantined = {int(k): float(v) for k, v in (data.get("quarantine") or {}).items()}
        except (OSError, ValueError, AttributeError, TypeError):
            return  # missing or unreadable: start at the range's beginning
        if self.first <= nxt < self.first + self.count:
            self._next = nxt
        now = self._clock()
        for uid, released in quarantined.items():
            if now - released < self.quarantine and self._in_range(uid):
                self._quarantined[uid] = released
                # After a reboot /run is empty: the quarantine must hold for other nodes too.
                self._create(uid, self._quarantine_line(released))

    def _save_state(self) -> None:
        if self.state is None:
            return
        now = self._clock()
        self._quarantined = {u: t for u, t in self._quarantined.items()
                             if now - t < self.quarantine}
        body = json.dumps({"next": self._next,
                           "quarantine": {str(u): t for u, t in self._quarantined.items()}})
        tmp = self.state.with_name(self.state.name + ".tmp")
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        # Root-only from its creation; never through a link planted at its name.
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(body)
        os.replace(tmp, self.state)

    # -- registry entries --

    def _in_range(self, uid: int) -> bool:
        return self.first <= uid < self.first + self.count

    def _quarantine_line(self, released: float) -> str:
        return f"{_QUARANTINED} {self.node} {released:.3f}\n"

    def _create(self, uid: int, line: str) -> bool:
        try:
            fd = os.open(self.registry / str(uid), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            return False
        with os.fdopen(fd, "w") as f:
            f.write(line)
        return True

    def _replace(self, uid: int, line: str) -> None:
        tmp = self.registry / f".{uid}.{os.getpid()}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(line)
        os.replace(tmp, self.registry / str(uid))

    def _read(self, uid: int) -> list[str] | None:
        try:
            return (self.registry / str(uid)).read_text().split()
        except (FileNotFoundError, UnicodeDecodeError):
            return None

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        fd = os.open(self.registry / ".lock", os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def _reusable(self, fields: list[str] | None, uid: int) -> bool:
        if not fields or fields[0] != _QUARANTINED or len(fields) != 3:
            return False
        try:
            released = float(fields[2])
        except ValueError:
            return False
        return self._clock() - released >= self.quarantine and not self._in_use(uid)

    def _reclaim(self, uid: int, line: str) -> bool:
        """Take a quarantined uid whose quarantine is over (atomically, under the lock)."""
        if not self._reusable(self._read(uid), uid):
            return False
        with self._locked():
            if not self._reusable(self._read(uid), uid):
                return False  # another agent took it meanwhile
            self._replace(uid, line)
        return True

    # -- the interface --

    def allocate(self, pod_uid: str) -> int:
        """A uid for the pod (the same one on repeated calls)."""
        if pod_uid in self._by_pod:
            return self._by_pod[pod_uid]
        line = f"{pod_uid} {self.node}\n"
        for _ in range(self.count):
            uid = self._next
            self._next = self.first + (self._next + 1 - self.first) % self.count
            if self._create(uid, line) or self._reclaim(uid, line):
                self._by_pod[pod_uid] = uid
                self._quarantined.pop(uid, None)
                self._save_state()
                return uid
        raise UidExhausted(f"all {self.count} pod uids from {self.first} are in use or "
                           f"quarantined (for {self.quarantine:g}s after their pod ended)")

    def release(self, pod_uid: str) -> None:
        """The pod is gone: its uid goes into quarantine (see the module docstring)."""
        uid = self._by_pod.pop(pod_uid, None)
        if uid is None:
            return
        released = self._clock()
        self._replace(uid, self._quarantine_line(released))
        self._quarantined[uid] = released
        self._save_state()

    def owned_by(self) -> dict[str, int]:
        """pod uid → uid for the held registry entries of this node (after an agent restart)."""
        found: dict[str, int] = {}
        with contextlib.suppress(FileNotFoundError):
            for entry in os.scandir(self.registry):
                if not entry.name.isdigit():
                    continue
                try:
                    pod_uid, node = Path(entry.path).read_text().split()
                except (OSError, ValueError):
                    continue  # quarantined (three fields) or being written
                if node == self.node and pod_uid != _QUARANTINED:
                    found[pod_uid] = int(entry.name)
        return found

    def adopt(self, pod_uid: str, uid: int) -> None:
        """Take back a registry entry of this node found by :meth:`owned_by`."""
        self._by_pod[pod_uid] = uid

    def held(self) -> dict[str, int]:
        """pod uid → uid for every uid this allocator holds (a copy)."""
        return dict(self._by_pod)

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


def disown(path: Path) -> None:
    """Hand a directory tree a pod owned back to root (0:0; the top becomes 0700).

    For data that outlives the pod (persistent volumes): once the pod's uid is
    released, nothing of the tree may still belong to it.  Links are never
    followed: the walk holds directory file descriptors (``os.fwalk``, which
    refuses a top that is not the directory it opened) and changes each entry
    with ``fchownat(AT_SYMLINK_NOFOLLOW)``, so a link the pod planted is changed
    itself, not its target.
    """
    try:
        top = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    except OSError as exc:
        if exc.errno in (errno.ENOENT, errno.ENOTDIR, errno.ELOOP):
            return  # gone, or not a directory (a link is never followed)
        raise
    try:
        # The top first: from here on the old uid cannot even enter.
        os.fchown(top, 0, 0)
        os.fchmod(top, stat.S_IRWXU)
        for _dirpath, dirnames, filenames, dirfd in os.fwalk(".", dir_fd=top,
                                                            follow_symlinks=False):
            for name in (*dirnames, *filenames):
                with contextlib.suppress(FileNotFoundError):
                    os.chown(name, 0, 0, dir_fd=dirfd, follow_symlinks=False)
    finally:
        os.close(top)


__all__ = ["DEFAULT_QUARANTINE", "DEFAULT_REGISTRY", "ENTRY_STATES", "UidAllocator",
           "UidExhausted", "disown", "uid_has_processes"]
