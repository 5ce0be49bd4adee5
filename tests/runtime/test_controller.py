"""Controllers: event -> key mapping, workers, retries, requeue_after, exclusivity, logs."""

from __future__ import annotations

import asyncio
import itertools
import logging
import random
from collections.abc import AsyncIterator

import pytest

from pincompute.kube.objects import deepcopy, owner_reference
from pincompute.kube.protocol import KubeClient
from pincompute.kube.resource import CONFIGMAPS, SECRETS
from pincompute.runtime.cache import CacheMutationError
from pincompute.runtime.controller import Controller, generation_changed
from pincompute.runtime.informer import InformerFactory, SharedInformer
from pincompute.runtime.logging import FIELDS_ATTR, get_logger
from pincompute.runtime.metrics import RuntimeMetrics
from pincompute.runtime.reconciler import Request, Result, TerminalError
from pincompute.runtime.workqueue import ItemExponentialFailureRateLimiter

from .support import Notifier, configmap

pytestmark = pytest.mark.timeout(20)


@pytest.fixture
async def factory() -> AsyncIterator[InformerFactory]:
    f = InformerFactory(detect_mutations=True)
    yield f
    await f.stop()


@pytest.fixture
async def controllers() -> AsyncIterator[list[Controller]]:
    """Controllers to shut down at the end of a test."""
    made: list[Controller] = []
    yield made
    for c in made:
        await c.shutdown(grace_period=1.0)


def fast_retries() -> ItemExponentialFailureRateLimiter:
    return ItemExponentialFailureRateLimiter(base_delay=0.001, max_delay=0.05)


async def run(controllers: list[Controller], factory: InformerFactory,
              ctrl: Controller) -> Controller:
    controllers.append(ctrl)
    factory.start()
    await ctrl.start(sync_timeout=5.0)
    return ctrl


async def test_reconciles_own_objects_before_and_after_start(
        client: KubeClient, factory: InformerFactory, controllers: list[Controller]) -> None:
    await client.create(CONFIGMAPS, configmap("early"))
    seen = Notifier()

    async def reconcile(req: Request) -> None:
        seen.append(req)

    inf = factory.informer(client, CONFIGMAPS)
    await run(controllers, factory, Controller("cm", reconcile, workers=2).for_(inf))
    await client.create(CONFIGMAPS, configmap("late", "other"))
    await seen.wait_for(lambda items: len({r.key for r in items}) == 2)
    keys = {r.key for r in seen.items}
    assert keys == {"default/early", "other/late"}
    req = next(r for r in seen.items if r.name == "late")
    assert (req.namespace, req.name, req.cluster) == ("other", "late", "")

    await client.delete(CONFIGMAPS, "early", namespace="default")
    await seen.wait_for(lambda items: [r.key for r in items].count("default/early") >= 2)


async def test_events_during_reconcile_coalesce(client: KubeClient, factory: InformerFactory,
                                                controllers: list[Controller]) -> None:
    await client.create(CONFIGMAPS, configmap("a", v="0"))
    inf = factory.informer(client, CONFIGMAPS)
    release = asyncio.Event()
    calls = Notifier()
    versions: list[str] = []

    async def reconcile(req: Request) -> None:
        calls.append(req)
        obj = inf.get_by_key(req.key)
        versions.append(obj["data"]["v"] if obj else "gone")
        if len(calls.items) == 1:
            await release.wait()

    await run(controllers, factory, Controller("cm", reconcile, workers=4).for_(inf))
    await calls.wait_for(lambda items: len(items) == 1)
    for i in range(1, 11):
        await client.patch(CONFIGMAPS, "a", {"data": {"v": str(i)}}, namespace="default")
    # Ten updates arrived while the key was held: they are one pending reconcile,
    # and no other worker took the key meanwhile.
    await asyncio.sleep(0)
    assert len(calls.items) == 1
    release.set()
    await calls.wait_for(lambda items: len(items) == 2)
    assert versions == ["0", "10"]
    await controllers[0].wait_idle()
    assert len(calls.items) == 2


