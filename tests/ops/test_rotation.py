"""Rotation: the planner's rules (pure), then a 30-node pool rotated in an embedded
region under three PinApps whose budgets are checked continuously, paused and resumed."""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from pincompute.kube.errors import NotFound
from pincompute.kube.resource import EVENTS, NAMESPACES, NODES, PODS
from pincompute.model.registry import NODEIMAGES, NODEPOOLS, PINAPPS, ROTATIONS
from pincompute.model.wellknown import (
    APP_UID_LABEL,
    NODE_DRAIN_ANNOTATION,
    NODE_IMAGE_LABEL,
    NODE_POOL_LABEL,
    ROTATION_ANNOTATION,
)
from pincompute.ops.rotation import BASE_ANNOTATION
from pincompute.ops.rotationplan import (
    NODE_STEPS,
    Candidate,
    Limits,
    NodeAction,
    NodePhase,
    Phase,
    Spread,
    may_drain,
    node_phase,
    pick,
    rotation_phase,
)
from pincompute.region import Region
from tests.waiting import eventually

from .conftest import FAST_NODES, pinapp, pod_ready


def c(name: str, pool: str = "a", zone: str = "z1", step: int = 0) -> Candidate:
    return Candidate(name, pool, zone, step)


def test_pick_follows_the_declared_order_and_every_limit() -> None:
    limits = Limits(parallelism=3, per_pool=2, per_zone=2, max_unavailable=3)
    waiting = [c("a1"), c("a2"), c("a3"), c("b1", pool="b", zone="z2"),
               c("x1", pool="x", step=1)]
    assert [p.name for p in pick(waiting, [], limits=limits)] == ["a1", "a2", "b1"]
    # step 1 waits for step 0, even with room
    assert pick([c("x1", pool="x", step=1)], [c("a3")], limits=limits) == []
    assert [p.name for p in pick([c("x1", pool="x", step=1)], [], limits=limits)] == ["x1"]
    # per zone: z1 is full with two in progress
    assert pick([c("a3"), c("b1", pool="b", zone="z1")], [c("a1"), c("a2")],
                limits=limits) == []
    assert [p.name for p in pick([c("a3"), c("b1", pool="b", zone="z2")], [c("a1"), c("a2")],
                                 limits=limits)] == ["b1"]
    # unavailable nodes count against maxUnavailable
    assert pick(waiting, [c("a1")], limits=limits, not_ready=2) == []


def test_an_application_aware_pick_keeps_each_app_within_its_budget() -> None:
    limits = Limits(parallelism=3, per_pool=3, per_zone=3, max_unavailable=3)
    apps = {"n1": {"x": 2}, "n2": {"x": 2}, "n3": {"y": 1}, "n4": {"x": 1, "y": 1}}
    room = {"x": 3, "y": 5}

    def spread(**load: int) -> Spread:
        return Spread(apps_of=lambda n: apps[n], room=room.__getitem__, load=Counter(load))

    waiting = [c(n) for n in apps]
    # By name n1..n3 would put four of x's pods in progress, one over what it lets go.
    assert [p.name for p in pick(waiting, [], limits=limits, spread=spread())] == [
        "n1", "n3", "n4"]
    # One of x's pods is in progress already: n1 still fits, n2 and n4 do not.
    assert [p.name for p in pick(waiting, [c("busy")], limits=limits, spread=spread(x=1))] == [
        "n1", "n3"]
    # An app with nothing in progress may always take one node (the rotation goes on),
    # even one holding more of its pods than it lets go at once.
    room["x"] = 1
    assert [p.name for p in pick(waiting, [], limits=limits, spread=spread())] == ["n1", "n3"]
    assert pick(waiting, [c("a", zone="z9")] * 3, limits=limits, spread=spread()) == []


def test_node_and_rotation_tables() -> None:
    assert {NODE_STEPS[p] for p in NodePhase} == set(NodeAction)
    assert node_phase(leaving=False, capacity_ready=False, workload_pods=3) is \
        NodePhase.SURGING
    assert node_phase(leaving=False, capacity_ready=True, workload_pods=3) is \
        NodePhase.DRAINING
    assert node_phase(leaving=False, capacity_ready=False, workload_pods=0) is \
        NodePhase.DRAINED
    assert node_phase(leaving=True, capacity_ready=True, workload_pods=3) is NodePhase.LEAVING
    # base 10, three in progress: desired 13; 12 registered, one of them starting
    up = [may_drain(rank=r, base=10, desired=13, staying=12, starting=1) for r in range(3)]
    assert up == [True, False, False]  # one surge node is Ready: the first picked drains
    assert may_drain(rank=2, base=10, desired=12, staying=12, starting=0)  # at maxSize
    assert rotation_phase(abort=False, paused=True, remaining=5, in_progress=2) is \
        Phase.PAUSING
    assert rotation_phase(abort=False, paused=True, remaining=5, in_progress=0) is Phase.PAUSED
    assert rotation_phase(abort=False, paused=False, remaining=0, in_progress=0) is \
        Phase.SUCCEEDED
    assert rotation_phase(abort=True, paused=False, remaining=3, in_progress=1) is \
        Phase.ABORTED


