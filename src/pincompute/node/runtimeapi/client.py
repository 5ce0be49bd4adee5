"""The client of a node's runtime API (tests, the API gateway, the CLI).

Theory of operation
-------------------
A :class:`NodeClient` talks to one node agent, given the endpoint the Node
advertises (its ``pincompute.io/runtime-api`` annotation) and the agent's token.
Plain requests (``pods``, ``stats``) and log streams go through httpx; exec opens
its own connection, since after the ``101 Switching Protocols`` answer the
socket carries frames (:mod:`.protocol`), not HTTP: :meth:`NodeClient.open_exec`
returns an :class:`ExecSession` to write stdin to and read output frames from,
:meth:`NodeClient.exec` runs a command to completion.

This module imports only :mod:`.protocol` and third-party libraries — nothing of
the node agent — so a process that only reads logs or execs (the gateway) does
not load the node's machinery.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import orjson

from .protocol import (
    AUTHORIZATION,
    EXEC,
    EXEC_PROTOCOL,
    LOGFILES,
    LOGS,
    MAX_FRAME,
    PODS_PATH,
    STATS_PATH,
    STATUS,
    STDIN,
    STDOUT,
    LogOptions,
    bearer,
    container_path,
    encode_frame,
    exec_query,
    exit_code,
    read_frame,
    resize_frame,
)


class NodeAPIError(Exception):
    """The node answered a logs or exec request with an error status."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


@dataclass(frozen=True, slots=True)
class ExecResult:
    exit_code: int
    stdout: bytes
    stderr: bytes


