import asyncio
from collections.abc import AsyncIterator

import pytest

from pincompute.kube.backends.embedded import EmbeddedStore
from pincompute.kube.protocol import KubeClient
from pincompute.kube.resource import NODES
from pincompute.member.nodepools import add_nodepool_controller
from pincompute.model import registry
from pincompute.model.registry import NODEPOOLS
from pincompute.model.wellknown import NODE_IMAGE_LABEL as IMAGE_LABEL
from pincompute.model.wellknown import NODE_POOL_LABEL as POOL_LABEL
from pincompute.runtime.manager import Manager
from tests.waiting import eventually


def node(name: str, pool: str, *, ready: bool = True, image: str = "general-v1") -> dict:
    return {"metadata": {"name": name, "labels": {POOL_LABEL: pool, IMAGE_LABEL: image}},
            "status": {"conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
                       "capacity": {"cpu": "4", "memory": "16Gi", "pods": "110"}}}


@pytest.fixture
async def member() -> AsyncIterator[KubeClient]:
    store = await EmbeddedStore.open(path=None)
    registry.install(store, resources=registry.MEMBER_RESOURCES)
    client = store.client()
    manager = Manager(name="member")
    add_nodepool_controller(manager, client=client)
    task = asyncio.create_task(manager.run())
    await manager.wait_started()
    yield client
    manager.stop()
    await task
    await store.close()


async def test_pool_status_counts_its_nodes(member: KubeClient) -> None:
    await member.create(NODEPOOLS, {"metadata": {"name": "general"}, "spec": {
        "instanceType": "m5.xlarge", "capacity": {"cpu": "4", "memory": "16Gi"},
        "minSize": 2, "maxSize": 10, "nodeImage": "general-v2"}})
    for i, image in enumerate(("general-v1", "general-v1", "general-v2")):
        await member.create(NODES, node(f"n{i}", "general", image=image))
    await member.create(NODES, node("other", "gpu"))

    async def counted() -> dict | None:
        status = (await member.get(NODEPOOLS, "general")).get("status") or {}
        return status if status.get("currentSize") == 3 else None

    status = await eventually(counted)
    assert status["readyNodes"] == 3
    assert status["nodeImage"] == "general-v1"
    assert status["updatedNodes"] == 1
    assert status["desiredSize"] == 3
    assert [c["status"] for c in status["conditions"] if c["type"] == "Ready"] == ["True"]

    # Two nodes go NotReady: the pool drops below minSize and says so.
    for name in ("n0", "n1"):
        current = await member.get(NODES, name)
        current["status"]["conditions"] = [{"type": "Ready", "status": "False"}]
        await member.update_status(NODES, current)

    async def degraded() -> dict | None:
        status = (await member.get(NODEPOOLS, "general")).get("status") or {}
        return status if status.get("readyNodes") == 1 else None

    status = await eventually(degraded)
    ready = next(c for c in status["conditions"] if c["type"] == "Ready")
    assert ready["status"] == "False" and ready["reason"] == "TooFewReadyNodes"


def test_only_changes_to_a_count_reach_the_pool() -> None:
    from pincompute.member.nodepools import counts_changed
    from pincompute.model.wellknown import NODE_DRAIN_ANNOTATION
    from pincompute.runtime.controller import Event

    base = node("n0", "general")
    heartbeat = {**base, "status": {**base["status"], "allocatable": {"cpu": "3"}}}
    assert not counts_changed(Event("update", heartbeat, base))
    assert counts_changed(Event("add", base))
    assert counts_changed(Event("delete", base))
    assert counts_changed(Event("update", node("n0", "general", ready=False), base))
    assert counts_changed(Event("update", {**base, "spec": {"unschedulable": True}}, base))
    assert counts_changed(Event("update", node("n0", "general", image="general-v2"), base))
    assert counts_changed(Event("update", node("n0", "gpu"), base))
    leaving = {**base, "metadata": {**base["metadata"],
                                    "annotations": {NODE_DRAIN_ANNOTATION: "{}"}}}
    assert counts_changed(Event("update", leaving, base))
