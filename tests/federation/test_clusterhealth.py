"""Member cluster health: conditions, the per-tier resource summary, and health taints.

Embedded member clusters reached through the live cluster set; nodes and pods are
written into the members as their node agents and scheduler would.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import pytest

from pincompute.federation.clusterhealth import add_cluster_health_controller, taints_for
from pincompute.federation.clusterset import ClusterSet, add_cluster_set
from pincompute.federation.member import list_namespaces
from pincompute.kube import objects
from pincompute.kube.backends.embedded import EmbeddedStore
from pincompute.kube.protocol import KubeClient
from pincompute.kube.resource import NAMESPACES, NODES, PODS
from pincompute.model import registry
from pincompute.model.registry import MEMBERCLUSTERS
from pincompute.model.wellknown import (
    CLUSTER_NOT_READY_TAINT,
    CLUSTER_UNREACHABLE_TAINT,
    TIER_LABEL,
)
from pincompute.runtime.manager import Manager

GRACE = 1.5
MEMBERS = ("zone-a-1", "zone-b-1")


@dataclass
class Region:
    host: KubeClient
    members: dict[str, KubeClient]
    stores: dict[str, EmbeddedStore]
    clusters: ClusterSet
    down: set[int]
    """ids of member clients whose API stops answering (an embedded store always does)."""


@pytest.fixture
async def region() -> AsyncIterator[Region]:
    host_store = await EmbeddedStore.open(path=None)
    registry.install(host_store, resources=registry.HOST_RESOURCES)
    host = host_store.client()
    members: dict[str, KubeClient] = {}
    stores: dict[str, EmbeddedStore] = {}
    for name in MEMBERS:
        store = stores[name] = await EmbeddedStore.open(path=None)
        registry.install(store, resources=registry.MEMBER_RESOURCES)
        members[name] = store.client()
        await host.create(MEMBERCLUSTERS, {
            "metadata": {"name": name},
            "spec": {"zone": name.rsplit("-", 1)[0], "connection": {"type": "Embedded"},
                     "healthCheck": {"periodSeconds": 1, "timeoutSeconds": 1,
                                     "failureThreshold": 1}}})
    manager = Manager(name="test", shutdown_timeout=5.0)
    down: set[int] = set()

    async def probe(client: KubeClient) -> None:
        if id(client) in down:
            raise ConnectionRefusedError("connection refused")
        await list_namespaces(client)

    clusters = add_cluster_set(manager, host=host, embedded=members.get, connect_timeout=5.0,
                               retry_base=0.05, retry_max=0.5, probe=probe)
    add_cluster_health_controller(manager, host=host, clusters=clusters, grace=GRACE)
    task = asyncio.create_task(manager.run())
    await manager.wait_started()
    await clusters.wait_synced()
    yield Region(host, members, stores, clusters, down)
    manager.stop()
    await task
    for store in (host_store, *stores.values()):
        await store.close()


async def add_node(client: KubeClient, name: str, *, tier: str = "ondemand", cpu: str = "8",
                   memory: str = "32Gi", ready: bool = True) -> None:
    node = await client.create(NODES, {"metadata": {"name": name,
                                                    "labels": {TIER_LABEL: tier}}})
    await set_ready(client, name, ready, node=node, cpu=cpu, memory=memory)


async def set_ready(client: KubeClient, name: str, ready: bool, *,
                    node: dict[str, Any] | None = None, cpu: str | None = None,
                    memory: str | None = None) -> None:
    node = node or await client.get(NODES, name)
    status = node.setdefault("status", {})
    if cpu is not None:
        status["allocatable"] = {"cpu": cpu, "memory": memory, "pods": "110"}
    status["conditions"] = [{"type": "Ready", "status": "True" if ready else "False"}]
    await client.update_status(NODES, node)


async def add_pod(client: KubeClient, name: str, *, cpu: str, node: str | None = None,
                  tier: str = "ondemand") -> None:
    spec: dict[str, Any] = {"containers": [{"name": "c", "image": "i", "resources": {
        "requests": {"cpu": cpu, "memory": "1Gi"}}}]}
    if node is not None:
        spec["nodeName"] = node
    await client.create(PODS, {"metadata": {"name": name, "namespace": "default",
                                            "labels": {TIER_LABEL: tier}}, "spec": spec})


async def eventually(host: KubeClient, name: str, check: Callable[[dict[str, Any]], bool],
                     timeout: float = 20.0) -> dict[str, Any]:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        mc = await host.get(MEMBERCLUSTERS, name)
        if check(mc):
            return mc
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out; last: spec={mc.get('spec')} "
                                 f"status={mc.get('status')}")
        await asyncio.sleep(0.05)


def taint_keys(mc: dict[str, Any]) -> set[tuple[str, str]]:
    return {(t["key"], t["effect"]) for t in mc["spec"].get("taints") or ()}


def cond(mc: dict[str, Any], type_: str) -> str | None:
    c = objects.get_condition(mc, type_)
    return None if c is None else c["status"]


async def test_resource_summary_per_tier(region: Region) -> None:
    member = region.members["zone-a-1"]
    await member.create(NAMESPACES, {"metadata": {"name": "default"}})
    await add_node(member, "r1", tier="reserved", cpu="16")
    await add_node(member, "o1", tier="ondemand", cpu="8")
    await add_node(member, "o2", tier="ondemand", cpu="4")
    await add_pod(member, "bound", cpu="3", node="o1")
    await add_pod(member, "pending", cpu="2", tier="reserved")
    mc = await eventually(region.host, "zone-a-1", lambda mc: (
        ((mc.get("status") or {}).get("tiers") or {}).get("reserved", {}).get(
            "allocating", {}).get("cpu") == "2"))
    status = mc["status"]
    assert status["tiers"]["ondemand"]["allocatable"]["cpu"] == "12"
    assert status["tiers"]["ondemand"]["allocated"]["cpu"] == "3"
    assert status["tiers"]["ondemand"]["largestNode"]["cpu"] == "8"
    assert status["tiers"]["reserved"]["allocatable"]["cpu"] == "16"
    assert "preemptible" not in status["tiers"]  # no pool of that tier here
    assert status["allocatable"]["cpu"] == "28" and status["allocated"]["cpu"] == "3"
    assert status["allocating"]["cpu"] == "2" and status["available"]["cpu"] == "25"
    assert status["nodes"] == {"total": 3, "ready": 3}
    assert status["health"] == "Healthy"
    assert cond(mc, "Ready") == "True" and cond(mc, "Reachable") == "True"
    # The pod is bound: it moves from allocating to allocated.
    pod = await member.get(PODS, "pending", namespace="default")
    pod["spec"]["nodeName"] = "r1"
    await member.update(PODS, pod)
    mc = await eventually(region.host, "zone-a-1", lambda mc: (
        mc["status"]["tiers"]["reserved"]["allocated"]["cpu"] == "2"))
    assert mc["status"]["tiers"]["reserved"]["allocating"]["cpu"] == "0"


async def test_nodes_not_ready_taint_no_schedule_then_no_execute_and_recover(
        region: Region) -> None:
    member = region.members["zone-b-1"]
    for i in range(4):
        await add_node(member, f"n{i}")
    await eventually(region.host, "zone-b-1", lambda mc: cond(mc, "Ready") == "True"
                     and mc["status"]["nodes"]["ready"] == 4)
    # One node down: degraded, still ready and untainted.
    await set_ready(member, "n0", False)
    mc = await eventually(region.host, "zone-b-1",
                          lambda mc: mc["status"].get("health") == "Degraded")
    assert cond(mc, "Ready") == "True" and not taint_keys(mc)
    # Three of four down: not ready → NoSchedule at once, NoExecute only after the grace.
    for i in (1, 2):
        await set_ready(member, f"n{i}", False)
    start = asyncio.get_running_loop().time()
    mc = await eventually(region.host, "zone-b-1", lambda mc: bool(taint_keys(mc)))
    assert taint_keys(mc) == {(CLUSTER_NOT_READY_TAINT, "NoSchedule")}
    assert cond(mc, "Ready") == "False" and mc["status"]["health"] == "Unhealthy"
    assert objects.get_condition(mc, "Ready")["reason"] == "NodesNotReady"
    mc = await eventually(region.host, "zone-b-1", lambda mc: (
        CLUSTER_NOT_READY_TAINT, "NoExecute") in taint_keys(mc))
    assert asyncio.get_running_loop().time() - start >= GRACE - 1.0  # second-granular times
    # Other taints on the cluster are left alone.
    mc["spec"]["taints"].append({"key": "team", "value": "ml", "effect": "NoSchedule"})
    await region.host.update(MEMBERCLUSTERS, mc)
    # Recovery removes both of ours.
    for i in range(3):
        await set_ready(member, f"n{i}", True)
    mc = await eventually(region.host, "zone-b-1",
                          lambda mc: taint_keys(mc) == {("team", "NoSchedule")})
    assert cond(mc, "Ready") == "True" and mc["status"]["health"] == "Healthy"


async def test_an_unreachable_member_is_tainted_unreachable(region: Region) -> None:
    await eventually(region.host, "zone-a-1", lambda mc: cond(mc, "Reachable") == "True")
    region.down.add(id(region.members["zone-a-1"]))
    mc = await eventually(region.host, "zone-a-1", lambda mc: cond(mc, "Reachable") == "False")
    mc = await eventually(region.host, "zone-a-1", lambda mc: (
        CLUSTER_UNREACHABLE_TAINT, "NoSchedule") in taint_keys(mc))
    assert cond(mc, "Ready") == "False"
    assert objects.get_condition(mc, "Ready")["reason"] == "Unreachable"
    assert "connection refused" in objects.get_condition(mc, "Reachable")["message"]
    region.down.clear()
    mc = await eventually(region.host, "zone-a-1", lambda mc: not taint_keys(mc))
    assert cond(mc, "Reachable") == "True"


def test_taints_table() -> None:
    now = 1_000_000.0
    stamp = "1970-01-12T13:46:40Z"  # = now
    ok = [{"type": "Reachable", "status": "True"}, {"type": "Ready", "status": "True"}]
    assert taints_for(ok, now=now, grace=60) == []
    down = [{"type": "Reachable", "status": "True"},
            {"type": "Ready", "status": "False", "lastTransitionTime": stamp}]
    assert taints_for(down, now=now + 59, grace=60) == [
        {"key": CLUSTER_NOT_READY_TAINT, "effect": "NoSchedule"}]
    assert taints_for(down, now=now + 60, grace=60) == [
        {"key": CLUSTER_NOT_READY_TAINT, "effect": "NoSchedule"},
        {"key": CLUSTER_NOT_READY_TAINT, "effect": "NoExecute"}]
    gone = [{"type": "Reachable", "status": "False", "lastTransitionTime": stamp},
            {"type": "Ready", "status": "False", "lastTransitionTime": stamp}]
    assert taints_for(gone, now=now, grace=60) == [
        {"key": CLUSTER_UNREACHABLE_TAINT, "effect": "NoSchedule"}]
