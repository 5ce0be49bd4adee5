"""Runtime metrics: per-registry families whose values follow the queue and the reconciles."""

from __future__ import annotations

import asyncio

import pytest
from prometheus_client import generate_latest

from pincompute.kube.protocol import KubeClient
from pincompute.kube.resource import CONFIGMAPS
from pincompute.runtime.controller import Controller
from pincompute.runtime.informer import InformerFactory
from pincompute.runtime.metrics import RuntimeMetrics
from pincompute.runtime.reconciler import Request, Result
from pincompute.runtime.workqueue import ItemExponentialFailureRateLimiter, WorkQueue

from .support import Notifier, configmap

pytestmark = pytest.mark.timeout(20)


def test_registries_are_per_instance() -> None:
    a, b = RuntimeMetrics(), RuntimeMetrics()     # would raise on a shared registry
    a.workqueue_adds.labels("x").inc()
    assert a.sample("workqueue_adds_total", {"controller": "x"}) == 1
    assert b.sample("workqueue_adds_total", {"controller": "x"}) is None
    prefixed = RuntimeMetrics(namespace="pincompute")
    prefixed.reconcile_errors.labels("x").inc()
    assert prefixed.sample("reconcile_errors_total", {"controller": "x"}) == 1
    assert prefixed.registry.get_sample_value(
        "pincompute_reconcile_errors_total", {"controller": "x"}) == 1


def test_exposition_names() -> None:
    m = RuntimeMetrics()
    m.queue("c")
    m.reconcile_total.labels("c", "success").inc()
    m.reconcile_errors.labels("c").inc()
    m.reconcile_duration.labels("c").observe(0.01)
    text = generate_latest(m.registry).decode()
    for name in ("workqueue_depth", "workqueue_adds_total", "workqueue_retries_total",
                 "reconcile_total", "reconcile_errors_total",
                 "reconcile_duration_seconds_bucket"):
        assert f"\n{name}{{" in text or text.startswith(f"{name}{{"), name


async def test_queue_metrics_follow_operations() -> None:
    m = RuntimeMetrics()
    q: WorkQueue[str] = WorkQueue(name="q", metrics=m.queue("q"),
                                  rate_limiter=ItemExponentialFailureRateLimiter(
                                      base_delay=0.001, max_delay=0.01))
    labels = {"controller": "q"}

    def value(name: str) -> float | None:
        return m.sample(name, labels)

    q.add("a")
    q.add("a")          # deduplicated: not an add
    q.add("b")
    assert value("workqueue_adds_total") == 2
    assert value("workqueue_depth") == 2
    item = await q.get()
    assert value("workqueue_depth") == 1
    assert value("workqueue_queue_duration_seconds_count") == 1
    q.add(item)         # while processing: an add, but not yet queued
    assert value("workqueue_adds_total") == 3
    assert value("workqueue_depth") == 1
    q.done(item)
    assert value("workqueue_depth") == 2
    assert value("workqueue_work_duration_seconds_count") == 1
    q.add_rate_limited("c")
    assert value("workqueue_retries_total") == 1
    q.shutdown()
    assert value("workqueue_depth") == 0


async def test_controller_metrics_follow_reconciles(client: KubeClient) -> None:
    for name in ("ok", "fails-once", "timer"):
        await client.create(CONFIGMAPS, configmap(name))
    m = RuntimeMetrics()
    factory = InformerFactory(metrics=m)
    calls = Notifier()

    async def reconcile(req: Request) -> Result | None:
        calls.append(req.name)
        if req.name == "fails-once" and calls.items.count("fails-once") == 1:
            raise RuntimeError("once")
        if req.name == "timer" and calls.items.count("timer") == 1:
            return Result(requeue_after=0.01)
        await asyncio.sleep(0.002)
        return None

    ctrl = Controller("ctl", reconcile, workers=2, metrics=m,
                      rate_limiter=ItemExponentialFailureRateLimiter(base_delay=0.001,
                                                                     max_delay=0.01))
    ctrl.for_(factory.informer(client, CONFIGMAPS))
    labels = {"controller": "ctl"}
    # Adds from the first list are counted before any worker runs.
    factory.start()
    try:
        await ctrl.start()
        assert m.sample("workqueue_adds_total", labels) == 3
        await calls.wait_for(lambda items: len(items) == 5)
        await ctrl.wait_idle()

        def result(r: str) -> float | None:
            return m.sample("reconcile_total", {**labels, "result": r})

        assert result("success") == 3
        assert result("error") == 1
        assert result("requeue_after") == 1
        assert m.sample("reconcile_errors_total", labels) == 1
        assert m.sample("workqueue_retries_total", labels) == 1
        assert m.sample("reconcile_duration_seconds_count", labels) == 5
        assert m.sample("reconcile_duration_seconds_sum", labels) >= 3 * 0.002
        assert m.sample("controller_active_workers", labels) == 0
        assert m.sample("controller_max_concurrent_reconciles", labels) == 2
        assert m.sample("workqueue_depth", labels) == 0
        assert m.sample("informer_relists_total", {"resource": "configmaps"}) == 1

        await client.patch(CONFIGMAPS, "ok", {"data": {"x": "1"}}, namespace="default")
        await calls.wait_for(lambda items: len(items) == 6)
        assert m.sample("informer_events_total",
                        {"resource": "configmaps", "type": "MODIFIED"}) == 1
    finally:
        await ctrl.shutdown()
        await factory.stop()
