"""Service discovery: the ready endpoints of a project's PinApps in ``pincompute-discovery``.

On sim nodes endpoints appear as pods get ready and go as they stop being ready or are
deleted; on a real process node a pod reading the discovery file sees another app's ready
endpoint within a second of it becoming ready."""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from pincompute.kube.backends.embedded import EmbeddedStore
from pincompute.kube.errors import NotFound
from pincompute.kube.objects import condition_true, deepcopy
from pincompute.kube.protocol import KubeClient
from pincompute.kube.resource import CONFIGMAPS, NAMESPACES, NODES, PODS
from pincompute.kube.wellknown import ZONE_LABEL
from pincompute.member.discovery import add_discovery_controller, document, mount_discovery
from pincompute.member.operator import admit_pod, workload_labels
from pincompute.model.wellknown import (
    DISCOVERY_CONFIGMAP,
    DISCOVERY_FILE_ENV,
    DISCOVERY_KEY,
    DISCOVERY_MOUNT,
    DISCOVERY_TRUNCATED_ANNOTATION,
)
from pincompute.node import NodeAgent, NodeConfig, NodeIdentity
from pincompute.node.runtimeapi import NodeClient
from pincompute.runtime.manager import Manager
from tests.node.conftest import FAST_BACKOFF, make_pod, node_root, py  # noqa: F401
from tests.waiting import eventually


def app_labels(app: str, *, kind: str = "PinApp", replica: int = 0) -> dict[str, str]:
    """The labels a PinApp's PinPod's pod gets (through workload_labels, twice)."""
    owner = {"kind": kind, "metadata": {"name": app, "uid": f"uid-{app}"}}
    pinpod = {"kind": "PinPod", "metadata": {"name": f"{app}-{replica}",
                                             "uid": f"uid-{app}-{replica}",
                                             "labels": workload_labels(owner)}}
    return workload_labels(pinpod)


def app_pod(name: str, app: str, *, port: int = 8080, ready: bool = True,
            namespace: str = "default", kind: str = "PinApp", node: str = "n1",
            command: list[str] | None = None, **spec: Any) -> dict[str, Any]:
    annotations = {} if ready else {"sim.pincompute.io/ready": "false"}
    container: dict[str, Any] = {"name": "main",
                                 "ports": [{"name": "http", "containerPort": port}]}
    if command is not None:
        container["command"] = command
    return make_pod(name, [container], node=node, namespace=namespace,
                    metadata={"labels": app_labels(app, kind=kind),
                              "annotations": annotations}, **spec)


def test_the_document_lists_ready_endpoints_per_app_in_a_fixed_order() -> None:
    def pod(name: str, app: str, ip: str | None, ready: bool) -> dict[str, Any]:
        p = app_pod(name, app)
        p["status"] = {"podIP": ip, "conditions": [
            {"type": "Ready", "status": "True" if ready else "False"}]}
        return p

    pods = [pod("web-1", "web", "127.0.0.3", True), pod("web-0", "web", "127.0.0.2", True),
            pod("api-0", "api", "127.0.0.4", False), pod("web-2", "web", None, True)]
    doc = json.loads(document(pods, kinds={"pinapp"}, zone_of=lambda n: f"zone-of-{n}"))
    assert list(doc) == ["api", "web"] and doc["api"] == []
    assert doc["web"] == [
        {"ip": "127.0.0.2", "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
         "zone": "zone-of-n1", "node": "n1", "pod": "web-0"},
        {"ip": "127.0.0.3", "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
         "zone": "zone-of-n1", "node": "n1", "pod": "web-1"}]
    assert document(list(reversed(pods)), kinds={"pinapp"}, zone_of=lambda n: f"zone-of-{n}") \
        == document(pods, kinds={"pinapp"}, zone_of=lambda n: f"zone-of-{n}")
    assert json.loads(document(pods, kinds={"pinjob"})) == {}


