"""One exec session of the node runtime API: frames both ways between a client and a command.

Theory of operation
-------------------
After the ``101 Switching Protocols`` answer (:mod:`.server`) the connection
carries frames (:mod:`.protocol`).  :func:`serve_exec` runs two pumps: the
command's output to the client (STDOUT and STDERR frames from its pipes, or STDOUT
alone from a terminal's master), and the client's frames to the command (STDIN
bytes; an empty STDIN frame closes the pipe, or types ``^D`` on a terminal; RESIZE
sets a terminal's window size, and is ignored without one).  When the command
exits its STATUS frame is the last; on a terminal the output still queued in it is
read first, for at most :data:`TTY_DRAIN_SECONDS` (a child left holding the
terminal does not keep the session open).

When the client goes away (or sends an oversized frame) the command is killed
with its process group: inside a container's namespaces it is a child of
``nsenter``, which a kill of ``nsenter`` alone would orphan.  A command on a
terminal leads a session of its own and dies of the hang-up when the terminal's
master is closed.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal

from pincompute.node.terminal import Terminal

from .protocol import (
    MAX_FRAME,
    RESIZE,
    STDERR,
    STDIN,
    STDOUT,
    encode_frame,
    exit_frame,
    parse_resize,
    read_frame,
)

TTY_DRAIN_SECONDS = 1.0
"""After a terminal command exits: how long its last output may take to be read."""


def kill(proc: asyncio.subprocess.Process) -> None:
    """Kill an exec'd command with its process group."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        with contextlib.suppress(ProcessLookupError):
            proc.kill()


async def serve_exec(proc: asyncio.subprocess.Process, term: Terminal | None,
                     reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Carry one exec session over an upgraded connection until the command exits (then
    its STATUS frame) or the client goes away (then the command is killed)."""
    lock = asyncio.Lock()

    async def send_frame(frame: bytes) -> None:
        async with lock:
            writer.write(frame)
            await writer.drain()

    async def out(stream: asyncio.StreamReader | None, channel: int) -> None:
        if stream is None:
            return
        while data := await stream.read(65536):
            await send_frame(encode_frame(channel, data))

    async def out_tty(term: Terminal) -> None:
        while data := await term.read():
            await send_frame(encode_frame(STDOUT, data))

    async def to_stdin(data: bytes) -> None:
        if term is not None:
            # An empty frame ends the input: on a terminal, that is typing ^D.
            await term.write(data or b"\x04")
            return
        if proc.stdin is None:
            return
        if not data:
            proc.stdin.close()
            return
        with contextlib.suppress(ConnectionError):
            proc.stdin.write(data)
            await proc.stdin.drain()

    async def inp() -> None:
        while True:
            try:
                frame = await read_frame(reader, limit=MAX_FRAME)
            except (ConnectionError, ValueError):
                frame = None  # gone, or an oversized frame: the session ends
            if frame is None:
                if proc.returncode is None:
                    # The client went away: so does the command.
                    kill(proc)
                return
            channel, data = frame
            if channel == STDIN:
                await to_stdin(data)
            elif channel == RESIZE and term is not None:
                try:
                    term.resize(*parse_resize(data))
                except ValueError as exc:
                    await send_frame(encode_frame(STDERR, f"{exc}\r\n".encode()))

    reading = asyncio.ensure_future(inp())
    try:
        if term is None:
            await asyncio.gather(out(proc.stdout, STDOUT), out(proc.stderr, STDERR))
            code = await proc.wait()
        else:
            pumping = asyncio.ensure_future(out_tty(term))
            code = await proc.wait()
            # What the command wrote before it exited is still in the terminal; a
            # child it left holding the terminal does not keep the session open.
            try:
                async with asyncio.timeout(TTY_DRAIN_SECONDS):
                    await asyncio.shield(pumping)
            except TimeoutError:
                pumping.cancel()
        await send_frame(exit_frame(code))
    finally:
        reading.cancel()
        if proc.returncode is None:
            kill(proc)


__all__ = ["TTY_DRAIN_SECONDS", "kill", "serve_exec"]
