"""The pool autoscaler and the buffer on an embedded member cluster (the whole member
table, sim nodes): pools grow with the shape that fits waiting pods, bounded per
minute, give idle nodes back, reserved pools keep their size; placeholder pods are
displaced at once by real pods and replaced."""

from __future__ import annotations

from typing import Any

import pytest

from pincompute.kube.resource import PODS
from pincompute.model.registry import NODEPOOLS
from pincompute.model.wellknown import SYSTEM_NAMESPACE
from pincompute.ops.buffer import BUFFER_LABEL
from pincompute.ops.shapes import Shape, chunks, nodes_for
from tests.waiting import eventually

from .conftest import Member, MemberFactory, pod_ready, pool

pytestmark = pytest.mark.slow


def test_binpacking_and_buffer_chunks() -> None:
    node = Shape(2000, 4 << 30, 0, 110)
    assert nodes_for([Shape(1500, 1 << 30)] * 3, node) == 3
    assert nodes_for([Shape(1000, 1 << 30)] * 4, node) == 2
    assert nodes_for([Shape(500, 1 << 30), Shape(1500, 1 << 30)], node) == 1
    assert nodes_for([Shape(5000, 1 << 30)], node) == 0  # fits no node of this shape
    assert chunks(Shape(3000, 1 << 30), node) == (2, Shape(1500, 1 << 29, 0, 1))


def small(name: str, **spec: Any) -> dict[str, Any]:
    body = pool(name, size=1, minSize=1, maxSize=6, **spec)
    body["spec"]["capacity"] = {"cpu": "2", "memory": "4Gi", "pods": "110"}
    return body


def bare(name: str, cpu: str, **spec: Any) -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": "default"}, "spec": {
        "schedulerName": "pincompute", "terminationGracePeriodSeconds": 0,
        "containers": [{"name": "main", "image": "app",
                        "resources": {"requests": {"cpu": cpu, "memory": "128Mi"}}}],
        **spec}}


async def size_of(member: Member, name: str) -> int:
    return int((await member.client.get(NODEPOOLS, name))["spec"].get("desiredSize") or 0)


async def running(member: Member, names: list[str]) -> bool:
    pods = {p["metadata"]["name"]: p for p in
            (await member.client.list(PODS, namespace="default")).items}
    return all(n in pods and pod_ready(pods[n]) for n in names)


async def test_pools_grow_with_the_fitting_shape_bounded_and_shrink_when_idle(
        member_cluster: MemberFactory) -> None:
    member: Member = await member_cluster(options={"pool-autoscaler": {
        "interval": 0.2, "scale_up_per_minute": 2, "scale_up_window": 2.0,
        "scale_down_delay": 1.5}})
    c = member.client
    await c.create(NODEPOOLS, small("small"))
    big = pool("large", size=0, minSize=0, maxSize=3,
               taints=[{"key": "big", "effect": "NoSchedule"}])
    big["spec"]["capacity"] = {"cpu": "8", "memory": "16Gi", "pods": "110"}
    await c.create(NODEPOOLS, big)
    fixed = pool("fixed", size=1, minSize=1, maxSize=5, tier="reserved",
                 taints=[{"key": "dedicated", "effect": "NoSchedule"}])
    await c.create(NODEPOOLS, fixed)

    async def ready(name: str, n: int) -> bool:
        return len(await member.ready_nodes(name)) == n

    await eventually(lambda: ready("small", 1), timeout=20, what="the small pool")
    names = [f"w{i}" for i in range(4)]
    for name in names:  # 1.5 cpu each: one per small node, 4 nodes needed
        await c.create(PODS, bare(name, "1500m"), namespace="default")
    await c.create(PODS, bare("huge", "6", tolerations=[{"key": "big", "operator": "Exists"}]),
                   namespace="default")  # only "large" fits
    await c.create(PODS, bare("reserved-only", "6", nodeSelector={
        "pincompute.io/node-pool": "fixed"}, tolerations=[{"key": "dedicated",
                                                           "operator": "Exists"}]),
                   namespace="default")
    limited = await member.wait_event("ScaleUpLimited", timeout=15)
    assert "at most 2 nodes per 2s" in limited["message"]
    up = await member.wait_event("ScaledUp", about="small")
    assert "pods wait for capacity" in up["message"] and "desiredSize 1 →" in up["message"]
    await eventually(lambda: running(member, [*names, "huge"]), timeout=30,
                     what="every pod running on new nodes")
    assert await size_of(member, "small") == 4
    assert await size_of(member, "large") == 1
    assert await size_of(member, "fixed") == 1  # reserved: never autoscaled
    nofit = await member.wait_event("NoPoolFits", about="reserved-only")
    assert "cpu 6000m" in nofit["message"]
    assert member.sample("pincompute_autoscaler_nodes_total", cluster="zone-a-1",
                         pool="small", direction="up") == 3
    for name in [*names, "huge"]:
        await c.delete(PODS, name, namespace="default", grace_period_seconds=0)

    async def shrunk() -> bool:
        return await size_of(member, "small") == 1 and await size_of(member, "large") == 0

    await eventually(shrunk, timeout=20, what="idle nodes given back")
    down = await member.wait_event("ScaledDown", about="small")
    assert "idle for" in down["message"] and "(minSize 1)" in down["message"]
    await eventually(lambda: ready("small", 1), timeout=20, what="one small node left")


async def test_the_buffer_is_displaced_at_once_and_replaced(
        member_cluster: MemberFactory) -> None:
    member: Member = await member_cluster(options={"pool-autoscaler": {
        "interval": 0.2, "scale_down_delay": 60.0}})
    c = member.client
    await c.create(NODEPOOLS, small("burst", buffer={"cpu": "1", "memory": "1Gi"}))

    async def placeholders() -> list[dict[str, Any]]:
        return (await c.list(PODS, namespace=SYSTEM_NAMESPACE,
                             label_selector=f"{BUFFER_LABEL}=burst")).items

    async def buffered() -> bool:
        pods = await placeholders()
        return len(pods) == 1 and pod_ready(pods[0])

    await eventually(buffered, timeout=20, what="the placeholder running")
    first = (await placeholders())[0]["metadata"]["uid"]
    assert len(await member.ready_nodes("burst")) == 1
    await c.create(PODS, bare("side", "800m"), namespace="default")
    await eventually(lambda: running(member, ["side"]), timeout=15, what="a pod beside it")
    # a burst: no room left but the placeholder's, and no new node yet
    await c.create(PODS, bare("burst-1", "1"), namespace="default")
    await eventually(lambda: running(member, ["burst-1"]), timeout=10,
                     what="the real pod in the buffer's room")
    pods = {p["metadata"]["name"]: p for p in (await c.list(PODS, namespace="default")).items}
    assert pods["burst-1"]["spec"]["nodeName"] == pods["side"]["spec"]["nodeName"]

    async def replaced() -> bool:
        pods = await placeholders()
        return len(pods) == 1 and pods[0]["metadata"]["uid"] != first and pod_ready(pods[0])

    await eventually(replaced, timeout=30, what="the displaced buffer replaced")
    assert await size_of(member, "burst") == 2  # the autoscaler added a node for it
    up = await member.wait_event("ScaledUp", about="burst")
    assert "buffer-burst-" in up["message"]
