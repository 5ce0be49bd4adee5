"""The PinDaemon operator: one pod per fitting node, on nodes that join later, gone from
nodes that stop fitting, rolled with maxUnavailable, survives a restart; drains do not
wait for daemon pods."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from pincompute.kube.backends.embedded import EmbeddedStore
from pincompute.kube.objects import condition_true
from pincompute.kube.protocol import KubeClient
from pincompute.kube.resource import NAMESPACES, NODES, PODS
from pincompute.kube.wellknown import NOT_READY_TAINT, UNREACHABLE_TAINT, UNSCHEDULABLE_TAINT
from pincompute.member.daemonplan import (
    ACTIONS,
    Action,
    Fit,
    NodePods,
    NodeState,
    daemon_tolerations,
    fits,
    node_pods,
    plan,
)
from pincompute.member.nodepools import add_nodepool_controller
from pincompute.member.pindaemons import (
    PinDaemonReconciler,
    add_pindaemon_controller,
    daemon_revision,
)
from pincompute.member.provisioner import (
    NodeProvisioner,
    ProvisionerConfig,
    add_node_provisioner,
    mark_for_removal,
)
from pincompute.model import registry
from pincompute.model.registry import NODEPOOLS, PINDAEMONS
from pincompute.model.wellknown import (
    DAEMON_POD_LABEL,
    NODE_DRAIN_ANNOTATION,
    NODE_POOL_LABEL,
    OWNER_UID_LABEL,
    REVISION_LABEL,
    SYSTEM_NAMESPACE,
    TIER_LABEL,
)
from pincompute.node import BackoffPolicy
from pincompute.node.agenthost import AgentHost
from pincompute.node.nodelifecyclecontroller import add_node_lifecycle_controller
from pincompute.runtime.manager import Manager
from pincompute.scheduler import Scheduler
from pincompute.scheduler.metrics import SchedulerMetrics
from tests.waiting import eventually, recorded

CLUSTER = "zone-a-1"


# --- pure rules -------------------------------------------------------------------------------

def node(name: str, *, labels: dict[str, str] | None = None,
         taints: list[dict[str, str]] | None = None, leaving: bool = False) -> dict[str, Any]:
    md: dict[str, Any] = {"name": name, "labels": labels or {}}
    if leaving:
        md["annotations"] = {NODE_DRAIN_ANNOTATION: "2026-01-01T00:00:00Z"}
    return {"metadata": md, "spec": {"taints": taints or []}}


def test_the_action_table() -> None:
    assert {k[1]: v for k, v in ACTIONS.items() if k[0] is Fit.YES} == {
        NodeState.NONE: Action.CREATE, NodeState.DELETING: Action.WAIT,
        NodeState.FAILED: Action.REPLACE, NodeState.CURRENT: Action.KEEP,
        NodeState.OLD: Action.ROLL}
    assert {v for k, v in ACTIONS.items() if k[0] is Fit.NO} == {Action.NOTHING, Action.REMOVE}
    # A leaving node keeps its pod for the drain to delete last, and gets no new one.
    assert {k[1]: v for k, v in ACTIONS.items() if k[0] is Fit.LEAVING} == {
        NodeState.NONE: Action.NOTHING, NodeState.DELETING: Action.NOTHING,
        NodeState.FAILED: Action.REMOVE, NodeState.CURRENT: Action.KEEP,
        NodeState.OLD: Action.KEEP}
    assert len(ACTIONS) == len(Fit) * len(NodeState)


def test_fits_by_selector_taints_and_default_tolerations() -> None:
    plain = daemon_tolerations(None, host_network=False)
    sel = {"agents": "yes"}

    def fit(n: dict[str, Any], selector: dict[str, str] | None = None,
            tolerations: list[dict[str, Any]] = plain) -> Fit:
        return fits(n, node_selector=selector, tolerations=tolerations)

    assert fit(node("a", labels={"agents": "yes"}), sel) is Fit.YES
    assert fit(node("a", labels={"agents": "no"}), sel) is Fit.NO
    assert fit(node("a", labels={"agents": "yes"}, leaving=True), sel) is Fit.LEAVING
    assert fit(node("a", labels={"agents": "no"}, leaving=True), sel) is Fit.NO
    # What a DaemonSet tolerates by default: sick and cordoned nodes keep their agents.
    for taint in ({"key": NOT_READY_TAINT, "effect": "NoExecute"},
                  {"key": UNREACHABLE_TAINT, "effect": "NoExecute"},
                  {"key": UNSCHEDULABLE_TAINT, "effect": "NoSchedule"}):
        assert fit(node("a", taints=[taint])) is Fit.YES, taint
    # ... but not a joining node's readiness gate (not-ready:NoSchedule), as in Kubernetes.
    gate = {"key": NOT_READY_TAINT, "effect": "NoSchedule"}
    assert fit(node("a", taints=[gate])) is Fit.NO
    gpu = {"key": "gpu", "value": "true", "effect": "NoSchedule"}
    assert fit(node("a", taints=[gpu])) is Fit.NO
    assert fit(node("a", taints=[{**gpu, "effect": "PreferNoSchedule"}])) is Fit.YES
    tolerant = daemon_tolerations([{"key": "gpu", "operator": "Exists"}], host_network=False)
    assert fit(node("a", taints=[gpu]), tolerations=tolerant) is Fit.YES
    everything = daemon_tolerations([{"operator": "Exists"}], host_network=False)
    assert fit(node("a", taints=[gate, gpu]), tolerations=everything) is Fit.YES


def _pod(name: str, revision: str, *, ready: bool = True, deleting: bool = False,
         phase: str = "Running") -> dict[str, Any]:
    md: dict[str, Any] = {"name": name, "labels": {REVISION_LABEL: revision},
                          "creationTimestamp": "2026-01-01T00:00:00Z"}
    if deleting:
        md["deletionTimestamp"] = "2026-01-01T00:00:01Z"
    return {"metadata": md, "status": {"phase": phase, "conditions": [
        {"type": "Ready", "status": "True" if ready else "False"}]}}


def _rev(pod: dict[str, Any]) -> str:
    return str(pod["metadata"]["labels"][REVISION_LABEL])


def test_plan_rolls_within_max_unavailable() -> None:
    def np(*pods: dict[str, Any]) -> NodePods:
        return node_pods(pods, revision="new", revision_of=_rev)

    nodes = {f"n{i}": Fit.YES for i in range(5)} | {"gone": Fit.NO, "leaving": Fit.LEAVING}
    pods = {"n0": np(_pod("a", "old")), "n1": np(_pod("b", "old")),
            "n2": np(_pod("c", "old", ready=False)), "n3": np(_pod("d", "new")),
            "gone": np(_pod("e", "old")), "leaving": np(_pod("f", "old"))}
    out = plan(nodes, pods, max_unavailable=2, rolling=True)
    assert out.create == ["n4"]
    deleted = [p["metadata"]["name"] for p, _ in out.delete]
    # e: misscheduled; c: old and down already (free); n4 missing + c down = 2 unavailable,
    # so no ready old pod may go yet.
    assert sorted(deleted) == ["c", "e"]
    assert (out.desired, out.current, out.ready, out.updated, out.misscheduled) == (5, 4, 3, 1, 1)
    out = plan(nodes, pods, max_unavailable=4, rolling=True)
    assert sorted(p["metadata"]["name"] for p, _ in out.delete) == ["a", "b", "c", "e"]
    assert [p["metadata"]["name"] for p, _ in plan(nodes, pods, max_unavailable=4,
                                                    rolling=False).delete] == ["e"]
    # A terminating pod: wait for it; duplicates go; an ended pod is replaced.
    assert np(_pod("x", "new", deleting=True)).state is NodeState.DELETING
    dup = np(_pod("x", "old"), _pod("y", "new"))
    assert (dup.state, [p["metadata"]["name"] for p in dup.extras]) == (NodeState.CURRENT,
                                                                       ["x"])
    assert np(_pod("z", "new", phase="Failed")).state is NodeState.FAILED


# --- a member cluster: provisioner, sim nodes, the operator -----------------------------------

class Cluster:
    """An embedded member cluster with node pools and a restartable manager."""

    def __init__(self, store: EmbeddedStore, node_dir: Path) -> None:
        self.store = store
        self.client = store.client()
        self.node_dir = node_dir
        self.manager: Manager | None = None
        self.provisioner: NodeProvisioner | None = None
        self.daemons: PinDaemonReconciler | None = None
        self._task: asyncio.Task[None] | None = None
        self.infra: Manager
        self._infra_task: asyncio.Task[None]

    async def start(self) -> None:
        """The cluster's own controllers and nodes, then the operator."""
        manager = Manager(name="member", shutdown_timeout=5.0)
        add_nodepool_controller(manager, client=self.client)
        add_node_lifecycle_controller(manager, client=self.client)
        Scheduler.attach(manager, self.client,
                         metrics=SchedulerMetrics(registry=CollectorRegistry()),
                         initial_backoff=0.1, max_backoff=0.5)
        host = AgentHost(self.client, zone="zone-a", runtime="sim", node_dir=self.node_dir,
                         node_options={"backoff": BackoffPolicy(initial=0.2, maximum=1.0),
                                       "probe_scale": 0.2, "shutdown_grace": 2.0,
                                       "status_interval": 0.2})
        self.provisioner = add_node_provisioner(manager, client=self.client, host=host,
                                                config=ProvisionerConfig(cluster=CLUSTER))
        self.infra = manager
        self._infra_task = asyncio.create_task(manager.run())
        await manager.wait_started()
        await self.start_operator()

    async def start_operator(self) -> None:
        """The PinDaemon operator in a manager of its own (restarted by tests)."""
        manager = Manager(name="operators", shutdown_timeout=5.0)
        self.daemons = add_pindaemon_controller(manager, client=self.client,
                                                backend="embedded", identity="test")
        self.manager = manager
        self._task = asyncio.create_task(manager.run())
        await manager.wait_started()

    async def stop_operator(self) -> None:
        if self.manager is not None and self._task is not None:
            self.manager.stop()
            await self._task
        self.manager = self._task = None

    async def stop(self) -> None:
        await self.stop_operator()
        self.infra.stop()
        await self._infra_task
        if self.provisioner is not None:
            await self.provisioner.close()


