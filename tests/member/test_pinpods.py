"""The PinPod operator: one pod per PinPod, updated in place or recreated (and saying
which), stopped and started, one container restarted, failed over with its data when its
node goes — on an embedded member cluster with the scheduler, the node provisioner and
node agents (sim, and real processes for the failover with data)."""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from pincompute.kube.backends.embedded import EmbeddedStore
from pincompute.kube.objects import condition_true, deepcopy, now
from pincompute.kube.protocol import KubeClient
from pincompute.kube.resource import EVENTS, NAMESPACES, NODES, PODS
from pincompute.member.nodepools import add_nodepool_controller
from pincompute.member.pinpodrules import (
    ACTIONS,
    Action,
    Situation,
    desired_pod,
    node_health,
    pod_template,
    situation,
    updated_in_place,
)
from pincompute.member.pinpods import add_pinpod_controller, node_fate_changed
from pincompute.member.provisioner import (
    NodeProvisioner,
    ProvisionerConfig,
    add_node_provisioner,
    mark_for_removal,
)
from pincompute.model import registry
from pincompute.model.base import API_VERSION
from pincompute.model.registry import NODEPOOLS, PINPODS
from pincompute.model.wellknown import (
    NODE_DRAIN_ANNOTATION,
    OWNER_UID_LABEL,
    RESTART_TOKEN_ENV,
)
from pincompute.node import BackoffPolicy
from pincompute.node.agenthost import AgentHost
from pincompute.node.nodelifecyclecontroller import LifecycleConfig, add_node_lifecycle_controller
from pincompute.runtime.controller import Event
from pincompute.runtime.manager import Manager
from pincompute.scheduler import Scheduler
from pincompute.scheduler.metrics import SchedulerMetrics
from tests.member.test_provisioner import PYTHON
from tests.waiting import eventually

CLUSTER = "zone-a-1"


# --- pure rules ---------------------------------------------------------------------------------

def pinpod(**spec: Any) -> dict[str, Any]:
    body = {"containers": [
        {"name": "app", "image": "app:1",
         "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}},
         "volumeMounts": [{"name": "data", "mountPath": "/data"}]},
        {"name": "proxy", "image": "proxy:1", "type": "sidecar"}],
        "volumes": [{"name": "data", "persistent": {"size": "1Gi"}}],
        "terminationGracePeriodSeconds": 1}
    body.update(spec)
    return {"apiVersion": API_VERSION, "kind": "PinPod",
            "metadata": {"name": "db", "namespace": "default"}, "spec": body}


def stored(obj: dict[str, Any], *, uid: str = "uid-db", **status: Any) -> dict[str, Any]:
    out = registry.validate(deepcopy(obj))
    out["metadata"].update(uid=uid, generation=1)
    if status:
        out["status"] = status
    return out


def test_the_decision_table_covers_every_situation() -> None:
    assert set(ACTIONS) == set(Situation)
    assert ACTIONS[Situation.LOST] is Action.FAIL_OVER
    assert ACTIONS[Situation.RESHAPED] is Action.RECREATE
    assert ACTIONS[Situation.CHANGED] is Action.UPDATE_IN_PLACE


