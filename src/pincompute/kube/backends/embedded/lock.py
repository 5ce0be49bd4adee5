"""The embedded store's directory lock: one process at a time opens a store.

Two processes on one SQLite file would each keep their own in-memory copy, hand out
the same resourceVersions and overwrite each other's rows.  The store takes an
exclusive ``flock`` on ``LOCK`` in its directory before reading anything, and holds
it until closed; the kernel drops it if the process dies, so a crash leaves no stale
lock.  The file records the holder's pid for the error message.  (``flock`` locks
belong to an open file: a second open of the same store in one process is refused
too.)
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from .errors import StoreInUse

LOCK_FILE = "LOCK"


class StoreLock:
    """An exclusive lock on a store directory (see the module docstring)."""

    def __init__(self, fd: int) -> None:
        self._fd = fd

    @classmethod
    def acquire(cls, directory: Path) -> StoreLock:
        path = directory / LOCK_FILE
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 64).decode(errors="replace").strip() or "another process"
            os.close(fd)
            raise StoreInUse(f"the store in {directory} is in use by {holder}; stop it "
                             "first (one process at a time opens a store)") from None
        except BaseException:
            os.close(fd)
            raise
        try:
            os.fchmod(fd, 0o600)  # the store's files are private; an older one may not be
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"pid {os.getpid()}\n".encode(), 0)
        except OSError:
            pass  # a full disk: the lock holds without the note
        return cls(fd)

    def release(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


__all__ = ["LOCK_FILE", "StoreLock"]
