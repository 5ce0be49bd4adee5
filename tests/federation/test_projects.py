import pytest

from pincompute.kube.errors import NotFound
from pincompute.kube.protocol import KubeClient
from pincompute.kube.resource import CONFIGMAPS, NAMESPACES
from pincompute.model.registry import PROJECTS
from pincompute.model.wellknown import PROJECT_LABEL
from pincompute.model.wellknown import PROJECT_NAMESPACES_FINALIZER as FINALIZER
from tests.federation.conftest import Federation
from tests.waiting import eventually


@pytest.fixture
def region(federation: Federation) -> tuple[KubeClient, dict[str, KubeClient]]:
    return federation.host, federation.members


async def _namespace_labels(client: KubeClient, name: str) -> dict[str, str] | None:
    try:
        ns = await client.get(NAMESPACES, name)
    except NotFound:
        return None
    return ns["metadata"].get("labels") or {}


async def test_a_project_gets_a_namespace_in_every_cluster(region) -> None:
    host, members = region
    await host.create(PROJECTS, {"metadata": {"name": "search"},
                                 "spec": {"members": [{"user": "ana", "role": "admin"}]}})

    async def ready() -> dict | None:
        project = await host.get(PROJECTS, "search")
        conditions = {c["type"]: c for c in project.get("status", {}).get("conditions", [])}
        return project if conditions.get("Ready", {}).get("status") == "True" else None

    project = await eventually(ready)
    assert FINALIZER in project["metadata"]["finalizers"]
    assert project["status"]["phase"] == "Active"
    assert {n["cluster"]: n["phase"] for n in project["status"]["namespaces"]} == {
        "host": "Active", "zone-a-1": "Active", "zone-b-1": "Active"}
    for client in (host, *members.values()):
        assert await _namespace_labels(client, "search") == {PROJECT_LABEL: "search"}

    # A namespace deleted by hand in one member comes back.
    member = members["zone-a-1"]
    await member.delete(NAMESPACES, "search")

    async def recreated() -> bool:
        ns = await member.get(NAMESPACES, "search") if await _namespace_labels(
            member, "search") is not None else None
        return bool(ns and not ns["metadata"].get("deletionTimestamp"))

    await eventually(recreated)


async def test_a_foreign_namespace_is_reported_not_adopted(region) -> None:
    host, members = region
    await members["zone-b-1"].create(NAMESPACES, {"metadata": {"name": "ads"}})
    await host.create(PROJECTS, {"metadata": {"name": "ads"}, "spec": {}})

    async def conflict() -> dict | None:
        project = await host.get(PROJECTS, "ads")
        for c in project.get("status", {}).get("conditions", []):
            if c["type"] == "Ready" and c["reason"] == "NamespaceConflict":
                return c
        return None

    condition = await eventually(conflict)
    assert condition["status"] == "False"
    assert "zone-b-1" in condition["message"]
    assert await _namespace_labels(members["zone-b-1"], "ads") == {}


async def test_deleting_a_project_deletes_its_namespaces_everywhere(region) -> None:
    host, members = region
    await host.create(PROJECTS, {"metadata": {"name": "web"}, "spec": {}})
    await eventually(lambda: _namespace_labels(members["zone-b-1"], "web"))
    await members["zone-a-1"].create(CONFIGMAPS, {"metadata": {"name": "cfg"}}, namespace="web")

    await host.delete(PROJECTS, "web")

    async def project_gone() -> bool:
        try:
            await host.get(PROJECTS, "web")
        except NotFound:
            return True
        return False

    await eventually(project_gone)
    for client in (host, *members.values()):
        assert await _namespace_labels(client, "web") is None
    with pytest.raises(NotFound):
        await members["zone-a-1"].get(CONFIGMAPS, "cfg", namespace="web")


async def test_deleting_a_project_never_deletes_a_foreign_namespace(region) -> None:
    # RBAC lets the controllers delete any namespace (it cannot express "labelled X"):
    # the project controller itself must spare one it does not own.
    host, members = region
    await members["zone-a-1"].create(NAMESPACES, {"metadata": {"name": "billing"}})
    await host.create(PROJECTS, {"metadata": {"name": "billing"}, "spec": {}})
    await eventually(lambda: _namespace_labels(members["zone-b-1"], "billing"))
    await host.delete(PROJECTS, "billing")

    async def project_gone() -> bool:
        try:
            await host.get(PROJECTS, "billing")
        except NotFound:
            return True
        return False

    await eventually(project_gone)
    assert await _namespace_labels(members["zone-b-1"], "billing") is None
    foreign = await members["zone-a-1"].get(NAMESPACES, "billing")
    assert not foreign["metadata"].get("deletionTimestamp")