async def test_on_real_clusters_new_pods_get_the_file_mounted(cluster: KubeClient) -> None:
    """No agent of ours runs the pods there: an admission hook mounts the ConfigMap."""
    manager = Manager(name="discovery")
    add_discovery_controller(manager, client=cluster, backend="kubernetes")
    pod = await admit_pod(cluster, app_pod("web-0", "web", initContainers=[{"name": "init"}]))
    assert {"name": DISCOVERY_CONFIGMAP,
            "configMap": {"name": DISCOVERY_CONFIGMAP, "optional": True}} in pod["spec"]["volumes"]
    for c in (*pod["spec"]["containers"], *pod["spec"]["initContainers"]):
        assert {"name": DISCOVERY_CONFIGMAP, "mountPath": DISCOVERY_MOUNT,
                "readOnly": True} in c["volumeMounts"]
        assert {"name": DISCOVERY_FILE_ENV,
                "value": f"{DISCOVERY_MOUNT}/{DISCOVERY_KEY}"} in c["env"]
    assert mount_discovery(deepcopy(pod)) == pod  # once only
    embedded = Manager(name="embedded")
    other = await EmbeddedStore.open(path=None)
    try:
        add_discovery_controller(embedded, client=other.client(), backend="embedded")
        plain = app_pod("web-1", "web")
        assert await admit_pod(other.client(), deepcopy(plain)) == plain
    finally:
        await other.close()


# --- on sim nodes ---------------------------------------------------------------------------

@pytest.fixture
async def cluster() -> AsyncIterator[KubeClient]:
    store = await EmbeddedStore.open(path=None)
    client = store.client()
    for ns in ("default", "team-b"):
        await client.create(NAMESPACES, {"metadata": {"name": ns}})
    yield client
    await store.close()


@pytest.fixture
async def discovery(cluster: KubeClient) -> AsyncIterator[Manager]:
    manager = Manager(name="discovery", shutdown_timeout=5.0)
    add_discovery_controller(manager, client=cluster, zone="fallback-zone")
    task = asyncio.create_task(manager.run())
    await manager.wait_started()
    yield manager
    manager.stop()
    await task


async def endpoints(client: KubeClient, namespace: str = "default") -> dict[str, Any] | None:
    try:
        cm = await client.get(CONFIGMAPS, DISCOVERY_CONFIGMAP, namespace=namespace)
    except NotFound:
        return None
    return json.loads(cm["data"][DISCOVERY_KEY])


async def test_endpoints_appear_and_disappear_as_pods_get_ready_and_go(
        cluster: KubeClient, discovery: Manager) -> None:
    agent = NodeAgent(cluster, NodeConfig(identity=NodeIdentity(name="n1", zone="zone-a"),
                                          runtime="sim", backoff=FAST_BACKOFF))
    await agent.start()
    try:
        await cluster.create(PODS, app_pod("web-0", "web"), namespace="default")
        await cluster.create(PODS, app_pod("web-1", "web", ready=False), namespace="default")
        await cluster.create(PODS, app_pod("job-0", "batch", kind="PinJob"),
                             namespace="default")
        await cluster.create(PODS, app_pod("api-0", "api", namespace="team-b"),
                             namespace="team-b")

        async def web_ready() -> Any:
            doc = await endpoints(cluster)
            return doc if doc and [e["pod"] for e in doc.get("web", ())] == ["web-0"] \
                else None

        doc = await eventually(web_ready)
        assert set(doc) == {"web"}  # a PinJob's pods are not a PinApp's endpoints
        (entry,) = doc["web"]
        pod = await cluster.get(PODS, "web-0", namespace="default")
        assert entry == {"ip": pod["status"]["podIP"],
                         "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
                         "zone": "zone-a", "node": "n1", "pod": "web-0"}

        async def team_b() -> Any:
            doc = await endpoints(cluster, "team-b")
            return doc if doc and doc.get("api") else None

        assert [e["pod"] for e in (await eventually(team_b))["api"]] == ["api-0"]
        assert "api" not in (await endpoints(cluster) or {})  # projects see only their own

        # Gone: deleted pods leave the file (the app with them when it has no pod left).
        await cluster.delete(PODS, "web-0", namespace="default")

        async def web_gone() -> Any:
            doc = await endpoints(cluster)
            return doc is not None and doc.get("web") == []

        await eventually(web_gone)
        await cluster.delete(PODS, "web-1", namespace="default")

        async def empty() -> Any:
            return await endpoints(cluster) == {}

        await eventually(empty)
    finally:
        await agent.stop()


