"""A pseudo-terminal for one interactive exec (``pincompute exec -it``).

Theory of operation
-------------------
An interactive shell wants a terminal: line editing, job control, ``^C`` as a
signal, a window size that full-screen programs read.  :func:`open_terminal`
makes a pty pair; the exec'd command gets the *slave* as its stdin, stdout and
stderr and makes it its controlling terminal (:func:`make_controlling`, between
fork and exec, after ``setsid``), while the agent keeps the *master*: what is
written to the master is the user's typing, what is read from it the command's
output (stdout and stderr merged, as on any terminal).

The slave belongs to the pod's uid/gid (``fchown`` on the open descriptor, no
path is followed), as ``sshd`` gives a login its tty, so programs that reopen
``/dev/tty`` work; the master never leaves the agent (non-inheritable).  The
agent closes its copy of the slave right after the spawn, so a read of the
master answers end-of-file (``EIO`` on Linux) once every process holding the
terminal has gone.

Resizing is ``TIOCSWINSZ`` on the master: the kernel delivers ``SIGWINCH`` to
the terminal's foreground process group itself.  Reads and writes go through
the event loop (non-blocking master, ``add_reader``/``add_writer``).
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import struct
import termios

DEFAULT_SIZE = (80, 24)
"""Columns and rows until the client says otherwise."""
MAX_DIMENSION = 10_000
"""The largest width or height accepted (the kernel takes 16 bits; nothing real is wider)."""
_READ_CHUNK = 65536


def make_controlling(fd: int) -> None:
    """Make ``fd`` (a terminal) the calling process's controlling terminal.

    Call it in the child between fork and exec, after ``setsid``: only a session
    leader without a terminal may acquire one.
    """
    fcntl.ioctl(fd, termios.TIOCSCTTY, 0)


def _wake(ready: asyncio.Future[None]) -> None:
    # The loop may call a ready callback again before it is removed.
    if not ready.done():
        ready.set_result(None)


class Terminal:
    """One pty pair: the slave for the command, the master for the agent."""

    def __init__(self, master: int, slave: int) -> None:
        self.master = master
        self.slave: int | None = slave
        self._closed = False

    def resize(self, width: int, height: int) -> None:
        """Set the window size (columns, rows); raises ValueError when out of range."""
        if not (0 < width <= MAX_DIMENSION and 0 < height <= MAX_DIMENSION):
            raise ValueError(f"terminal size {width}x{height} out of range "
                             f"(1..{MAX_DIMENSION} each)")
        if not self._closed:
            fcntl.ioctl(self.master, termios.TIOCSWINSZ,
                        struct.pack("HHHH", height, width, 0, 0))

    def size(self) -> tuple[int, int]:
        """The window size as (columns, rows)."""
        rows, cols, _, _ = struct.unpack(
            "HHHH", fcntl.ioctl(self.master, termios.TIOCGWINSZ, b"\0" * 8))
        return cols, rows

    def spawned(self) -> None:
        """The command has its copy of the slave: drop ours (or EOF never comes)."""
        if self.slave is not None:
            os.close(self.slave)
            self.slave = None

    async def read(self) -> bytes:
        """The next output, or ``b""`` once no process holds the terminal any more."""
        loop = asyncio.get_running_loop()
        while not self._closed:
            try:
                return os.read(self.master, _READ_CHUNK)
            except BlockingIOError:
                pass
            except OSError:
                return b""  # EIO: every slave descriptor is closed
            ready = loop.create_future()
            loop.add_reader(self.master, _wake, ready)
            try:
                await ready
            finally:
                loop.remove_reader(self.master)
        return b""

    async def write(self, data: bytes) -> None:
        """Type ``data`` into the terminal."""
        loop = asyncio.get_running_loop()
        view = memoryview(data)
        while view and not self._closed:
            try:
                view = view[os.write(self.master, view):]
                continue
            except BlockingIOError:
                pass
            except OSError:
                return  # nobody reads any more: the input is moot
            ready = loop.create_future()
            loop.add_writer(self.master, _wake, ready)
            try:
                await ready
            finally:
                loop.remove_writer(self.master)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self.spawned()
        with contextlib.suppress(OSError):
            os.close(self.master)


def open_terminal(*, uid: int | None = None, gid: int | None = None,
                  size: tuple[int, int] = DEFAULT_SIZE) -> Terminal:
    """A new pty pair, its slave owned by ``uid``/``gid`` when given (the agent as root)."""
    master, slave = os.openpty()
    term = Terminal(master, slave)
    try:
        if uid is not None:
            os.fchown(slave, uid, gid if gid is not None else uid)
            os.fchmod(slave, 0o620)
        os.set_blocking(master, False)
        term.resize(*size)
    except BaseException:
        term.close()
        raise
    return term


__all__ = ["DEFAULT_SIZE", "MAX_DIMENSION", "Terminal", "make_controlling", "open_terminal"]
