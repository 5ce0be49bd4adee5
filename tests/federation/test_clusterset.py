"""The live cluster set on embedded clusters: members come, change and go while it runs."""

from __future__ import annotations

import asyncio
import base64
import logging

import pytest

from pincompute.federation.clusterset import add_cluster_set
from pincompute.federation.connectionstatus import CONDITION
from pincompute.federation.projects import DISCONNECTED, PROJECT_LABEL
from pincompute.kube import objects
from pincompute.kube.backends.embedded import EmbeddedStore
from pincompute.kube.errors import NotFound
from pincompute.kube.protocol import KubeClient
from pincompute.kube.resource import NAMESPACES, SECRETS
from pincompute.model import registry
from pincompute.model.registry import MEMBERCLUSTERS, PROJECTS
from pincompute.runtime.manager import Manager
from tests.waiting import eventually

from .conftest import SYSTEM, Federation, kubeconfig

pytestmark = pytest.mark.timeout(60)


async def _ours(client: KubeClient, name: str) -> bool:
    """Our namespace ``name`` exists (labelled for its project) and is not being deleted."""
    try:
        ns = await client.get(NAMESPACES, name)
    except NotFound:
        return False
    return ((ns["metadata"].get("labels") or {}).get(PROJECT_LABEL) == name
            and not objects.is_deleting(ns))


async def _project_clusters(fed: Federation, name: str) -> dict[str, str]:
    project = await fed.host.get(PROJECTS, name)
    return {n["cluster"]: n["phase"] for n in (project.get("status") or {}).get("namespaces", [])}


async def _connected(fed: Federation, name: str) -> dict | None:
    return objects.get_condition(await fed.host.get(MEMBERCLUSTERS, name), CONDITION)


async def _create_projects(fed: Federation, *names: str) -> None:
    for name in names:
        await fed.host.create(PROJECTS, {"metadata": {"name": name}, "spec": {}})
    for name in names:
        async def everywhere(name: str = name) -> bool:
            return set((await _project_clusters(fed, name)).values()) == {"Active"} and len(
                await _project_clusters(fed, name)) == 1 + len(fed.clusters)
        await eventually(everywhere, what=f"project {name} in every cluster")


def _informer_tasks() -> int:
    return sum(1 for t in asyncio.all_tasks() if t.get_name().startswith("informer "))


async def test_members_registered_at_start_are_ready_and_reported(federation: Federation) -> None:
    fed = federation
    assert fed.clusters.names() == ["zone-a-1", "zone-b-1"]
    assert sorted(m.name for m in fed.clusters) == ["zone-a-1", "zone-b-1"]
    handle = fed.clusters.get("zone-a-1")
    assert handle is not None and handle.client is fed.clients["zone-a-1"]
    assert not handle.owned  # the region's store: the set must never close it
    informer = fed.clusters.informer("zone-a-1", NAMESPACES, label_selector=PROJECT_LABEL)
    assert informer.has_synced and informer.running

    async def condition() -> dict | None:
        c = await _connected(fed, "zone-b-1")
        return c if c and c["status"] == "True" else None

    assert (await eventually(condition))["reason"] == "Connected"
    with pytest.raises(LookupError):
        fed.clusters.informer("zone-q-1", NAMESPACES)


async def test_a_member_registered_while_running_gets_every_projects_namespace(
        federation: Federation) -> None:
    fed = federation
    await _create_projects(fed, "search", "ads")
    added = []
    fed.clusters.subscribe(on_added=lambda m: added.append(m.name))

    late = await fed.open_member("zone-c-1")
    await fed.register("zone-c-1", zone="zone-c")

    async def namespaces() -> bool:
        return await _ours(late, "search") and await _ours(late, "ads")

    await eventually(namespaces, what="the projects' namespaces in the new member")
    assert added == ["zone-c-1"]

    async def listed() -> dict | None:
        clusters = await _project_clusters(fed, "search")
        return clusters if clusters.get("zone-c-1") == "Active" else None

    assert await eventually(listed) == {"host": "Active", "zone-a-1": "Active",
                                        "zone-b-1": "Active", "zone-c-1": "Active"}
    # And a project created now reaches it like the others.
    await _create_projects(fed, "web")
    assert await _ours(late, "web")
    assert fed.reconcile_errors() == 0