def test_situations() -> None:
    pp = stored(pinpod())
    want = desired_pod(pp, backend="embedded")
    live = deepcopy(want) | {"status": {"phase": "Running"}}
    live["metadata"]["uid"] = "pod-1"
    healthy = node_health({"metadata": {"name": "n"}, "status": {"conditions": [
        {"type": "Ready", "status": "True"}]}}, now=time.time(), grace=10)
    assert situation(pp, None, desired=want, node=None) is Situation.ABSENT
    assert situation(stored(pinpod(), podUID="pod-1"), None, desired=want,
                     node=None) is Situation.LOST
    assert situation(pp, live, desired=want, node=healthy) is Situation.CURRENT
    # Image: in place.  Volumes: recreate.
    image = pinpod()
    image["spec"]["containers"][0]["image"] = "app:2"
    assert situation(stored(image), live, desired=desired_pod(stored(image), backend="embedded"),
                     node=healthy) is Situation.CHANGED
    vol = pinpod(volumes=[{"name": "data", "persistent": {"size": "2Gi"}}])
    assert situation(stored(vol), live, desired=desired_pod(stored(vol), backend="embedded"),
                     node=healthy) is Situation.RESHAPED
    # Any container field is in place on embedded clusters, only the image on real ones.
    env = pinpod()
    env["spec"]["containers"][0]["env"] = [{"name": "A", "value": "1"}]
    assert situation(stored(env), live, desired=desired_pod(stored(env), backend="embedded"),
                     node=healthy) is Situation.CHANGED
    kube_live = desired_pod(pp, backend="kubernetes")
    kube_live["metadata"]["uid"] = "pod-1"
    assert situation(stored(env), kube_live,
                     desired=desired_pod(stored(env), backend="kubernetes"),
                     node=healthy) is Situation.RESHAPED
    assert situation(stored(image), kube_live,
                     desired=desired_pod(stored(image), backend="kubernetes"),
                     node=healthy) is Situation.CHANGED
    # Stopped; a dead node; a failed pod; a finished one; somebody else's pod.
    assert situation(stored(pinpod(stopped=True)), live, desired=want,
                     node=healthy) is Situation.STOPPING
    assert situation(stored(pinpod(stopped=True)), None, desired=want,
                     node=None) is Situation.STOPPED
    assert situation(pp, live, desired=want, node=node_health(
        None, now=time.time(), grace=10)) is Situation.STRANDED
    failed = deepcopy(live) | {"status": {"phase": "Failed", "reason": "Evicted"}}
    assert situation(pp, failed, desired=want, node=healthy) is Situation.FAILED
    done = stored(pinpod(restartPolicy="Never"))
    finished = deepcopy(live) | {"status": {"phase": "Failed"}}
    assert situation(done, finished, desired=want, node=healthy) is Situation.FINISHED
    other = deepcopy(live)
    other["metadata"]["ownerReferences"][0]["uid"] = "someone-else"
    assert situation(pp, other, desired=want, node=healthy) is Situation.FOREIGN


def test_node_health_waits_out_the_grace() -> None:
    t = time.time()

    def node(ready: str, since: float) -> dict[str, Any]:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(since))
        return {"metadata": {"name": "n"}, "status": {"conditions": [
            {"type": "Ready", "status": ready, "lastTransitionTime": stamp}]}}

    assert node_health(None, now=t, grace=30).dead
    soon = node_health(node("Unknown", t - 10), now=t, grace=30)
    assert not soon.dead and soon.recheck_in is not None and 15 < soon.recheck_in <= 21
    late = node_health(node("False", t - 40), now=t, grace=30)
    assert late.dead and late.reason == "NodeNotReady"
    assert not node_health(node("True", t - 40), now=t, grace=30).dead


def test_only_node_events_that_may_move_pods_reconcile_them() -> None:
    def node(ready: str = "True", **extra: Any) -> dict[str, Any]:
        return {"metadata": {"name": "n", **extra.pop("md", {})}, "spec": extra,
                "status": {"conditions": [{"type": "Ready", "status": ready}],
                           "allocatable": {"cpu": "4"}}}

    heartbeat = node()
    heartbeat["status"]["allocatable"] = {"cpu": "3"}
    assert not node_fate_changed(Event("update", heartbeat, node()))
    assert node_fate_changed(Event("update", node("Unknown"), node()))
    assert node_fate_changed(Event("update", node(unschedulable=True), node()))
    assert node_fate_changed(Event("update", node(md={"annotations": {
        NODE_DRAIN_ANNOTATION: now()}}), node()))
    assert node_fate_changed(Event("delete", node()))


def test_restart_token_changes_only_its_container() -> None:
    before = desired_pod(stored(pinpod()), backend="embedded")
    after = desired_pod(stored(pinpod(restarts={"proxy": "t1"})), backend="embedded")
    assert after["spec"]["containers"][0] == before["spec"]["containers"][0]
    assert {"name": RESTART_TOKEN_ENV, "value": "t1"} in after["spec"]["containers"][1]["env"]
    assert "restarts" not in pod_template(stored(pinpod(restarts={"proxy": "t1"})))["spec"]
    live = deepcopy(before)
    live["metadata"]["resourceVersion"] = "7"
    updated = updated_in_place(live, after, backend="embedded")
    assert updated["spec"]["containers"] == after["spec"]["containers"]
    assert updated["metadata"]["resourceVersion"] == "7"
    # On real clusters only the image of a live pod is written.
    kube_live = desired_pod(stored(pinpod()), backend="kubernetes")
    image = pinpod()
    image["spec"]["containers"][1]["image"] = "proxy:2"
    kube_after = updated_in_place(kube_live, desired_pod(stored(image), backend="kubernetes"),
                                  backend="kubernetes")
    assert kube_after["spec"]["initContainers"][0]["image"] == "proxy:2"
    assert kube_after["spec"]["containers"] == kube_live["spec"]["containers"]


