"""The node provisioner on an embedded member cluster: pools become Ready nodes, grow,
shrink by cordon and graceful drain, go with their pool, and are re-adopted after a
restart; a new node takes no pod before its health probes pass."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import sys
import tempfile
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from pincompute.kube import NotFound
from pincompute.kube.backends.embedded import EmbeddedStore
from pincompute.kube.objects import condition_true
from pincompute.kube.protocol import DELETED, KubeClient
from pincompute.kube.resource import NAMESPACES, NODES, PODS
from pincompute.member.nodepools import add_nodepool_controller
from pincompute.member.provisioner import (
    DRAIN_STEPS,
    FINALIZER,
    DrainPhase,
    DrainStep,
    Member,
    NodeProvisioner,
    ProvisionerConfig,
    add_node_provisioner,
    drain_phase,
    mark_for_removal,
    node_index,
    plan,
)
from pincompute.model import registry
from pincompute.model.registry import NODEPOOLS
from pincompute.model.wellknown import NODE_DRAIN_ANNOTATION as DRAIN_ANNOTATION
from pincompute.model.wellknown import NODE_POOL_LABEL as POOL_LABEL
from pincompute.model.wellknown import ROTATION_ANNOTATION
from pincompute.node import BackoffPolicy
from pincompute.node.agenthost import AgentHost
from pincompute.node.nodelifecyclecontroller import NOT_READY, add_node_lifecycle_controller
from pincompute.runtime.manager import Manager
from pincompute.scheduler import Scheduler
from pincompute.scheduler.metrics import SchedulerMetrics
from tests.waiting import eventually

CLUSTER = "zone-a-1"
PYTHON = "/usr/bin/python3" if os.access("/usr/bin/python3", os.X_OK) else sys.executable


# --- pure rules -------------------------------------------------------------------------------

def test_node_names_and_indices_are_unique_per_pool() -> None:
    assert node_index("zone-a-1-general-3", cluster="zone-a-1", pool="general") == 3
    # a pool whose name ends in digits cannot claim another pool's nodes
    assert node_index("zone-a-1-general-1-0", cluster="zone-a-1", pool="general") is None
    assert node_index("zone-a-1-general-1-0", cluster="zone-a-1", pool="general-1") == 0
    assert node_index("zone-a-1-gpu-x", cluster="zone-a-1", pool="gpu") is None


def test_plan_grows_into_the_lowest_free_indices_and_shrinks_deterministically() -> None:
    def m(i: int, *, ready: bool = True, pods: int = 0) -> Member:
        return Member(name=f"n-{i}", index=i, ready=ready, pods=pods)

    assert plan(4, [m(0), m(2)], taken={0, 2, 3}) == ([1, 4], [])
    assert plan(2, [m(0), m(1)], taken={0, 1}) == ([], [])
    # not ready first, then fewest pods, then newest
    staying = [m(0, pods=1), m(1, pods=5), m(2, pods=1), m(3, ready=False, pods=9)]
    assert plan(2, staying, taken=range(4)) == ([], ["n-3", "n-2"])
    assert plan(0, staying, taken=range(4))[1] == ["n-3", "n-2", "n-0", "n-1"]


def test_the_drain_table() -> None:
    steps = {phase: DRAIN_STEPS[phase] for phase in DrainPhase}
    assert steps == {DrainPhase.PODS_LEFT: DrainStep.EVICT,
                     DrainPhase.TERMINATING: DrainStep.WAIT,
                     DrainPhase.OVERDUE: DrainStep.FORCE,
                     DrainPhase.DRAINED: DrainStep.STOP_AGENT,
                     DrainPhase.STOPPED: DrainStep.DELETE_NODE}
    assert drain_phase(pods=2, undeleted=1, overdue=False, agent=True) is DrainPhase.PODS_LEFT
    assert drain_phase(pods=2, undeleted=0, overdue=False, agent=True) is \
        DrainPhase.TERMINATING
    assert drain_phase(pods=2, undeleted=2, overdue=True, agent=True) is DrainPhase.OVERDUE
    assert drain_phase(pods=0, undeleted=0, overdue=True, agent=True) is DrainPhase.DRAINED
    assert drain_phase(pods=0, undeleted=0, overdue=False, agent=False) is DrainPhase.STOPPED


# --- a member cluster with the provisioner ----------------------------------------------------

class Cluster:
    """An embedded member cluster and a controller manager that can be restarted."""

    def __init__(self, store: EmbeddedStore, *, node_dir: Path,
                 node_options: dict[str, Any]) -> None:
        self.store = store
        self.client = store.client()
        self.node_dir = node_dir
        self.node_options = node_options
        self.manager: Manager | None = None
        self.provisioner: NodeProvisioner | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> NodeProvisioner:
        manager = Manager(name="member", shutdown_timeout=5.0)
        add_nodepool_controller(manager, client=self.client)
        add_node_lifecycle_controller(manager, client=self.client)
        Scheduler.attach(manager, self.client,
                         metrics=SchedulerMetrics(registry=CollectorRegistry()),
                         initial_backoff=0.1, max_backoff=0.5)
        host = AgentHost(self.client, zone="zone-a", runtime="sim", node_dir=self.node_dir,
                         node_options=self.node_options)
        self.provisioner = add_node_provisioner(manager, client=self.client, host=host,
                                                config=ProvisionerConfig(cluster=CLUSTER))
        self.manager = manager
        self._task = asyncio.create_task(manager.run())
        await manager.wait_started()
        return self.provisioner

    async def stop(self) -> None:
        if self.manager is not None and self._task is not None:
            self.manager.stop()
            await self._task
        if self.provisioner is not None:
            await self.provisioner.close()
        self.manager = self._task = None


@pytest.fixture
def node_dir() -> Iterator[Path]:
    root = Path(tempfile.mkdtemp(prefix="pincompute-provisioner-"))
    os.chmod(root, 0o711)
    try:
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
async def member(node_dir: Path) -> AsyncIterator[Cluster]:
    store = await EmbeddedStore.open(path=None)
    registry.install(store, resources=registry.MEMBER_RESOURCES)
    cluster = Cluster(store, node_dir=node_dir, node_options={
        "backoff": BackoffPolicy(initial=0.2, maximum=1.0), "probe_scale": 0.2,
        "shutdown_grace": 2.0, "status_interval": 0.2})
    for ns in ("default", "pincompute-system"):
        await cluster.client.create(NAMESPACES, {"metadata": {"name": ns}})
    await cluster.start()
    try:
        yield cluster
    finally:
        await cluster.stop()
        await store.close()


def pool(name: str = "general", *, size: int, runtime: str = "sim", **spec: Any
         ) -> dict[str, Any]:
    return {"metadata": {"name": name}, "spec": {
        "instanceType": "embedded.standard-4", "runtime": runtime,
        "capacity": {"cpu": "4", "memory": "8Gi", "pods": "110"},
        "minSize": 0, "maxSize": 10, "desiredSize": size, **spec}}


def pod(name: str, *, node: str | None = None, grace: int = 7, stop_delay: float = 0.3,
        **spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "schedulerName": "pincompute", "terminationGracePeriodSeconds": grace,
        "containers": [{"name": "main", "image": "app",
                        "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}}}],
        **spec}
    if node is not None:
        body["nodeName"] = node
    return {"metadata": {"name": name, "annotations": {
        "sim.pincompute.io/stop-delay": str(stop_delay)}}, "spec": body}


async def pool_nodes(client: KubeClient, name: str = "general") -> dict[str, dict[str, Any]]:
    nodes = (await client.list(NODES, label_selector=f"{POOL_LABEL}={name}")).items
    return {n["metadata"]["name"]: n for n in nodes}


def has_gate(node: dict[str, Any]) -> bool:
    return {"key": NOT_READY, "effect": "NoSchedule"} in (node["spec"].get("taints") or [])


@contextlib.asynccontextmanager
async def record(client: KubeClient) -> AsyncIterator[list[tuple[str, str, dict[str, Any]]]]:
    """Every node and pod event meanwhile, in store order: (kind, type, object)."""
    seen: list[tuple[str, str, dict[str, Any]]] = []
    synced = [asyncio.Event(), asyncio.Event()]

    async def watch(resource: Any, kind: str, ready: asyncio.Event) -> None:
        rv = (await client.list(resource)).resource_version
        ready.set()
        async for event in client.watch(resource, resource_version=rv):
            seen.append((kind, event.type, event.object))

    tasks = [asyncio.create_task(watch(NODES, "node", synced[0])),
             asyncio.create_task(watch(PODS, "pod", synced[1]))]
    for event in synced:
        await event.wait()
    try:
        yield seen
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    seen.sort(key=lambda e: int(e[2]["metadata"]["resourceVersion"]))


def ready_names(nodes: dict[str, dict[str, Any]]) -> list[str]:
    return sorted(n for n, obj in nodes.items() if condition_true(obj, "Ready")
                  and not any(t["key"] == NOT_READY for t in obj["spec"].get("taints") or ()))


def names(*indices: int) -> list[str]:
    return [f"{CLUSTER}-general-{i}" for i in indices]


async def wait_ready_nodes(client: KubeClient, expected: list[str], *,
                           timeout: float = 20.0) -> dict[str, dict[str, Any]]:
    async def check() -> dict[str, dict[str, Any]] | None:
        nodes = await pool_nodes(client)
        return nodes if sorted(nodes) == expected and ready_names(nodes) == expected else None

    return await eventually(check, timeout=timeout, what=f"Ready nodes {expected}")


async def pool_status(client: KubeClient, *, current: int, ready: int) -> dict[str, Any]:
    async def check() -> dict[str, Any] | None:
        status = (await client.get(NODEPOOLS, "general")).get("status") or {}
        return status if (status.get("currentSize"), status.get("readyNodes")) == (
            current, ready) else None

    return await eventually(check, what=f"pool status {current} nodes, {ready} ready")


async def running(client: KubeClient, name: str) -> dict[str, Any]:
    async def check() -> dict[str, Any] | None:
        obj = await client.get(PODS, name, namespace="default")
        return obj if condition_true(obj, "Ready") else None

    return await eventually(check, timeout=20, what=f"pod {name} running")


# --- the pool's life --------------------------------------------------------------------------

async def test_a_pool_becomes_ready_nodes_and_grows(member: Cluster) -> None:
    client = member.client
    await client.create(NODEPOOLS, pool(
        size=3, tier="reserved", nodeImage="general-v2", labels={"team": "infra"},
        taints=[{"key": "dedicated", "value": "infra", "effect": "NoSchedule"}]))
    nodes = await wait_ready_nodes(client, names(0, 1, 2))
    for node in nodes.values():
        labels = node["metadata"]["labels"]
        assert (labels[POOL_LABEL], labels["pincompute.io/tier"],
                labels["pincompute.io/node-image"], labels["team"],
                labels["node.kubernetes.io/instance-type"],
                labels["topology.kubernetes.io/zone"]) == (
            "general", "reserved", "general-v2", "infra", "embedded.standard-4", "zone-a")
        assert node["spec"]["taints"] == [{"key": "dedicated", "value": "infra",
                                           "effect": "NoSchedule"}]
        assert node["status"]["capacity"]["cpu"] == "4"
    assert FINALIZER in (await client.get(NODEPOOLS, "general"))["metadata"]["finalizers"]
    provisioner = member.provisioner
    assert provisioner is not None
    assert list(provisioner.agents("general")) == names(0, 1, 2)
    status = await pool_status(client, current=3, ready=3)
    assert status["desiredSize"] == 3

    await client.patch(NODEPOOLS, "general", {"spec": {"desiredSize": 5}})
    await wait_ready_nodes(client, names(0, 1, 2, 3, 4))
    assert list(provisioner.agents("general")) == names(0, 1, 2, 3, 4)
    await pool_status(client, current=5, ready=5)


async def test_shrinking_cordons_a_node_drains_it_gracefully_and_removes_it(
        member: Cluster) -> None:
    client = member.client
    await client.create(NODEPOOLS, pool(size=2))
    await wait_ready_nodes(client, names(0, 1))
    # Node 0 runs two pods, node 1 one: node 1 is the one to go (fewest pods).
    for name, node in (("a", 0), ("b", 0), ("c", 1)):
        await client.create(PODS, pod(name, node=names(node)[0]), namespace="default")
    for name in "abc":
        await running(client, name)

    victim = names(1)[0]
    async with record(client) as seen:
        await client.patch(NODEPOOLS, "general", {"spec": {"desiredSize": 1}})

        async def gone() -> bool:
            nodes = await pool_nodes(client)
            return sorted(nodes) == names(0) and any(  # and the recorder saw it
                k == "node" and t == DELETED and o["metadata"]["name"] == victim
                for k, t, o in seen)

        await eventually(gone, timeout=20, what="the node to be drained and removed")

    def first(pred: Callable[[str, str, dict[str, Any]], bool]) -> int:
        found = next((i for i, e in enumerate(seen) if pred(*e)), None)
        assert found is not None, [(k, t, o["metadata"]["name"], o["metadata"].get(
            "resourceVersion"), o["metadata"].get("deletionTimestamp"),
            o["spec"].get("unschedulable")) for k, t, o in seen]
        return found

    cordoned = first(lambda k, t, o: k == "node" and o["metadata"]["name"] == victim
                     and o["spec"].get("unschedulable") is True
                     and DRAIN_ANNOTATION in (o["metadata"].get("annotations") or {}))
    terminating = first(lambda k, t, o: k == "pod" and o["metadata"]["name"] == "c"
                        and bool(o["metadata"].get("deletionTimestamp")))
    pod_gone = first(lambda k, t, o: k == "pod" and t == DELETED
                     and o["metadata"]["name"] == "c")
    node_gone = first(lambda k, t, o: k == "node" and t == DELETED
                      and o["metadata"]["name"] == victim)
    assert cordoned < terminating < pod_gone < node_gone
    # Graceful: deleted with the pod's own grace period; its container stopped by SIGTERM
    # (the sim stop-delay, exit 0) before the pod went.
    assert seen[terminating][2]["metadata"]["deletionGracePeriodSeconds"] == 7
    last = seen[pod_gone][2]  # its final state
    states = [c.get("state", {}) for c in last["status"].get("containerStatuses") or ()]
    assert [s.get("terminated", {}).get("exitCode") for s in states] == [0]
    # The pods of the staying node were not touched.
    for name in "ab":
        assert not (await client.get(PODS, name, namespace="default"))["metadata"].get(
            "deletionTimestamp")
    provisioner = member.provisioner
    assert provisioner is not None and list(provisioner.agents("general")) == names(0)
    await pool_status(client, current=1, ready=1)


async def test_a_node_marked_for_removal_is_replaced(member: Cluster) -> None:
    client = member.client
    await client.create(NODEPOOLS, pool(size=2))
    await wait_ready_nodes(client, names(0, 1))
    await client.create(PODS, pod("a", node=names(0)[0]), namespace="default")
    await running(client, "a")
    assert await mark_for_removal(client, names(0)[0])
    # The successor takes the lowest index free while node 0 still drains: 2.
    await wait_ready_nodes(client, names(1, 2))
    with contextlib.suppress(NotFound):
        assert (await client.get(PODS, "a", namespace="default"))["metadata"][
            "deletionTimestamp"]
    assert not await mark_for_removal(client, names(0)[0])  # gone
    assert member.provisioner is not None
    assert list(member.provisioner.agents("general")) == names(1, 2)


async def test_nodes_a_rotation_surges_get_successors_within_max_size(
        member: Cluster) -> None:
    client = member.client
    await client.create(NODEPOOLS, pool(size=2, maxSize=3))
    await wait_ready_nodes(client, names(0, 1))
    marks: list[str] = []  # every node ever marked to leave

    async def watch() -> None:
        async for event in client.watch(NODES):
            if DRAIN_ANNOTATION in (event.object["metadata"].get("annotations") or {}) \
                    and event.object["metadata"]["name"] not in marks:
                marks.append(event.object["metadata"]["name"])

    watcher = asyncio.create_task(watch())
    try:
        for since, name in enumerate(names(0, 1)):
            await client.patch(NODES, name, {"metadata": {"annotations": {
                ROTATION_ANNOTATION: json.dumps({"rotation": "r", "since": since,
                                                 "surge": True})}},
                "spec": {"unschedulable": True}})
        # Room for one (maxSize 3): node 0, marked first, gets its successor; the size holds.
        await wait_ready_nodes(client, names(0, 1, 2))
        await asyncio.sleep(0.5)
        assert sorted(await pool_nodes(client)) == names(0, 1, 2)
        # Node 0 leaves: node 1 now has the room, and its successor starts.
        assert await mark_for_removal(client, names(0)[0])
        await wait_ready_nodes(client, names(1, 2, 3))
        assert await mark_for_removal(client, names(1)[0])
        await wait_ready_nodes(client, names(2, 3))
        await asyncio.sleep(0.5)
        assert sorted(await pool_nodes(client)) == names(2, 3)
        assert (await client.get(NODEPOOLS, "general"))["spec"]["desiredSize"] == 2
        assert marks == names(0, 1)  # the pool never shrank on its own
    finally:
        watcher.cancel()


async def test_a_node_deleted_behind_its_back_is_replaced(member: Cluster) -> None:
    client = member.client
    await client.create(NODEPOOLS, pool(size=2))
    before = await wait_ready_nodes(client, names(0, 1))
    await client.delete(NODES, names(1)[0])

    async def new_node() -> dict[str, Any] | None:
        nodes = await wait_ready_nodes(client, names(0, 1))
        uid = nodes[names(1)[0]]["metadata"]["uid"]
        return nodes if uid != before[names(1)[0]]["metadata"]["uid"] else None

    await eventually(new_node, timeout=20, what="a new node 1")
    assert member.provisioner is not None
    assert list(member.provisioner.agents("general")) == names(0, 1)


async def test_a_node_deleted_with_pods_bound_keeps_its_name_from_a_successor(
        member: Cluster) -> None:
    client = member.client
    await client.create(NODEPOOLS, pool(size=2))
    await wait_ready_nodes(client, names(0, 1))
    await client.create(PODS, pod("bound", node=names(1)[0]), namespace="default")
    await running(client, "bound")
    await client.delete(NODES, names(1)[0])
    # Under the old name the successor would run the pod as if its machine had not gone.
    await wait_ready_nodes(client, names(0, 2))
    assert member.provisioner is not None and member.provisioner.agent(names(1)[0]) is None
    # Once nothing is bound to it, the name is free again (the lowest free index).
    await client.delete(PODS, "bound", namespace="default", grace_period_seconds=0)
    await client.patch(NODEPOOLS, "general", {"spec": {"desiredSize": 3}})
    await wait_ready_nodes(client, names(0, 1, 2))


async def test_a_deleted_pool_drains_and_removes_all_its_nodes(member: Cluster) -> None:
    client = member.client
    await client.create(NODEPOOLS, pool(size=2))
    await wait_ready_nodes(client, names(0, 1))
    for name, node in (("a", 0), ("b", 1)):
        await client.create(PODS, pod(name, node=names(node)[0], stop_delay=0.5),
                            namespace="default")
    for name in "ab":
        await running(client, name)
    await client.delete(NODEPOOLS, "general")
    held = await client.get(NODEPOOLS, "general")
    assert held["metadata"]["deletionTimestamp"] and FINALIZER in held["metadata"]["finalizers"]

    async def all_gone() -> bool:
        try:
            await client.get(NODEPOOLS, "general")
            return False
        except NotFound:
            pass
        left = (await client.list(PODS, namespace="default")).items
        return not await pool_nodes(client) and not left

    await eventually(all_gone, timeout=20, what="the pool, its nodes and their pods to go")
    assert member.provisioner is not None and member.provisioner.agents("general") == {}
    assert member.provisioner.all_agents() == {}


async def test_a_restart_re_adopts_the_nodes_of_a_pool(member: Cluster) -> None:
    client = member.client
    await client.create(NODEPOOLS, pool(size=2, nodeImage="general-v1"))
    before = await wait_ready_nodes(client, names(0, 1))
    await client.create(PODS, pod("a", node=names(0)[0]), namespace="default")
    await running(client, "a")
    await member.stop()
    # While the region is down the pool's image changes: existing nodes keep theirs.
    await client.patch(NODEPOOLS, "general", {"spec": {"nodeImage": "general-v2"}})

    provisioner = await member.start()
    async with asyncio.timeout(20):
        await provisioner.wait_provisioned()
    assert list(provisioner.agents("general")) == names(0, 1)
    after = await wait_ready_nodes(client, names(0, 1))
    assert {n: o["metadata"]["uid"] for n, o in after.items()} == {
        n: o["metadata"]["uid"] for n, o in before.items()}
    assert {o["metadata"]["labels"]["pincompute.io/node-image"] for o in after.values()} == {
        "general-v1"}
    # The re-adopted node runs its pod again, and a new node gets the new image.
    agent = provisioner.agent(names(0)[0])
    assert agent is not None

    async def adopted_pod() -> bool:
        return agent.find("default", "a") is not None

    await eventually(adopted_pod, what="the re-adopted node to run its pod")
    await client.patch(NODEPOOLS, "general", {"spec": {"desiredSize": 3}})
    nodes = await wait_ready_nodes(client, names(0, 1, 2))
    assert nodes[names(2)[0]]["metadata"]["labels"]["pincompute.io/node-image"] == "general-v2"


async def test_a_new_node_takes_no_pod_before_its_health_probes_pass(node_dir: Path) -> None:
    store = await EmbeddedStore.open(path=None)
    registry.install(store, resources=registry.MEMBER_RESOURCES)
    # The node's health gate: a daemon pod must run on it before it is Ready.
    member = Cluster(store, node_dir=node_dir, node_options={
        "required_daemons": ("pincompute-system/probe-daemon",), "status_interval": 0.1})
    for ns in ("default", "pincompute-system"):
        await member.client.create(NAMESPACES, {"metadata": {"name": ns}})
    await member.start()
    client = member.client
    node_name = names(0)[0]
    try:
        async with record(client) as seen:
            await client.create(PODS, pod("early"), namespace="default")
            await client.create(NODEPOOLS, pool(size=1))

            async def not_ready() -> dict[str, Any] | None:
                with contextlib.suppress(NotFound):
                    obj = await client.get(NODES, node_name)
                    ready = next((c for c in obj["status"].get("conditions") or ()
                                  if c["type"] == "Ready"), None)
                    return obj if ready and ready["status"] == "False" else None
                return None

            node = await eventually(not_ready, what="the node to register and be NotReady")
            assert has_gate(node)
            async def unschedulable() -> bool:
                early = await client.get(PODS, "early", namespace="default")
                return any(c["type"] == "PodScheduled" and c["status"] == "False"
                           for c in early["status"].get("conditions") or ())

            await eventually(unschedulable, what="the scheduler to have tried the pod")
            await asyncio.sleep(1.0)  # and had more chances
            early = await client.get(PODS, "early", namespace="default")
            assert not early["spec"].get("nodeName")

            await client.create(PODS, {"metadata": {"name": "probe-daemon-x"}, "spec": {
                "nodeName": node_name, "tolerations": [{"operator": "Exists"}],
                "containers": [{"name": "d", "image": "daemon"}]}},
                namespace="pincompute-system")

            async def bound() -> dict[str, Any] | None:
                obj = await client.get(PODS, "early", namespace="default")
                recorded = any(k == "pod" and o["metadata"]["name"] == "early"
                               and o["spec"].get("nodeName") for k, _, o in seen)
                return obj if obj["spec"].get("nodeName") and recorded else None

            early = await eventually(bound, timeout=15, what="the pod to be bound once Ready")
            assert early["spec"]["nodeName"] == node_name
    finally:
        await member.stop()
        await store.close()
    # One store: resourceVersions order every write.  The node joined with the gate; it
    # was never without it while not Ready; the last state before the pod's binding was
    # Ready and without it.
    bind = next(i for i, (k, _, o) in enumerate(seen)
                if k == "pod" and o["metadata"]["name"] == "early" and o["spec"].get("nodeName"))
    states = [o for k, _, o in seen[:bind] if k == "node"]
    assert states and has_gate(states[0]) and not condition_true(states[0], "Ready")
    assert condition_true(states[-1], "Ready") and not has_gate(states[-1])
    for state in states:
        assert has_gate(state) or condition_true(state, "Ready")


async def test_process_runtime_nodes_run_pods_and_drain_them_with_sigterm(
        member: Cluster, tmp_path: Path) -> None:
    client = member.client
    out = member.node_dir / "out"  # writable by the pod's own uid (when run as root)
    out.mkdir()
    out.chmod(0o777)
    marker = out / "sigterm"
    await client.create(NODEPOOLS, pool(size=1, runtime="process"))
    nodes = await wait_ready_nodes(client, names(0))
    node = nodes[names(0)[0]]
    assert node["metadata"]["labels"]["pincompute.io/runtime"] == "process"
    agent = member.provisioner.agent(names(0)[0]) if member.provisioner else None
    assert agent is not None and agent.config.root_dir == member.node_dir / "general-0"
    started = out / "started"
    code = (f"import signal, sys, time\n"
            f"def bye(*_):\n    open({str(marker)!r}, 'w').write('term'); sys.exit(0)\n"
            f"signal.signal(signal.SIGTERM, bye)\n"
            f"open({str(started)!r}, 'w').close()\n"
            f"while True: time.sleep(0.1)\n")
    await client.create(PODS, {"metadata": {"name": "app"}, "spec": {
        "schedulerName": "pincompute", "terminationGracePeriodSeconds": 10,
        "containers": [{"name": "main", "image": "python", "command": [PYTHON, "-c", code],
                        "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}}}]}},
        namespace="default")
    await running(client, "app")

    async def handling_sigterm() -> bool:
        return started.exists()

    await eventually(handling_sigterm, what="the app to install its SIGTERM handler")
    await client.patch(NODEPOOLS, "general", {"spec": {"desiredSize": 0}})

    async def removed() -> bool:
        return not await pool_nodes(client)

    await eventually(removed, timeout=30, what="the process node to drain and go")
    assert marker.read_text() == "term"  # stopped by SIGTERM within its grace period
    with contextlib.suppress(NotFound):
        assert not await client.get(PODS, "app", namespace="default")
    # (the node's directory goes after its Node object: the provisioner deletes it last)
    await eventually(lambda: asyncio.to_thread(
        lambda: not (member.node_dir / "general-0").exists()), what="the node's directory gone")
    await pool_status(client, current=0, ready=0)