async def test_a_member_that_cannot_connect_is_retried_and_reported(
        federation: Federation) -> None:
    fed = federation
    await _create_projects(fed, "search")
    await fed.register("zone-d-1", zone="zone-d")  # no such embedded cluster (yet)

    async def failing() -> dict | None:
        c = await _connected(fed, "zone-d-1")
        return c if c and c["status"] == "False" else None

    condition = await eventually(failing, what="the Connected=False condition")
    assert condition["reason"] == "NoEmbeddedCluster"
    assert "no embedded cluster" in condition["message"]

    async def retried() -> bool:
        state = fed.clusters.state("zone-d-1")
        return state is not None and state.attempts >= 3

    await eventually(retried, what="retries with back-off")
    assert fed.clusters.get("zone-d-1") is None

    async def pending() -> dict | None:
        project = await fed.host.get(PROJECTS, "search")
        ready = objects.get_condition(project, "Ready")
        return ready if ready and ready["status"] == "False" else None

    ready = await eventually(pending, what="the project to report the unreachable member")
    assert ready["reason"] == "NamespacesPending" and "zone-d-1" in ready["message"]
    assert (await _project_clusters(fed, "search"))["zone-d-1"] == DISCONNECTED
    # The others were served all along.
    assert await _ours(fed.clients["zone-a-1"], "search")

    # The cluster appears: the next retry connects it and it gets the namespace.
    member = await fed.open_member("zone-d-1")
    await eventually(lambda: _ours(member, "search"), what="the namespace after a retry")

    async def connected() -> bool:
        c = await _connected(fed, "zone-d-1")
        return bool(c and c["status"] == "True")

    await eventually(connected)
    assert fed.reconcile_errors() == 0


async def test_a_changed_connection_rebuilds_the_member(federation: Federation) -> None:
    fed = federation
    await _create_projects(fed, "search")
    old = fed.clusters.get("zone-a-1")
    assert old is not None
    old_informers = old.informers.informers
    removed = []
    fed.clusters.subscribe(on_removed=lambda m: removed.append(m))

    mc = await fed.host.get(MEMBERCLUSTERS, "zone-a-1")
    mc["spec"]["connection"] = {"type": "Kubeconfig", "kubeconfigPath": "/nonexistent/kc"}
    await fed.host.update(MEMBERCLUSTERS, mc)

    async def failed() -> dict | None:
        c = await _connected(fed, "zone-a-1")
        return c if c and c["status"] == "False" else None

    condition = await eventually(failed)
    assert condition["reason"] == "KubeconfigUnreadable"
    assert "/nonexistent/kc" in condition["message"]
    assert fed.clusters.get("zone-a-1") is None
    assert removed == [old] and old.closed
    assert not any(i.running for i in old_informers)
    # Let go, not forgotten: still registered, so reported.
    assert "zone-a-1" in fed.clusters.names()

    async def disconnected() -> bool:
        return (await _project_clusters(fed, "search")).get("zone-a-1") == DISCONNECTED

    await eventually(disconnected)

    # While disconnected, its namespace goes missing; nothing repairs it yet.
    await fed.clients["zone-a-1"].delete(NAMESPACES, "search")

    mc = await fed.host.get(MEMBERCLUSTERS, "zone-a-1")
    mc["spec"]["connection"] = {"type": "Embedded"}
    await fed.host.update(MEMBERCLUSTERS, mc)

    async def rebuilt() -> object:
        new = fed.clusters.get("zone-a-1")
        return new if new is not None and new is not old else None

    new = await eventually(rebuilt, what="the member to be rebuilt")
    assert new.informer(NAMESPACES, label_selector=PROJECT_LABEL).running
    await eventually(lambda: _ours(fed.clients["zone-a-1"], "search"),
                     what="the namespace after reconnecting")
    assert fed.reconcile_errors() == 0


async def test_other_spec_changes_do_not_rebuild(federation: Federation) -> None:
    fed = federation
    handle = fed.clusters.get("zone-b-1")
    mc = await fed.host.get(MEMBERCLUSTERS, "zone-b-1")
    mc["spec"]["unschedulable"] = True
    mc["metadata"]["labels"] = {"team": "infra"}
    await fed.host.update(MEMBERCLUSTERS, mc)
    await asyncio.sleep(0.3)
    assert fed.clusters.get("zone-b-1") is handle and not handle.closed


