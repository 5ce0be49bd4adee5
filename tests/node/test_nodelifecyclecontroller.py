"""The node lifecycle controller: lease expiry → Unknown → taints → eviction by tolerations."""

from __future__ import annotations

import asyncio
from typing import Any

from pincompute.kube.errors import NotFound, Unavailable
from pincompute.kube.protocol import KubeClient
from pincompute.kube.resource import NODES, PODS
from pincompute.node import NodeAgent, NodeConfig, NodeIdentity
from pincompute.node.nodelifecyclecontroller import (
    NOT_READY,
    UNREACHABLE,
    LifecycleConfig,
    add_node_lifecycle_controller,
    desired_taints,
    eviction_delay,
    tolerates,
    unknown_conditions,
)
from pincompute.node.status import NODE_NOT_READY, marked_not_ready, overruled
from pincompute.runtime.manager import Manager
from pincompute.runtime.reconciler import Request

from .conftest import FAST_BACKOFF, eventually, get_pod, make_pod
from .test_agent import ready

UNREACHABLE_NOEXEC = {"key": UNREACHABLE, "effect": "NoExecute", "timeAdded": "t"}


def test_toleration_matching():
    taint = {"key": "k", "value": "v", "effect": "NoExecute"}
    assert tolerates({"key": "k", "value": "v"}, taint)
    assert tolerates({"key": "k", "operator": "Exists", "effect": "NoExecute"}, taint)
    assert tolerates({"operator": "Exists"}, taint)
    assert not tolerates({"key": "k", "value": "w"}, taint)
    assert not tolerates({"key": "k", "operator": "Exists", "effect": "NoSchedule"}, taint)
    assert not tolerates({"key": "", "operator": "Equal"}, taint)


def test_eviction_delay():
    def pod(*tolerations):
        return {"spec": {"tolerations": list(tolerations)}}
    taints = [UNREACHABLE_NOEXEC, {"key": UNREACHABLE, "effect": "NoSchedule"}]
    assert eviction_delay(pod(), taints, default_seconds=None) == 0
    assert eviction_delay(pod(), taints, default_seconds=300) == 300
    assert eviction_delay(pod({"key": UNREACHABLE, "operator": "Exists",
                               "effect": "NoExecute", "tolerationSeconds": 30}),
                          taints, default_seconds=300) == 30
    assert eviction_delay(pod({"operator": "Exists"}), taints, default_seconds=300) is None
    other = [{"key": "maintenance", "effect": "NoExecute"}]
    assert eviction_delay(pod(), other, default_seconds=300) == 0


def test_taints_and_conditions_follow_health():
    mine = {"key": "dedicated", "effect": "NoSchedule"}
    sick = desired_taints([mine], "unreachable", "now")
    assert [(t["key"], t["effect"]) for t in sick] == [
        ("dedicated", "NoSchedule"), (UNREACHABLE, "NoSchedule"), (UNREACHABLE, "NoExecute")]
    assert desired_taints(sick, "unreachable", "later") == sick  # timeAdded is kept
    assert [t["key"] for t in desired_taints(sick, "not-ready", "n")] == [
        "dedicated", NOT_READY, NOT_READY]
    assert desired_taints(sick, "healthy", "n") == [mine]
    conds = unknown_conditions([{"type": "Ready", "status": "True"},
                                {"type": "Overloaded", "status": "False"}], "now")
    by_type = {c["type"]: c for c in conds}
    assert by_type["Ready"]["status"] == "Unknown"
    assert by_type["DiskPressure"]["status"] == "Unknown"
    assert by_type["Overloaded"]["status"] == "False"


