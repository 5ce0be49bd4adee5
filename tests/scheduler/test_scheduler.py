from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from pincompute.kube.errors import Conflict
from pincompute.kube.objects import get_condition
from pincompute.kube.protocol import KubeClient
from pincompute.kube.resource import EVENTS, NODES, PODS
from pincompute.runtime import Manager
from pincompute.scheduler import PatchBinder, Scheduler
from pincompute.scheduler.podinfo import PodInfo

from .support import eventually, for_api, node, pod

Start = Callable[..., Any]


@pytest.fixture
async def start(client: KubeClient) -> AsyncIterator[Start]:
    tasks: list[asyncio.Task[None]] = []

    async def run(**options: Any) -> Scheduler:
        options.setdefault("initial_backoff", 0.01)
        options.setdefault("max_backoff", 0.05)
        sched = Scheduler(client, **options)
        tasks.append(asyncio.ensure_future(sched.run()))
        await sched.nodes_informer.wait_synced()
        await sched.pods_informer.wait_synced()
        return sched

    yield run
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


async def node_of(client: KubeClient, name: str, namespace: str = "default") -> str | None:
    return (await client.get(PODS, name, namespace=namespace))["spec"].get("nodeName")


async def test_binds_its_own_pods_and_leaves_others_alone(client: KubeClient,
                                                          start: Start) -> None:
    await client.create(NODES, node("n1"))
    sched = await start()
    await client.create(PODS, for_api(pod("mine")))
    await client.create(PODS, for_api(pod("theirs", scheduler="default-scheduler")))
    await client.create(PODS, for_api(pod("unnamed", scheduler="")))
    await sched.wait_scheduled(1, timeout=10)
    await sched.settle(timeout=10)
    assert await node_of(client, "mine") == "n1"
    assert await node_of(client, "theirs") is None
    assert await node_of(client, "unnamed") is None
    assert not sched.table.is_assumed(next(iter(sched.table.pods)))  # confirmed
    events = (await client.list(EVENTS, namespace="default")).items
    assert [e["message"] for e in events] == ["Successfully assigned default/mine to n1"]


async def test_unnamed_pods_when_asked(client: KubeClient, start: Start) -> None:
    await client.create(NODES, node("n1"))
    sched = await start(handle_unnamed=True)
    await client.create(PODS, for_api(pod("unnamed", scheduler="")))
    await sched.wait_scheduled(1, timeout=10)
    assert await node_of(client, "unnamed") == "n1"


async def test_unschedulable_pods_say_why_and_retry_when_a_node_comes(
        client: KubeClient, start: Start) -> None:
    await client.create(NODES, node("small", cpu="1"))
    sched = await start()
    await client.create(PODS, for_api(pod("big", cpu="2")))
    message = ("0/1 nodes are available: 1 Insufficient cpu. preemption: 0/1 nodes are "
               "available: 1 No preemption victims found for incoming pod.")

    async def reported() -> bool:
        cond = get_condition(await client.get(PODS, "big", namespace="default"), "PodScheduled")
        return cond is not None and cond["message"] == message

    await eventually(reported)
    cond = get_condition(await client.get(PODS, "big", namespace="default"), "PodScheduled")
    assert cond is not None and (cond["status"], cond["reason"]) == ("False", "Unschedulable")
    await sched.settle(timeout=10)
    events = [e for e in (await client.list(EVENTS, namespace="default")).items
              if e["reason"] == "FailedScheduling"]
    assert len(events) == 1 and events[0]["message"] == message and events[0]["type"] == "Warning"
    attempts = sched.attempts
    assert sched.queue.where(sched.pods_informer.get("big", namespace="default")
                             ["metadata"]["uid"]) == "unschedulable"
    await client.create(NODES, node("large", cpu="4"))  # the event that helps
    await sched.wait_scheduled(1, timeout=10)
    assert await node_of(client, "big") == "large"
    assert sched.attempts == attempts + 1  # no polling in between


