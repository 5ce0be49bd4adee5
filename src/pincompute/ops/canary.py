"""The built-in canary: the platform acting as a user, continuously, on every cluster.

Theory of operation
-------------------
Every ``interval`` seconds, for each member cluster of the region (a controller
over MemberClusters: one key per cluster, requeued after each run), the canary does
what a developer does — through the kube protocol against the host, as any client
of the API would — in its own project (:data:`CANARY_PROJECT`, made on first
use) and times each step (:data:`STEPS`):

``submit-app``   write a one-replica PinApp placed on that cluster (the project
                 made first if needed)
``app-ready``    wait until the host shows it available (placed, propagated,
                 scheduled, started, Ready and aggregated back)
``submit-job``   write a one-pod PinJob placed on that cluster
``job-complete`` wait until the host shows it Complete
``cleanup``      delete both and wait until they are gone

A step that does not finish within ``timeout`` fails the run (what is left is
still cleaned up).  Each run's verdict is written on the cluster's MemberCluster
(:data:`CANARY_ANNOTATION`: ``ok``, ``since`` — when it last changed —, ``at``,
``message``): staged rotations (:mod:`.stages`) gate on it.  Every run is an
Event on the MemberCluster (``CanaryPassed`` with the latencies, ``CanaryFailed``
with the step and reason) and metrics: runs by result, latency per step,
failures per step, and a 0/1 health gauge per cluster.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from pincompute.kube import objects
from pincompute.kube.errors import AlreadyExists, ApiError, NotFound
from pincompute.kube.protocol import KubeClient
from pincompute.kube.resource import NAMESPACES, Resource
from pincompute.model.registry import MEMBERCLUSTERS, PINAPPS, PINJOBS, PROJECTS
from pincompute.model.wellknown import (
    CANARY_ANNOTATION,
    CANARY_PROJECT,
    CLUSTER_NAME_LABEL,
    SIM_ANNOTATION_PREFIX,
    SYSTEM_NAMESPACE,
)
from pincompute.runtime.events import EventRecorder
from pincompute.runtime.informer import SharedInformer
from pincompute.runtime.logging import get_logger
from pincompute.runtime.manager import Manager
from pincompute.runtime.reconciler import Request, Result

_log = get_logger(__name__)
STEPS = ("submit-app", "app-ready", "submit-job", "job-complete", "cleanup")


@dataclass(frozen=True, kw_only=True, slots=True)
class CanaryConfig:
    enabled: bool = True
    """Off: the controller runs and does nothing (the table's default, see controllers)."""
    interval: float = 60.0
    """Seconds between runs on a cluster."""
    timeout: float = 120.0
    """Seconds a step may take."""
    project: str = CANARY_PROJECT
    poll: float = 0.2
    clock: Callable[[], float] = time.time


@dataclass(slots=True)
class Run:
    cluster: str
    ok: bool = True
    failed_step: str = ""
    message: str = ""
    seconds: dict[str, float] = field(default_factory=dict)


class CanaryMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.runs = Counter("pincompute_canary_runs_total", "Canary runs by result",
                            ["cluster", "result"], registry=registry)
        self.step = Histogram("pincompute_canary_step_seconds", "Canary step latency",
                              ["cluster", "step"], registry=registry,
                              buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120))
        self.failures = Counter("pincompute_canary_failures_total", "Canary failures by step",
                                ["cluster", "step"], registry=registry)
        self.healthy = Gauge("pincompute_canary_healthy", "1 when the last canary run passed",
                             ["cluster"], registry=registry)


class StepFailed(Exception):
    pass


class CheckFailed(Exception):
    """What the canary waits for can no longer happen (a job failed)."""