async def test_failures_retry_with_growing_backoff_then_forget(
        client: KubeClient, factory: InformerFactory, controllers: list[Controller]) -> None:
    await client.create(CONFIGMAPS, configmap("flaky"))
    attempts = Notifier()
    loop = asyncio.get_running_loop()
    metrics = RuntimeMetrics()

    async def reconcile(req: Request) -> None:
        attempts.append(loop.time())
        if len(attempts.items) < 4:
            raise RuntimeError("transient")

    ctrl = Controller("flaky", reconcile, rate_limiter=ItemExponentialFailureRateLimiter(
        base_delay=0.01, max_delay=1.0), metrics=metrics)
    await run(controllers, factory, ctrl.for_(factory.informer(client, CONFIGMAPS)))
    await attempts.wait_for(lambda items: len(items) == 4)
    t = attempts.items
    gaps = [b - a for a, b in itertools.pairwise(t)]
    # 10 ms, 20 ms, 40 ms back-off between attempts (timers never fire early).
    assert gaps[0] >= 0.009 and gaps[1] >= 0.019 and gaps[2] >= 0.039
    # Success forgot the key's failures.
    await ctrl.wait_idle()
    assert ctrl.queue.num_requeues(Request("default", "flaky")) == 0
    labels = {"controller": "flaky"}
    assert metrics.sample("reconcile_errors_total", labels) == 3
    assert metrics.sample("reconcile_total", {**labels, "result": "error"}) == 3
    assert metrics.sample("reconcile_total", {**labels, "result": "success"}) == 1
    assert metrics.sample("workqueue_retries_total", labels) == 3


async def test_terminal_error_is_not_retried(client: KubeClient, factory: InformerFactory,
                                             controllers: list[Controller]) -> None:
    await client.create(CONFIGMAPS, configmap("bad"))
    await client.create(CONFIGMAPS, configmap("good"))
    calls = Notifier()

    async def reconcile(req: Request) -> None:
        calls.append(req.name)
        if req.name == "bad":
            raise TerminalError("cannot ever work")

    ctrl = Controller("t", reconcile, rate_limiter=fast_retries())
    await run(controllers, factory, ctrl.for_(factory.informer(client, CONFIGMAPS)))
    await calls.wait_for(lambda items: {"bad", "good"} <= set(items))
    # A later event still brings the key back (that is how a fix gets reconciled).
    await client.create(CONFIGMAPS, configmap("after"))
    await calls.wait_for(lambda items: "after" in items)
    assert calls.items.count("bad") == 1
    assert Request("default", "bad") not in ctrl.queue


async def test_requeue_after_is_honoured(client: KubeClient, factory: InformerFactory,
                                         controllers: list[Controller]) -> None:
    await client.create(CONFIGMAPS, configmap("timer"))
    loop = asyncio.get_running_loop()
    calls = Notifier()
    metrics = RuntimeMetrics()

    async def reconcile(req: Request) -> Result | None:
        calls.append(loop.time())
        if len(calls.items) == 1:
            return Result(requeue_after=0.1)
        return None

    ctrl = Controller("timer", reconcile, metrics=metrics)
    await run(controllers, factory, ctrl.for_(factory.informer(client, CONFIGMAPS)))
    await calls.wait_for(lambda items: len(items) == 2)
    assert calls.items[1] - calls.items[0] >= 0.099
    labels = {"controller": "timer"}
    assert metrics.sample("reconcile_total", {**labels, "result": "requeue_after"}) == 1
    # A timer is not a failure: no back-off was accumulated, no retry counted.
    assert metrics.sample("workqueue_retries_total", labels) == 0


async def test_requeue_true_uses_rate_limiter(client: KubeClient, factory: InformerFactory,
                                              controllers: list[Controller]) -> None:
    await client.create(CONFIGMAPS, configmap("again"))
    calls = Notifier()

    async def reconcile(req: Request) -> Result:
        calls.append(req)
        return Result(requeue=len(calls.items) < 3)

    ctrl = Controller("again", reconcile, rate_limiter=fast_retries())
    await run(controllers, factory, ctrl.for_(factory.informer(client, CONFIGMAPS)))
    await calls.wait_for(lambda items: len(items) == 3)