def test_an_unknown_container_cannot_be_restarted() -> None:
    with pytest.raises(Exception, match="restarts"):
        registry.validate(pinpod(restarts={"nope": "t1"}))


# --- a member cluster -------------------------------------------------------------------------

class Member:
    """An embedded member cluster: infrastructure in one manager, the PinPod operator in
    another (so the operator alone can be killed and restarted)."""

    def __init__(self, store: EmbeddedStore, *, node_dir: Path, runtime: str) -> None:
        self.store = store
        self.client = store.client()
        self.node_dir = node_dir
        self.runtime = runtime
        self.infra: Manager | None = None
        self.operator: Manager | None = None
        self.provisioner: NodeProvisioner | None = None
        self._tasks: dict[str, asyncio.Task[None]] = {}

    async def start_infra(self) -> None:
        manager = Manager(name="infra", shutdown_timeout=5.0)
        add_nodepool_controller(manager, client=self.client)
        # Nodes count as unreachable 3 s after their last Lease renewal (failover tests wait
        # for that), so they renew well within it: at the agent's default (every 10 s) every
        # node went unreachable between renewals and its pods were marked not ready.
        add_node_lifecycle_controller(manager, client=self.client,
                                      config=LifecycleConfig(grace_period=3.0))
        Scheduler.attach(manager, self.client,
                         metrics=SchedulerMetrics(registry=CollectorRegistry()),
                         initial_backoff=0.1, max_backoff=0.5)
        host = AgentHost(self.client, zone="zone-a", runtime=self.runtime,  # type: ignore[arg-type]
                         node_dir=self.node_dir, node_options={
                             "backoff": BackoffPolicy(initial=0.2, maximum=1.0),
                             "probe_scale": 0.2, "shutdown_grace": 2.0,
                             "status_interval": 0.2, "record_events": False,
                             "heartbeat_interval": 0.5})
        self.provisioner = add_node_provisioner(manager, client=self.client, host=host,
                                                config=ProvisionerConfig(cluster=CLUSTER))
        self.infra = manager
        self._tasks["infra"] = asyncio.create_task(manager.run())
        await manager.wait_started()

    async def start_operator(self) -> None:
        manager = Manager(name="operator", shutdown_timeout=5.0)
        add_pinpod_controller(manager, client=self.client, backend="embedded",
                              identity="test", cluster=CLUSTER, zone="zone-a",
                              failover_grace=1.0)
        self.operator = manager
        self._tasks["operator"] = asyncio.create_task(manager.run())
        await manager.wait_started()

    async def stop_operator(self) -> None:
        if self.operator is not None:
            self.operator.stop()
            await self._tasks.pop("operator")
            self.operator = None

    async def stop(self) -> None:
        await self.stop_operator()
        if self.infra is not None:
            self.infra.stop()
            await self._tasks.pop("infra")
        if self.provisioner is not None:
            await self.provisioner.close()


@pytest.fixture
def node_dir() -> Iterator[Path]:
    root = Path(tempfile.mkdtemp(prefix="pincompute-pinpods-"))
    os.chmod(root, 0o711)
    try:
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)


async def member_cluster(node_dir: Path, *, runtime: str, nodes: int) -> Member:
    store = await EmbeddedStore.open(path=None)
    registry.install(store, resources=registry.MEMBER_RESOURCES)
    member = Member(store, node_dir=node_dir, runtime=runtime)
    for ns in ("default", "pincompute-system"):
        await member.client.create(NAMESPACES, {"metadata": {"name": ns}})
    await member.start_infra()
    await member.client.create(NODEPOOLS, {"metadata": {"name": "general"}, "spec": {
        "instanceType": "embedded.standard-4", "runtime": runtime,
        "capacity": {"cpu": "4", "memory": "8Gi", "pods": "110"},
        "minSize": 0, "maxSize": 10, "desiredSize": nodes}})

    async def ready() -> bool:
        items = (await member.client.list(NODES)).items
        return len(items) == nodes and all(
            condition_true(n, "Ready") and not n["spec"].get("taints") for n in items)

    await eventually(ready, timeout=30, what=f"{nodes} ready nodes")
    return member