class Canary:
    def __init__(self, *, host: KubeClient, clusters: SharedInformer, config: CanaryConfig,
                 recorder: EventRecorder, registry: CollectorRegistry) -> None:
        self.host = host
        self.clusters = clusters
        self.config = config
        self.recorder = recorder
        self.metrics = CanaryMetrics(registry)

    async def reconcile(self, request: Request) -> Result | None:
        """One run on member cluster ``request.name``, the next after ``interval``."""
        mc = self.clusters.get(request.name)
        if not self.config.enabled or mc is None or objects.is_deleting(mc):
            return None
        await self.run_once(request.name)
        return Result(requeue_after=self.config.interval)

    async def run_once(self, cluster: str) -> Run:
        run = Run(cluster)
        app, job = f"canary-{cluster}", f"canary-{cluster}-job"
        ns = self.config.project
        try:
            await self._step(run, "submit-app", lambda: self._submit_app(app, cluster))
            await self._step(run, "app-ready", lambda: self._until(PINAPPS, app, _available))
            await self._step(run, "submit-job", lambda: self._create(PINJOBS, self._job(
                job, cluster)))
            await self._step(run, "job-complete", lambda: self._until(PINJOBS, job, _complete))
        except StepFailed:
            pass
        with contextlib.suppress(StepFailed):
            await self._step(run, "cleanup", lambda: self._cleanup(ns, app, job))
        await self._report(run)
        return run

    async def _step(self, run: Run, step: str, fn: Callable[[], Awaitable[None]]) -> None:
        started = time.monotonic()
        try:
            async with asyncio.timeout(self.config.timeout):
                await fn()
        except (TimeoutError, ApiError, CheckFailed) as exc:
            run.ok, run.failed_step = False, run.failed_step or step
            run.message = run.message or (f"{step}: not done within {self.config.timeout:.0f}s"
                                          if isinstance(exc, TimeoutError) else f"{step}: {exc}")
            self.metrics.failures.labels(run.cluster, step).inc()
            raise StepFailed(step) from exc
        run.seconds[step] = time.monotonic() - started
        self.metrics.step.labels(run.cluster, step).observe(run.seconds[step])

    # -- what a user does --

    async def _submit_app(self, name: str, cluster: str) -> None:
        await self._project()
        await self._create(PINAPPS, self._app(name, cluster))

    async def _project(self) -> None:
        with contextlib.suppress(AlreadyExists):
            await self.host.create(PROJECTS, {"metadata": {"name": self.config.project},
                                              "spec": {"description": "the built-in canary"}})
        async with asyncio.timeout(self.config.timeout):
            while True:
                try:
                    await self.host.get(NAMESPACES, self.config.project)
                    return
                except NotFound:
                    await asyncio.sleep(self.config.poll)

    def _template(self, cluster: str) -> dict[str, Any]:
        return {"metadata": {"labels": {"app": "canary"}},
                "spec": {"containers": [{"name": "main", "image": "pincompute/canary",
                                         "command": ["sleep", "infinity"],
                                         "resources": {"requests": {"cpu": "10m",
                                                                    "memory": "16Mi"}}}],
                         "terminationGracePeriodSeconds": 0}}

    def _placement(self, cluster: str) -> dict[str, Any]:
        return {"clusterSelector": {"matchLabels": {CLUSTER_NAME_LABEL: cluster}}}

    def _app(self, name: str, cluster: str) -> dict[str, Any]:
        return {"metadata": {"name": name, "namespace": self.config.project},
                "spec": {"replicas": 1, "template": self._template(cluster),
                         "placement": self._placement(cluster)}}

    def _job(self, name: str, cluster: str) -> dict[str, Any]:
        template = self._template(cluster)
        template["metadata"]["annotations"] = {SIM_ANNOTATION_PREFIX + "run-duration": "0.05"}
        template["spec"]["containers"][0]["command"] = ["true"]
        return {"metadata": {"name": name, "namespace": self.config.project},
                "spec": {"completions": 1, "parallelism": 1, "template": template,
                         "placement": self._placement(cluster)}}

    async def _create(self, resource: Resource, obj: dict[str, Any]) -> None:
        await self._gone(resource, obj["metadata"]["name"])  # a previous run's leftover
        await self.host.create(resource, obj, namespace=self.config.project)

    async def _until(self, resource: Resource, name: str,
                     done: Callable[[Mapping[str, Any]], bool]) -> None:
        # A user polls the API (no watch): what the canary measures is what they see.
        while True:
            if done(await self.host.get(resource, name, namespace=self.config.project)):
                return
            await asyncio.sleep(self.config.poll)

    async def _gone(self, resource: Resource, name: str) -> None:
        with contextlib.suppress(NotFound):
            await self.host.delete(resource, name, namespace=self.config.project)
        while True:
            try:
                await self.host.get(resource, name, namespace=self.config.project)
            except NotFound:
                return
            await asyncio.sleep(self.config.poll)

    async def _cleanup(self, namespace: str, app: str, job: str) -> None:
        await asyncio.gather(self._gone(PINAPPS, app), self._gone(PINJOBS, job))

    # -- the verdict --

    async def _report(self, run: Run) -> None:
        self.metrics.runs.labels(run.cluster, "success" if run.ok else "failure").inc()
        self.metrics.healthy.labels(run.cluster).set(1 if run.ok else 0)
        latencies = ", ".join(f"{s} {v:.2f}s" for s, v in run.seconds.items())
        try:
            mc = await self.host.get(MEMBERCLUSTERS, run.cluster)
        except NotFound:
            return
        previous = _verdict(mc)
        now = self.config.clock()
        since = previous.get("since", now) if previous.get("ok") == run.ok else now
        verdict = {"ok": run.ok, "since": since, "at": now,
                   "message": run.message or f"passed: {latencies}"}
        with contextlib.suppress(NotFound):
            await self.host.patch(MEMBERCLUSTERS, run.cluster, {"metadata": {"annotations": {
                CANARY_ANNOTATION: json.dumps(verdict, sort_keys=True)}}})
        if run.ok:
            self.recorder.record(mc, "Normal", "CanaryPassed", f"canary passed: {latencies}")
        else:
            self.recorder.record(mc, "Warning", "CanaryFailed",
                                 f"canary failed at {run.failed_step}: {run.message}"
                                 + (f" (done: {latencies})" if latencies else ""))
            _log.warning("canary failed on %s: %s", run.cluster, run.message)


