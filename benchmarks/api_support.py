"""What the API benchmarks share: a host store full of PinApps, a served gateway, and a lean
HTTP load generator run in a process of its own.

The load generator speaks HTTP/1.1 over keep-alive connections with asyncio streams (no
client library: parsing is a few lines, so the client costs little and the same for every
server it measures) and runs in a child process (``python benchmarks/api_support.py load
SPEC``), so client and server never share an event loop.  It reports requests per second,
latency percentiles and the status codes seen, and may hold one streaming watch per client
while it works.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import ssl
import sys
import time
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlsplit

import orjson

PROJECT = "bench"


def pinapp(i: int, *, client: int | None = None, prefix: str = "app") -> dict[str, Any]:
    """A PinApp of typical size (~1.3 KB as JSON): three containers' worth of fields."""
    labels = {"app.kubernetes.io/name": f"{prefix}-{i:05d}", "team": f"team-{i % 20}",
              "pincompute.io/tier": "ondemand"}
    if client is not None:
        labels["client"] = str(client)
    return {
        "apiVersion": "pincompute.io/v1alpha1", "kind": "PinApp",
        "metadata": {"name": f"{prefix}-{i:05d}", "labels": labels,
                     "annotations": {"owner": "benchmarks@example.com"}},
        "spec": {"replicas": 3, "template": {
            "metadata": {"labels": {"app": f"{prefix}-{i:05d}"}},
            "spec": {"containers": [{
                "name": "main", "image": "registry.local/web:1.4.2",
                "command": ["python3", "-m", "http.server", "8080"],
                "env": [{"name": "ZONE", "value": "zone-a"}, {"name": "LOG", "value": "info"}],
                "ports": [{"containerPort": 8080, "name": "http"}],
                "resources": {"requests": {"cpu": "100m", "memory": "128Mi"},
                              "limits": {"cpu": "500m", "memory": "256Mi"}},
                "readinessProbe": {"httpGet": {"path": "/", "port": 8080},
                                   "periodSeconds": 5}}]}}},
    }


async def fill(client: Any, resource: Any, count: int, *, writers: int = 16,
               namespace: str = PROJECT) -> float:
    """Create ``count`` PinApps; returns creations per second."""
    per = (count + writers - 1) // writers

    async def writer(w: int) -> None:
        for i in range(w * per, min(count, (w + 1) * per)):
            await client.create(resource, pinapp(i), namespace=namespace)

    start = time.perf_counter()
    await asyncio.gather(*(writer(w) for w in range(writers)))
    return count / (time.perf_counter() - start)


@contextlib.asynccontextmanager
async def serve(app: Any) -> AsyncIterator[str]:
    """Serve an ASGI app with uvicorn on a free loopback port; yields its base URL."""
    import uvicorn

    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, lifespan="off",
                                           http="httptools",
                                           log_level="warning", access_log=False,
                                           timeout_graceful_shutdown=1))
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        with contextlib.suppress(Exception):
            await task


# --- the load generator ------------------------------------------------------------------------

