"""The node's usage report: its pods' CPU, memory and custom samples into the metrics store.

Theory of operation
-------------------
Every ``interval`` seconds (15 s by default, metrics-server's resolution) a
:class:`UsageReporter` samples each live pod worker of its node — the process
runtime measures (cgroup counters, else the process tree through psutil), the
sim runtime reads the pod's declared profiles (``sim.pincompute.io/cpu-profile``)
— scrapes the pods that asked to be (:mod:`.metricsendpoint`), and writes one
:class:`~pincompute.model.usage.NodeUsage` into its ConfigMap in the member
cluster (:func:`~pincompute.model.usage.configmap_name`).  A report equal to the
last one written is not written again until
:data:`~pincompute.model.usage.REFRESH_SECONDS` have passed, so idle nodes cost
the store nothing but a refresh a minute.  Why a record per node and how
readers use it: :mod:`pincompute.model.usage`.

Write failures are logged and retried at the next report; the record is a
cache of what the node measures, never a state of record.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import orjson

from pincompute.kube.errors import AlreadyExists, ApiError, NotFound
from pincompute.kube.protocol import KubeClient
from pincompute.kube.resource import CONFIGMAPS
from pincompute.model.usage import (
    REFRESH_SECONDS,
    USAGE_NAMESPACE,
    NodeUsage,
    PodUsage,
    configmap_name,
)
from pincompute.model.wellknown import APP_KIND_LABEL, APP_LABEL
from pincompute.runtime.logging import get_logger

from .metricsendpoint import METRICS_PATH_ANNOTATION, METRICS_PORT_ANNOTATION, MetricsEndpoint
from .registration import ensure_namespace

if TYPE_CHECKING:
    from .worker import PodWorker

_log = get_logger(__name__)

DEFAULT_INTERVAL = 15.0


def pod_usage(worker: PodWorker, custom: Mapping[str, float]) -> PodUsage:
    """One worker's entry: readiness, requests, usage summed over its containers."""
    md = worker.pod.get("metadata") or {}
    labels = md.get("labels") or {}
    per_container = worker.usage()
    live = [r for r in worker.records.values() if not r.removed]
    running = any(r.instance is not None for r in live)
    ready = running and worker.initialized and all(r.ready for r in live)
    cpu = mem = None
    if per_container:
        cpu = sum(int(u["cpuMillis"]) for u in per_container.values())
        mem = sum(int(u["memoryBytes"]) for u in per_container.values())
    requests = getattr(worker, "requests", (0, 0))
    return PodUsage(
        namespace=worker.namespace, name=worker.name, app=labels.get(APP_LABEL, ""),
        app_kind=labels.get(APP_KIND_LABEL, ""), ready=ready, running=running,
        cpu_request=requests[0], memory_request=requests[1], cpu=cpu, memory=mem,
        containers={c: (int(u["cpuMillis"]), int(u["memoryBytes"]))
                    for c, u in per_container.items()},
        custom=dict(custom))


class UsageReporter:
    """Samples a node's pods and keeps its usage record current."""

    def __init__(self, client: KubeClient, node: str, *,
                 workers: Callable[[], Mapping[str, PodWorker]],
                 endpoint: MetricsEndpoint | None = None,
                 interval: float = DEFAULT_INTERVAL, refresh: float = REFRESH_SECONDS,
                 clock: Callable[[], float] = time.time) -> None:
        self.client = client
        self.node = node
        self.workers = workers
        self.endpoint = endpoint
        self.interval = interval
        self.refresh = refresh
        self.clock = clock
        self.last: bytes | None = None
        """A digest of the samples last written (:func:`samples_digest`), not the samples:
        they are in the ConfigMap, and a copy per pod here cost ~0.5 KB per pod."""
        self._written_at = 0.0
        self._namespace_ready = False

    async def sample(self) -> NodeUsage:
        live = {uid: w for uid, w in self.workers().items() if not w.finished}
        if self.endpoint is not None:
            self.endpoint.forget(set(live))
            scrapes = [self.endpoint.scrape(uid, url) for uid, w in live.items()
                       if (url := scrape_url(w)) is not None]
            if scrapes:
                await asyncio.gather(*scrapes)
        pods = tuple(sorted(
            (pod_usage(w, self.endpoint.custom(uid) if self.endpoint is not None else {})
             for uid, w in live.items()), key=lambda p: (p.namespace, p.name)))
        return NodeUsage(node=self.node, time=self.clock(),
                         cpu=sum(p.cpu or 0 for p in pods),
                         memory=sum(p.memory or 0 for p in pods), pods=pods)

    async def report(self) -> bool:
        """Sample and write if changed (or due for a refresh); True if written."""
        usage = await self.sample()
        digest = samples_digest(usage)
        if digest == self.last and (
                self.clock() - self._written_at < self.refresh or not usage.active):
            # unchanged; a record that measures nothing (no pods, or only idle sim pods) is
            # not refreshed either: when it goes stale readers lose nothing
            return False
        obj = usage.configmap()
        try:
            if not self._namespace_ready:
                await ensure_namespace(self.client, USAGE_NAMESPACE)
                self._namespace_ready = True
            try:
                current = await self.client.get(CONFIGMAPS, obj["metadata"]["name"],
                                                namespace=USAGE_NAMESPACE)
                current["data"] = obj["data"]
                current.setdefault("metadata", {}).setdefault("labels", {}).update(
                    obj["metadata"]["labels"])
                await self.client.update(CONFIGMAPS, current)
            except NotFound:
                with contextlib.suppress(AlreadyExists):
                    await self.client.create(CONFIGMAPS, obj, namespace=USAGE_NAMESPACE)
        except ApiError as exc:
            _log.warning("node %s: usage report not written: %s", self.node, exc)
            return False
        self.last, self._written_at = digest, self.clock()
        return True

    async def run(self) -> None:
        while True:
            try:
                await self.report()
            except Exception:  # a report must never stop the agent
                _log.exception("node %s: usage report failed", self.node)
            await asyncio.sleep(self.interval)

    async def remove(self) -> None:
        """Delete the record (the node is going away for good)."""
        with contextlib.suppress(NotFound, ApiError):
            await self.client.delete(CONFIGMAPS, configmap_name(self.node),
                                     namespace=USAGE_NAMESPACE)


def samples_digest(usage: NodeUsage) -> bytes:
    """What :meth:`NodeUsage.same_samples` compares (pods, node totals), as a digest."""
    return hashlib.blake2b(orjson.dumps([usage.cpu, usage.memory,
                                         [p.encode() for p in usage.pods]]),
                           digest_size=16).digest()


def scrape_url(worker: PodWorker) -> str | None:
    annotations: Mapping[str, Any] = (worker.pod.get("metadata") or {}).get(
        "annotations") or {}
    port = annotations.get(METRICS_PORT_ANNOTATION)
    if not port or worker.sandbox is None or not str(port).isdigit():
        return None
    path = str(annotations.get(METRICS_PATH_ANNOTATION) or "/metrics")
    if not path.startswith("/"):
        path = "/" + path
    return f"http://{worker.sandbox.ip}:{int(port)}{path}"


__all__ = ["DEFAULT_INTERVAL", "UsageReporter", "pod_usage", "samples_digest", "scrape_url"]