async def test_a_refused_binding_is_forgotten_and_retried(client: KubeClient,
                                                          start: Start) -> None:
    class Flaky(PatchBinder):
        def __init__(self) -> None:
            super().__init__(client)
            self.refused = 0

        async def bind(self, p: PodInfo, node_name: str) -> None:
            if not self.refused:
                self.refused += 1
                raise Conflict("simulated")
            await super().bind(p, node_name)

    await client.create(NODES, node("n1", cpu="1"))
    binder = Flaky()
    sched = await start(binder=binder)
    await client.create(PODS, for_api(pod("p", cpu="1")))
    await sched.wait_scheduled(1, timeout=10)
    assert binder.refused == 1 and sched.bind_failures == 1
    assert await node_of(client, "p") == "n1"
    row = sched.table.row_of["n1"]
    assert sched.table.req_cpu[row] == 1000  # accounted once, not twice


async def test_deleted_pending_pods_are_dropped(client: KubeClient, start: Start) -> None:
    sched = await start()  # no nodes at all
    await client.create(PODS, for_api(pod("p")))
    await eventually(lambda: len(sched.queue) == 1)
    await client.delete(PODS, "p", namespace="default")
    await eventually(lambda: len(sched.queue) == 0)


async def test_gated_pods_wait_for_their_gates(client: KubeClient, start: Start) -> None:
    await client.create(NODES, node("n1"))
    sched = await start()
    await client.create(PODS, for_api(pod("g", gated=True)))
    await sched.settle(timeout=10)
    assert await node_of(client, "g") is None
    await client.patch(PODS, "g", {"spec": {"schedulingGates": None}}, namespace="default")
    await sched.wait_scheduled(1, timeout=10)
    assert await node_of(client, "g") == "n1"


async def test_invalid_pods_are_reported_not_retried(client: KubeClient, start: Start) -> None:
    await client.create(NODES, node("n1"))
    sched = await start()
    bad = for_api(pod("bad"))
    bad["spec"]["tolerations"] = [{"key": "a", "operator": "Sometimes"}]
    await client.create(PODS, bad)

    async def reported() -> bool:
        cond = get_condition(await client.get(PODS, "bad", namespace="default"), "PodScheduled")
        return cond is not None and cond["message"].startswith("invalid pod: spec.tolerations")

    await eventually(reported)
    assert len(sched.queue) == 0


async def test_existing_bound_pods_count(client: KubeClient, start: Start) -> None:
    await client.create(NODES, node("n1", cpu="2"))
    await client.create(NODES, node("n2", cpu="2"))
    await client.create(PODS, for_api(pod("old", cpu="2", node_name="n1")))
    sched = await start()
    await client.create(PODS, for_api(pod("new", cpu="1")))
    await sched.wait_scheduled(1, timeout=10)
    assert await node_of(client, "new") == "n2"


async def test_runs_under_a_manager(client: KubeClient) -> None:
    await client.create(NODES, node("n1"))
    mgr = Manager(name="scheduler", shutdown_timeout=1)
    sched = Scheduler.attach(mgr, client, initial_backoff=0.01)
    async with mgr:
        await client.create(PODS, for_api(pod("p")))
        await sched.wait_scheduled(1, timeout=10)
    assert await node_of(client, "p") == "n1"
    assert mgr.metrics.sample("scheduler_bindings_total") == 1
    assert mgr.metrics.sample("scheduler_pending_pods", {"queue": "active"}) == 0


async def test_a_pod_bound_by_someone_else_meanwhile_keeps_that_binding(
        client: KubeClient, start: Start) -> None:
    class Racing(PatchBinder):
        async def bind(self, p: PodInfo, node_name: str) -> None:
            # Another scheduler wins the race for this pod.
            await client.patch(PODS, p.name, {"spec": {"nodeName": "n2"}}, namespace="default")
            await super().bind(p, node_name)

    await client.create(NODES, node("n1", cpu="4"))
    await client.create(NODES, node("n2", cpu="1"))
    sched = await start(binder=Racing(client))
    await client.create(PODS, for_api(pod("p", cpu="1")))
    await eventually(lambda: sched.bind_failures == 1)
    await sched.settle(timeout=10)
    t = sched.table
    assert t.req_cpu[t.row_of["n1"]] == 0 and t.req_cpu[t.row_of["n2"]] == 1000
    assert await node_of(client, "p") == "n2"
    assert len(sched.queue) == 0  # nothing left to retry
