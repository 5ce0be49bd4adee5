"""The node runtime API's server: one per node agent, on the node's own loopback address.

Theory of operation
-------------------
:class:`RuntimeAPI` serves the endpoints of :mod:`pincompute.node.runtimeapi`
from the agent's state: ``/pods`` and ``/stats`` from its pod workers, logs from
its log store, exec through its container runtime.  Each connection carries one
request and is closed after the answer (``Connection: close``), so the server
needs no keep-alive or pipelining and reads no request bodies: it reads the
request head (at most :data:`~.protocol.MAX_HEADER_BYTES`), checks the token in
constant time, and dispatches on method and path.

Logs stream as chunked ``text/plain``; a follower's stream ends when the
container instance exits, or when the client hangs up (noticed by a read on the
connection racing the log).  Exec answers ``101 Switching Protocols`` and from
then on the connection carries frames both ways (:mod:`.protocol`); the command
is killed if the client goes away (:mod:`.execsession`).  With ``tty=1`` the
command gets a terminal (:mod:`pincompute.node.terminal`) whose master the
session reads and writes in place of the pipes, and RESIZE frames set its size.

The HTTP/1.1 head is parsed by hand (:func:`read_request`), not with h11: one
request per connection, no bodies, no keep-alive, fixed response headers — what
h11's state machine guards against (pipelining, bodies, smuggling between
requests) cannot happen here, and h11 cost ~65 µs more per request (parse and
answer), a third fewer ``/pods`` requests per second on loopback.

Every pod can reach this server (it listens on the node's address), so it
protects itself from them as Go's ``http.Server`` and the kubelet do: at most
``max_connections`` connections at once and ``max_per_client`` from one peer
address — a connection past either is answered ``503`` and closed at once,
before anything is read; the request head must arrive within
``header_timeout`` seconds (a slowloris client holding connections open with a
byte at a time is cut off with ``408``); an exec's stdin frames are capped at
:data:`~.protocol.MAX_FRAME`.  The token file is created ``0600`` in one step
(:func:`write_token_file`).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import os
import secrets
from collections import Counter
from collections.abc import AsyncGenerator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, unquote, urlsplit

import orjson

from pincompute.node import logfiles
from pincompute.node.containerruntime import StartError
from pincompute.node.logs import LogNotFound, format_since
from pincompute.node.terminal import open_terminal
from pincompute.runtime.logging import get_logger

from .execsession import serve_exec
from .protocol import (
    EXEC,
    EXEC_PROTOCOL,
    LOGFILES,
    LOGS,
    MAX_HEADER_BYTES,
    LogOptions,
    bearer_token,
    exec_command,
    flag,
)

if TYPE_CHECKING:
    from pincompute.node.agent import NodeAgent
    from pincompute.node.worker import PodWorker

_log = get_logger(__name__)

_REASONS = {200: "OK", 101: "Switching Protocols", 400: "Bad Request", 401: "Unauthorized",
            404: "Not Found", 405: "Method Not Allowed", 408: "Request Timeout",
            409: "Conflict", 500: "Internal Server Error", 503: "Service Unavailable"}

MAX_CONNECTIONS = 512
"""Connections served at once, from everyone together."""
MAX_CONNECTIONS_PER_CLIENT = 64
"""Connections served at once from one peer address (a pod has its own address; a
gateway following many logs is one client too, hence not fewer)."""
HEADER_TIMEOUT = 10.0
"""Seconds a client has to send its whole request head."""


def write_token_file(path: Path, token: str) -> None:
    """Write ``token`` to ``path``, readable by its owner only from the first byte.

    Not write-then-chmod: between the two a reader could open the file, and an
    open descriptor keeps reading whatever is written later.  A file (or link)
    already there is replaced, never written through.
    """
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                 0o600)
    try:
        os.write(fd, token.encode())
    finally:
        os.close(fd)


@dataclass(frozen=True, slots=True)
class Request:
    method: str
    path: str
    """Unquoted."""
    query: Mapping[str, list[str]]
    headers: Mapping[str, str]
    """Lower-case names."""


class HTTPError(Exception):
    """Answer the request with ``code`` and ``{"message": ...}``."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code


async def read_request(reader: asyncio.StreamReader) -> Request | None:
    """The next request head, or None if the client closed without sending one."""
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