@pytest.fixture
def node_dir() -> Iterator[Path]:
    root = Path(tempfile.mkdtemp(prefix="pincompute-daemons-"))
    os.chmod(root, 0o711)
    try:
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
async def member(node_dir: Path) -> AsyncIterator[Cluster]:
    store = await EmbeddedStore.open(path=None)
    registry.install(store, resources=registry.MEMBER_RESOURCES)
    cluster = Cluster(store, node_dir)
    for ns in ("default", SYSTEM_NAMESPACE):
        await cluster.client.create(NAMESPACES, {"metadata": {"name": ns}})
    await cluster.start()
    try:
        yield cluster
    finally:
        await cluster.stop()
        await store.close()


def pool(name: str, *, size: int, **spec: Any) -> dict[str, Any]:
    return {"metadata": {"name": name}, "spec": {
        "instanceType": "embedded.standard-4", "runtime": "sim",
        "capacity": {"cpu": "4", "memory": "8Gi", "pods": "110"},
        "minSize": 0, "maxSize": 10, "desiredSize": size, **spec}}


SLOW = {"sim.pincompute.io/ready-delay": "0.3", "sim.pincompute.io/stop-delay": "0.2"}
"""Sim pods that take a moment to become ready and to stop (a rollout one can watch)."""


def daemon(name: str = "logship", *, image: str = "shipper:1", **spec: Any) -> dict[str, Any]:
    return {"metadata": {"name": name}, "spec": {
        "template": {"metadata": {"annotations": SLOW}, "spec": {"containers": [{
            "name": "ship", "image": image,
            "resources": {"requests": {"cpu": "50m", "memory": "32Mi"}}}]}},
        **spec}}