async def test_an_unchanged_set_of_endpoints_is_not_rewritten(cluster: KubeClient,
                                                             discovery: Manager) -> None:
    pod = app_pod("web-0", "web")
    pod["status"] = {"podIP": "127.0.0.5", "conditions": [{"type": "Ready", "status": "True"}]}
    created = await cluster.create(PODS, pod, namespace="default")
    created["status"] = pod["status"]
    await cluster.update_status(PODS, created)

    async def written() -> Any:
        if not (await endpoints(cluster) or {}).get("web"):
            return None
        return await cluster.get(CONFIGMAPS, DISCOVERY_CONFIGMAP, namespace="default")

    cm = await eventually(written)
    assert json.loads(cm["data"][DISCOVERY_KEY])["web"][0]["zone"] == "fallback-zone"
    current = await cluster.get(PODS, "web-0", namespace="default")
    current["metadata"].setdefault("annotations", {})["touched"] = "yes"
    await cluster.update(PODS, current)
    await asyncio.sleep(0.5)
    again = await cluster.get(CONFIGMAPS, DISCOVERY_CONFIGMAP, namespace="default")
    assert again["metadata"]["resourceVersion"] == cm["metadata"]["resourceVersion"]


async def test_a_node_registered_later_gives_its_pods_their_zone(
        cluster: KubeClient, discovery: Manager) -> None:
    pod = app_pod("web-0", "web", node="late-node")
    pod["status"] = {"podIP": "127.0.0.7", "conditions": [{"type": "Ready", "status": "True"}]}
    created = await cluster.create(PODS, pod, namespace="default")
    created["status"] = pod["status"]
    await cluster.update_status(PODS, created)

    def zone_is(want: str) -> Any:
        async def check() -> bool:
            doc = await endpoints(cluster) or {}
            return [e["zone"] for e in doc.get("web", ())] == [want]
        return check

    await eventually(zone_is("fallback-zone"))  # the node is not known yet
    await cluster.create(NODES, {"metadata": {"name": "late-node",
                                              "labels": {ZONE_LABEL: "zone-q"}}})
    await eventually(zone_is("zone-q"))


async def test_a_changed_pod_is_reread_while_unchanged_ones_are_reused(
        cluster: KubeClient, discovery: Manager) -> None:
    # Each pass reuses the entries of pods whose resourceVersion it has seen: a change
    # to one pod (readiness, address) must still show, next to its unchanged sibling.
    async def set_status(name: str, *, ip: str, ready: bool) -> None:
        current = await cluster.get(PODS, name, namespace="default")
        current["status"] = {"podIP": ip, "conditions": [
            {"type": "Ready", "status": "True" if ready else "False"}]}
        await cluster.update_status(PODS, current)

    for i in range(2):
        await cluster.create(PODS, app_pod(f"web-{i}", "web"), namespace="default")
        await set_status(f"web-{i}", ip=f"127.0.0.{10 + i}", ready=True)

    def showing(want: list[tuple[str, str]]) -> Any:
        async def check() -> Any:
            doc = await endpoints(cluster) or {}
            return [(e["pod"], e["ip"]) for e in doc.get("web", ())] == want
        return check

    await eventually(showing([("web-0", "127.0.0.10"), ("web-1", "127.0.0.11")]))
    await set_status("web-0", ip="127.0.0.10", ready=False)
    await eventually(showing([("web-1", "127.0.0.11")]))
    await set_status("web-1", ip="127.0.0.21", ready=True)
    await eventually(showing([("web-1", "127.0.0.21")]))
    await set_status("web-0", ip="127.0.0.20", ready=True)
    await eventually(showing([("web-0", "127.0.0.20"), ("web-1", "127.0.0.21")]))


