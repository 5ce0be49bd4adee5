"""Files an app writes to its ``logging`` volume: listed and streamed like stdout/stderr.

Theory of operation
-------------------
A ``logging`` volume (:mod:`.volumes`) is ``<pod dir>/logging/<volume>``: the
directories above it are root's, the volume itself is the pod's — a tenant's
tree.  The node runtime API (:mod:`.runtimeapi`) lists its files
(:func:`list_files`) and streams one (:func:`stream`, with ``tail`` and
``follow``), and the agent reading it runs as root, so every step is one that
cannot be turned against the host (:mod:`.fsguard`):

* the volume is reached from the pod's directory by descriptor, each component
  opened with ``O_NOFOLLOW`` (:func:`open_volume`): a volume replaced by a link
  is refused;
* a file name is one component (no ``/``, not ``..``) and is opened relative to
  the volume's descriptor with ``O_NOFOLLOW | O_NONBLOCK`` (:func:`open_file`):
  a link the pod planted (``app.log -> /etc/shadow``) is refused, not followed,
  and a FIFO cannot block the agent;
* what was opened must be a regular file with one link, owned by the pod's uid
  when pods have their own: a hard link to a file the pod does not own (say a
  system file on the same file system) is refused too.

The listing holds the regular, singly linked files at the top of the volume only
(at most :data:`MAX_FILES`), with size and modification time.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import errno
import os
import stat
from collections.abc import AsyncGenerator, Callable
from pathlib import Path
from typing import Any

from . import fsguard

MAX_FILES = 1000
"""The most files a listing returns (a volume may hold any number)."""
CHUNK = 64 * 1024
FOLLOW_INTERVAL = 0.2
"""Seconds between looks at a followed file's size."""
_FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC


class LogFileError(OSError):
    """A logging volume or file that does not exist or may not be read (the API's 404)."""


def open_volume(pod_dir: Path, volume: str) -> int:
    """The descriptor of the logging volume ``volume`` of the pod in ``pod_dir`` (the
    agent's own directory), never following a link on the way."""
    try:
        name = fsguard.check_name(volume, what="logging volume")
        with fsguard.opened_dir(pod_dir) as pod_fd:
            logging_fd = fsguard.open_dir(pod_fd, "logging")
            try:
                return fsguard.open_dir(logging_fd, name)
            finally:
                os.close(logging_fd)
    except FileNotFoundError as exc:
        raise LogFileError(f"logging volume {volume!r} does not exist") from exc
    except fsguard.UnsafePath as exc:
        raise LogFileError(f"logging volume {volume!r}: {exc}") from exc


def list_files(volume_fd: int) -> list[dict[str, Any]]:
    """The regular files at the top of the volume: ``{name, size, modified}``, by name."""
    out: list[dict[str, Any]] = []
    for name in sorted(os.listdir(volume_fd))[:MAX_FILES * 4]:
        try:
            st = os.stat(name, dir_fd=volume_fd, follow_symlinks=False)
        except FileNotFoundError:
            continue
        if not stat.S_ISREG(st.st_mode) or st.st_nlink != 1:
            continue  # what :func:`open_file` would refuse is not offered either
        out.append({"name": name, "size": st.st_size,
                    "modified": dt.datetime.fromtimestamp(st.st_mtime, dt.UTC).isoformat(
                        timespec="seconds").replace("+00:00", "Z")})
        if len(out) >= MAX_FILES:
            break
    return out


def open_file(volume_fd: int, name: str, *, owner: int | None) -> int:
    """The file ``name`` of the volume, opened for reading without following a link.

    ``owner``: the pod's uid when pods have their own; the file must be theirs.
    Raises :class:`LogFileError` for anything but a regular, singly linked file.
    """
    try:
        fsguard.check_name(name, what="log file name")
    except fsguard.UnsafePath as exc:
        raise LogFileError(str(exc)) from exc
    try:
        fd = os.open(name, _FILE_FLAGS, dir_fd=volume_fd)
    except FileNotFoundError as exc:
        raise LogFileError(f"log file {name!r} does not exist") from exc
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.EMLINK):
            raise LogFileError(f"log file {name!r} is a link: refused") from exc
        raise LogFileError(f"log file {name!r}: {exc.strerror}") from exc
    st = os.fstat(fd)
    why = None
    if not stat.S_ISREG(st.st_mode):
        why = "is not a regular file"
    elif st.st_nlink != 1:
        why = "has other hard links"
    elif owner is not None and st.st_uid != owner:
        why = "does not belong to the pod"
    if why is not None:
        os.close(fd)
        raise LogFileError(f"log file {name!r} {why}: refused")
    return fd


def tail_offset(fd: int, lines: int, *, size: int) -> int:
    """Where the last ``lines`` lines of the file start (reading backwards in chunks)."""
    if lines <= 0:
        return size
    pos = size
    seen = 0
    # A final newline ends the last line; it does not start another.
    if size and os.pread(fd, 1, size - 1) == b"\n":
        seen = -1
    while pos > 0:
        start = max(0, pos - CHUNK)
        block = os.pread(fd, pos - start, start)
        idx = len(block)
        while True:
            idx = block.rfind(b"\n", 0, idx)
            if idx < 0:
                break
            seen += 1
            if seen == lines:
                return start + idx + 1
        pos = start
    return 0


async def stream(fd: int, *, tail: int | None = None, follow: bool = False,
                 done: Callable[[], bool] = lambda: False,
                 interval: float = FOLLOW_INTERVAL) -> AsyncGenerator[bytes, None]:
    """The file's content in chunks (the last ``tail`` lines only, when given); with
    ``follow``, what is appended after, until ``done()`` (the pod is gone) says stop.
    The file shrinking (truncated by the app) starts it over.  Closes ``fd``."""
    try:
        size = os.fstat(fd).st_size
        pos = 0 if tail is None else tail_offset(fd, tail, size=size)
        while True:
            chunk = os.pread(fd, CHUNK, pos)
            if chunk:
                pos += len(chunk)
                yield chunk
                continue
            if not follow:
                return
            if done():
                return
            await asyncio.sleep(interval)
            if os.fstat(fd).st_size < pos:
                pos = 0
    finally:
        with contextlib.suppress(OSError):
            os.close(fd)


__all__ = ["MAX_FILES", "LogFileError", "list_files", "open_file", "open_volume", "stream",
           "tail_offset"]
