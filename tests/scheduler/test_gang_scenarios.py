"""Gang scheduling end to end: all or nothing, timeouts release, no deadlock between gangs."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from pincompute.kube.objects import get_condition
from pincompute.kube.protocol import KubeClient
from pincompute.kube.resource import NODES, PODS
from pincompute.scheduler import Scheduler

from .support import eventually, for_api, gang, node, pod

Start = Callable[..., Any]


@pytest.fixture
async def start(client: KubeClient) -> AsyncIterator[Start]:
    tasks: list[asyncio.Task[None]] = []

    async def run(*nodes: dict, **options: Any) -> Scheduler:
        for n in nodes:
            await client.create(NODES, n)
        options.setdefault("initial_backoff", 0.01)
        options.setdefault("max_backoff", 0.05)
        sched = Scheduler(client, **options)
        tasks.append(asyncio.ensure_future(sched.run()))
        await sched.pods_informer.wait_synced()
        return sched

    yield run
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


async def members(client: KubeClient, group: str, n: int, min_member: int, *,
                  cpu: str = "1", timeout: float | None = None,
                  gated: tuple[int, ...] = ()) -> list[str]:
    g = gang(group, min_member, timeout)
    names = [f"{group}-{i}" for i in range(n)]
    for i, name in enumerate(names):
        await client.create(PODS, for_api(pod(name, cpu=cpu, gated=i in gated, **g)))
    return names


async def bound(client: KubeClient, names: list[str]) -> list[str]:
    out = []
    for name in names:
        p = await client.get(PODS, name, namespace="default")
        if p["spec"].get("nodeName"):
            out.append(name)
    return out


async def message(client: KubeClient, name: str) -> str:
    cond = get_condition(await client.get(PODS, name, namespace="default"), "PodScheduled")
    return cond["message"] if cond else ""


def holds(sched: Scheduler, group: str) -> int:
    return len(sched.table.groups.get(f"default/{group}", ()))


async def test_a_gang_binds_only_once_every_member_is_placed(client: KubeClient,
                                                             start: Start) -> None:
    sched = await start(node("a"), node("b"))
    names = await members(client, "train", 4, 4, gated=(3,), timeout=60)
    await eventually(lambda: len(sched.framework.waiting) == 3)
    assert await bound(client, names) == []  # reserved, waiting, not bound
    await client.patch(PODS, names[3], {"spec": {"schedulingGates": None}},
                       namespace="default")
    await sched.wait_scheduled(4, timeout=10)
    assert sorted(await bound(client, names)) == names


async def test_a_gang_that_does_not_fit_releases_everything(client: KubeClient,
                                                           start: Start) -> None:
    sched = await start(node("a", cpu="2"), node("b", cpu="2"))
    names = await members(client, "big", 6, 6)
    await eventually(lambda: sched.queue.counts()["unschedulable"] == 6)
    await sched.settle(timeout=10)
    assert await bound(client, names) == []
    assert holds(sched, "big") == 0
    assert sched.table.req_cpu.sum() == 0
    msgs = {await message(client, n) for n in names}
    assert ("0/2 nodes are available: 2 Insufficient cpu. preemption: not eligible: members "
            "of a pod group do not preempt.") in msgs
    assert 'pod group "default/big" was rejected: member "big-4" is unschedulable' in msgs
    # The room is really free: an ordinary pod takes it.
    await client.create(PODS, for_api(pod("solo", cpu="2")))
    await sched.wait_scheduled(1, timeout=10)


async def test_a_gang_waiting_too_long_times_out_and_releases(client: KubeClient,
                                                             start: Start) -> None:
    sched = await start(node("a", cpu="4"))
    names = await members(client, "slow", 3, 3, timeout=0.2, gated=(2,))
    await eventually(lambda: sched.framework.waiting and len(sched.framework.waiting) == 2)
    assert holds(sched, "slow") == 2
    await eventually(lambda: holds(sched, "slow") == 0, timeout=10)
    await sched.settle(timeout=10)
    assert await bound(client, names) == []
    # The first member's timer fires first; releasing it releases its sibling.
    assert await message(client, names[0]) == (
        'pod group "default/slow": 2 of minMember 3 members could be placed within 0.2s')
    assert await message(client, names[1]) == (
        'pod group "default/slow" was rejected: member "slow-0" lost its reservation')


async def test_two_gangs_competing_for_room_do_not_deadlock(client: KubeClient,
                                                            start: Start) -> None:
    sched = await start(node("a", cpu="3"), node("b", cpu="2"))
    g1, g2 = gang("one", 4), gang("two", 4)
    names1 = [f"one-{i}" for i in range(4)]
    names2 = [f"two-{i}" for i in range(4)]
    for a, b in zip(names1, names2, strict=True):  # arrivals interleave
        await client.create(PODS, for_api(pod(a, cpu="1", **g1)))
        await client.create(PODS, for_api(pod(b, cpu="1", **g2)))
    await sched.wait_scheduled(4, timeout=10)
    await sched.settle(timeout=10)
    first, second = await bound(client, names1), await bound(client, names2)
    assert sorted((len(first), len(second))) == [0, 4]  # one gang whole, the other none
    winners, losers = (names1, names2) if first else (names2, names1)
    assert holds(sched, losers[0].split("-")[0]) == 0
    for name in winners:
        await client.delete(PODS, name, namespace="default", grace_period_seconds=0)
    await sched.wait_scheduled(8, timeout=10)  # room freed: the other gang completes
    assert sorted(await bound(client, losers)) == losers


async def test_too_few_members_wait_for_the_rest_to_be_created(client: KubeClient,
                                                              start: Start) -> None:
    sched = await start(node("a"))
    names = await members(client, "late", 2, 3)
    await eventually(lambda: sched.unschedulable_attempts >= 2)
    assert await message(client, names[0]) == (
        '0/1 nodes are available: pod group "default/late" has 2 pod(s), fewer than '
        "minMember 3.")
    await client.create(PODS, for_api(pod("late-2", **gang("late", 3))))
    await sched.wait_scheduled(3, timeout=10)