async def test_owns_maps_dependents_to_their_controller_owner(
        client: KubeClient, factory: InformerFactory, controllers: list[Controller]) -> None:
    owner = await client.create(SECRETS, {"metadata": {"name": "parent", "namespace": "default"}})
    other = await client.create(SECRETS, {"metadata": {"name": "stranger",
                                                       "namespace": "default"}})
    seen = Notifier()

    async def reconcile(req: Request) -> None:
        seen.append(req.key)

    ctrl = (Controller("parents", reconcile)
            .for_(factory.informer(client, SECRETS))
            .owns(factory.informer(client, CONFIGMAPS), owner=SECRETS))
    await run(controllers, factory, ctrl)
    await seen.wait_for(lambda items: {"default/parent", "default/stranger"} <= set(items))
    seen.items.clear()

    child = configmap("child")
    child["metadata"]["ownerReferences"] = [owner_reference(owner)]
    await client.create(CONFIGMAPS, child)
    await seen.wait_for(lambda items: "default/parent" in items)
    # A non-controller reference does not count.
    loose = configmap("loose")
    loose["metadata"]["ownerReferences"] = [owner_reference(other, controller=False)]
    await client.create(CONFIGMAPS, loose)
    orphan = await client.create(CONFIGMAPS, configmap("orphan"))
    assert orphan
    await client.delete(CONFIGMAPS, "child", namespace="default")
    await seen.wait_for(lambda items: items.count("default/parent") >= 2)
    assert "default/stranger" not in seen.items
    assert "default/loose" not in seen.items and "default/orphan" not in seen.items


async def test_owns_with_a_batch_reconciles_once_for_changes_together(
        client: KubeClient, factory: InformerFactory, controllers: list[Controller]) -> None:
    owner = await client.create(SECRETS, {"metadata": {"name": "parent", "namespace": "default"}})
    seen = Notifier()
    gate = asyncio.Event()
    gate.set()

    async def reconcile(req: Request) -> None:
        seen.append(req.key)
        await gate.wait()

    ctrl = (Controller("parents", reconcile)
            .owns(factory.informer(client, CONFIGMAPS), owner=SECRETS, batch=0.3))
    await run(controllers, factory, ctrl)

    def child(name: str) -> dict[str, object]:
        made = configmap(name)
        made["metadata"]["ownerReferences"] = [owner_reference(owner)]
        return made

    for i in range(10):
        await client.create(CONFIGMAPS, child(f"c{i}"))
    await seen.wait_for(lambda items: items == ["default/parent"])
    await asyncio.sleep(0.5)
    assert seen.items == ["default/parent"]  # ten changes within the batch: one reconcile
    # A change while the owner is being reconciled is not lost: it comes back for it.
    gate.clear()
    await client.create(CONFIGMAPS, child("during-1"))
    await seen.wait_for(lambda items: len(items) == 2)
    await client.create(CONFIGMAPS, child("during-2"))
    await asyncio.sleep(0.5)
    gate.set()
    await seen.wait_for(lambda items: len(items) == 3)


async def test_watches_with_map_function_and_predicate(
        client: KubeClient, factory: InformerFactory, controllers: list[Controller]) -> None:
    await client.create(CONFIGMAPS, configmap("a", v="1"))
    seen = Notifier()

    async def reconcile(req: Request) -> None:
        seen.append(req)

    def to_summary(obj: dict) -> list[Request]:
        return [Request("", f"summary-of-{obj['metadata']['name']}", cluster="zone-a-1")]

    ctrl = Controller("summaries", reconcile).watches(
        factory.informer(client, CONFIGMAPS), to_summary, predicate=generation_changed)
    await run(controllers, factory, ctrl)
    await seen.wait_for(lambda items: len(items) == 1)
    assert seen.items[0] == Request("", "summary-of-a", "zone-a-1")
    assert str(seen.items[0]) == "zone-a-1:summary-of-a"
    # Labels are metadata: generation unchanged, filtered out.  Data bumps it.
    await client.patch(CONFIGMAPS, "a", {"metadata": {"labels": {"x": "y"}}}, namespace="default")
    await client.patch(CONFIGMAPS, "a", {"data": {"v": "2"}}, namespace="default")
    await seen.wait_for(lambda items: len(items) == 2)
    await client.create(CONFIGMAPS, configmap("marker"))
    await seen.wait_for(lambda items: any(r.name == "summary-of-marker" for r in items))
    assert len(seen.items) == 3