@pytest.fixture
async def sim(node_dir: Path) -> AsyncIterator[Member]:
    member = await member_cluster(node_dir, runtime="sim", nodes=2)
    await member.start_operator()
    try:
        yield member
    finally:
        await member.stop()
        await member.store.close()


def sim_pinpod(**spec: Any) -> dict[str, Any]:
    obj = pinpod(**spec)
    obj["metadata"]["annotations"] = {"sim.pincompute.io/stop-delay": "0.05"}
    return obj


async def get(client: KubeClient, name: str = "db") -> dict[str, Any]:
    return await client.get(PINPODS, name, namespace="default")


async def running(client: KubeClient, *, not_uid: str | None = None,
                  timeout: float = 20.0) -> tuple[dict[str, Any], dict[str, Any]]:
    """The PinPod once it reports its pod Running and Ready (another pod than ``not_uid``)."""
    async def check() -> tuple[dict[str, Any], dict[str, Any]] | None:
        pp = await get(client)
        status = pp.get("status") or {}
        if status.get("phase") != "Running" or not condition_true(pp, "Ready"):
            return None
        pods = (await client.list(PODS, namespace="default")).items
        if len(pods) != 1 or pods[0]["metadata"]["uid"] == not_uid or \
                pods[0]["metadata"].get("deletionTimestamp"):
            return None
        if status.get("podUID") != pods[0]["metadata"]["uid"]:
            return None
        return pp, pods[0]

    return await eventually(check, timeout=timeout, what="the PinPod running")


async def events(client: KubeClient, reason: str) -> list[str]:
    items = (await client.list(EVENTS, namespace="default")).items
    return [e["message"] for e in items if e.get("reason") == reason
            and e["involvedObject"]["kind"] == "PinPod"]


async def has_event(client: KubeClient, reason: str, *parts: str) -> str:
    async def check() -> str | None:
        return next((m for m in await events(client, reason) if all(p in m for p in parts)),
                    None)

    return await eventually(check, what=f"a {reason} event")


def restarts(pod: dict[str, Any]) -> dict[str, int]:
    return {c["name"]: c.get("restartCount", 0)
            for c in pod["status"].get("containerStatuses") or ()}


# --- reconcile tests (sim) ----------------------------------------------------------------------

async def test_a_pinpod_becomes_one_pod_with_its_sidecar(sim: Member) -> None:
    client = sim.client
    await client.create(PINPODS, sim_pinpod(), namespace="default")
    pp, pod = await running(client)
    assert pod["metadata"]["name"] == "db"
    assert [c.get("type", "main") for c in pod["spec"]["containers"]] == ["main", "sidecar"]
    status = pp["status"]
    assert status["nodeName"] == pod["spec"]["nodeName"] and status["podIP"]
    assert (status["cluster"], status["zone"], status["observedGeneration"]) == (
        CLUSTER, "zone-a", 1)
    assert {c["name"]: (c["type"], c["state"], c["ready"])
            for c in status["containerStatuses"]} == {
        "app": ("main", "running", True), "proxy": ("sidecar", "running", True)}
    assert condition_true(pp, "Ready") and not condition_true(pp, "Stopped")
    assert not status.get("failovers")
    await has_event(client, "Created", "Created pod db")


async def test_an_image_change_updates_that_container_in_place(sim: Member) -> None:
    client = sim.client
    await client.create(PINPODS, sim_pinpod(), namespace="default")
    _, pod = await running(client)
    await client.patch(PINPODS, "db", {"spec": {"containers": [
        pod["spec"]["containers"][0], {"name": "proxy", "image": "proxy:2", "type": "sidecar"}]}},
        namespace="default")

    async def updated() -> dict[str, Any] | None:
        got = await client.get(PODS, "db", namespace="default")
        statuses = {c["name"]: c for c in got["status"].get("containerStatuses") or ()}
        return got if statuses.get("proxy", {}).get("image") == "proxy:2" and \
            statuses["proxy"].get("ready") else None

    got = await eventually(updated, what="the sidecar running the new image")
    assert got["metadata"]["uid"] == pod["metadata"]["uid"]  # the same pod
    assert restarts(got)["app"] == 0  # the main container was not touched
    pp, _ = await running(client)
    assert pp["status"]["lastUpdate"]["type"] == "UpdatedInPlace"
    assert pp["status"]["lastUpdate"]["containers"] == ["proxy"]
    assert pp["status"]["observedGeneration"] == 2
    await has_event(client, "UpdatedInPlace", "proxy")


