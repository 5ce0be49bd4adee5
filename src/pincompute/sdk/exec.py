"""Exec: a command in a pod's container, over a websocket (sync and async sessions).

Theory of operation
-------------------
``GET /api/v1/projects/{p}/pods/{pod}/exec?command=...&container=&tty=&stdin=``
upgrades to a websocket.  Every binary message is one frame: its first byte a
channel, the rest its payload — :data:`STDIN` (the client's input; an empty
frame closes it), :data:`STDOUT`, :data:`STDERR`, :data:`STATUS` (one final JSON
object, ``{"exitCode": n}``, after which the server closes) and :data:`RESIZE`
(the client's terminal size, ``{"width": columns, "height": rows}``).  :func:`encode` and
:func:`decode` are the framing, the sessions are the I/O around it.

A refused upgrade (no such pod, a viewer's token, ...) answers an HTTP error
before any websocket exists; it is raised as the SDK's exception like any call.
(A server that cannot answer a handshake with an HTTP error closes it with code
``4000 + status`` and the message as the reason: raised the same way.)
"""

from __future__ import annotations

import contextlib
import queue
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import httpx
import orjson
from httpx_ws import (
    AsyncWebSocketSession,
    HTTPXWSException,
    WebSocketDisconnect,
    WebSocketSession,
    WebSocketUpgradeError,
    aconnect_ws,
    connect_ws,
)

from .errors import PinComputeError, Unreachable, error_from_response
from .routes import exec_path

STDIN, STDOUT, STDERR, STATUS, RESIZE = 0, 1, 2, 3, 4


@dataclass(frozen=True, slots=True)
class ExecResult:
    exit_code: int
    stdout: bytes
    stderr: bytes


def encode(channel: int, payload: bytes = b"") -> bytes:
    return bytes((channel,)) + payload


def decode(message: bytes) -> tuple[int, bytes]:
    if not message:
        raise PinComputeError("the exec stream sent an empty frame")
    return message[0], message[1:]


def resize_frame(cols: int, rows: int) -> bytes:
    return encode(RESIZE, orjson.dumps({"width": cols, "height": rows}))


def exit_code_of(payload: bytes) -> int:
    try:
        status = orjson.loads(payload)
        return int(status.get("exitCode", 1))
    except (orjson.JSONDecodeError, AttributeError, TypeError, ValueError):
        raise PinComputeError(f"the exec stream sent a bad status: {payload[:80]!r}") from None


def exec_url(server: str, pod: str, *, project: str | None, command: Sequence[str],
             container: str | None, tty: bool, stdin: bool) -> str:
    if not command:
        raise PinComputeError("exec needs a command")
    path, _ = exec_path(pod, project=project)
    query: list[tuple[str, str]] = [("command", c) for c in command]
    if container:
        query.append(("container", container))
    if tty:
        query.append(("tty", "true"))
    if stdin:
        query.append(("stdin", "true"))
    return f"{server}{path}?{urlencode(query)}"


def read_refusal(response: httpx.Response) -> None:
    """An httpx response hook: read the body of a refused websocket handshake while the
    stream is open (the websocket library closes it before raising)."""
    if response.status_code != 101 and \
            response.request.headers.get("upgrade", "").lower() == "websocket":
        response.read()


async def aread_refusal(response: httpx.Response) -> None:
    if response.status_code != 101 and \
            response.request.headers.get("upgrade", "").lower() == "websocket":
        await response.aread()


def _upgrade_error(e: WebSocketUpgradeError) -> Exception:
    response = e.response
    try:
        body: Any = orjson.loads(response.content)
    except (orjson.JSONDecodeError, httpx.HTTPError):
        body = ""
    if response.status_code == 101 or response.is_success:
        return PinComputeError("the server did not upgrade the exec request to a websocket")
    return error_from_response(response.status_code, body, response.headers)


def _closed(e: WebSocketDisconnect) -> Exception:
    if 4000 <= e.code < 5000:  # a refusal sent as a close code: 4000 + HTTP status
        return error_from_response(e.code - 4000, {"message": e.reason}, {})
    if e.code == 1008:  # policy violation: the token was revoked or the role taken away
        return error_from_response(403, {"message": e.reason or "exec ended: access "
                                         "revoked"}, {})
    return PinComputeError(f"the exec stream closed before the command's exit status "
                           f"({e.code} {e.reason})".rstrip())


class _Collector:
    def __init__(self) -> None:
        self.out: list[bytes] = []
        self.err: list[bytes] = []

    def add(self, channel: int, payload: bytes) -> None:
        (self.out if channel == STDOUT else self.err).append(payload)

    def result(self, code: int) -> ExecResult:
        return ExecResult(code, b"".join(self.out), b"".join(self.err))