async def test_copy_rule_keeps_cache_intact(client: KubeClient, factory: InformerFactory,
                                            controllers: list[Controller]) -> None:
    await client.create(CONFIGMAPS, configmap("a", v="1"))
    await client.create(CONFIGMAPS, configmap("b", v="1"))
    inf = factory.informer(client, CONFIGMAPS)
    done = Notifier()

    async def reconcile(req: Request) -> None:
        obj = inf.get_by_key(req.key)
        if obj is None or obj["data"].get("v") == "2":
            done.append(req.key)
            return
        desired = deepcopy(obj)              # the rule: copy, then change the copy
        desired["data"]["v"] = "2"
        desired["metadata"].setdefault("labels", {})["touched"] = "yes"
        await client.update(CONFIGMAPS, desired)

    await run(controllers, factory, Controller("copy", reconcile, workers=2).for_(inf))
    await done.wait_for(lambda items: {"default/a", "default/b"} <= set(items))
    factory.check_mutations()
    assert all(o["data"]["v"] == "2" for o in inf.list())


async def test_mutating_cached_objects_is_detected(
        client: KubeClient, factory: InformerFactory, controllers: list[Controller]) -> None:
    await client.create(CONFIGMAPS, configmap("a", v="1"))
    inf = factory.informer(client, CONFIGMAPS)
    done = Notifier()

    async def reconcile(req: Request) -> None:
        obj = inf.get_by_key(req.key)
        assert obj is not None
        obj["data"]["v"] = "oops"            # breaks the rule
        done.append(req.key)

    await run(controllers, factory, Controller("bad", reconcile).for_(inf))
    await done.wait_for(lambda items: len(items) == 1)
    with pytest.raises(CacheMutationError):
        inf.check_mutations()


async def test_no_key_reconciled_by_two_workers_at_once(
        client: KubeClient, factory: InformerFactory, controllers: list[Controller]) -> None:
    names = [f"k{i}" for i in range(4)]
    for n in names:
        await client.create(CONFIGMAPS, configmap(n, v="0"))
    rng = random.Random(7)
    in_flight: set[str] = set()
    overlaps: list[str] = []
    max_parallel = 0
    count = Notifier()
    seen: dict[str, str] = {}
    inf = factory.informer(client, CONFIGMAPS)

    async def reconcile(req: Request) -> Result | None:
        nonlocal max_parallel
        seen[req.key] = inf.get_by_key(req.key)["data"]["v"]
        if req.key in in_flight:
            overlaps.append(req.key)
        in_flight.add(req.key)
        max_parallel = max(max_parallel, len(in_flight))
        for _ in range(rng.randint(0, 4)):
            await asyncio.sleep(0)
        in_flight.discard(req.key)
        count.append(req.key)
        roll = rng.random()
        if roll < 0.2:
            raise RuntimeError("random failure")
        if roll < 0.3:
            return Result(requeue_after=0.001)
        return None

    ctrl = Controller("stress", reconcile, workers=8, rate_limiter=fast_retries())
    await run(controllers, factory, ctrl.for_(inf))
    final: dict[str, str] = {}
    for i in range(200):
        name = rng.choice(names)
        await client.patch(CONFIGMAPS, name, {"data": {"v": str(i)}}, namespace="default")
        final[f"default/{name}"] = str(i)
        for _ in range(rng.randint(0, 2)):
            await asyncio.sleep(0)
    # Every key is reconciled after its last change (no change lost) ...
    await count.wait_for(lambda items: all(seen.get(k) == v for k, v in final.items()))
    # ... and never by two workers at once.
    assert overlaps == []
    assert max_parallel > 1   # the workers did run in parallel, on different keys


