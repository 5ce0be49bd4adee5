"""The node runtime API: logs and exec served by the node itself, over HTTP on loopback.

Theory of operation
-------------------
Debugging must not load the control path (DESIGN §8): reading a log or opening a
shell talks to the node agent directly, as ``kubectl logs``/``exec`` reach the
kubelet, never through the store.  Each agent serves a small HTTP/1.1 API on its
own loopback address (the node's InternalIP, ``127.x.y.1`` in the process
runtime), advertised in the Node's ``pincompute.io/runtime-api`` annotation and
``status.daemonEndpoints``.  Every request but ``/healthz`` must carry
``Authorization: Bearer <token>`` (compared in constant time); the token is the
agent's (configured, or generated and written to ``<node dir>/api-token``, mode
0600), so only whoever was given it — the gateway, the CLI of the operator who
started the region — can use the API.

Endpoints::

    GET  /healthz
    GET  /pods                                      pods on the node, container states
    GET  /stats                                     CPU/memory use per pod and container
    GET  /logs/{namespace}/{pod}/{container}        ?follow=1&tail=N&since=RFC3339
                                                    &sinceSeconds=N&previous=1&timestamps=1
    POST /exec/{namespace}/{pod}/{container}        ?command=ARG&command=ARG...&stdin=1
         (Connection: Upgrade, Upgrade: pincompute-exec.v1)

Logs stream as chunked ``text/plain`` until the log ends (without ``follow``:
at once; with it: when the container instance exits, or the client goes away).

Exec switches protocols (101) and then multiplexes the process's streams over
the connection in frames — one byte channel, four bytes big-endian length,
payload — like Kubernetes' ``channel.k8s.io``: channel 0 carries stdin from the
client (an empty frame closes it), 1 stdout, 2 stderr, and 3 one final JSON
object ``{"exitCode": n}`` after which the server closes.  The server is a few
hundred lines on asyncio streams rather than a web framework because it needs
exactly this: long-lived streaming responses and a raw upgraded socket.

:class:`NodeClient` is the matching client (used by tests, the gateway, the CLI).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as _dt
import secrets
import struct
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, quote, unquote, urlencode, urlsplit

import orjson

from pincompute.runtime.logging import get_logger

from .containerruntime import StartError
from .logs import LogNotFound, format_since

if TYPE_CHECKING:
    from .agent import NodeAgent

_log = get_logger(__name__)

EXEC_PROTOCOL = "pincompute-exec.v1"
STDIN, STDOUT, STDERR, STATUS = 0, 1, 2, 3
_FRAME = struct.Struct(">BI")
MAX_HEADER_BYTES = 16 * 1024
MAX_FRAME = 1024 * 1024

_REASONS = {200: "OK", 101: "Switching Protocols", 400: "Bad Request", 401: "Unauthorized",
            404: "Not Found", 405: "Method Not Allowed", 409: "Conflict",
            500: "Internal Server Error"}


@dataclass(frozen=True, slots=True)
class Request:
    method: str
    path: str
    query: Mapping[str, list[str]]
    headers: Mapping[str, str]

    def flag(self, name: str) -> bool:
        return (self.query.get(name) or [""])[0].lower() in ("1", "true", "yes")

    def get(self, name: str) -> str | None:
        values = self.query.get(name)
        return values[0] if values else None


class HTTPError(Exception):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code


async def read_request(reader: asyncio.StreamReader) -> Request | None:
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError:
        return None
    except asyncio.LimitOverrunError as exc:
        raise HTTPError(400, "request header too large") from exc
    lines = head.decode("latin-1").split("\r\n")
    try:
        method, target, _version = lines[0].split(" ", 2)
    except ValueError as exc:
        raise HTTPError(400, "malformed request line") from exc
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if not line:
            continue
        key, sep, value = line.partition(":")
        if not sep:
            raise HTTPError(400, "malformed header")
        headers[key.strip().lower()] = value.strip()
    url = urlsplit(target)
    return Request(method.upper(), unquote(url.path), parse_qs(url.query), headers)


def _response_head(code: int, headers: Mapping[str, str]) -> bytes:
    lines = [f"HTTP/1.1 {code} {_REASONS.get(code, 'Unknown')}"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


async def _send(writer: asyncio.StreamWriter, code: int, body: bytes, *,
                content_type: str = "application/json") -> None:
    writer.write(_response_head(code, {"Content-Type": content_type,
                                       "Content-Length": str(len(body)),
                                       "Connection": "close"}) + body)
    await writer.drain()


class RuntimeAPI:
    """The HTTP server of one node agent."""

    def __init__(self, agent: NodeAgent, *, host: str, port: int = 0, token: str) -> None:
        self.agent = agent
        self.host = host
        self.port = port
        self.token = token
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.Task[Any]] = set()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, self.host, self.port,
                                                  limit=MAX_HEADER_BYTES)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._connections):
            task.cancel()
        for task in list(self._connections):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self._server is not None:
            with contextlib.suppress(Exception):
                await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._connections.add(task)
        try:
            request = await read_request(reader)
            if request is None:
                return
            await self._dispatch(request, reader, writer)
        except HTTPError as exc:
            with contextlib.suppress(OSError):
                await _send(writer, exc.code, orjson.dumps({"message": str(exc)}))
        except (ConnectionError, asyncio.IncompleteReadError):
            pass  # the client went away mid-request: nobody to answer
        except Exception:
            _log.exception("runtime API request failed")
            with contextlib.suppress(OSError):
                await _send(writer, 500, b'{"message": "internal error"}')
        finally:
            if task is not None:
                self._connections.discard(task)
            with contextlib.suppress(OSError):
                writer.close()

    def _authorize(self, request: Request) -> None:
        auth = request.headers.get("authorization", "")
        scheme, _, token = auth.partition(" ")
        if scheme.lower() != "bearer" or not secrets.compare_digest(token.strip(), self.token):
            raise HTTPError(401, "a valid bearer token is required")

    async def _dispatch(self, request: Request, reader: asyncio.StreamReader,
                        writer: asyncio.StreamWriter) -> None:
        parts = [p for p in request.path.split("/") if p]
        if parts == ["healthz"]:
            await _send(writer, 200, b"ok", content_type="text/plain")
            return
        self._authorize(request)
        if parts == ["pods"] and request.method == "GET":
            await _send(writer, 200, orjson.dumps(self._pods()))
        elif parts == ["stats"] and request.method == "GET":
            await _send(writer, 200, orjson.dumps(self.agent.usage()))
        elif len(parts) == 4 and parts[0] == "logs" and request.method == "GET":
            await self._logs(request, parts[1], parts[2], parts[3], reader, writer)
        elif len(parts) == 4 and parts[0] == "exec" and request.method == "POST":
            await self._exec(request, parts[1], parts[2], parts[3], reader, writer)
        else:
            raise HTTPError(404, f"no such endpoint: {request.method} {request.path}")

    def _pods(self) -> list[dict[str, Any]]:
        out = []
        for w in self.agent.workers.values():
            status = w.status()
            out.append({"namespace": w.namespace, "name": w.name, "uid": w.uid,
                        "phase": status.get("phase"), "podIP": status.get("podIP"),
                        "containers": status.get("containerStatuses")})
        return out

    def _worker(self, namespace: str, pod: str, container: str) -> Any:
        worker = self.agent.find(namespace, pod)
        if worker is None:
            raise HTTPError(404, f'pod "{namespace}/{pod}" is not on node {self.agent.name}')
        if container not in worker.records:
            raise HTTPError(404, f'container "{container}" is not in pod "{namespace}/{pod}"')
        return worker

    async def _logs(self, request: Request, namespace: str, pod: str, container: str,
                    reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        worker = self._worker(namespace, pod, container)
        logs = self.agent.logs
        if logs is None:
            raise HTTPError(404, "this node keeps no logs (sim runtime)")
        since = None
        try:
            if request.get("since"):
                since = format_since(str(request.get("since")))
            elif request.get("sinceSeconds"):
                seconds = float(str(request.get("sinceSeconds")))
                since = format_since(_dt.datetime.now(_dt.UTC) - _dt.timedelta(seconds=seconds))
            tail = int(str(request.get("tail"))) if request.get("tail") else None
        except ValueError as exc:
            raise HTTPError(400, f"bad parameter: {exc}") from exc
        stream = logs.read(worker.log_dir, container, previous=request.flag("previous"),
                           tail=tail, since=since, follow=request.flag("follow"),
                           timestamps=request.flag("timestamps"))
        try:
            first = await anext(stream, None)
        except LogNotFound as exc:
            raise HTTPError(404, str(exc)) from exc
        writer.write(_response_head(200, {"Content-Type": "text/plain; charset=utf-8",
                                          "Transfer-Encoding": "chunked",
                                          "Connection": "close"}))

        async def pump() -> None:
            chunk = first
            while chunk is not None:
                writer.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                await writer.drain()
                chunk = await anext(stream, None)

        # A follower stops when the client hangs up, even if the log is quiet.
        pumping = asyncio.ensure_future(pump())
        hangup = asyncio.ensure_future(reader.read(1))
        try:
            await asyncio.wait((pumping, hangup), return_when=asyncio.FIRST_COMPLETED)
        finally:
            hangup.cancel()
            if not pumping.done():
                pumping.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await pumping
            await stream.aclose()
        if pumping.cancelled():
            return  # the client hung up
        pumping.result()
        writer.write(b"0\r\n\r\n")
        await writer.drain()

    async def _exec(self, request: Request, namespace: str, pod: str, container: str,
                    reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        worker = self._worker(namespace, pod, container)
        if request.headers.get("upgrade", "").lower() != EXEC_PROTOCOL:
            raise HTTPError(400, f"exec needs Upgrade: {EXEC_PROTOCOL}")
        argv = request.query.get("command") or []
        if not argv:
            raise HTTPError(400, "exec needs at least one command parameter")
        rec = worker.records[container]
        runtime = self.agent.runtime
        if worker.sandbox is None or rec.instance is None or runtime is None:
            raise HTTPError(409, f'container "{container}" is not running')
        try:
            proc = await runtime.exec(worker.sandbox, rec.spec, rec.env, argv,
                                      stdin=request.flag("stdin"))
        except StartError as exc:
            raise HTTPError(409, str(exc)) from exc
        writer.write(_response_head(101, {"Connection": "Upgrade", "Upgrade": EXEC_PROTOCOL}))
        await writer.drain()
        lock = asyncio.Lock()

        async def send(channel: int, data: bytes) -> None:
            async with lock:
                writer.write(_FRAME.pack(channel, len(data)) + data)
                await writer.drain()

        async def out(stream: asyncio.StreamReader | None, channel: int) -> None:
            if stream is None:
                return
            while data := await stream.read(65536):
                await send(channel, data)

        async def inp() -> None:
            while True:
                try:
                    channel, size = _FRAME.unpack(await reader.readexactly(_FRAME.size))
                    data = await reader.readexactly(size) if size else b""
                except (asyncio.IncompleteReadError, ConnectionError):
                    data, channel = b"", STDIN
                    if proc.returncode is None:
                        # The client went away: so does the command.
                        with contextlib.suppress(ProcessLookupError):
                            proc.kill()
                    return
                if channel != STDIN or proc.stdin is None:
                    continue
                if not data:
                    proc.stdin.close()
                    continue
                with contextlib.suppress(ConnectionError):
                    proc.stdin.write(data)
                    await proc.stdin.drain()

        reading = asyncio.ensure_future(inp())
        try:
            await asyncio.gather(out(proc.stdout, STDOUT), out(proc.stderr, STDERR))
            code = await proc.wait()
            await send(STATUS, orjson.dumps({"exitCode": code if code >= 0 else 128 - code}))
        finally:
            reading.cancel()
            if proc.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()


# --- client --------------------------------------------------------------------------------------

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
            self.writer.write(_FRAME.pack(STDIN, len(data)) + data)
            await self.writer.drain()

    async def close_stdin(self) -> None:
        self.writer.write(_FRAME.pack(STDIN, 0))
        await self.writer.drain()

    async def frames(self) -> AsyncIterator[tuple[int, bytes]]:
        """stdout/stderr frames until the command exits (then ``exit_code`` is set)."""
        while True:
            try:
                channel, size = _FRAME.unpack(await self.reader.readexactly(_FRAME.size))
                if size > MAX_FRAME:
                    raise ValueError("exec frame too large")
                data = await self.reader.readexactly(size)
            except asyncio.IncompleteReadError:
                return
            if channel == STATUS:
                self.exit_code = int(orjson.loads(data).get("exitCode", -1))
                return
            yield channel, data

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(OSError):
            await self.writer.wait_closed()


class NodeClient:
    """A client of one node's runtime API."""

    def __init__(self, endpoint: str, token: str, *, timeout: float = 30.0) -> None:
        self.endpoint = endpoint.rstrip("/")
        self.token = token
        self.timeout = timeout

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    async def _json(self, path: str) -> Any:
        import httpx
        async with httpx.AsyncClient(trust_env=False, timeout=self.timeout) as http:
            resp = await http.get(self.endpoint + path, headers=self._headers())
            resp.raise_for_status()
            return resp.json()

    async def pods(self) -> list[dict[str, Any]]:
        return list(await self._json("/pods"))

    async def stats(self) -> dict[str, Any]:
        return dict(await self._json("/stats"))

    async def logs(self, namespace: str, pod: str, container: str, *, follow: bool = False,
                   tail: int | None = None, since: str | None = None,
                   since_seconds: float | None = None, previous: bool = False,
                   timestamps: bool = False) -> AsyncIterator[bytes]:
        import httpx
        params: dict[str, str] = {}
        if follow:
            params["follow"] = "1"
        if tail is not None:
            params["tail"] = str(tail)
        if since is not None:
            params["since"] = since
        if since_seconds is not None:
            params["sinceSeconds"] = str(since_seconds)
        if previous:
            params["previous"] = "1"
        if timestamps:
            params["timestamps"] = "1"
        url = f"{self.endpoint}/logs/{quote(namespace)}/{quote(pod)}/{quote(container)}"
        timeout = httpx.Timeout(self.timeout, read=None if follow else self.timeout)
        async with httpx.AsyncClient(trust_env=False, timeout=timeout) as http, \
                http.stream("GET", url, params=params, headers=self._headers()) as resp:
            if resp.status_code != 200:
                await resp.aread()
                resp.raise_for_status()
            async for chunk in resp.aiter_bytes():
                yield chunk

    async def open_exec(self, namespace: str, pod: str, container: str,
                        command: list[str], *, stdin: bool = True) -> ExecSession:
        url = urlsplit(self.endpoint)
        host = url.hostname or "127.0.0.1"
        port = url.port or 80
        query = urlencode([("command", c) for c in command] + ([("stdin", "1")] if stdin
                                                                 else []))
        path = f"/exec/{quote(namespace)}/{quote(pod)}/{quote(container)}?{query}"
        reader, writer = await asyncio.open_connection(host, port)
        writer.write((f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\n"
                      f"Authorization: Bearer {self.token}\r\nConnection: Upgrade\r\n"
                      f"Upgrade: {EXEC_PROTOCOL}\r\nContent-Length: 0\r\n\r\n").encode())
        await writer.drain()
        head = await reader.readuntil(b"\r\n\r\n")
        status_line = head.split(b"\r\n", 1)[0].decode("latin-1")
        code = int(status_line.split(" ")[1])
        if code != 101:
            body = await reader.read()
            writer.close()
            message = body.decode(errors="replace")
            with contextlib.suppress(ValueError):
                message = orjson.loads(body).get("message", message)
            raise NodeAPIError(code, message)
        return ExecSession(reader, writer)

    async def exec(self, namespace: str, pod: str, container: str, command: list[str], *,
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


class NodeAPIError(Exception):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


__all__ = ["EXEC_PROTOCOL", "ExecResult", "ExecSession", "NodeAPIError", "NodeClient",
           "RuntimeAPI"]