class ExecSession:
    """A running command: send input, read ``(channel, bytes)`` output, then its exit code."""

    def __init__(self, stack: contextlib.ExitStack, ws: WebSocketSession) -> None:
        self._stack = stack
        self._ws = ws
        self.exit_code: int | None = None

    @classmethod
    def open(cls, client: httpx.Client, url: str) -> ExecSession:
        stack = contextlib.ExitStack()
        try:
            ws: WebSocketSession = stack.enter_context(connect_ws(url, client))
        except WebSocketUpgradeError as e:
            stack.close()
            raise _upgrade_error(e) from None
        except httpx.TransportError as e:
            stack.close()
            raise Unreachable(f"cannot reach {url.split('/api/')[0]}: {e}") from None
        return cls(stack, ws)

    def __enter__(self) -> ExecSession:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def close(self) -> None:
        with contextlib.suppress(HTTPXWSException, httpx.HTTPError, RuntimeError):
            self._stack.close()

    def send(self, data: bytes) -> None:
        if data:
            self._ws.send_bytes(encode(STDIN, data))

    def close_stdin(self) -> None:
        self._ws.send_bytes(encode(STDIN))

    def resize(self, cols: int, rows: int) -> None:
        self._ws.send_bytes(resize_frame(cols, rows))

    def receive(self, timeout: float | None = None) -> tuple[int, bytes] | None:
        """The next output frame; ``None`` once the command has exited (or on timeout,
        with :attr:`exit_code` still ``None``)."""
        while self.exit_code is None:
            try:
                channel, payload = decode(self._ws.receive_bytes(timeout=timeout))
            except queue.Empty:
                return None
            except WebSocketDisconnect as e:
                raise _closed(e) from None
            except HTTPXWSException as e:
                raise Unreachable(f"the exec stream failed: {e}") from None
            if channel == STATUS:
                self.exit_code = exit_code_of(payload)
                return None
            if channel in (STDOUT, STDERR):
                return channel, payload
        return None

    def __iter__(self) -> Iterator[tuple[int, bytes]]:
        while (frame := self.receive()) is not None:
            yield frame

    def collect(self) -> ExecResult:
        """Read to the end: the exit code and everything the command wrote."""
        out = _Collector()
        for channel, payload in self:
            out.add(channel, payload)
        assert self.exit_code is not None
        return out.result(self.exit_code)


class AsyncExecSession:
    """:class:`ExecSession`, awaited."""

    def __init__(self, stack: contextlib.AsyncExitStack, ws: AsyncWebSocketSession) -> None:
        self._stack = stack
        self._ws = ws
        self.exit_code: int | None = None

    @classmethod
    async def open(cls, client: httpx.AsyncClient, url: str) -> AsyncExecSession:
        stack = contextlib.AsyncExitStack()
        try:
            ws: AsyncWebSocketSession = await stack.enter_async_context(
                aconnect_ws(url, client))
        except WebSocketUpgradeError as e:
            await stack.aclose()
            raise _upgrade_error(e) from None
        except httpx.TransportError as e:
            await stack.aclose()
            raise Unreachable(f"cannot reach {url.split('/api/')[0]}: {e}") from None
        return cls(stack, ws)

    async def __aenter__(self) -> AsyncExecSession:
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        with contextlib.suppress(HTTPXWSException, httpx.HTTPError, RuntimeError):
            await self._stack.aclose()

    async def send(self, data: bytes) -> None:
        if data:
            await self._ws.send_bytes(encode(STDIN, data))

    async def close_stdin(self) -> None:
        await self._ws.send_bytes(encode(STDIN))

    async def resize(self, cols: int, rows: int) -> None:
        await self._ws.send_bytes(resize_frame(cols, rows))

    async def receive(self, timeout: float | None = None) -> tuple[int, bytes] | None:
        while self.exit_code is None:
            try:
                channel, payload = decode(await self._ws.receive_bytes(timeout=timeout))
            except TimeoutError:
                return None
            except WebSocketDisconnect as e:
                raise _closed(e) from None
            except HTTPXWSException as e:
                raise Unreachable(f"the exec stream failed: {e}") from None
            if channel == STATUS:
                self.exit_code = exit_code_of(payload)
                return None
            if channel in (STDOUT, STDERR):
                return channel, payload
        return None

    async def __aiter__(self) -> AsyncIterator[tuple[int, bytes]]:
        while (frame := await self.receive()) is not None:
            yield frame

    async def collect(self) -> ExecResult:
        out = _Collector()
        async for channel, payload in self:
            out.add(channel, payload)
        assert self.exit_code is not None
        return out.result(self.exit_code)