async def test_logs_carry_controller_and_key(client: KubeClient, factory: InformerFactory,
                                             controllers: list[Controller],
                                             caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    await client.create(CONFIGMAPS, configmap("logged"))
    done = Notifier()
    app_log = get_logger("tests.app")

    async def reconcile(req: Request) -> None:
        app_log.info("reconciling")
        done.append(req)
        if len(done.items) == 1:
            raise RuntimeError("first attempt fails")

    ctrl = Controller("logs", reconcile, rate_limiter=fast_retries())
    await run(controllers, factory, ctrl.for_(factory.informer(client, CONFIGMAPS)))
    await done.wait_for(lambda items: len(items) == 2)
    mine = [r for r in caplog.records if r.name == "tests.app"]
    assert mine and all(getattr(r, FIELDS_ATTR) == {"controller": "logs",
                                                    "key": "default/logged"} for r in mine)
    failures = [r for r in caplog.records
                if r.name == "pincompute.runtime.controller" and r.levelno == logging.ERROR]
    assert len(failures) == 1
    assert getattr(failures[0], FIELDS_ATTR)["key"] == "default/logged"
    assert getattr(failures[0], FIELDS_ATTR)["controller"] == "logs"
    assert failures[0].exc_info is not None


async def test_shutdown_waits_for_in_flight_then_cancels(
        client: KubeClient, factory: InformerFactory) -> None:
    await client.create(CONFIGMAPS, configmap("slow"))
    started = asyncio.Event()
    release = asyncio.Event()
    finished: list[str] = []

    async def reconcile(req: Request) -> None:
        started.set()
        try:
            await release.wait()
            finished.append("done")
        except asyncio.CancelledError:
            finished.append("cancelled")
            raise

    ctrl = Controller("slow", reconcile).for_(factory.informer(client, CONFIGMAPS))
    factory.start()
    await ctrl.start()
    await started.wait()
    assert ctrl.in_flight == [Request("default", "slow")]
    stopping = asyncio.ensure_future(ctrl.shutdown(grace_period=5.0))
    await asyncio.sleep(0)
    assert not stopping.done()
    # Events after shutdown began are not queued.
    await client.create(CONFIGMAPS, configmap("ignored"))
    release.set()
    assert await stopping is True
    assert finished == ["done"]
    assert len(ctrl.queue) == 0

    # The grace period is a bound: a stuck reconcile is cancelled after it.
    started.clear()
    release.clear()
    ctrl2 = Controller("stuck", reconcile).for_(factory.informer(client, CONFIGMAPS))
    await ctrl2.start()
    await started.wait()
    assert await ctrl2.shutdown(grace_period=0.05) is False
    assert finished[-1] == "cancelled"


async def test_start_waits_for_sources_to_sync(client: KubeClient) -> None:
    inf = SharedInformer(client, CONFIGMAPS)

    async def reconcile(req: Request) -> None:
        return None

    ctrl = Controller("c", reconcile).for_(inf)
    with pytest.raises(TimeoutError):
        await ctrl.start(sync_timeout=0.01)   # never started: never syncs
    assert not ctrl.started
    inf.start()
    try:
        await ctrl.start(sync_timeout=5.0)
        assert ctrl.started
    finally:
        await ctrl.shutdown()
        await inf.stop()


def test_a_status_only_update_is_filtered_and_anything_else_passes() -> None:
    from pincompute.runtime.controller import Event, not_status_only

    base = {"metadata": {"name": "a", "resourceVersion": "1", "generation": 1,
                         "labels": {"x": "1"}}, "spec": {"n": 1}, "status": {"ready": 0}}

    def changed(**parts: object) -> dict:
        new = {**base, "metadata": {**base["metadata"], "resourceVersion": "2"}}
        for key, value in parts.items():
            if key in ("spec", "status"):
                new[key] = value
            else:
                new["metadata"] = {**new["metadata"], key: value}
        return new

    assert not not_status_only(Event("update", changed(status={"ready": 1}), base))
    assert not not_status_only(Event("update", changed(managedFields=[{}]), base))
    assert not_status_only(Event("update", changed(spec={"n": 2}, generation=2), base))
    assert not_status_only(Event("update", changed(annotations={"rollback": "1"}), base))
    assert not_status_only(Event("update", changed(labels={"x": "2"}), base))
    assert not_status_only(Event("update", changed(deletionTimestamp="now"), base))
    assert not_status_only(Event("add", base))
    assert not_status_only(Event("delete", base))