def _verdict(mc: Mapping[str, Any]) -> dict[str, Any]:
    raw = (objects.meta(mc).get("annotations") or {}).get(CANARY_ANNOTATION)
    try:
        value = json.loads(raw) if raw else {}
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def canary_verdict(mc: Mapping[str, Any]) -> dict[str, Any]:
    """The canary's last verdict on a MemberCluster (empty: none yet)."""
    return _verdict(mc)


def _available(app: Mapping[str, Any]) -> bool:
    return int((app.get("status") or {}).get("availableReplicas") or 0) >= 1


def _complete(job: Mapping[str, Any]) -> bool:
    if objects.condition_true(job, "Failed"):
        reason = (objects.get_condition(job, "Failed") or {}).get("message")
        raise CheckFailed(f"job failed: {reason}")
    return objects.condition_true(job, "Complete")


def add_canary(manager: Manager, *, host: KubeClient, config: CanaryConfig | None = None,
               name: str = "canary", workers: int = 4,
               events_namespace: str = SYSTEM_NAMESPACE) -> Canary:
    """Run the canary from ``host`` over the region's member clusters (leader only): a
    controller over MemberClusters, each key one run on that cluster, ``workers`` clusters
    at a time."""
    clusters = manager.informer(host, MEMBERCLUSTERS)
    canary = Canary(host=host, clusters=clusters, config=config or CanaryConfig(),
                    registry=manager.metrics.registry,
                    recorder=EventRecorder(host, component="canary", host="pincompute",
                                           cluster_namespace=events_namespace))
    controller = manager.controller(name, canary, workers=workers)
    controller.for_(clusters, predicate=lambda event: event.type == "add")

    async def close_events() -> None:
        try:
            await asyncio.Event().wait()
        finally:
            await canary.recorder.close()

    manager.add_runnable(close_events, name=f"{name}-events", needs_leader=False)
    return canary


__all__ = ["STEPS", "Canary", "CanaryConfig", "Run", "add_canary", "canary_verdict"]