class ExecSession:
    """An open exec: write stdin, read (channel, data) frames, get the exit code."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.exit_code: int | None = None

    async def write(self, data: bytes) -> None:
        if data:
            self.writer.write(encode_frame(STDIN, data))
            await self.writer.drain()

    async def close_stdin(self) -> None:
        """End the input (on a terminal: type end-of-file, ``^D``)."""
        self.writer.write(encode_frame(STDIN, b""))
        await self.writer.drain()

    async def resize(self, width: int, height: int) -> None:
        """The terminal is now ``width`` columns by ``height`` rows (tty sessions)."""
        self.writer.write(resize_frame(width, height))
        await self.writer.drain()

    async def frames(self) -> AsyncIterator[tuple[int, bytes]]:
        """stdout/stderr frames until the command exits (then ``exit_code`` is set)."""
        while (frame := await read_frame(self.reader, limit=MAX_FRAME)) is not None:
            channel, data = frame
            if channel == STATUS:
                self.exit_code = exit_code(data)
                return
            yield channel, data

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(OSError):
            await self.writer.wait_closed()


async def _chunks(resp: Any, opened: contextlib.AsyncExitStack) -> AsyncGenerator[bytes, None]:
    try:
        async for chunk in resp.aiter_bytes():
            yield chunk
    finally:
        await opened.aclose()


class NodeClient:
    """A client of one node's runtime API."""

    def __init__(self, endpoint: str, token: str, *, timeout: float = 30.0) -> None:
        self.endpoint = endpoint.rstrip("/")
        self.token = token
        self.timeout = timeout

    def _headers(self) -> dict[str, str]:
        return {AUTHORIZATION: bearer(self.token)}

    async def _json(self, path: str) -> Any:
        import httpx
        async with httpx.AsyncClient(trust_env=False, timeout=self.timeout) as http:
            resp = await http.get(self.endpoint + path, headers=self._headers())
            resp.raise_for_status()
            return resp.json()

    async def pods(self) -> list[dict[str, Any]]:
        """The pods on the node with their container states."""
        return list(await self._json(PODS_PATH))

    async def stats(self) -> dict[str, Any]:
        """CPU/memory use per pod and container."""
        return dict(await self._json(STATS_PATH))

    async def logs(self, namespace: str, pod: str, container: str, *, follow: bool = False,
                   tail: int | None = None, since: str | None = None,
                   since_seconds: float | None = None, previous: bool = False,
                   timestamps: bool = False, file: str | None = None,
                   volume: str | None = None) -> AsyncIterator[bytes]:
        """A container's log, in chunks as the node sends them; with ``file``, that file
        of the container's logging volume (``volume`` when it mounts several)."""
        stream = await self.open_logs(namespace, pod, container, LogOptions(
            follow=follow, tail=tail, since=since, since_seconds=since_seconds,
            previous=previous, timestamps=timestamps, file=file, volume=volume))
        try:
            async for chunk in stream:
                yield chunk
        finally:
            await stream.aclose()

    async def open_logs(self, namespace: str, pod: str, container: str,
                        options: LogOptions) -> AsyncGenerator[bytes, None]:
        """Start reading a log: raises :class:`NodeAPIError` if the node refuses (before
        any byte is read, so a caller can still answer with the node's status), else
        returns the chunks (``aclose`` it when stopping early)."""
        import httpx
        url = self.endpoint + container_path(LOGS, namespace, pod, container)
        timeout = httpx.Timeout(self.timeout, read=None if options.follow else self.timeout)
        opened = contextlib.AsyncExitStack()
        try:
            http = await opened.enter_async_context(
                httpx.AsyncClient(trust_env=False, timeout=timeout))
            resp = await opened.enter_async_context(
                http.stream("GET", url, params=options.params(), headers=self._headers()))
            if resp.status_code != 200:
                body = await resp.aread()
                message = body.decode(errors="replace")
                with contextlib.suppress(ValueError):
                    message = orjson.loads(body).get("message", message)
                raise NodeAPIError(resp.status_code, message)
        except BaseException:
            await opened.aclose()
            raise
        return _chunks(resp, opened)

    async def log_files(self, namespace: str, pod: str,
                        container: str) -> list[dict[str, Any]]:
        """The files of the container's logging volumes: ``{volume, name, size, modified}``."""
        return list(await self._json(container_path(LOGFILES, namespace, pod, container)))

    async def open_exec(self, namespace: str, pod: str, container: str,
                        command: Sequence[str], *, stdin: bool = True,
                        tty: bool = False) -> ExecSession:
        """Start a command in a running container; raises :class:`NodeAPIError` if refused,
        ConnectionError if the node cannot be reached or does not answer in time.

        With ``tty`` it runs on a terminal: output comes on STDOUT alone and
        :meth:`ExecSession.resize` sets the window size."""
        url = urlsplit(self.endpoint)
        host = url.hostname or "127.0.0.1"
        port = url.port or 80
        path = (f"{container_path(EXEC, namespace, pod, container)}?"
                f"{exec_query(command, stdin=stdin, tty=tty)}")
        writer: asyncio.StreamWriter | None = None
        try:
            # The handshake has the client's timeout; the session itself has none.
            async with asyncio.timeout(self.timeout):
                reader, writer = await asyncio.open_connection(host, port)
                writer.write((f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\n"
                              f"{AUTHORIZATION}: {bearer(self.token)}\r\n"
                              f"Connection: Upgrade\r\nUpgrade: {EXEC_PROTOCOL}\r\n"
                              "Content-Length: 0\r\n\r\n").encode())
                await writer.drain()
                head = await reader.readuntil(b"\r\n\r\n")
                status_line = head.split(b"\r\n", 1)[0].decode("latin-1")
                code = int(status_line.split(" ")[1])
                if code != 101:
                    body = await reader.read()
                    message = body.decode(errors="replace")
                    with contextlib.suppress(ValueError):
                        message = orjson.loads(body).get("message", message)
                    raise NodeAPIError(code, message)
        except (TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError,
                ValueError, IndexError) as exc:
            if writer is not None:
                writer.close()
            raise ConnectionError(f"no exec handshake from {self.endpoint}: "
                                  f"{exc.__class__.__name__}: {exc}") from None
        except BaseException:
            if writer is not None:
                writer.close()
            raise
        return ExecSession(reader, writer)

    async def exec(self, namespace: str, pod: str, container: str, command: Sequence[str], *,
                   stdin: bytes | None = None) -> ExecResult:
        """Run a command to completion; returns its exit code and output."""
        session = await self.open_exec(namespace, pod, container, command,
                                       stdin=stdin is not None)
        try:
            if stdin is not None:
                await session.write(stdin)
                await session.close_stdin()
            out = bytearray()
            err = bytearray()
            async for channel, data in session.frames():
                (out if channel == STDOUT else err).extend(data)
            return ExecResult(session.exit_code if session.exit_code is not None else -1,
                              bytes(out), bytes(err))
        finally:
            await session.close()


__all__ = ["ExecResult", "ExecSession", "LogOptions", "NodeAPIError", "NodeClient"]