async def daemon_pods(client: KubeClient, uid: str) -> list[dict[str, Any]]:
    return (await client.list(PODS, namespace=SYSTEM_NAMESPACE,
                              label_selector=f"{OWNER_UID_LABEL}={uid}")).items


async def ready_nodes(client: KubeClient, pool_name: str) -> list[str]:
    nodes = (await client.list(NODES, label_selector=f"{NODE_POOL_LABEL}={pool_name}")).items
    return sorted(n["metadata"]["name"] for n in nodes if condition_true(n, "Ready")
                  and not any(t["key"] == NOT_READY_TAINT for t in n["spec"].get("taints")
                              or ()))


async def wait_nodes(client: KubeClient, pool_name: str, count: int) -> list[str]:
    async def check() -> list[str] | None:
        names = await ready_nodes(client, pool_name)
        return names if len(names) == count else None
    return await eventually(check, timeout=20.0, what=f"{count} ready nodes in {pool_name}")


async def wait_placement(client: KubeClient, uid: str, nodes: list[str], *,
                         revision: str | None = None, timeout: float = 20.0
                         ) -> dict[str, dict[str, Any]]:
    """Until the daemon has exactly one live, ready pod on each of ``nodes`` and no other."""
    async def check() -> dict[str, dict[str, Any]] | None:
        pods = await daemon_pods(client, uid)
        if any(p["metadata"].get("deletionTimestamp") for p in pods):
            return None
        by_node = {p["spec"].get("nodeName"): p for p in pods}
        if len(pods) != len(nodes) or sorted(by_node) != sorted(nodes):
            return None
        if not all(condition_true(p, "Ready") for p in pods):
            return None
        if revision is not None and any(p["metadata"]["labels"][REVISION_LABEL] != revision
                                        for p in pods):
            return None
        return by_node
    return await eventually(check, timeout=timeout, what=f"one daemon pod on each of {nodes}")


