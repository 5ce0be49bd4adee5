"""Pod templates become core Pods: the fields the node agent and the scheduler read, the
mapping for real clusters, revision and container hashes; and a node agent runs one."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from pincompute.kube.backends.embedded import EmbeddedStore
from pincompute.kube.objects import controller_of, deepcopy
from pincompute.kube.protocol import KubeClient
from pincompute.kube.resource import NAMESPACES, PODS
from pincompute.member.podtemplate import (
    PodGroup,
    claim_name,
    container_hash,
    container_hashes,
    diff_containers,
    parse_hashes,
    persistent_claims,
    pod_for,
    share_claim_name,
    template_hash,
)
from pincompute.model import registry
from pincompute.model.base import GROUP, VERSION
from pincompute.model.registry import PINAPPS
from pincompute.model.wellknown import (
    CONTAINER_HASHES_ANNOTATION,
    NETWORK_MODE_ANNOTATION,
    OWNER_UID_LABEL,
    REVISION_LABEL,
    SCHEDULER_NAME,
    TIER_LABEL,
    VOLUME_KINDS_ANNOTATION,
)
from pincompute.scheduler.podinfo import PodInfo
from tests.node.conftest import (  # noqa: F401 - make_agent and node_root are fixtures
    PYTHON,
    container_status,
    eventually,
    get_pod,
    make_agent,
    node_root,
)

API = f"{GROUP}/{VERSION}"


@pytest.fixture
async def cluster() -> AsyncIterator[KubeClient]:
    """An embedded member cluster that knows PinCompute's kinds (owners must exist: the
    store collects objects whose owner is gone)."""
    store = await EmbeddedStore.open(path=None)
    registry.install(store)
    client = store.client()
    await client.create(NAMESPACES, {"apiVersion": "v1", "kind": "Namespace",
                                     "metadata": {"name": "default"}})
    yield client
    await store.close()

VOLUMES = [
    {"name": "scratch", "emptyDir": {}},
    {"name": "data", "persistent": {"size": "1Gi"}},
    {"name": "team", "shared": {"share": "models", "readOnly": True}},
    {"name": "logs", "logging": {"sizeLimit": "100Mi"}},
    {"name": "conf", "configMap": {"name": "app-config", "optional": True}},
    {"name": "creds", "secret": {"secretName": "app-secret", "optional": True}},
]


def pinapp(**spec: Any) -> dict[str, Any]:
    """A PinApp as the embedded store keeps it: validated and defaulted, with a uid."""
    obj = {"apiVersion": API, "kind": "PinApp",
           "metadata": {"name": "web", "namespace": "default", "uid": "uid-web",
                        "generation": 1},
           "spec": {"replicas": 2, "template": {
               "metadata": {"labels": {"team": "a"}},
               "spec": {"containers": [
                   {"name": "app", "image": "python:3.11", "command": ["python", "-m", "x"],
                    "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}},
                    "volumeMounts": [{"name": n, "mountPath": f"/v/{n}"}
                                     for n in ("scratch", "data", "team", "logs", "conf",
                                               "creds")]},
                   {"name": "proxy", "image": "envoy:1", "type": "sidecar"}],
                   "volumes": VOLUMES}}, **spec}}
    return registry.validate(obj)


def test_embedded_pod_keeps_pincompute_fields_and_is_scheduled_by_pincompute() -> None:
    app = pinapp()
    pod = pod_for(app["spec"]["template"], name="web-0", namespace="default", owner=app,
                  backend="embedded", tier="preemptible",
                  tolerations=[{"key": "gpu", "operator": "Exists", "effect": "NoSchedule"}],
                  node_selector={"disk": "ssd"}, index=0)
    spec = pod["spec"]
    assert spec["schedulerName"] == SCHEDULER_NAME
    assert [c.get("type", "main") for c in spec["containers"]] == ["main", "sidecar"]
    assert "initContainers" not in spec
    assert spec["volumes"] == VOLUMES  # the node agent reads the PinCompute kinds
    assert spec["restartPolicy"] == "Always"  # the PinApp's default, filled by validation
    assert spec["nodeSelector"] == {"disk": "ssd"}
    md = pod["metadata"]
    assert md["labels"]["team"] == "a" and md["labels"][TIER_LABEL] == "preemptible"
    assert md["labels"][OWNER_UID_LABEL] == "uid-web"
    assert md["labels"][REVISION_LABEL] == template_hash(app["spec"]["template"])
    assert controller_of(pod) == {"apiVersion": API, "kind": "PinApp", "name": "web",
                                  "uid": "uid-web", "controller": True,
                                  "blockOwnerDeletion": True}
    info = PodInfo.from_pod(pod)  # what the scheduler makes of it
    assert info.tier == "preemptible" and info.scheduler_name == SCHEDULER_NAME
    assert info.priority < PodInfo.from_pod(
        pod_for(app["spec"]["template"], name="x", namespace="default", owner=app,
                backend="embedded")).priority
    assert info.tolerations[0].key == "gpu" and info.node_selector == (("disk", "ssd"),)
    assert info.cpu == 100


def test_kubernetes_pod_uses_only_core_fields() -> None:
    app = pinapp()
    pod = pod_for(app["spec"]["template"], name="web-0", namespace="default", owner=app,
                  backend="kubernetes")
    spec = pod["spec"]
    assert [c["name"] for c in spec["containers"]] == ["app"]
    assert spec["initContainers"] == [{"name": "proxy", "image": "envoy:1",
                                       "restartPolicy": "Always"}]
    assert all("type" not in c for c in spec["containers"] + spec["initContainers"])
    by_name = {v["name"]: v for v in spec["volumes"]}
    assert by_name["scratch"] == {"name": "scratch", "emptyDir": {}}
    assert by_name["data"]["persistentVolumeClaim"] == {"claimName": claim_name(app, "data")}
    assert claim_name(app, "data") == "web-data"
    assert by_name["team"]["persistentVolumeClaim"] == {
        "claimName": share_claim_name("models"), "readOnly": True}
    assert by_name["logs"] == {"name": "logs", "emptyDir": {"sizeLimit": "100Mi"}}
    assert by_name["conf"] == VOLUMES[4] and by_name["creds"] == VOLUMES[5]
    assert pod["metadata"]["annotations"][VOLUME_KINDS_ANNOTATION] == \
        "data=persistent,team=shared,logs=logging"


@pytest.mark.parametrize(("mode", "host_network", "annotation"), [
    ("routable", None, None), ("host", True, None), ("bridge", None, "bridge")])
def test_network_mode(mode: str, host_network: bool | None, annotation: str | None) -> None:
    app = pinapp()
    app["spec"]["template"]["spec"]["networkMode"] = mode
    kube = pod_for(app["spec"]["template"], name="p", namespace="default", owner=app,
                   backend="kubernetes")
    assert kube["spec"].get("hostNetwork") is host_network
    assert kube["metadata"]["annotations"].get(NETWORK_MODE_ANNOTATION) == annotation
    embedded = pod_for(app["spec"]["template"], name="p", namespace="default", owner=app,
                       backend="embedded")
    assert embedded["spec"]["networkMode"] == mode


def test_pod_group_labels_and_annotations_make_a_gang() -> None:
    app = pinapp()
    pod = pod_for(app["spec"]["template"], name="t-worker-1", namespace="default", owner=app,
                  backend="embedded", pod_group=PodGroup(name="t", min_member=4,
                                                         timeout_seconds=60),
                  role="worker", index=1, hostname="t-worker-1", subdomain="t")
    info = PodInfo.from_pod(pod)
    assert (info.group, info.min_member, info.group_timeout) == ("default/t", 4, 60.0)
    assert pod["metadata"]["labels"]["pincompute.io/role"] == "worker"
    assert pod["metadata"]["labels"]["pincompute.io/index"] == "1"
    assert (pod["spec"]["hostname"], pod["spec"]["subdomain"]) == ("t-worker-1", "t")


def test_env_affinity_and_spread_are_added() -> None:
    app = pinapp()
    template = app["spec"]["template"]
    template["spec"]["containers"][0]["env"] = [{"name": "RANK", "value": "old"},
                                                {"name": "KEEP", "value": "1"}]
    affinity = {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
        "nodeSelectorTerms": [{"matchExpressions": [
            {"key": "zone", "operator": "In", "values": ["a"]}]}]}}}
    spread = [{"maxSkew": 1, "topologyKey": "kubernetes.io/hostname",
               "whenUnsatisfiable": "ScheduleAnyway",
               "labelSelector": {"matchLabels": {"pincompute.io/owner-uid": "uid-web"}}}]
    pod = pod_for(template, name="p", namespace="default", owner=app, backend="kubernetes",
                  env={"RANK": "3", "JOB_COMPLETION_INDEX": "3"}, affinity=affinity,
                  topology_spread=spread)
    app_env = pod["spec"]["containers"][0]["env"]
    assert app_env == [{"name": "KEEP", "value": "1"}, {"name": "RANK", "value": "3"},
                       {"name": "JOB_COMPLETION_INDEX", "value": "3"}]
    assert pod["spec"]["initContainers"][0]["env"][0] == {"name": "RANK", "value": "3"}
    # The hashes are the template's: per-pod variables do not make every pod look changed.
    assert parse_hashes(pod["metadata"]["annotations"][CONTAINER_HASHES_ANNOTATION]) == \
        container_hashes(template["spec"])
    info = PodInfo.from_pod(pod)
    assert info.required_terms is not None and len(info.spread) == 1


def test_env_values_may_be_sources_read_at_start() -> None:
    app = pinapp()
    source = {"configMapKeyRef": {"name": "rdv", "key": "MASTER_ADDR.0"}}
    pod = pod_for(app["spec"]["template"], name="p", namespace="default", owner=app,
                  backend="embedded", env={"MASTER_ADDR": source, "RANK": "1"})
    assert pod["spec"]["containers"][0]["env"] == [
        {"name": "MASTER_ADDR", "valueFrom": source}, {"name": "RANK", "value": "1"}]
    pod["spec"]["containers"][0]["env"][0]["valueFrom"]["configMapKeyRef"]["key"] = "x"
    assert source["configMapKeyRef"]["key"] == "MASTER_ADDR.0"  # nothing shared


def test_persistent_volumes_get_one_claim_per_owner() -> None:
    app = pinapp()
    app["spec"]["template"]["spec"]["volumes"][1]["persistent"]["storageClass"] = "fast"
    (claim,) = persistent_claims(app["spec"]["template"], owner=app, namespace="default")
    assert claim["metadata"]["name"] == claim_name(app, "data") == "web-data"
    assert claim["spec"] == {"accessModes": ["ReadWriteOnce"], "storageClassName": "fast",
                             "resources": {"requests": {"storage": "1Gi"}}}
    assert controller_of(claim)["uid"] == "uid-web"  # type: ignore[index]


def test_the_pod_shares_nothing_with_the_template() -> None:
    app = pinapp()
    before = deepcopy(app)
    pod = pod_for(app["spec"]["template"], name="p", namespace="default", owner=app,
                  backend="embedded", labels={"extra": "1"})
    pod["spec"]["containers"][0]["image"] = "changed"
    pod["spec"]["volumes"][0]["emptyDir"]["medium"] = "Memory"
    pod["metadata"]["labels"]["team"] = "b"
    assert app == before


def test_a_pinpod_spec_is_a_template_without_metadata() -> None:
    obj = registry.validate({
        "apiVersion": API, "kind": "PinPod",
        "metadata": {"name": "solo", "namespace": "default", "uid": "u1"},
        "spec": {"containers": [{"name": "main", "image": "busybox"}], "tier": "reserved"}})
    pod = pod_for({"spec": obj["spec"]}, name="solo", namespace="default", owner=obj,
                  backend="kubernetes", tier=obj["spec"]["tier"])
    assert "tier" not in pod["spec"] and "placement" not in pod["spec"]
    assert pod["metadata"]["labels"][TIER_LABEL] == "reserved"


def test_template_hash_is_stable_and_order_free() -> None:
    a = {"spec": {"containers": [{"name": "a", "image": "x:1"}], "restartPolicy": "Always"}}
    b = {"spec": {"restartPolicy": "Always", "containers": [{"image": "x:1", "name": "a"}]}}
    assert template_hash(a) == template_hash(b) == "dnswpgs6cj"  # stable across runs
    assert len(template_hash(a)) == 10 and template_hash(a).isalnum()
    b["spec"]["containers"][0]["image"] = "x:2"
    assert template_hash(a) != template_hash(b)


def test_container_hashes_round_trip_through_the_annotation() -> None:
    app = pinapp()
    pod = pod_for(app["spec"]["template"], name="p", namespace="default", owner=app,
                  backend="kubernetes")
    assert parse_hashes(pod["metadata"]["annotations"][CONTAINER_HASHES_ANNOTATION]) == \
        container_hashes(app["spec"]["template"]["spec"])
    assert parse_hashes(None) == {}


def test_diff_containers_decides_in_place_or_recreate() -> None:
    old = pinapp()["spec"]["template"]["spec"]
    same = diff_containers(old, deepcopy(old))
    assert same.unchanged and same.changed == ()

    image = deepcopy(old)
    image["containers"][1]["image"] = "envoy:2"
    d = diff_containers(old, image)
    assert d.changed == ("proxy",) and d.images_only and d.in_place

    env = deepcopy(old)
    env["containers"][0]["env"] = [{"name": "A", "value": "1"}]
    d = diff_containers(old, env)
    assert d.changed == ("app",) and not d.images_only and d.in_place  # embedded: in place

    added = deepcopy(old)
    added["containers"].append({"name": "more", "image": "x"})
    assert not diff_containers(old, added).in_place

    retyped = deepcopy(old)
    retyped["containers"][1]["type"] = "main"
    assert not diff_containers(old, retyped).in_place

    volume = deepcopy(old)
    volume["volumes"] = volume["volumes"][:1]
    volume["containers"][0]["image"] = "python:3.12"
    d = diff_containers(old, volume)
    assert d.changed == ("app",) and not d.in_place
    assert container_hash(old["containers"][0]) != container_hash(volume["containers"][0])


def test_conversion_is_cheap_enough_for_thousands_of_pods() -> None:
    app = pinapp()
    template = app["spec"]["template"]
    revision = template_hash(template)
    n = 2000
    for backend in ("embedded", "kubernetes"):
        start = time.perf_counter()
        for i in range(n):
            pod_for(template, name=f"web-{i}", namespace="default", owner=app,
                    backend=backend, revision=revision, index=i)  # type: ignore[arg-type]
        per_pod = (time.perf_counter() - start) / n
        # ~40 µs measured on the 2-core machine; the bound leaves room for a busy one.
        assert per_pod < 500e-6, f"{backend}: {per_pod * 1e6:.0f} µs per pod"


async def test_a_sim_node_agent_runs_a_converted_pod(cluster, make_agent) -> None:  # noqa: F811
    await make_agent(runtime="sim", sim_defaults={"ready-delay": "0.05"})
    app = pinapp()
    del app["metadata"]["uid"], app["metadata"]["generation"]
    app = await cluster.create(PINAPPS, app, namespace="default")
    pod = pod_for(app["spec"]["template"], name="web-0", namespace="default", owner=app,
                  backend="embedded")
    pod["spec"]["nodeName"] = "n1"  # bound, as the scheduler would
    await cluster.create(PODS, pod, namespace="default")

    async def ready() -> dict[str, Any] | None:
        got = await get_pod(cluster, "web-0")
        ok = all(container_status(got, c).get("ready") for c in ("app", "proxy"))
        return got if got.get("status", {}).get("phase") == "Running" and ok else None

    got = await eventually(ready)
    assert container_status(got, "proxy").get("ready")


async def test_a_process_node_agent_runs_a_converted_pod_with_its_volumes(
        cluster, make_agent, node_root) -> None:  # noqa: F811
    await make_agent()
    app = pinapp()
    del app["metadata"]["uid"], app["metadata"]["generation"]
    spec = app["spec"]["template"]["spec"]
    write = "; ".join(f"echo {n} > v/{n}/file" for n in ("scratch", "data", "logs"))
    spec["containers"][0].update(image="local", command=["sh", "-c", f"{write}; sleep 60"])
    spec["containers"][1].update(image="local", command=[PYTHON, "-c",
                                                         "import time; time.sleep(60)"])
    spec["terminationGracePeriodSeconds"] = 1
    app = await cluster.create(PINAPPS, app, namespace="default")
    pod = pod_for(app["spec"]["template"], name="web-0", namespace="default", owner=app,
                  backend="embedded")
    pod["spec"]["nodeName"] = "n1"
    await cluster.create(PODS, pod, namespace="default")

    async def running() -> bool:
        got = await get_pod(cluster, "web-0")
        return all("running" in (container_status(got, c).get("state") or {})
                   for c in ("app", "proxy"))

    await eventually(running)
    # The persistent volume is keyed by the controlling owner (the PinApp), as failover needs.
    data = node_root / "storage" / "persistent" / "default" / "pinapp-web" / "data" / "file"

    def written() -> bool:  # the container writes the three files one after the other
        return data.is_file() and data.read_text() == "data\n" and all(
            [f.read_text() for f in node_root.glob(f"n1/**/{d}/{n}/file")] == [f"{n}\n"]
            for d, n in (("volumes", "scratch"), ("logging", "logs")))

    await eventually(lambda: asyncio.to_thread(written))