async def test_a_removed_member_is_let_go_without_errors(
        federation: Federation, caplog: pytest.LogCaptureFixture) -> None:
    fed = federation
    caplog.set_level(logging.WARNING)
    await _create_projects(fed, "search")
    handle = fed.clusters.get("zone-b-1")
    assert handle is not None
    informers = handle.informers.informers
    assert informers and all(i.running for i in informers)
    tasks_before = _informer_tasks()
    removed = []
    fed.clusters.subscribe(on_removed=lambda m: removed.append(m.name))

    await fed.host.delete(MEMBERCLUSTERS, "zone-b-1")

    async def let_go() -> bool:
        return fed.clusters.get("zone-b-1") is None and fed.clusters.state("zone-b-1") is None

    await eventually(let_go, what="the member to be let go")
    assert removed == ["zone-b-1"]
    assert fed.clusters.names() == ["zone-a-1"]
    assert handle.closed and not any(i.running for i in informers)
    assert _informer_tasks() == tasks_before - len(informers)  # nothing of it left running

    async def unlisted() -> dict | None:
        clusters = await _project_clusters(fed, "search")
        return clusters if "zone-b-1" not in clusters else None

    assert await eventually(unlisted) == {"host": "Active", "zone-a-1": "Active"}
    # Deleting a project no longer waits for (or touches) the member that was let go.
    await fed.host.delete(PROJECTS, "search")

    async def project_gone() -> bool:
        try:
            await fed.host.get(PROJECTS, "search")
        except NotFound:
            return True
        return False

    await eventually(project_gone, what="the project to be finalized")
    assert await _ours(fed.clients["zone-b-1"], "search")  # left as it was
    assert not await _ours(fed.clients["zone-a-1"], "search")
    assert fed.reconcile_errors() == 0
    assert fed.reconcile_errors("membercluster-connection") == 0
    problems = [r for r in caplog.records if r.levelno >= logging.WARNING
                and r.name.startswith("pincompute")]
    assert not problems, [r.getMessage() for r in problems]


async def test_a_reconcile_using_a_member_let_go_under_it_skips_it(
        federation: Federation) -> None:
    """The race: a reconcile holds a handle, the member goes, the client fails."""
    fed = federation
    await _create_projects(fed, "search")
    handle = fed.clusters.get("zone-a-1")
    assert handle is not None
    reconciler = fed.projects.reconciler

    async def broken() -> str:
        raise ConnectionError("client closed")

    await fed.host.delete(MEMBERCLUSTERS, "zone-a-1")
    await eventually(lambda: _async(fed.clusters.get("zone-a-1") is None))
    assert await reconciler._in_member(handle, broken()) is None  # type: ignore[attr-defined]
    # A member still current fails loudly: its errors are real.
    current = fed.clusters.get("zone-b-1")
    assert current is not None
    with pytest.raises(ConnectionError):
        await reconciler._in_member(current, broken())  # type: ignore[attr-defined]


async def _async(value: bool) -> bool:
    return value


async def test_shutdown_lets_every_member_go(federation: Federation) -> None:
    fed = federation
    handles = list(fed.clusters)
    assert handles
    fed.manager.stop()
    await eventually(lambda: _async(all(h.closed for h in handles)),
                     what="every member to be closed at shutdown")
    assert not any(i.running for h in handles for i in h.informers.informers)


async def test_rotating_a_kubeconfig_secret_reconnects_at_once() -> None:
    """The Secret is watched: a rotation does not wait for the (here: long) back-off."""
    store = await EmbeddedStore.open(path=None)
    registry.install(store, resources=registry.HOST_RESOURCES)
    host = store.client()
    await host.create(NAMESPACES, {"metadata": {"name": SYSTEM}})
    manager = Manager(name="rotation", shutdown_timeout=5.0)
    clusters = add_cluster_set(manager, host=host, retry_base=60.0, retry_max=60.0,
                               connect_timeout=10.0, client_options={"retries": 1})
    secrets_tasks = lambda: [t for t in asyncio.all_tasks()  # noqa: E731
                             if t.get_name().startswith("informer secrets")]

    def secret(server: str) -> dict:
        text = kubeconfig(server)
        return {"metadata": {"name": "zone-r-1"},
                "data": {"kubeconfig": base64.b64encode(text.encode()).decode()}}

    await host.create(SECRETS, secret("https://127.0.0.1:1"), namespace=SYSTEM)
    await host.create(MEMBERCLUSTERS, {"metadata": {"name": "zone-r-1"}, "spec": {
        "zone": "zone-r", "connection": {"type": "Kubeconfig",
                                         "kubeconfigSecretRef": {"name": "zone-r-1"}}}})
    async with manager:
        async def failed(port: str) -> bool:
            state = clusters.state("zone-r-1")
            return bool(state and state.phase == "Failed" and port in state.message)

        await eventually(lambda: failed("127.0.0.1:1"), timeout=20, what="a failed attempt")
        assert clusters.state("zone-r-1").reason == "Unreachable"  # type: ignore[union-attr]
        assert len(secrets_tasks()) == 1
        rotated = await host.get(SECRETS, "zone-r-1", namespace=SYSTEM)
        rotated["data"] = secret("https://127.0.0.1:2")["data"]
        await host.update(SECRETS, rotated)
        await eventually(lambda: failed("127.0.0.1:2"), timeout=20,
                         what="an attempt with the rotated kubeconfig")

        await host.delete(MEMBERCLUSTERS, "zone-r-1")
        await eventually(lambda: _async(clusters.state("zone-r-1") is None))
        await eventually(lambda: _async(not secrets_tasks()), what="the Secret watch to stop")
    await store.close()