BUDGETS = {"web": (16, {"maxUnavailable": 1}), "api": (12, {"minAvailable": "75%"}),
           "batch": (10, {"maxUnavailable": "20%"})}
REQUIRED = {"web": 15, "api": 9, "batch": 8}
NS = "demo"


async def pool_nodes(client: Any) -> list[dict[str, Any]]:
    return (await client.list(NODES, label_selector=f"{NODE_POOL_LABEL}=general")).items


async def _namespace(client: Any) -> bool:
    try:
        await client.get(NAMESPACES, NS)
    except NotFound:
        return False
    return True


@pytest.mark.slow
async def test_a_30_node_pool_rotates_within_every_budget_pauses_and_resumes(
        region_dir: Path) -> None:
    region = await Region.open(region_dir, zones=1, nodes_per_cluster=30, runtime="sim",
                               lease_duration=3, node_options=FAST_NODES,
                               controller_options={"rotations": {"poll": 0.1}})
    await region.start()
    lowest = {app: 10**9 for app in BUDGETS}
    blocked: set[str] = set()
    sizes: set[int] = set()  # the pool's desiredSize
    staying: set[int] = set()  # its nodes not leaving
    watching = True
    try:
        host, member = region.host.client, region.members[0]
        client = member.client
        await region.ensure_project(NS)
        await eventually(lambda: _namespace(client), what="the project in the member")
        await client.patch(NODEPOOLS, "general", {"spec": {"maxSize": 40}})  # room to surge
        await host.create(NODEIMAGES, {"metadata": {"name": "general-2"},
                                       "spec": {"version": "2", "labels": {"gen": "2"}}})
        for app, (replicas, budget) in BUDGETS.items():
            await client.create(PINAPPS, pinapp(app, replicas=replicas, budget=budget,
                                                namespace=NS), namespace=NS)

        async def available(app: str) -> int:
            obj = await client.get(PINAPPS, app, namespace=NS)
            uid = obj["metadata"]["uid"]
            items = (await client.list(PODS, namespace=NS,
                                       label_selector=f"{APP_UID_LABEL}={uid}")).items
            return sum(1 for p in items if pod_ready(p))

        async def all_up() -> bool:
            return all([await available(a) == n for a, (n, _) in BUDGETS.items()])

        await eventually(all_up, timeout=30, what="the apps running")

        async def watch() -> None:
            while watching:
                for app in BUDGETS:
                    lowest[app] = min(lowest[app], await available(app))
                sizes.add((await client.get(NODEPOOLS, "general"))["spec"]["desiredSize"])
                staying.add(sum(1 for n in await pool_nodes(client)
                                if NODE_DRAIN_ANNOTATION not in (n["metadata"].get(
                                    "annotations") or {})))
                with contextlib.suppress(NotFound):
                    rot = await host.get(ROTATIONS, "gen-2")
                    blocked.update((rot.get("status") or {}).get("blockedBy") or ())
                await asyncio.sleep(0.02)

        watcher = asyncio.create_task(watch())
        await host.create(ROTATIONS, {"metadata": {"name": "gen-2"}, "spec": {
            "cluster": member.name, "targetImage": "general-2", "parallelism": 3}})

        async def status() -> dict[str, Any]:
            return (await host.get(ROTATIONS, "gen-2")).get("status") or {}

        async def replaced(n: int) -> dict[str, Any] | None:
            s = await status()
            return s if s.get("replacedNodes", 0) >= n else None

        await eventually(lambda: replaced(6), timeout=40, what="6 nodes replaced")
        await host.patch(ROTATIONS, "gen-2", {"spec": {"paused": True}})
        waiting = {n["metadata"]["name"] for n in await pool_nodes(client)
                   if n["metadata"]["labels"].get(NODE_IMAGE_LABEL) != "general-2"
                   and not ({ROTATION_ANNOTATION, NODE_DRAIN_ANNOTATION}
                            & set(n["metadata"].get("annotations") or {}))}

        async def paused() -> dict[str, Any] | None:
            s = await status()
            return s if s.get("phase") == "Paused" else None

        stopped = await eventually(paused, timeout=30, what="the rotation paused")
        # the nodes in progress finish; of those waiting when paused, at most one per
        # parallel slot was taken (by a pass already under way)
        assert not stopped.get("inProgress")
        still = {n["metadata"]["name"] for n in await pool_nodes(client)}
        assert len(waiting - still) <= 3, waiting - still
        assert stopped["replacedNodes"] < 30
        await asyncio.sleep(0.5)
        assert (await status())["replacedNodes"] == stopped["replacedNodes"]
        await host.patch(ROTATIONS, "gen-2", {"spec": {"paused": False}})

        async def succeeded() -> dict[str, Any] | None:
            s = await status()
            return s if s.get("phase") == "Succeeded" else None

        done = await eventually(succeeded, timeout=90, what="the rotation finished")
        assert done["pools"] == [{"pool": "general", "done": 30, "total": 30}]
        assert done["totalNodes"] == done["replacedNodes"] == 30
        async def thirty() -> list[dict[str, Any]] | None:
            # a surge node started in the instant a released node was already marked and
            # the surge not yet given back goes again: 30 in the end
            nodes = await pool_nodes(client)
            return nodes if len(nodes) == 30 else None

        nodes = await eventually(thirty, timeout=20, what="30 nodes")
        assert {n["metadata"]["labels"][NODE_IMAGE_LABEL] for n in nodes} == {"general-2"}
        assert {n["metadata"]["labels"].get("gen") for n in nodes} == {"2"}
        assert not any(ROTATION_ANNOTATION in (n["metadata"].get("annotations") or {})
                       for n in nodes)

        async def pool_back() -> bool:
            pool = await client.get(NODEPOOLS, "general")
            return pool["spec"]["desiredSize"] == 30 and BASE_ANNOTATION not in (
                pool["metadata"].get("annotations") or {})

        await eventually(pool_back, what="the pool back at its size")
        await eventually(all_up, timeout=20, what="the apps whole again")
        watching = False
        await watcher
        for app, need in REQUIRED.items():
            assert lowest[app] >= need, (app, lowest)
        # Picks keep each app within its budget, so a drain rarely waits on one; when one
        # does, status names it (the next test makes one wait for sure).
        # Surged, one node per node in progress, without moving the pool's size.
        assert sizes == {30}
        assert 30 < max(staying) <= 33
        assert blocked <= {f"{NS}/{a}" for a in BUDGETS}
        reasons = {e["reason"] for e in (await host.list(EVENTS)).items}
        assert {"RotationRunning", "RotationPaused", "RotationSucceeded"} <= reasons
    finally:
        watching = False
        await region.close()


