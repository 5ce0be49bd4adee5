"""Preemption end to end: victims chosen, evicted gracefully, room held, no thrash."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from pincompute.kube.objects import get_condition
from pincompute.kube.protocol import KubeClient
from pincompute.kube.resource import NODES, PODS
from pincompute.runtime import SharedInformer
from pincompute.scheduler import Scheduler
from tests.waiting import recorded

from .support import FakeKubelet, eventually, for_api, node, pod


@pytest.fixture
async def cluster(client: KubeClient) -> AsyncIterator[tuple[Scheduler, FakeKubelet]]:
    for name in ("n1", "n2"):
        await client.create(NODES, node(name, cpu="4"))
    kubelet = FakeKubelet(client)
    kubelet.start()
    sched = Scheduler(client, initial_backoff=0.01, max_backoff=0.05)
    task = asyncio.ensure_future(sched.run())
    await sched.pods_informer.wait_synced()
    yield sched, kubelet
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    await kubelet.stop()


async def bound_to(client: KubeClient, name: str) -> str | None:
    return (await client.get(PODS, name, namespace="default"))["spec"].get("nodeName")


async def test_reserved_pod_preempts_preemptible_pods_gracefully(
        client: KubeClient, cluster: tuple[Scheduler, FakeKubelet]) -> None:
    sched, kubelet = cluster
    for i in range(8):
        await client.create(PODS, for_api(pod(f"spot-{i}", cpu="1", tier="preemptible",
                                              grace=5)))
    await sched.wait_scheduled(8, timeout=10)
    kubelet.hold = True  # victims stay terminating until released
    await client.create(PODS, for_api(pod("critical", cpu="3", tier="reserved")))

    async def nominated() -> bool:
        p = await client.get(PODS, "critical", namespace="default")
        return bool((p.get("status") or {}).get("nominatedNodeName"))

    await eventually(nominated)
    critical = await client.get(PODS, "critical", namespace="default")
    target = critical["status"]["nominatedNodeName"]
    pods = (await client.list(PODS, namespace="default")).items
    victims = [p for p in pods if p["metadata"].get("deletionTimestamp")]
    assert len(victims) == 3  # the minimal set: 3 x 1 cpu
    assert {v["spec"]["nodeName"] for v in victims} == {target}
    for v in victims:
        cond = get_condition(v, "DisruptionTarget")
        assert cond is not None and cond["reason"] == "PreemptionByScheduler"
        assert v["metadata"]["deletionGracePeriodSeconds"] == 5  # graceful
    assert await bound_to(client, "critical") is None  # waits for the victims
    kubelet.release()
    await eventually(lambda: sched.scheduled == 9)
    assert await bound_to(client, "critical") == target
    await recorded(client, reason="Preempted")
    assert sched.evictions == 3


async def test_recreated_victims_do_not_steal_the_room(
        client: KubeClient, cluster: tuple[Scheduler, FakeKubelet]) -> None:
    """The preempt / re-admit thrash: a controller recreates every evicted pod at once."""
    sched, _ = cluster
    for i in range(8):
        await client.create(PODS, for_api(pod(f"spot-{i}", cpu="1", tier="preemptible")))
    await sched.wait_scheduled(8, timeout=10)
    recreated: list[str] = []
    tasks: set[asyncio.Future[Any]] = set()

    def replace(obj: dict) -> None:
        name = obj["metadata"]["name"]
        if name.startswith("spot-"):
            new = f"again-{len(recreated)}"
            recreated.append(new)
            tasks.add(asyncio.ensure_future(client.create(
                PODS, for_api(pod(new, cpu="1", tier="preemptible")))))

    controller = SharedInformer(client, PODS)
    controller.add_event_handler(on_delete=replace)
    controller.start()
    await controller.wait_synced()
    try:
        await client.create(PODS, for_api(pod("critical", cpu="2", tier="reserved")))
        await eventually(lambda: sched.scheduled == 9)
        await eventually(lambda: len(recreated) == 2)
        await asyncio.gather(*tasks)
        await sched.settle(timeout=10)
        assert await bound_to(client, "critical") is not None
        assert sched.evictions == 2  # one preemption, never a second round
        for name in recreated:
            assert await bound_to(client, name) is None
            cond = get_condition(await client.get(PODS, name, namespace="default"),
                                 "PodScheduled")
            assert cond is not None and cond["message"].startswith(
                "0/2 nodes are available: 2 Insufficient cpu. preemption:")
    finally:
        await controller.stop()


async def test_on_demand_pods_never_evict_reserved_ones(
        client: KubeClient, cluster: tuple[Scheduler, FakeKubelet]) -> None:
    sched, _ = cluster
    for i in range(8):
        await client.create(PODS, for_api(pod(f"r-{i}", cpu="1", tier="reserved")))
    await sched.wait_scheduled(8, timeout=10)
    await client.create(PODS, for_api(pod("od", cpu="1", tier="ondemand", priority=9_999_999)))
    await eventually(lambda: sched.unschedulable_attempts >= 1)
    await sched.settle(timeout=10)
    assert sched.evictions == 0
    assert await bound_to(client, "od") is None