async def test_a_volume_change_recreates_the_pod(sim: Member) -> None:
    client = sim.client
    await client.create(PINPODS, sim_pinpod(), namespace="default")
    _, pod = await running(client)
    await client.patch(PINPODS, "db", {"spec": {"volumes": [
        {"name": "data", "persistent": {"size": "1Gi"}}, {"name": "tmp", "emptyDir": {}}]}},
        namespace="default")
    pp, new = await running(client, not_uid=pod["metadata"]["uid"])
    assert [v["name"] for v in new["spec"]["volumes"]] == ["data", "tmp"]
    assert pp["status"]["lastUpdate"]["type"] == "Recreated"
    assert "volumes" in pp["status"]["lastUpdate"]["message"]
    assert not pp["status"].get("failovers")  # recreated on purpose: not a failover
    await has_event(client, "Recreated", "volumes")


async def test_stop_and_start(sim: Member) -> None:
    client = sim.client
    await client.create(PINPODS, sim_pinpod(), namespace="default")
    _, pod = await running(client)
    await client.patch(PINPODS, "db", {"spec": {"stopped": True}}, namespace="default")

    async def stopped() -> dict[str, Any] | None:
        pp = await get(client)
        pods = (await client.list(PODS, namespace="default")).items
        return pp if not pods and pp["status"].get("phase") == "Stopped" else None

    pp = await eventually(stopped, what="the PinPod stopped with no pod")
    assert condition_true(pp, "Stopped") and not condition_true(pp, "Ready")
    assert pp["spec"]["containers"][0]["image"] == "app:1"  # the spec is kept
    await client.patch(PINPODS, "db", {"spec": {"stopped": False}}, namespace="default")
    pp, _ = await running(client, not_uid=pod["metadata"]["uid"])
    assert not condition_true(pp, "Stopped") and not pp["status"].get("failovers")


async def test_restart_one_container(sim: Member) -> None:
    client = sim.client
    await client.create(PINPODS, sim_pinpod(), namespace="default")
    _, pod = await running(client)
    await client.patch(PINPODS, "db", {"spec": {"restarts": {"app": "r1"}}},
                       namespace="default")

    async def restarted() -> dict[str, Any] | None:
        got = await client.get(PODS, "db", namespace="default")
        return got if restarts(got) == {"app": 1, "proxy": 0} and all(
            c.get("ready") for c in got["status"]["containerStatuses"]) else None

    got = await eventually(restarted, what="app restarted once, proxy not")
    assert got["metadata"]["uid"] == pod["metadata"]["uid"]
    await has_event(client, "UpdatedInPlace", "restart requested: app")
    # The same token again is a no-op.
    await client.patch(PINPODS, "db", {"metadata": {"labels": {"touched": "yes"}},
                                       "spec": {"restarts": {"app": "r1"}}},
                       namespace="default")

    async def labelled() -> dict[str, Any] | None:
        got = await client.get(PODS, "db", namespace="default")
        return got if got["metadata"]["labels"].get("touched") == "yes" else None

    got = await eventually(labelled, what="the new label on the pod, in place")
    await asyncio.sleep(0.5)
    got = await client.get(PODS, "db", namespace="default")
    assert restarts(got) == {"app": 1, "proxy": 0}