async def test_one_pod_per_fitting_node_new_nodes_and_nodes_that_stop_fitting(
        member: Cluster) -> None:
    client = member.client
    await client.create(NODEPOOLS, pool("general", size=2, labels={"agents": "yes"}))
    await client.create(NODEPOOLS, pool("gpu", size=1, labels={"agents": "yes"}, taints=[
        {"key": "gpu", "value": "true", "effect": "NoSchedule"}]))
    general = await wait_nodes(client, "general", 2)
    await wait_nodes(client, "gpu", 1)
    d = await client.create(PINDAEMONS, daemon(nodeSelector={"agents": "yes"}))
    uid = d["metadata"]["uid"]
    pods = await wait_placement(client, uid, general)
    for p in pods.values():  # platform pods: system namespace, bound, tolerant, labelled
        assert p["metadata"]["namespace"] == SYSTEM_NAMESPACE
        assert p["metadata"]["labels"][DAEMON_POD_LABEL] == "true"
        assert p["metadata"]["labels"][TIER_LABEL] == "reserved"
        keys = {t.get("key") for t in p["spec"]["tolerations"]}
        assert {NOT_READY_TAINT, UNREACHABLE_TAINT, UNSCHEDULABLE_TAINT} <= keys
        env = {e["name"]: e["value"] for e in p["spec"]["containers"][0]["env"]}
        assert env["NODE_NAME"] == p["spec"]["nodeName"]

    async def status() -> dict[str, Any] | None:
        s = (await client.get(PINDAEMONS, "logship")).get("status") or {}
        return s if (s.get("desiredNumberScheduled"), s.get("numberReady"),
                     s.get("updatedNumberScheduled")) == (2, 2, 2) else None
    s = await eventually(status, what="daemon status 2/2/2")
    assert s["numberMisscheduled"] == 0 and s["observedGeneration"] == 1

    # A node that joins later gets one.
    await client.patch(NODEPOOLS, "general", {"spec": {"desiredSize": 3}})
    general = await wait_nodes(client, "general", 3)
    await wait_placement(client, uid, general)

    # A node that stops matching loses its pod; the tainted node still has none.
    leaver = general[0]
    await client.patch(NODES, leaver, {"metadata": {"labels": {"agents": "no"}}})
    await wait_placement(client, uid, general[1:])
    # ... and gets it back when it matches again.
    await client.patch(NODES, leaver, {"metadata": {"labels": {"agents": "yes"}}})
    await wait_placement(client, uid, general)
    await recorded(client, reason="Created", name="logship")
    await recorded(client, reason="Deleted", name="logship")
    # The daemon goes: its pods go with it (owner references).
    await client.delete(PINDAEMONS, "logship")

    async def collected() -> bool:
        return not await daemon_pods(client, uid)
    await eventually(collected, timeout=20.0, what="the daemon's pods collected")