async def test_a_silent_node_is_tainted_and_its_pods_evicted(cluster, make_agent):
    fast = {"runtime": "sim", "lease_duration": 1.0, "heartbeat_interval": 0.1}
    n1 = await make_agent("n1", **fast)
    await make_agent("n2", **fast)
    manager = Manager(name="control-plane")
    add_node_lifecycle_controller(manager, client=cluster, config=LifecycleConfig(
        grace_period=0.6, default_toleration_seconds=0.0, force_delete_after=0.3))
    task = asyncio.create_task(manager.run())
    await manager.wait_started()
    try:
        tolerate = {"key": UNREACHABLE, "operator": "Exists", "effect": "NoExecute"}
        await cluster.create(PODS, make_pod("doomed", [{"name": "m"}], node="n1"),
                             namespace="default")
        await cluster.create(PODS, make_pod("patient", [{"name": "m"}], node="n1",
                                            tolerations=[{**tolerate,
                                                          "tolerationSeconds": 1}]),
                             namespace="default")
        await cluster.create(PODS, make_pod("loyal", [{"name": "m"}], node="n1",
                                            tolerations=[tolerate]), namespace="default")
        await cluster.create(PODS, make_pod("elsewhere", [{"name": "m"}], node="n2"),
                             namespace="default")
        for name in ("doomed", "patient", "loyal", "elsewhere"):
            await eventually(ready(cluster, name))

        await n1.stop()  # the Lease is no longer renewed

        async def tainted():
            node = await cluster.get(NODES, "n1")
            keys = {(t["key"], t["effect"]) for t in node["spec"].get("taints") or ()}
            conds = {c["type"]: c["status"] for c in node["status"]["conditions"]}
            return (UNREACHABLE, "NoExecute") in keys and conds["Ready"] == "Unknown"

        await eventually(tainted)

        async def removed(name):
            try:
                await get_pod(cluster, name)
            except NotFound:
                return True
            return False

        await eventually(lambda: removed("doomed"))
        await eventually(lambda: removed("patient"))
        loyal = await get_pod(cluster, "loyal")
        assert not loyal["metadata"].get("deletionTimestamp")
        ready_cond = {c["type"]: c for c in loyal["status"]["conditions"]}["Ready"]
        assert (ready_cond["status"], ready_cond["reason"]) == ("False", NODE_NOT_READY)
        assert not (await get_pod(cluster, "elsewhere"))["metadata"].get("deletionTimestamp")
        n2 = await cluster.get(NODES, "n2")
        assert not n2["spec"].get("taints")

        # The node comes back: the taints go.
        await make_agent("n1", **fast)

        async def healed():
            node = await cluster.get(NODES, "n1")
            conds = {c["type"]: c["status"] for c in node["status"]["conditions"]}
            return not node["spec"].get("taints") and conds["Ready"] == "True"

        await eventually(healed)
    finally:
        manager.stop()
        await task


async def test_no_eviction_when_every_node_is_silent(cluster, make_agent):
    fast = {"runtime": "sim", "lease_duration": 1.0, "heartbeat_interval": 0.1}
    n1 = await make_agent("n1", **fast)
    manager = Manager(name="control-plane")
    controller = add_node_lifecycle_controller(manager, client=cluster, config=LifecycleConfig(
        grace_period=0.5, default_toleration_seconds=0.0))
    task = asyncio.create_task(manager.run())
    await manager.wait_started()
    try:
        await cluster.create(PODS, make_pod("p", [{"name": "m"}], node="n1"),
                             namespace="default")
        await eventually(ready(cluster, "p"))
        await n1.stop()

        async def tainted():
            node = await cluster.get(NODES, "n1")
            return any(t["key"] == UNREACHABLE for t in node["spec"].get("taints") or ())

        await eventually(tainted)
        await asyncio.sleep(0.3)
        assert controller.reconciler.evictions == 0
        assert not (await get_pod(cluster, "p"))["metadata"].get("deletionTimestamp")
    finally:
        manager.stop()
        await task


def test_marking_a_pod_not_ready():
    status = {"phase": "Running", "conditions": [
        {"type": "PodScheduled", "status": "True"},
        {"type": "ContainersReady", "status": "True"},
        {"type": "Ready", "status": "True", "lastTransitionTime": "t0"}]}
    marked = marked_not_ready(status, now_="t1")
    assert marked is not None and overruled(marked) and not overruled(status)
    by_type = {c["type"]: c for c in marked["conditions"]}
    assert by_type["PodScheduled"]["status"] == "True"
    for t in ("Ready", "ContainersReady"):
        assert (by_type[t]["status"], by_type[t]["reason"], by_type[t]["lastTransitionTime"]) \
            == ("False", NODE_NOT_READY, "t1")
    assert marked_not_ready(marked, now_="t2") is None  # already False: nothing to write
    assert marked_not_ready({"phase": "Pending"}, now_="t") is None