@pytest.mark.slow
async def test_a_drain_a_budget_forbids_waits_names_the_app_and_abort_hands_back(
        region_dir: Path) -> None:
    region = await Region.open(region_dir, zones=1, nodes_per_cluster=4, runtime="sim",
                               lease_duration=3, node_options=FAST_NODES,
                               controller_options={"rotations": {"poll": 0.1}})
    await region.start()
    try:
        host, member = region.host.client, region.members[0]
        client = member.client
        await region.ensure_project(NS)
        await eventually(lambda: _namespace(client), what="the project in the member")
        await client.patch(NODEPOOLS, "general", {"spec": {"maxSize": 8}})
        await host.create(NODEIMAGES, {"metadata": {"name": "general-2"},
                                       "spec": {"version": "2"}})
        # every replica must stay: no eviction is ever allowed
        await client.create(PINAPPS, pinapp("pinned", replicas=4,
                                            budget={"minAvailable": "100%"}, namespace=NS),
                            namespace=NS)

        async def up() -> bool:
            obj = await client.get(PINAPPS, "pinned", namespace=NS)
            return (obj.get("status") or {}).get("availableReplicas") == 4

        await eventually(up, timeout=20, what="the pinned app")
        await host.create(ROTATIONS, {"metadata": {"name": "stuck"}, "spec": {
            "cluster": member.name, "targetImage": "general-2", "parallelism": 2}})

        async def blocked() -> dict[str, Any] | None:
            s = (await host.get(ROTATIONS, "stuck")).get("status") or {}
            return s if s.get("blockedBy") else None

        s = await eventually(blocked, timeout=20, what="the drain blocked by the budget")
        # Application-aware: the app lets none of its pods go, so of its nodes one at a time
        # is in progress (parallelism 2 would allow two).
        assert s["blockedBy"] == [f"{NS}/pinned"] and len(s["inProgress"]) == 1
        assert "disruption budgets of demo/pinned" in s["message"]
        await host.patch(ROTATIONS, "stuck", {"spec": {"abort": True}})

        async def aborted() -> dict[str, Any] | None:
            s = (await host.get(ROTATIONS, "stuck")).get("status") or {}
            return s if s.get("phase") == "Aborted" else None

        await eventually(aborted, timeout=10, what="the rotation aborted")

        async def handed_back() -> bool:
            nodes = await pool_nodes(client)
            pool = await client.get(NODEPOOLS, "general")
            return all(not n["spec"].get("unschedulable") and ROTATION_ANNOTATION not in (
                n["metadata"].get("annotations") or {}) for n in nodes) and \
                pool["spec"]["desiredSize"] == 4 and BASE_ANNOTATION not in (
                    pool["metadata"].get("annotations") or {})

        await eventually(handed_back, timeout=20, what="nodes handed back, pool at its size")
        assert await up()  # nothing was evicted
    finally:
        await region.close()