async def test_rolling_update_respects_max_unavailable_and_survives_a_restart(
        member: Cluster) -> None:
    client = member.client
    await client.create(NODEPOOLS, pool("general", size=4))
    nodes = await wait_nodes(client, "general", 4)
    d = await client.create(PINDAEMONS, daemon(updateStrategy={
        "type": "RollingUpdate", "maxUnavailable": 1}))
    uid = d["metadata"]["uid"]
    await wait_placement(client, uid, nodes)

    # Watch every daemon pod event during the rollout: at no point may more than one node
    # lack a ready daemon pod.
    unavailable_max = 0
    state: dict[str, dict[str, bool]] = {}  # node -> pod name -> ready and live
    rv = (await client.list(PODS, namespace=SYSTEM_NAMESPACE)).resource_version

    async def watch() -> None:
        nonlocal unavailable_max
        async for event in client.watch(PODS, namespace=SYSTEM_NAMESPACE, resource_version=rv,
                                        label_selector=f"{OWNER_UID_LABEL}={uid}"):
            if event.type not in ("ADDED", "MODIFIED", "DELETED"):
                continue  # bookmarks
            p = event.object
            n = p["spec"].get("nodeName")
            up = (event.type != "DELETED" and not p["metadata"].get("deletionTimestamp")
                  and condition_true(p, "Ready"))
            state.setdefault(n, {})[p["metadata"]["name"]] = up
            down = sum(1 for node_name in nodes if not any(state.get(node_name, {}).values()))
            unavailable_max = max(unavailable_max, down)

    for p in await daemon_pods(client, uid):
        state.setdefault(p["spec"]["nodeName"], {})[p["metadata"]["name"]] = True
    watcher = asyncio.create_task(watch())
    try:
        fresh = await client.patch(PINDAEMONS, "logship", {"spec": {"template": {"spec": {
            "containers": [{"name": "ship", "image": "shipper:2", "resources": {
                "requests": {"cpu": "50m", "memory": "32Mi"}}}]}}}})

        # Kill the operator mid-rollout: the restarted one finishes it, no pod twice.
        async def some_updated() -> bool:
            pods = await daemon_pods(client, uid)
            return any(p["metadata"]["labels"][REVISION_LABEL] != pods[0]["metadata"][
                "labels"][REVISION_LABEL] for p in pods) or len(pods) != 4
        await eventually(some_updated, what="the rollout under way")
        await member.stop_operator()
        await member.start_operator()
        revision = daemon_revision(fresh["spec"])
        await wait_placement(client, uid, nodes, revision=revision, timeout=30.0)
    finally:
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watcher
    assert unavailable_max == 1
    s = (await client.get(PINDAEMONS, "logship"))["status"]
    assert s["updatedNumberScheduled"] == 4


async def test_a_drain_does_not_wait_for_daemon_pods(member: Cluster) -> None:
    client = member.client
    await client.create(NODEPOOLS, pool("general", size=2))
    nodes = await wait_nodes(client, "general", 2)
    d = await client.create(PINDAEMONS, daemon())
    uid = d["metadata"]["uid"]
    await wait_placement(client, uid, nodes)
    leaving = nodes[0]
    await client.create(PODS, {"metadata": {"name": "app"}, "spec": {
        "schedulerName": "pincompute", "nodeName": leaving, "terminationGracePeriodSeconds": 5,
        "containers": [{"name": "main", "image": "app"}]}}, namespace="default")

    async def app_ready() -> bool:
        return condition_true(await client.get(PODS, "app", namespace="default"), "Ready")
    await eventually(app_ready, what="the app pod ready")
    # Remove the node: its app pod goes, then its daemon pod (the agent serves the others
    # to the end), then the node — long before the drain timeout (600 s), and the daemon
    # does not put a pod back on the leaving node.
    seen: list[tuple[str, str]] = []  # (pod, "terminating" | "gone"), in order
    rv = (await client.list(PODS)).resource_version

    async def watch() -> None:
        async for event in client.watch(PODS, resource_version=rv):
            if event.type in ("MODIFIED", "DELETED"):
                p = event.object
                if p["spec"].get("nodeName") != leaving:
                    continue
                what = "gone" if event.type == "DELETED" else (
                    "terminating" if p["metadata"].get("deletionTimestamp") else "")
                if what and (p["metadata"]["name"], what) not in seen:
                    seen.append((p["metadata"]["name"], what))

    watcher = asyncio.create_task(watch())
    try:
        await mark_for_removal(client, leaving)

        async def gone() -> bool:
            names = {n["metadata"]["name"] for n in (await client.list(NODES)).items}
            return leaving not in names
        await eventually(gone, timeout=20.0, what=f"node {leaving} drained and removed")
    finally:
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watcher
    daemon_pod = next(name for name, _ in seen if name != "app")
    assert seen.index(("app", "gone")) < seen.index((daemon_pod, "terminating")), seen
    pods = await daemon_pods(client, uid)
    assert [p["spec"]["nodeName"] for p in pods if p["spec"]["nodeName"] == leaving] == []