async def test_a_burst_is_a_few_writes_and_an_oversized_document_is_truncated(
        cluster: KubeClient) -> None:
    manager = Manager(name="discovery", shutdown_timeout=5.0)
    reconciler = add_discovery_controller(manager, client=cluster, min_interval=0.3)
    reconciler.limit = 4_000  # about 38 endpoints of ~105 bytes
    task = asyncio.create_task(manager.run())
    await manager.wait_started()
    writes: list[str] = []

    def counted(_old: Any, new: Any) -> None:
        if new["metadata"]["name"] == DISCOVERY_CONFIGMAP:
            writes.append(new["metadata"]["resourceVersion"])

    watcher = Manager(name="watcher")
    watcher.informer(cluster, CONFIGMAPS).add_event_handler(on_update=counted)
    watch_task = asyncio.create_task(watcher.run())
    try:
        for app, count in (("a", 25), ("b", 50)):
            for i in range(count):
                pod = app_pod(f"{app}-{i:02d}", app)
                pod["status"] = {"podIP": f"127.0.{ord(app)}.{i}",
                                 "conditions": [{"type": "Ready", "status": "True"}]}
                created = await cluster.create(PODS, pod, namespace="default")
                created["status"] = pod["status"]
                await cluster.update_status(PODS, created)

        async def truncated() -> Any:
            try:
                cm = await cluster.get(CONFIGMAPS, DISCOVERY_CONFIGMAP, namespace="default")
            except NotFound:
                return None
            doc = json.loads(cm["data"][DISCOVERY_KEY])
            note = (cm["metadata"].get("annotations") or {}).get(DISCOVERY_TRUNCATED_ANNOTATION)
            return (doc, note) if len(doc.get("b", ())) == len(doc.get("a", ())) > 0 and \
                note else None

        doc, note = await eventually(truncated)
        cap = len(doc["a"])
        assert 10 < cap < 25 and note == f"{cap} endpoints per app of up to 50"
        assert [e["pod"] for e in doc["a"]] == [f"a-{i:02d}" for i in range(cap)]
        # 150 pod writes, paced to one write per 0.3 s.
        assert len(writes) < 20
        for i in range(45):
            await cluster.delete(PODS, f"b-{i:02d}", namespace="default")

        async def whole() -> Any:
            cm = await cluster.get(CONFIGMAPS, DISCOVERY_CONFIGMAP, namespace="default")
            doc = json.loads(cm["data"][DISCOVERY_KEY])
            return len(doc["b"]) == 5 and len(doc["a"]) == 25 and \
                DISCOVERY_TRUNCATED_ANNOTATION not in (cm["metadata"].get("annotations") or {})

        await eventually(whole)
    finally:
        watcher.stop()
        manager.stop()
        await asyncio.gather(task, watch_task)