class Connection:
    """One keep-alive HTTP/1.1 connection."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                 host: str, headers: bytes) -> None:
        self.reader, self.writer, self.host, self.headers = reader, writer, host, headers

    @classmethod
    async def open(cls, base: str, headers: dict[str, str],
                   ca_file: str | None = None) -> Connection:
        u = urlsplit(base)
        ctx = None
        if u.scheme == "https":
            ctx = ssl.create_default_context(cafile=ca_file)
        reader, writer = await asyncio.open_connection(u.hostname, u.port, ssl=ctx,
                                                       limit=2**24)
        extra = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        return cls(reader, writer, u.netloc, extra.encode())

    async def request(self, method: str, path: str, body: bytes = b"") -> int:
        head = f"{method} {path} HTTP/1.1\r\nHost: {self.host}\r\n".encode() + self.headers
        if body:
            head += (b"Content-Type: application/json\r\nContent-Length: "
                     + str(len(body)).encode() + b"\r\n")
        self.writer.write(head + b"\r\n" + body)
        status, length, chunked = await self._head()
        if length is not None:
            # Read and drop (no joined copy of a large body: the client is not measured).
            while length > 0:
                chunk = await self.reader.read(min(length, 1 << 20))
                if not chunk:
                    raise ConnectionError("the server closed the connection mid-body")
                length -= len(chunk)
        elif chunked:
            while True:
                size = int((await self.reader.readline()).split(b";")[0], 16)
                await self.reader.readexactly(size + 2)
                if size == 0:
                    break
        return status

    async def _head(self) -> tuple[int, int | None, bool]:
        status = int((await self.reader.readline()).split()[1])
        length, chunked = None, False
        while True:
            line = await self.reader.readline()
            if line in (b"\r\n", b""):
                break
            key, _, value = line.partition(b":")
            key = key.strip().lower()
            if key == b"content-length":
                length = int(value)
            elif key == b"transfer-encoding" and b"chunked" in value.lower():
                chunked = True
        return status, length, chunked

    async def stream_lines(self, path: str, counter: list[int]) -> None:
        """A watch: read the chunked stream, counting newline-ended events, until cancelled."""
        head = f"GET {path} HTTP/1.1\r\nHost: {self.host}\r\n".encode() + self.headers
        self.writer.write(head + b"\r\n")
        status, _, _ = await self._head()
        if status != 200:
            raise RuntimeError(f"watch {path}: HTTP {status}")
        while True:
            size = int((await self.reader.readline()).split(b";")[0], 16)
            data = await self.reader.readexactly(size + 2)
            counter[0] += data.count(b"\n") - 1
            if size == 0:
                return

    def close(self) -> None:
        self.writer.close()


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


async def load(spec: dict[str, Any]) -> dict[str, Any]:
    """Run ``spec``: ``base``, ``headers``, ``ca_file``, ``clients``, ``seconds``, ``op``
    (``get``: ``path`` with ``{i}`` over ``names``; ``list``: ``path``; ``post``: ``path``
    and a PinApp body per request), optional ``watch`` (a path with ``{c}``, one per
    client), ``warmup`` seconds."""
    base, headers = spec["base"], spec.get("headers", {})
    clients, seconds = spec["clients"], spec["seconds"]
    conns = [await Connection.open(base, headers, spec.get("ca_file")) for _ in range(clients)]
    watchers: list[asyncio.Task[None]] = []
    events = [0]
    if spec.get("watch"):
        for c in range(clients):
            wc = await Connection.open(base, headers, spec.get("ca_file"))
            watchers.append(asyncio.create_task(
                wc.stream_lines(spec["watch"].format(c=c), events)))
        await asyncio.sleep(0.5)
    latencies: list[float] = []
    codes: dict[int, int] = {}
    rnd = random.Random(7)
    op, path = spec["op"], spec["path"]
    names = spec.get("names", 1)
    seq = [spec.get("start", 0)]
    measuring = [False]
    stop_at = [0.0]

    async def worker(c: int, conn: Connection) -> None:
        while time.perf_counter() < stop_at[0]:
            if op == "get":
                target, body = path.format(i=rnd.randrange(names)), b""
                method = "GET"
            elif op == "list":
                target, body, method = path, b"", "GET"
            else:
                seq[0] += 1
                obj = pinapp(seq[0], client=c, prefix=spec.get("prefix", "w"))
                target, body, method = path, orjson.dumps(obj), "POST"
            t0 = time.perf_counter()
            status = await conn.request(method, target, body)
            if measuring[0]:
                latencies.append(time.perf_counter() - t0)
                codes[status] = codes.get(status, 0) + 1

    warmup = spec.get("warmup", 0.5)
    stop_at[0] = time.perf_counter() + warmup
    await asyncio.gather(*(worker(c, conn) for c, conn in enumerate(conns)))
    measuring[0] = True
    events[0] = 0
    start = time.perf_counter()
    stop_at[0] = start + seconds
    await asyncio.gather(*(worker(c, conn) for c, conn in enumerate(conns)))
    elapsed = time.perf_counter() - start
    for task in watchers:
        task.cancel()
    await asyncio.gather(*watchers, return_exceptions=True)
    for conn in conns:
        conn.close()
    return {"rps": len(latencies) / elapsed, "p50_ms": _percentile(latencies, 0.5) * 1000,
            "p99_ms": _percentile(latencies, 0.99) * 1000, "requests": len(latencies),
            "codes": {str(k): v for k, v in codes.items()}, "watch_events": events[0]}


async def run_load(spec: dict[str, Any]) -> dict[str, Any]:
    """:func:`load` in a child process (its own core and event loop)."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, __file__, "load", orjson.dumps(spec).decode(),
        stdout=asyncio.subprocess.PIPE, env={**os.environ, "PYTHONHASHSEED": "0"})
    out, _ = await proc.communicate()
    if proc.returncode != 0:
        raise RuntimeError(f"load generator failed ({proc.returncode})")
    result: dict[str, Any] = orjson.loads(out.splitlines()[-1])
    return result


def machine() -> str:
    import platform

    return f"{platform.machine()} {os.cpu_count()} cores, Python {sys.version.split()[0]}"


if __name__ == "__main__" and len(sys.argv) == 3 and sys.argv[1] == "load":
    print(orjson.dumps(asyncio.run(load(orjson.loads(sys.argv[2])))).decode())
