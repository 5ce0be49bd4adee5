"""The node-local metrics endpoint (DESIGN §8): apps push their samples or are scraped.

Theory of operation
-------------------
Each process node serves, on its own address, a small HTTP endpoint:

* ``POST /push/<pod-uid>/<token>`` — a container sends its own samples in the
  Prometheus text format (at most :data:`MAX_BODY` bytes).  Every container gets
  its pod's push URL in ``PINCOMPUTE_METRICS_URL``; the token is an HMAC of the
  pod's uid under a key only the agent knows, so a pod can push for itself and
  for no other pod, and the agent keeps no per-pod secret.
* scraping — a pod annotated ``metrics.pincompute.io/port`` (and optionally
  ``metrics.pincompute.io/path``, default ``/metrics``) is scraped at its own
  address by the node's usage reporter (:mod:`.usagereport`) once per report.
* ``GET /metrics`` — the node's own view in the Prometheus format: each
  container's CPU and memory use (``pincompute_container_cpu_millicores``,
  ``pincompute_container_memory_bytes``) and each pod's custom samples
  (``pincompute_pod_custom_metric``), for a Prometheus server to scrape.

Samples are kept per pod (:class:`PodSamples`) and summed per sample name over
label sets; a counter (a family typed ``counter``, or a sample named ``*_total``)
is turned into its rate per second between two readings, which is what a
scaler wants of a request counter.  The latest values go into the node's usage
record (:mod:`pincompute.model.usage`) and from there to PinScalers' ``Pods``
metrics — no external system involved.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import secrets
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson
from prometheus_client.parser import text_string_to_metric_families

from pincompute.runtime.logging import get_logger

from .runtimeapi.server import HTTPError, read_request, send

_log = get_logger(__name__)

MAX_BODY = 256 * 1024
"""The largest push accepted."""
MAX_SAMPLES = 1000
"""Sample names kept per pod (more are dropped: a pod cannot grow the node's memory)."""
METRICS_PORT_ANNOTATION = "metrics.pincompute.io/port"
METRICS_PATH_ANNOTATION = "metrics.pincompute.io/path"
METRICS_URL_ENV = "PINCOMPUTE_METRICS_URL"


@dataclass(slots=True)
class PodSamples:
    """One pod's custom samples: the latest value (counters: rate) of each name."""

    values: dict[str, float] = field(default_factory=dict)
    _counters: dict[str, tuple[float, float]] = field(default_factory=dict)

    def ingest(self, text: str, *, now: float) -> int:
        """Fold a Prometheus text exposition in; returns the sample names read."""
        totals: dict[str, float] = {}
        counters: set[str] = set()
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name.endswith("_created"):
                    continue
                totals[sample.name] = totals.get(sample.name, 0.0) + float(sample.value)
                if family.type == "counter" or sample.name.endswith("_total"):
                    counters.add(sample.name)
        for name, value in list(totals.items())[:MAX_SAMPLES]:
            if name not in counters:
                self.values[name] = value
                continue
            previous = self._counters.get(name)
            self._counters[name] = (now, value)
            if previous is not None and now > previous[0]:
                # a reset (value below the last) counts from zero, as Prometheus' rate()
                delta = value - previous[1] if value >= previous[1] else value
                self.values[name] = delta / (now - previous[0])
        return len(totals)


def push_token(key: bytes, pod_uid: str) -> str:
    return hmac.new(key, pod_uid.encode(), hashlib.sha256).hexdigest()[:32]


class MetricsEndpoint:
    """The endpoint of one node: push, scrape, and the node's own ``/metrics``."""

    def __init__(self, *, host: str, port: int = 0,
                 pods: Callable[[], Iterable[tuple[str, str, str]]],
                 usage: Callable[[], Mapping[str, Any]]) -> None:
        """``pods()`` yields (uid, namespace, name) of the node's pods; ``usage()`` is the
        agent's per-pod, per-container usage (``NodeAgent.usage``)."""
        self.host = host
        self.port = port
        self._pods = pods
        self._usage = usage
        self._key = secrets.token_bytes(32)
        self.samples: dict[str, PodSamples] = {}
        self._server: asyncio.Server | None = None
        self._client: httpx.AsyncClient | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def push_url(self, pod_uid: str) -> str:
        return f"{self.url}/push/{pod_uid}/{push_token(self._key, pod_uid)}"

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        self._client = httpx.AsyncClient(timeout=2.0)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await self._server.wait_closed()
        if self._client is not None:
            await self._client.aclose()

    def forget(self, live: set[str]) -> None:
        for uid in [u for u in self.samples if u not in live]:
            del self.samples[uid]

    def custom(self, pod_uid: str) -> dict[str, float]:
        found = self.samples.get(pod_uid)
        return dict(found.values) if found is not None else {}

    async def scrape(self, pod_uid: str, url: str) -> None:
        """Read a pod's own ``/metrics`` (failures are logged, the last values kept)."""
        assert self._client is not None
        try:
            response = await self._client.get(url)
            response.raise_for_status()
            self.samples.setdefault(pod_uid, PodSamples()).ingest(response.text,
                                                                   now=time.monotonic())
        except (httpx.HTTPError, ValueError) as exc:
            _log.debug("scraping %s failed: %s", url, exc)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            async with asyncio.timeout(10.0):
                request = await read_request(reader)
                if request is None:
                    return
                parts = [p for p in request.path.split("/") if p]
                if parts == ["metrics"] and request.method == "GET":
                    await send(writer, 200, self.exposition().encode(),
                               content_type="text/plain; version=0.0.4")
                elif len(parts) == 3 and parts[0] == "push" and request.method in ("POST",
                                                                                   "PUT"):
                    await self._push(parts[1], parts[2], request.headers, reader, writer)
                else:
                    raise HTTPError(404, f"no such endpoint: {request.method} {request.path}")
        except HTTPError as exc:
            with contextlib.suppress(OSError):
                await send(writer, exc.code, orjson.dumps({"message": str(exc)}))
        except (ConnectionError, asyncio.IncompleteReadError, TimeoutError):
            pass
        finally:
            with contextlib.suppress(OSError):
                writer.close()

    async def _push(self, pod_uid: str, token: str, headers: Mapping[str, str],
                    reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if not hmac.compare_digest(token, push_token(self._key, pod_uid)):
            raise HTTPError(401, "not this pod's push URL")
        if pod_uid not in {uid for uid, _, _ in self._pods()}:
            raise HTTPError(404, "the pod is not on this node")
        try:
            length = int(headers.get("content-length", ""))
        except ValueError:
            raise HTTPError(400, "Content-Length is required") from None
        if length < 0 or length > MAX_BODY:
            raise HTTPError(400, f"body too large (at most {MAX_BODY} bytes)")
        body = await reader.readexactly(length)
        try:
            count = self.samples.setdefault(pod_uid, PodSamples()).ingest(
                body.decode(), now=time.monotonic())
        except (ValueError, UnicodeDecodeError) as exc:
            raise HTTPError(400, f"not the Prometheus text format: {exc}") from None
        await send(writer, 200, orjson.dumps({"samples": count}))

    def exposition(self) -> str:
        """The node's usage and its pods' custom samples, Prometheus text format."""
        names = {uid: (ns, name) for uid, ns, name in self._pods()}
        lines = ["# HELP pincompute_container_cpu_millicores CPU used by a container.",
                 "# TYPE pincompute_container_cpu_millicores gauge"]
        mem = ["# HELP pincompute_container_memory_bytes Memory used by a container.",
               "# TYPE pincompute_container_memory_bytes gauge"]
        for key, containers in sorted(self._usage().items()):
            ns, _, pod = key.partition("/")
            for container, u in sorted(containers.items()):
                labels = f'namespace="{ns}",pod="{pod}",container="{container}"'
                lines.append(f"pincompute_container_cpu_millicores{{{labels}}} "
                             f"{u['cpuMillis']}")
                mem.append(f"pincompute_container_memory_bytes{{{labels}}} {u['memoryBytes']}")
        custom = ["# HELP pincompute_pod_custom_metric A pod's own sample (counters: rate/s).",
                  "# TYPE pincompute_pod_custom_metric gauge"]
        for uid, samples in sorted(self.samples.items()):
            if uid not in names:
                continue
            ns, pod = names[uid]
            for metric, value in sorted(samples.values.items()):
                custom.append(f'pincompute_pod_custom_metric{{namespace="{ns}",pod="{pod}",'
                              f'metric="{metric}"}} {value}')
        return "\n".join([*lines, *mem, *custom]) + "\n"


__all__ = ["MAX_BODY", "METRICS_PATH_ANNOTATION", "METRICS_PORT_ANNOTATION", "METRICS_URL_ENV",
           "MetricsEndpoint", "PodSamples", "push_token"]