async def test_a_large_document_is_rewritten_at_a_bounded_rate(
        cluster: KubeClient, monkeypatch: pytest.MonkeyPatch) -> None:
    from pincompute.member import discovery

    monkeypatch.setattr(discovery, "WRITE_RATE", 4_000)  # ~3 KB below: ~0.75 s apart
    manager = Manager(name="discovery", shutdown_timeout=5.0)
    add_discovery_controller(manager, client=cluster, min_interval=0.05)
    task = asyncio.create_task(manager.run())
    await manager.wait_started()
    written: list[tuple[float, int]] = []

    def counted(_old: Any, new: Any) -> None:
        if new["metadata"]["name"] == DISCOVERY_CONFIGMAP:
            written.append((time.monotonic(), len(new["data"][DISCOVERY_KEY])))

    watcher = Manager(name="watcher")
    watcher.informer(cluster, CONFIGMAPS).add_event_handler(on_update=counted)
    watch_task = asyncio.create_task(watcher.run())
    try:
        for i in range(30):
            pod = app_pod(f"web-{i:02d}", "web")
            pod["status"] = {"podIP": f"127.0.9.{i}",
                             "conditions": [{"type": "Ready", "status": "True"}]}
            created = await cluster.create(PODS, pod, namespace="default")
            created["status"] = pod["status"]
            await cluster.update_status(PODS, created)
            await asyncio.sleep(0.05)

        async def all_written() -> Any:
            cm = await cluster.get(CONFIGMAPS, DISCOVERY_CONFIGMAP, namespace="default")
            return len(json.loads(cm["data"][DISCOVERY_KEY])["web"]) == 30

        await eventually(all_written, timeout=20)
        # Each write waits its predecessor's size over the rate (min_interval alone would
        # allow one every 0.05 s, about 30 in this burst).
        for (before, size), (after, _) in itertools.pairwise(written):
            assert after - before >= 0.8 * size / 4_000
        assert 1 < len(written) < 10
    finally:
        watcher.stop()
        manager.stop()
        await asyncio.gather(task, watch_task)


# --- end to end with real processes ---------------------------------------------------------

CLIENT = f"""
import json, os, time
path = os.environ['{DISCOVERY_FILE_ENV}']
while True:
    doc = json.load(open(path))
    if doc.get('web'):
        print('web', doc['web'][0]['ip'], doc['web'][0]['ports'][0]['port'], time.time(),
              flush=True)
        break
    time.sleep(0.005)
time.sleep(3600)
"""


async def test_a_pod_sees_another_apps_ready_endpoint_within_a_second(
        cluster: KubeClient, discovery: Manager, node_root: Any) -> None:  # noqa: F811
    agent = NodeAgent(cluster, NodeConfig(
        identity=NodeIdentity(name="n1", zone="zone-a"), runtime="process",
        root_dir=node_root / "n1", storage_dir=node_root / "storage", backoff=FAST_BACKOFF,
        probe_scale=0.2, shutdown_grace=2.0))
    await agent.start()
    try:
        await cluster.create(PODS, app_pod("client-0", "client", command=py(CLIENT)),
                             namespace="default")
        # Ready only once its readiness probe passes (a file the test creates).
        web = app_pod("web-0", "web", port=8080, command=["sleep", "3600"])
        web["spec"]["containers"][0]["readinessProbe"] = {
            "exec": {"command": ["sh", "-c", "test -e $PINCOMPUTE_ROOT/go"]},
            "periodSeconds": 1}
        await cluster.create(PODS, web, namespace="default")

        async def running() -> Any:
            pod = await cluster.get(PODS, "web-0", namespace="default")
            return (pod.get("status") or {}).get("podIP") and \
                agent.find("default", "web-0") is not None and \
                agent.find("default", "web-0").sandbox is not None

        await eventually(running)
        worker = agent.find("default", "web-0")
        root = worker.sandbox.extra["dir"] / "containers" / "main"
        (root / "go").write_text("")
        became_ready = None
        while became_ready is None:
            pod = await cluster.get(PODS, "web-0", namespace="default")
            if condition_true(pod, "Ready"):
                became_ready = time.time()
            else:
                await asyncio.sleep(0.01)
        api = NodeClient(agent.api_endpoint, agent.api_token)

        async def seen() -> Any:
            text = b"".join([c async for c in api.logs("default", "client-0", "main")])
            return text.decode().split() if text.startswith(b"web") else None

        _, ip, port, when = await eventually(seen, timeout=10)
        assert ip == pod["status"]["podIP"] and port == "8080"
        assert float(when) - became_ready < 1.0
    finally:
        await agent.stop()