def response_head(code: int, headers: Mapping[str, str]) -> bytes:
    lines = [f"HTTP/1.1 {code} {_REASONS.get(code, 'Unknown')}"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


async def send(writer: asyncio.StreamWriter, code: int, body: bytes, *,
               content_type: str = "application/json") -> None:
    """A complete response with a body."""
    writer.write(response_head(code, {"Content-Type": content_type,
                                      "Content-Length": str(len(body)),
                                      "Connection": "close"}) + body)
    await writer.drain()


class RuntimeAPI:
    """The HTTP server of one node agent."""

    def __init__(self, agent: NodeAgent, *, host: str, port: int = 0, token: str,
                 max_connections: int = MAX_CONNECTIONS,
                 max_per_client: int = MAX_CONNECTIONS_PER_CLIENT,
                 header_timeout: float = HEADER_TIMEOUT) -> None:
        self.agent = agent
        self.host = host
        self.port = port
        self.token = token
        self.max_connections = max_connections
        self.max_per_client = max_per_client
        self.header_timeout = header_timeout
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.Task[Any]] = set()
        self._per_client: Counter[str] = Counter()
        self.refused = 0
        """Connections refused for being over a limit (since start)."""

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def open_connections(self) -> int:
        """Connections being served now."""
        return len(self._connections)

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

    def _admit(self, peer: str) -> str | None:
        """Why a new connection from ``peer`` is refused, or None."""
        if len(self._connections) >= self.max_connections:
            return "too many connections"
        if self._per_client[peer] >= self.max_per_client:
            return f"too many connections from {peer}"
        return None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peername = writer.get_extra_info("peername")
        peer = str(peername[0]) if isinstance(peername, tuple) and peername else "?"
        refusal = self._admit(peer)
        if refusal is not None:
            self.refused += 1
            body = orjson.dumps({"message": refusal})
            with contextlib.suppress(OSError):
                # Written without waiting for the peer: a refused client gets no time.
                writer.write(response_head(503, {
                    "Content-Type": "application/json", "Content-Length": str(len(body)),
                    "Retry-After": "1", "Connection": "close"}) + body)
                writer.close()
            return
        task = asyncio.current_task()
        if task is not None:
            self._connections.add(task)
        self._per_client[peer] += 1
        try:
            try:
                async with asyncio.timeout(self.header_timeout):
                    request = await read_request(reader)
            except TimeoutError:
                raise HTTPError(408, "request head not received in time") from None
            if request is None:
                return
            await self._dispatch(request, reader, writer)
        except HTTPError as exc:
            with contextlib.suppress(OSError):
                await send(writer, exc.code, orjson.dumps({"message": str(exc)}))
        except (ConnectionError, asyncio.IncompleteReadError):
            pass  # the client went away mid-request: nobody to answer
        except Exception:
            _log.exception("runtime API request failed")
            with contextlib.suppress(OSError):
                await send(writer, 500, b'{"message": "internal error"}')
        finally:
            if task is not None:
                self._connections.discard(task)
            self._per_client[peer] -= 1
            if self._per_client[peer] <= 0:
                del self._per_client[peer]
            with contextlib.suppress(OSError):
                writer.close()

    def _authorize(self, request: Request) -> None:
        token = bearer_token(request.headers.get("authorization", ""))
        if token is None or not secrets.compare_digest(token, self.token):
            raise HTTPError(401, "a valid bearer token is required")

    async def _dispatch(self, request: Request, reader: asyncio.StreamReader,
                        writer: asyncio.StreamWriter) -> None:
        parts = [p for p in request.path.split("/") if p]
        if parts == ["healthz"]:
            await send(writer, 200, b"ok", content_type="text/plain")
            return
        self._authorize(request)
        if parts == ["pods"] and request.method == "GET":
            await send(writer, 200, orjson.dumps(self._pods()))
        elif parts == ["stats"] and request.method == "GET":
            await send(writer, 200, orjson.dumps(self.agent.usage()))
        elif len(parts) == 4 and parts[0] == LOGS and request.method == "GET":
            await self._logs(request, parts[1], parts[2], parts[3], reader, writer)
        elif len(parts) == 4 and parts[0] == LOGFILES and request.method == "GET":
            await send(writer, 200, orjson.dumps(self._log_files(parts[1], parts[2], parts[3])))
        elif len(parts) == 4 and parts[0] == EXEC and request.method == "POST":
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

    def _worker(self, namespace: str, pod: str, container: str) -> PodWorker:
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
        try:
            options = LogOptions.from_query(request.query)
            since = None
            if options.since:
                since = format_since(options.since)
            elif options.since_seconds is not None:
                since = format_since(dt.datetime.now(dt.UTC)
                                     - dt.timedelta(seconds=options.since_seconds))
        except ValueError as exc:
            raise HTTPError(400, f"bad parameter: {exc}") from exc
        stream: AsyncGenerator[bytes, None]
        if options.file is not None:
            if options.previous or since or options.timestamps:
                raise HTTPError(400, "a log file takes only tail and follow")
            stream = self._log_file(worker, container, options)
        else:
            stream = logs.read(worker.log_dir, container, previous=options.previous,
                               tail=options.tail, since=since, follow=options.follow,
                               timestamps=options.timestamps)
        try:
            first = await anext(stream, None)
        except LogNotFound as exc:
            raise HTTPError(404, str(exc)) from exc
        writer.write(response_head(200, {"Content-Type": "text/plain; charset=utf-8",
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

    # -- files of logging volumes (:mod:`pincompute.node.logfiles`) --

    def _logging_volumes(self, worker: PodWorker, container: str) -> tuple[Path, list[str]]:
        """The pod's directory and the logging volumes ``container`` mounts."""
        sandbox = worker.sandbox
        pod_dir = sandbox.extra.get("dir") if sandbox is not None else None
        if pod_dir is None:
            raise HTTPError(404, "the pod has no files on this node (not started, or sim)")
        spec = worker.pod.get("spec") or {}
        logging = {v.get("name") for v in spec.get("volumes") or () if "logging" in v}
        mounted: list[str] = []
        for c in (*(spec.get("initContainers") or ()), *(spec.get("containers") or ())):
            if c.get("name") == container:
                mounted = [m.get("name") for m in c.get("volumeMounts") or ()
                           if m.get("name") in logging]
        return Path(pod_dir), mounted

    def _log_files(self, namespace: str, pod: str, container: str) -> list[dict[str, Any]]:
        worker = self._worker(namespace, pod, container)
        pod_dir, volumes = self._logging_volumes(worker, container)
        out: list[dict[str, Any]] = []
        for volume in volumes:
            try:
                fd = logfiles.open_volume(pod_dir, volume)
            except logfiles.LogFileError:
                continue
            try:
                out += [{"volume": volume, **f} for f in logfiles.list_files(fd)]
            finally:
                os.close(fd)
        return out

    def _log_file(self, worker: PodWorker, container: str,
                  options: LogOptions) -> AsyncGenerator[bytes, None]:
        pod_dir, volumes = self._logging_volumes(worker, container)
        volume = options.volume
        if volume is None:
            if len(volumes) != 1:
                raise HTTPError(400, f"the container mounts {len(volumes)} logging volumes: "
                                     "say which with volume=")
            volume = volumes[0]
        elif volume not in volumes:
            raise HTTPError(404, f"the container mounts no logging volume {volume!r}")
        assert options.file is not None
        try:
            vfd = logfiles.open_volume(pod_dir, volume)
            try:
                fd = logfiles.open_file(vfd, options.file, owner=worker.sandbox.uid
                                        if worker.sandbox is not None else None)
            finally:
                os.close(vfd)
        except logfiles.LogFileError as exc:
            raise HTTPError(404, str(exc)) from exc
        return logfiles.stream(fd, tail=options.tail, follow=options.follow,
                               done=lambda: worker.finished or worker.gone)

    async def _exec(self, request: Request, namespace: str, pod: str, container: str,
                    reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        worker = self._worker(namespace, pod, container)
        if request.headers.get("upgrade", "").lower() != EXEC_PROTOCOL:
            raise HTTPError(400, f"exec needs Upgrade: {EXEC_PROTOCOL}")
        argv, with_stdin = exec_command(request.query)
        tty = flag(request.query, "tty")
        if not argv:
            raise HTTPError(400, "exec needs at least one command parameter")
        rec = worker.records[container]
        runtime = self.agent.runtime
        if worker.sandbox is None or rec.instance is None or runtime is None:
            raise HTTPError(409, f'container "{container}" is not running')
        term = None
        try:
            if tty:
                term = open_terminal(uid=worker.sandbox.uid, gid=worker.sandbox.gid)
            proc = await runtime.exec(worker.sandbox, rec.spec, rec.env, argv,
                                      stdin=with_stdin, tty=term)
        except StartError as exc:
            if term is not None:
                term.close()
            raise HTTPError(409, str(exc)) from exc
        except BaseException:
            if term is not None:
                term.close()
            raise
        try:
            writer.write(response_head(101, {"Connection": "Upgrade",
                                             "Upgrade": EXEC_PROTOCOL}))
            await writer.drain()
            await serve_exec(proc, term, reader, writer)
        finally:
            if term is not None:
                term.close()


__all__ = ["HEADER_TIMEOUT", "MAX_CONNECTIONS", "MAX_CONNECTIONS_PER_CLIENT", "HTTPError",
           "Request", "RuntimeAPI", "read_request", "response_head", "send",
           "write_token_file"]