async def test_a_restarted_operator_converges_with_no_duplicate_pod(sim: Member) -> None:
    client = sim.client
    await client.create(PINPODS, sim_pinpod(), namespace="default")
    _, pod = await running(client)
    uid = (await get(client))["metadata"]["uid"]
    # Kill the operator in the middle of a recreation: the old pod deleted, no new one yet.
    await client.patch(PINPODS, "db", {"spec": {"volumes": [
        {"name": "data", "persistent": {"size": "1Gi"}}, {"name": "tmp", "emptyDir": {}}]}},
        namespace="default")

    async def deleting() -> bool:
        got = (await client.list(PODS, namespace="default")).items
        return not got or any(p["metadata"].get("deletionTimestamp") or
                              p["metadata"]["uid"] != pod["metadata"]["uid"] for p in got)

    await eventually(deleting, what="the old pod going", interval=0.01)
    await sim.stop_operator()
    await sim.start_operator()
    pp, new = await running(client, not_uid=pod["metadata"]["uid"])
    # And again, right after a create.
    await sim.stop_operator()
    await sim.start_operator()
    await asyncio.sleep(0.5)
    pp, again = await running(client)
    assert again["metadata"]["uid"] == new["metadata"]["uid"]
    owned = (await client.list(PODS, namespace="default",
                               label_selector=f"{OWNER_UID_LABEL}={uid}")).items
    assert len(owned) == 1
    assert not pp["status"].get("failovers")


async def test_a_pinpod_fails_over_when_its_node_is_gone(sim: Member) -> None:
    client = sim.client
    await client.create(PINPODS, sim_pinpod(), namespace="default")
    _, pod = await running(client)
    old = pod["spec"]["nodeName"]
    old_uid = (await client.get(NODES, old))["metadata"]["uid"]
    assert sim.provisioner is not None
    # The machine vanishes: its Node object goes, and with it (the provisioner sees to
    # that) its agent.  (Stopping the agent first would race the provisioner, which
    # re-adopts a Node whose agent is gone: a same-named node came back under the pod.)
    await client.delete(NODES, old)
    pp, new = await running(client, not_uid=pod["metadata"]["uid"])
    # Another machine: the pool's replacement takes a new name while the old pod is bound
    # to the old one (once it is gone, the name may come back).
    assert (await client.get(NODES, new["spec"]["nodeName"]))["metadata"]["uid"] != old_uid
    assert pp["status"]["failovers"] == 1
    (entry,) = pp["status"]["failoverHistory"]
    assert (entry["fromNode"], entry["toNode"]) == (old, new["spec"]["nodeName"])
    assert entry["reason"] == "NodeGone"
    await has_event(client, "FailedOver", old, new["spec"]["nodeName"])


# --- end to end, real processes -----------------------------------------------------------------

@pytest.mark.slow
async def test_a_pinpod_fails_over_with_its_data_when_its_node_is_drained(
        node_dir: Path) -> None:
    member = await member_cluster(node_dir, runtime="process", nodes=2)
    await member.start_operator()
    client = member.client
    try:
        # Each start appends a line to a file on the persistent volume: the data of every
        # life of the pod, whichever node it ran on.
        script = ("import os, time\n"
                  "path = os.path.join(os.environ['PINCOMPUTE_VOLUME_DATA'], 'lives')\n"
                  "with open(path, 'a') as f: f.write(os.environ['PINCOMPUTE_NODE_NAME'] + '\\n')\n"
                  "time.sleep(3600)\n")
        obj = pinpod()
        obj["spec"]["containers"] = [{"name": "app", "image": "local",
                                      "command": [PYTHON, "-c", script],
                                      "volumeMounts": [{"name": "data", "mountPath": "/data"}]}]
        await client.create(PINPODS, obj, namespace="default")
        _, pod = await running(client, timeout=30)
        first = pod["spec"]["nodeName"]
        lives = node_dir / "storage" / "persistent" / "default" / "pinpod-db" / "data" / "lives"

        async def written(n: int) -> list[str] | None:
            text = await asyncio.to_thread(lambda: lives.read_text() if lives.exists() else "")
            found = text.split()
            return found if len(found) >= n else None

        assert await eventually(lambda: written(1), what="the first life's data") == [first]
        drained_at = now()
        assert await mark_for_removal(client, first)
        pp, new = await running(client, not_uid=pod["metadata"]["uid"], timeout=40)
        second = new["spec"]["nodeName"]
        assert second != first
        # The new pod found the data of the old one, on another node.
        assert await eventually(lambda: written(2), what="the second life's data") == [
            first, second]
        assert pp["status"]["failovers"] == 1
        (entry,) = pp["status"]["failoverHistory"]
        assert (entry["fromNode"], entry["toNode"], entry["reason"]) == (
            first, second, "NodeDrained")
        assert entry["time"] >= drained_at
        await has_event(client, "FailedOver", first, second)
    finally:
        await member.stop()
        await member.store.close()
