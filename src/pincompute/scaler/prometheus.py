"""Custom metrics from a Prometheus server: instant queries, deduplicated per cycle.

Theory of operation
-------------------
A ``Prometheus`` metric is a PromQL query whose result must be one number: a
scalar, or an instant vector of exactly one series.  :class:`PrometheusSource`
runs ``GET <server>/api/v1/query?query=...`` with httpx and keeps each answer for
``ttl`` seconds (half the evaluation interval by default), keyed by
``(server, query)``: scalers sharing a query — every shard of one service, one
query per team dashboard — cost one request per cycle, and requests in flight
for a key are shared rather than repeated.  At most ``concurrency`` queries run
at once, so a cycle of many scalers cannot flood the server.

Anything else — the server unreachable, an HTTP or PromQL error, an empty
vector, several series, NaN — is a :class:`~.replicas.MetricUnavailable` with the
reason, and the scaler holds the current size for that metric and says so.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable
from typing import Any

import httpx

from .replicas import MetricUnavailable

DEFAULT_TIMEOUT = 5.0


def value_of(body: dict[str, Any]) -> float:
    """The single number of a ``/api/v1/query`` answer (or MetricUnavailable)."""
    if body.get("status") != "success":
        raise MetricUnavailable(f"query failed: {body.get('error') or body.get('status')}")
    data = body.get("data") or {}
    kind, result = data.get("resultType"), data.get("result")
    if kind == "scalar" and isinstance(result, list):
        value = float(result[1])
    elif kind == "vector" and isinstance(result, list):
        if not result:
            raise MetricUnavailable("the query returned no series")
        if len(result) > 1:
            raise MetricUnavailable(f"the query returned {len(result)} series, not one "
                                    "(aggregate it, e.g. with sum())")
        value = float(result[0]["value"][1])
    else:
        raise MetricUnavailable(f"the query returned a {kind}, not a number")
    if not math.isfinite(value):
        raise MetricUnavailable(f"the query returned {value}")
    return value


class PrometheusSource:
    """Instant queries against Prometheus servers, cached per evaluation cycle."""

    def __init__(self, *, default_server: str | None = None, ttl: float = 5.0,
                 timeout: float = DEFAULT_TIMEOUT, concurrency: int = 16,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.default_server = default_server
        self.ttl = ttl
        self.clock = clock
        self._client = httpx.AsyncClient(timeout=timeout)
        self._limit = asyncio.Semaphore(concurrency)
        self._cache: dict[tuple[str, str], tuple[float, float | MetricUnavailable]] = {}
        self._inflight: dict[tuple[str, str], asyncio.Future[float]] = {}
        self.requests = 0
        """Queries actually sent (for tests and the benchmark)."""

    async def close(self) -> None:
        await self._client.aclose()

    async def query(self, query: str, *, server: str | None = None) -> float:
        address = server or self.default_server
        if not address:
            raise MetricUnavailable("no Prometheus server: set serverAddress or configure "
                                    "the platform's")
        key = (address.rstrip("/"), query)
        cached = self._cache.get(key)
        if cached is not None and self.clock() - cached[0] < self.ttl:
            if isinstance(cached[1], MetricUnavailable):
                raise cached[1]
            return cached[1]
        pending = self._inflight.get(key)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[float] = asyncio.get_running_loop().create_future()
        self._inflight[key] = future
        try:
            value: float | MetricUnavailable
            try:
                value = await self._fetch(*key)
            except MetricUnavailable as exc:
                value = exc
            self._cache[key] = (self.clock(), value)
            if isinstance(value, MetricUnavailable):
                future.set_exception(value)
                future.exception()  # retrieved: waiters re-raise it themselves
                raise value
            future.set_result(value)
            return value
        finally:
            del self._inflight[key]
            if len(self._cache) > 10_000:
                self._cache.clear()

    async def _fetch(self, server: str, query: str) -> float:
        async with self._limit:
            self.requests += 1
            try:
                response = await self._client.get(f"{server}/api/v1/query",
                                                  params={"query": query})
            except httpx.HTTPError as exc:
                raise MetricUnavailable(f"Prometheus at {server} unreachable: {exc}") from None
        try:
            body = response.json()
        except ValueError:
            raise MetricUnavailable(f"Prometheus answered {response.status_code} without "
                                    "JSON") from None
        if response.status_code >= 400 and body.get("status") != "error":
            raise MetricUnavailable(f"Prometheus answered {response.status_code}")
        return value_of(body)


__all__ = ["PrometheusSource", "value_of"]
