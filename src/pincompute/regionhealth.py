"""The region's health: ``/healthz`` and ``/readyz``, and the ``StoreReadOnly`` condition.

Theory of operation
-------------------
A store whose commit failed (a full disk, an I/O error) refuses every write
until it is reopened: the record must stay a prefix of what was acknowledged.
A region in that state looks alive but changes nothing, so it has to say so
where operators and supervisors look:

* **one log line** — the store logs ``STORE READ-ONLY`` with the file and the
  remedy when it turns (:meth:`~pincompute.kube.backends.embedded.EmbeddedStore.on_read_only`);
* **/readyz** — :class:`RegionHealth` serves ``GET /healthz`` (the process
  answers) and ``GET /readyz`` on loopback; ``/readyz`` is ``200 ok`` only while
  every store accepts writes, else ``503`` with one line per problem, as the
  API server's ``/readyz`` fails when etcd does;
* **a condition** — ``StoreReadOnly`` on each MemberCluster (in the host
  store): ``True`` with the reason while the member's store refuses writes,
  ``False`` otherwise.  It is level-triggered: re-checked every ``interval``
  seconds and at once when a store turns, written only when it differs, so a
  restart with the space back clears what the failed run wrote.  (A read-only
  *host* store cannot take the condition; there ``/readyz`` and the log say it.)

The HTTP server is deliberately tiny — one request per connection, a head read
with a size and time limit, two paths — as it only ever answers probes.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Sequence
from typing import Protocol

from pincompute.kube import objects
from pincompute.kube.errors import ApiError, NotFound
from pincompute.kube.protocol import KubeClient
from pincompute.model.registry import MEMBERCLUSTERS
from pincompute.runtime.logging import get_logger

_log = get_logger(__name__)

CONDITION = "StoreReadOnly"
HEALTHZ = "/healthz"
READYZ = "/readyz"
_MAX_HEAD = 8192
_HEAD_TIMEOUT = 5.0


class _Store(Protocol):
    @property
    def healthy(self) -> bool: ...

    @property
    def read_only_reason(self) -> str | None: ...

    def on_read_only(self, hook: Callable[[str], None]) -> None: ...


class _Cluster(Protocol):
    name: str
    role: str

    @property
    def store(self) -> _Store: ...


class RegionHealth:
    """Readiness of a region's stores, served over HTTP and written as conditions."""

    def __init__(self, *, host_client: KubeClient, clusters: Sequence[_Cluster],
                 address: str = "127.0.0.1", port: int = 0, interval: float = 5.0) -> None:
        self.host_client = host_client
        self.clusters = list(clusters)
        self.address = address
        self.port = port
        self.interval = interval
        self._server: asyncio.Server | None = None
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        for cluster in self.clusters:
            cluster.store.on_read_only(lambda _reason: self._wake.set())

    def add(self, cluster: _Cluster) -> None:
        """Watch one more cluster's store (a member added while the region runs)."""
        cluster.store.on_read_only(lambda _reason: self._wake.set())
        self.clusters = [*self.clusters, cluster]  # a new list: a pass may be iterating

    def discard(self, name: str) -> None:
        """Stop watching a cluster (a member removed from the region)."""
        self.clusters = [c for c in self.clusters if c.name != name]

    @property
    def url(self) -> str:
        return f"http://{self.address}:{self.port}"

    def problems(self) -> list[str]:
        """What keeps the region from being ready (empty: ready)."""
        return [f"store of {c.name} is read-only: {c.store.read_only_reason}"
                for c in self.clusters if not c.store.healthy]

    @property
    def ready(self) -> bool:
        return not self.problems()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, self.address, self.port,
                                                  limit=_MAX_HEAD)
        self.port = self._server.sockets[0].getsockname()[1]
        self._task = asyncio.create_task(self._conditions(), name="region health")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            async with asyncio.timeout(_HEAD_TIMEOUT):
                head = await reader.readuntil(b"\r\n\r\n")
            parts = head.split(b" ", 2)
            path = parts[1].decode("latin-1").split("?", 1)[0] if len(parts) > 2 else ""
            if path == HEALTHZ:
                code, body = 200, "ok"
            elif path == READYZ:
                problems = self.problems()
                code, body = (503, "\n".join(problems)) if problems else (200, "ok")
            else:
                code, body = 404, "not found"
            data = (body + "\n").encode()
            reason = {200: "OK", 404: "Not Found", 503: "Service Unavailable"}[code]
            writer.write(f"HTTP/1.1 {code} {reason}\r\nContent-Type: text/plain\r\n"
                         f"Content-Length: {len(data)}\r\nConnection: close\r\n\r\n".encode()
                         + data)
            await writer.drain()
        except (TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError,
                ConnectionError):
            pass
        finally:
            with contextlib.suppress(OSError):
                writer.close()

    async def _conditions(self) -> None:
        while True:
            try:
                await self.write_conditions()
            except (ApiError, OSError) as exc:
                _log.debug("StoreReadOnly conditions not written: %s", exc)
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.interval):
                    await self._wake.wait()

    async def write_conditions(self) -> int:
        """Make every MemberCluster's ``StoreReadOnly`` match its store; returns writes."""
        writes = 0
        for cluster in self.clusters:
            if cluster.role != "member":
                continue
            try:
                mc = await self.host_client.get(MEMBERCLUSTERS, cluster.name)
            except NotFound:
                continue
            reason = cluster.store.read_only_reason
            current = objects.get_condition(mc, CONDITION)
            if current is None and reason is None:
                continue  # never failed: nothing to say
            updated = objects.deepcopy(mc)
            if reason is not None:
                changed = objects.set_condition(updated, CONDITION, True,
                                                reason="CommitFailed", message=reason)
            else:
                changed = objects.set_condition(updated, CONDITION, False,
                                                reason="StoreWritable",
                                                message="the store accepts writes")
            if changed:
                await self.host_client.update_status(MEMBERCLUSTERS, updated)
                writes += 1
        return writes


__all__ = ["CONDITION", "HEALTHZ", "READYZ", "RegionHealth"]
