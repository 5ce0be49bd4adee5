"""The local terminal for ``exec -it``: raw mode while the remote shell owns it, its size.

In raw mode every key (Ctrl-C, Ctrl-D, arrows) goes to the remote program
instead of being interpreted here, which is what makes a remote shell usable;
the mode is restored on the way out whatever happens.  ``SIGWINCH`` tells us
the window changed size; the caller forwards the new size as a resize frame.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import sys
import termios
import tty
from collections.abc import Callable, Iterator


def is_tty() -> bool:
    return sys.stdin.isatty() and sys.stdout.isatty()


def size() -> tuple[int, int]:
    """(columns, rows) of the terminal itself (not $COLUMNS: the remote program draws on
    this window)."""
    for stream in (sys.stdout, sys.stdin):
        try:
            cols, rows = os.get_terminal_size(stream.fileno())
            return cols, rows
        except (OSError, ValueError):
            continue
    cols, rows = shutil.get_terminal_size((80, 24))
    return cols, rows


@contextlib.contextmanager
def raw_mode() -> Iterator[None]:
    """Put stdin in raw mode (if it is a terminal) for the duration."""
    if not sys.stdin.isatty():
        yield
        return
    fd = sys.stdin.fileno()
    saved = termios.tcgetattr(fd)
    try:
        tty.setraw(fd)
        yield
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)


@contextlib.contextmanager
def on_resize(callback: Callable[[int, int], None]) -> Iterator[None]:
    """Call ``callback(cols, rows)`` whenever the window changes size (and once now)."""
    def handler(_signum: int, _frame: object) -> None:
        callback(*size())

    previous = signal.signal(signal.SIGWINCH, handler)
    try:
        callback(*size())
        yield
    finally:
        signal.signal(signal.SIGWINCH, previous)


def read_stdin(chunk: int = 4096) -> bytes:
    """What stdin has (raw bytes; ``b""`` at its end)."""
    return os.read(sys.stdin.fileno(), chunk)
