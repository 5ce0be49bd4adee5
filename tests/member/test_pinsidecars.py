"""The PinSidecar operator: injection at creation by labels, project namespace and tier;
upgrades in place, container by container, with maxUnavailable, main containers untouched."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import pytest

from pincompute.kube.backends.embedded import EmbeddedStore
from pincompute.kube.objects import condition_true
from pincompute.kube.protocol import KubeClient
from pincompute.kube.resource import NAMESPACES, PODS
from pincompute.member.operator import add_pod_admission, admit_pod, create_pod
from pincompute.member.pinsidecars import add_pinsidecar_controller
from pincompute.member.podtemplate import diff_containers, pod_for
from pincompute.member.sidecarinjection import (
    inject,
    injected,
    next_step,
    parse_sidecar,
    sidecar_version,
    strip_injected,
)
from pincompute.model import registry
from pincompute.model.base import GROUP, VERSION
from pincompute.model.registry import PINAPPS, PINSIDECARS
from pincompute.model.wellknown import (
    PROJECT_LABEL,
    RESERVED,
    SIDECARS_ANNOTATION,
    TIER_LABEL,
    VOLUME_KINDS_ANNOTATION,
)
from pincompute.runtime.manager import Manager
from tests.node.conftest import (  # noqa: F401 - make_agent and node_root are fixtures
    PYTHON,
    container_status,
    make_agent,
    node_root,
)
from tests.waiting import eventually

API = f"{GROUP}/{VERSION}"


def sidecar_obj(name: str = "logship", *, image: str = "shipper:1", order: int = 0,
                containers: list[dict[str, Any]] | None = None, **spec: Any) -> dict[str, Any]:
    obj = {"apiVersion": API, "kind": "PinSidecar",
           "metadata": {"name": name, "uid": f"uid-{name}", "resourceVersion": "1"},
           "spec": {"selector": {"matchLabels": {"team": "a"}},
                    "containers": containers or [{"name": f"{name}-c", "image": image}],
                    "order": order, **spec}}
    return registry.validate(obj)


def app_pod(*, labels: dict[str, str] | None = None, tier: str = "ondemand",
            backend: str = "embedded", namespace: str = "default") -> dict[str, Any]:
    owner = {"apiVersion": API, "kind": "PinApp", "metadata": {"name": "web", "uid": "u1"}}
    template = {"metadata": {"labels": labels or {"team": "a"}}, "spec": {"containers": [
        {"name": "app", "image": "app:1"}, {"name": "proxy", "image": "p:1",
                                           "type": "sidecar"}]}}
    return pod_for(template, name="web-0", namespace=namespace, owner=owner,
                   backend=backend, tier=tier)  # type: ignore[arg-type]


# --- pure rules -------------------------------------------------------------------------------

def test_injection_by_labels_namespace_and_tier_in_order() -> None:
    by_label = parse_sidecar(sidecar_obj("logship", order=5))
    by_tier = parse_sidecar(sidecar_obj("guard", order=1, selector={
        "matchLabels": {TIER_LABEL: RESERVED}}))
    by_project = parse_sidecar(sidecar_obj("audit", selector={}, namespaceSelector={
        "matchLabels": {PROJECT_LABEL: "team-a"}}))
    everything = [by_label, by_tier, by_project]
    pod, skipped = inject(app_pod(tier=RESERVED), everything, backend="embedded",
                          namespace_labels={PROJECT_LABEL: "team-a"})
    assert skipped == []
    # injected sidecars first, ascending order then name; the pod's own after
    assert [c["name"] for c in pod["spec"]["containers"]] == [
        "audit-c", "guard-c", "logship-c", "app", "proxy"]
    assert all(c["type"] == "sidecar" for c in pod["spec"]["containers"][:3])
    assert set(injected(pod)) == {"guard", "audit", "logship"}
    assert injected(pod)["logship"]["version"] == by_label.version
    pod, _ = inject(app_pod(labels={"team": "b"}), everything, backend="embedded",
                    namespace_labels={PROJECT_LABEL: "team-b"})
    assert SIDECARS_ANNOTATION not in pod["metadata"]["annotations"]
    # The operator's own view: what it wrote, so an unchanged template means no update.
    pod, _ = inject(app_pod(), everything, backend="embedded", namespace_labels={})
    assert [c["name"] for c in pod["spec"]["containers"]] == ["logship-c", "app", "proxy"]
    assert diff_containers(strip_injected(pod["spec"], pod), app_pod()["spec"]).unchanged
    # Injecting twice (a retried create) adds nothing.
    again, _ = inject(pod, everything, backend="embedded", namespace_labels={})
    assert [c["name"] for c in again["spec"]["containers"]] == ["logship-c", "app", "proxy"]


def test_a_name_clash_skips_the_sidecar_and_real_clusters_get_native_sidecars() -> None:
    clash = parse_sidecar(sidecar_obj("proxy", containers=[{"name": "proxy", "image": "x"}]))
    pod, skipped = inject(app_pod(), [clash], backend="embedded", namespace_labels={})
    assert skipped == ["proxy"] and [c["name"] for c in pod["spec"]["containers"]] == [
        "app", "proxy"]
    with_volume = parse_sidecar(sidecar_obj(
        "logship", containers=[{"name": "ship", "image": "s:1", "volumeMounts": [
            {"name": "spool", "mountPath": "/spool"}]}],
        volumes=[{"name": "spool", "logging": {}}]))
    pod, _ = inject(app_pod(backend="kubernetes"), [with_volume], backend="kubernetes",
                    namespace_labels={})
    assert [(c["name"], c.get("restartPolicy")) for c in pod["spec"]["initContainers"]] == [
        ("ship", "Always"), ("proxy", "Always")]
    assert "type" not in pod["spec"]["initContainers"][0]
    assert pod["spec"]["volumes"] == [{"name": "spool", "emptyDir": {}}]
    assert pod["metadata"]["annotations"][VOLUME_KINDS_ANNOTATION] == "spool=logging"
    # A pod declaring the same volume shares it with the sidecar; a different one clashes.
    own = app_pod()
    own["spec"]["volumes"] = [{"name": "spool", "logging": {}}]
    pod, skipped = inject(own, [with_volume], backend="embedded", namespace_labels={})
    assert skipped == [] and pod["spec"]["volumes"] == [{"name": "spool", "logging": {}}]
    assert injected(pod)["logship"]["volumes"] == []
    assert strip_injected(pod["spec"], pod)["volumes"] == [{"name": "spool", "logging": {}}]
    own = app_pod()
    own["spec"]["volumes"] = [{"name": "spool", "emptyDir": {}}]
    pod, skipped = inject(own, [with_volume], backend="embedded", namespace_labels={})
    assert skipped == ["logship"]


def test_an_upgrade_goes_container_by_container() -> None:
    two = [{"name": "ship", "image": "s:1"}, {"name": "stats", "image": "t:1"}]
    old = parse_sidecar(sidecar_obj("logship", containers=two))
    pod, _ = inject(app_pod(), [old], backend="embedded", namespace_labels={})
    new = parse_sidecar(sidecar_obj("logship", containers=[
        {"name": "ship", "image": "s:2"}, {"name": "stats", "image": "t:2"}]))
    assert new.version == sidecar_version({"containers": [
        {**c, "type": "sidecar"} for c in [{"name": "ship", "image": "s:2"},
                                           {"name": "stats", "image": "t:2"}]]})
    step = next_step(pod, new, backend="embedded")
    assert step.kind == "container" and step.container == "ship" and step.pod is not None
    images = {c["name"]: c["image"] for c in step.pod["spec"]["containers"]}
    assert images == {"ship": "s:2", "stats": "t:1", "app": "app:1", "proxy": "p:1"}
    assert injected(step.pod)["logship"]["updating"] == new.version
    step = next_step(step.pod, new, backend="embedded")
    assert step.container == "stats" and step.pod is not None
    assert injected(step.pod)["logship"]["version"] == new.version
    assert "updating" not in injected(step.pod)["logship"]
    assert next_step(step.pod, new, backend="embedded").kind == "current"
    # More than images on a real cluster, or a container added: not in place.
    kpod, _ = inject(app_pod(backend="kubernetes"), [old], backend="kubernetes",
                     namespace_labels={})
    env = parse_sidecar(sidecar_obj("logship", containers=[
        {"name": "ship", "image": "s:1", "env": [{"name": "A", "value": "1"}]},
        {"name": "stats", "image": "t:1"}]))
    assert next_step(kpod, env, backend="kubernetes").kind == "recreate"
    assert next_step(kpod, new, backend="kubernetes").kind == "container"
    grown = parse_sidecar(sidecar_obj("logship", containers=[*two, {"name": "x", "image": "x"}]))
    assert next_step(pod, grown, backend="embedded").kind == "recreate"


# --- on an embedded member cluster --------------------------------------------------------------

@pytest.fixture
async def cluster() -> AsyncIterator[KubeClient]:
    store = await EmbeddedStore.open(path=None)
    registry.install(store)
    client = store.client()
    await client.create(NAMESPACES, {"metadata": {"name": "default"}})
    await client.create(NAMESPACES, {"metadata": {"name": "team-a", "labels": {
        PROJECT_LABEL: "team-a"}}})
    yield client
    await store.close()


@contextlib.asynccontextmanager
async def operator(client: KubeClient) -> AsyncIterator[Manager]:
    manager = Manager(name="operators", shutdown_timeout=5.0)
    add_pinsidecar_controller(manager, client=client, backend="embedded", identity="test")
    task = asyncio.create_task(manager.run())
    await manager.wait_started()
    try:
        yield manager
    finally:
        manager.stop()
        await task


async def owner(client: KubeClient, namespace: str = "default",
                command: list[str] | None = None) -> dict[str, Any]:
    main: dict[str, Any] = {"name": "app", "image": "app:1"}
    if command is not None:
        main.update(image="local", command=command)
    return await client.create(PINAPPS, {"metadata": {"name": "web"}, "spec": {
        "replicas": 1, "template": {"metadata": {"labels": {"team": "a"}},
                                    "spec": {"containers": [main],
                                             "terminationGracePeriodSeconds": 1}}}},
        namespace=namespace)


async def test_every_pod_created_through_create_pod_is_injected(cluster: KubeClient) -> None:
    await cluster.create(PINSIDECARS, sidecar_obj("logship"))
    await cluster.create(PINSIDECARS, sidecar_obj("audit", selector={}, namespaceSelector={
        "matchLabels": {PROJECT_LABEL: "team-a"}}))
    async with operator(cluster):
        for ns in ("default", "team-a"):
            app = await owner(cluster, ns)
            pod = pod_for(app["spec"]["template"], name="web-0", namespace=ns, owner=app,
                          backend="embedded")
            await create_pod(cluster, pod)
        got = {ns: [c["name"] for c in (await cluster.get(PODS, "web-0", namespace=ns))[
            "spec"]["containers"]] for ns in ("default", "team-a")}
        assert got == {"default": ["logship-c", "app"],
                       "team-a": ["audit-c", "logship-c", "app"]}
    # Once the operator is gone, its hook is too.
    bare = await admit_pod(cluster, pod_for(app["spec"]["template"], name="x", namespace="x",
                                            owner=app, backend="embedded"))
    assert [c["name"] for c in bare["spec"]["containers"]] == ["app"]
    seen: list[str] = []

    async def hook(pod: dict[str, Any]) -> dict[str, Any]:
        seen.append(pod["metadata"]["name"])
        return pod
    remove = add_pod_admission(cluster, hook)
    await admit_pod(cluster, bare)
    remove()
    await admit_pod(cluster, bare)
    assert seen == ["x"]


async def _pods_with(client: KubeClient, count: int, *, runtime: str,
                     command: list[str] | None = None) -> list[str]:
    app = await owner(client, command=command)
    names = []
    for i in range(count):
        pod = pod_for(app["spec"]["template"], name=f"web-{i}", namespace="default",
                      owner=app, backend="embedded")
        pod["spec"]["nodeName"] = "n1"
        if runtime == "sim":
            pod["metadata"]["annotations"]["sim.pincompute.io/start-delay"] = "0.3"
        await create_pod(client, pod)
        names.append(pod["metadata"]["name"])

    async def all_ready() -> bool:
        pods = [await client.get(PODS, n, namespace="default") for n in names]
        return all(condition_true(p, "Ready") for p in pods)
    await eventually(all_ready, timeout=30.0, what="pods ready")
    return names


async def test_an_upgrade_rolls_in_place_within_max_unavailable_across_a_restart(
        cluster: KubeClient, make_agent: Any) -> None:  # noqa: F811
    await make_agent(runtime="sim")
    await cluster.create(PINSIDECARS, sidecar_obj("logship", containers=[
        {"name": "ship", "image": "s:1"}, {"name": "stats", "image": "t:1"}],
        updateStrategy={"type": "InPlace", "maxUnavailable": 1}))
    async with operator(cluster):
        names = await _pods_with(cluster, 4, runtime="sim")
    before = {n: await cluster.get(PODS, n, namespace="default") for n in names}
    rv = (await cluster.list(PODS, namespace="default")).resource_version
    worst = 0
    down: dict[str, bool] = {}

    async def watch() -> None:
        nonlocal worst
        async for event in cluster.watch(PODS, namespace="default", resource_version=rv):
            if event.type not in ("ADDED", "MODIFIED"):
                continue
            # In update: a sidecar not ready, or not yet running the image asked for.
            p = event.object
            statuses = {s["name"]: s for s in
                        p.get("status", {}).get("containerStatuses") or ()}
            down[p["metadata"]["name"]] = any(
                not statuses.get(c["name"], {}).get("ready")
                or statuses[c["name"]]["image"] != c["image"]
                for c in p["spec"]["containers"] if c["name"] in ("ship", "stats"))
            worst = max(worst, sum(down.values()))

    async def touched() -> int:
        pods = [await cluster.get(PODS, n, namespace="default") for n in names]
        return sum(1 for p in pods if {c["image"] for c in p["spec"]["containers"]}
                   & {"s:2", "t:2"})

    watcher = asyncio.create_task(watch())
    try:
        obj = await cluster.get(PINSIDECARS, "logship")
        obj["spec"]["containers"] = [{"name": "ship", "image": "s:2"},
                                     {"name": "stats", "image": "t:2"}]
        generation = (await cluster.update(PINSIDECARS, obj))["metadata"]["generation"]
        # The operator stops mid-rollout; the next one goes on from the pods' records.
        async with operator(cluster):
            await eventually(touched, timeout=20.0, what="the rollout under way")
        assert await touched() < 4
        async with operator(cluster):
            async def done() -> dict[str, Any] | None:
                s = (await cluster.get(PINSIDECARS, "logship")).get("status") or {}
                return s if (s.get("observedGeneration"), s.get("updatedPods"),
                             s.get("readyPods")) == (generation, 4, 4) else None
            status = await eventually(done, timeout=30.0, what="4 pods updated and ready")
    finally:
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watcher
    assert (status["injectedPods"], status["matchedPods"]) == (4, 4)
    assert worst == 1
    for n in names:
        pod = await cluster.get(PODS, n, namespace="default")
        assert pod["metadata"]["uid"] == before[n]["metadata"]["uid"]  # not recreated
        images = {c["name"]: c["image"] for c in pod["spec"]["containers"]}
        assert images == {"ship": "s:2", "stats": "t:2", "app": "app:1"}
        assert container_status(pod, "app")["restartCount"] == 0
        assert container_status(pod, "app").get("containerID") == container_status(
            before[n], "app").get("containerID")
        for c in ("ship", "stats"):  # each restarted exactly once, in place
            assert container_status(pod, c)["restartCount"] == 1


async def test_real_processes_main_containers_keep_running_through_an_upgrade(
        cluster: KubeClient, make_agent: Any) -> None:  # noqa: F811
    await make_agent()
    loop = [PYTHON, "-c", "import time\nwhile True: time.sleep(0.2)"]
    await cluster.create(PINSIDECARS, sidecar_obj("logship", containers=[
        {"name": "ship", "image": "local", "command": loop},
        {"name": "stats", "image": "local", "command": loop}]))
    async with operator(cluster):
        names = await _pods_with(cluster, 1, runtime="process",
                                 command=loop)
        before = await cluster.get(PODS, names[0], namespace="default")
        obj = await cluster.get(PINSIDECARS, "logship")
        for c in obj["spec"]["containers"]:
            c["env"] = [{"name": "VERSION", "value": "2"}]
        await cluster.update(PINSIDECARS, obj)

        async def upgraded() -> dict[str, Any] | None:
            pod = await cluster.get(PODS, names[0], namespace="default")
            ids = [container_status(pod, c).get("containerID") for c in ("ship", "stats")]
            old = [container_status(before, c).get("containerID") for c in ("ship", "stats")]
            fresh = all(a != b for a, b in zip(ids, old, strict=True))
            return pod if fresh and condition_true(pod, "Ready") else None
        pod = await eventually(upgraded, timeout=30.0, what="both sidecars restarted")
    app = container_status(pod, "app")
    assert app["restartCount"] == 0 and "running" in app["state"]
    assert app.get("containerID") == container_status(before, "app").get("containerID")
    assert injected(pod)["logship"]["version"] == parse_sidecar(
        await cluster.get(PINSIDECARS, "logship")).version