class Partition:
    """A node agent's client whose writes fail while ``cut`` (its reads and watches flow)."""

    def __init__(self, client: KubeClient) -> None:
        self.client = client
        self.cut = False

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self.client, name)
        if name not in ("create", "update", "update_status", "patch", "delete"):
            return attr

        async def write(*args: Any, **kwargs: Any) -> Any:
            if self.cut:
                raise Unavailable("partitioned")
            return await attr(*args, **kwargs)
        return write


def _ready(pod: dict[str, Any]) -> tuple[str | None, str | None]:
    conds = {c["type"]: c for c in (pod.get("status") or {}).get("conditions") or ()}
    return conds.get("Ready", {}).get("status"), conds.get("ContainersReady", {}).get("status")


async def test_a_silent_nodes_pods_are_not_ready_until_it_is_back(cluster):
    fast = {"lease_duration": 1.0, "heartbeat_interval": 0.1, "status_interval": 0.2,
            "backoff": FAST_BACKOFF,
            "record_events": False, "shutdown_grace": 0.5}
    link = Partition(cluster)
    n1 = NodeAgent(link, NodeConfig(identity=NodeIdentity(name="n1"),  # type: ignore[arg-type]
                                    runtime="sim", **fast))
    n2 = NodeAgent(cluster, NodeConfig(identity=NodeIdentity(name="n2"), runtime="sim", **fast))
    await n1.start()
    await n2.start()
    manager = Manager(name="control-plane")
    controller = add_node_lifecycle_controller(manager, client=cluster, config=LifecycleConfig(
        grace_period=0.6, default_toleration_seconds=300.0))
    task = asyncio.create_task(manager.run())
    await manager.wait_started()
    try:
        await cluster.create(PODS, make_pod("cut-off", [{"name": "m"}], node="n1"),
                             namespace="default")
        await cluster.create(PODS, make_pod("fine", [{"name": "m"}], node="n2"),
                             namespace="default")
        for name in ("cut-off", "fine"):
            await eventually(ready(cluster, name))
        fine_rv = (await get_pod(cluster, "fine"))["metadata"]["resourceVersion"]

        link.cut = True  # n1 runs on but reaches the API no more: its Lease goes silent

        async def not_ready():
            return _ready(await get_pod(cluster, "cut-off")) == ("False", "False")

        await eventually(not_ready)
        pod = await get_pod(cluster, "cut-off")
        assert overruled(pod["status"])
        assert pod["status"]["phase"] == "Running"  # not ready is not stopped
        # Further passes (the lease timer, the node's own writes failing) write nothing.
        marked_rv = pod["metadata"]["resourceVersion"]
        for _ in range(3):
            await controller.reconciler.reconcile(Request("", "n1"))
        await asyncio.sleep(0.3)
        assert (await get_pod(cluster, "cut-off"))["metadata"]["resourceVersion"] == marked_rv
        # The healthy node's pod is untouched.
        assert (await get_pod(cluster, "fine"))["metadata"]["resourceVersion"] == fine_rv

        link.cut = False  # back: the agent writes its own view again, and it is Ready

        await eventually(ready(cluster, "cut-off"))
        pod = await get_pod(cluster, "cut-off")
        assert _ready(pod) == ("True", "True") and not overruled(pod["status"])

        async def healed():
            node = await cluster.get(NODES, "n1")
            return not node["spec"].get("taints")

        await eventually(healed)
        await asyncio.sleep(0.3)  # no tug of war: the pod stays Ready
        assert _ready(await get_pod(cluster, "cut-off")) == ("True", "True")
    finally:
        manager.stop()
        await task
        link.cut = False
        await n1.stop()
        await n2.stop()
