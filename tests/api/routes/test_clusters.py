"""Clusters, nodes (cordon, uncordon, drain within budgets) and node pools."""

from __future__ import annotations

from pincompute.kube.resource import NODES
from pincompute.model.registry import MEMBERCLUSTERS
from tests.api.conftest import ApiEnv
from tests.api.support import pinapp
from tests.waiting import eventually

BASE = "/api/v1/projects/demo"


async def test_clusters_nodes_and_pools(api: ApiEnv) -> None:
    c = api.client
    r = await c.get("/api/v1/clusters")
    names = [m["metadata"]["name"] for m in r.json()["items"]]
    assert names == sorted(m.name for m in api.region.members)
    cluster = names[0]
    r = await c.get(f"/api/v1/clusters/{cluster}")
    assert r.json()["spec"]["zone"] == api.region.member(cluster).zone
    assert (await c.get("/api/v1/clusters/nope")).status_code == 404

    r = await c.get(f"/api/v1/clusters/{cluster}/nodes")
    nodes = [n["metadata"]["name"] for n in r.json()["items"]]
    assert nodes == [f"{cluster}-general-0"]
    node = nodes[0]
    r = await c.post(f"/api/v1/clusters/{cluster}/nodes/{node}/cordon")
    assert r.status_code == 200 and r.json()["spec"]["unschedulable"] is True
    member = api.region.member(cluster).client
    assert (await member.get(NODES, node))["spec"]["unschedulable"] is True
    r = await c.post(f"/api/v1/clusters/{cluster}/nodes/{node}/uncordon")
    assert r.status_code == 200
    assert not (await member.get(NODES, node))["spec"].get("unschedulable")
    r = await c.post(f"/api/v1/clusters/{cluster}/nodes/ghost/drain")
    assert r.status_code == 404

    r = await c.get("/api/v1/nodepools")
    pools = {(p["metadata"]["labels"]["pincompute.io/cluster"], p["metadata"]["name"])
             for p in r.json()["items"]}
    assert pools == {(m.name, "general") for m in api.region.members}
    r = await c.patch(f"/api/v1/clusters/{cluster}/nodepools/general",
                      json={"metadata": {"labels": {"team": "infra"}}})
    assert r.status_code == 200, r.text
    r = await c.patch(f"/api/v1/clusters/{cluster}/nodepools/general",
                      json={"spec": {"minSize": -3}})
    assert r.status_code == 422

    # Clusters: a taint through PATCH; inline kubeconfigs never shown.
    r = await c.patch(f"/api/v1/clusters/{cluster}", json={"metadata": {"labels": {
        "ssd": "true"}}})
    assert r.status_code == 200 and r.json()["metadata"]["labels"]["ssd"] == "true"
    r = await c.post("/api/v1/clusters", json={
        "metadata": {"name": "far-away"}, "spec": {"zone": "zone-x", "connection": {
            "type": "Kubeconfig", "kubeconfig": "apiVersion: v1\nkind: Config\n"}}})
    assert r.status_code == 201, r.text
    assert r.json()["spec"]["connection"]["kubeconfig"] == "<redacted>"
    stored = await api.region.host.client.get(MEMBERCLUSTERS, "far-away")
    assert stored["spec"]["connection"]["kubeconfig"].startswith("apiVersion")
    r = await c.delete("/api/v1/clusters/far-away", params={"drain": "false"})
    assert r.status_code == 200, r.text


async def test_drain_evicts_within_the_disruption_budget(api: ApiEnv) -> None:
    c = api.client
    app = pinapp("web", replicas=2)
    app["spec"]["disruptionBudget"] = {"minAvailable": 2}
    app["spec"]["placement"] = {"zones": [api.region.members[0].zone]}
    assert (await c.post(f"{BASE}/pinapps", json=app)).status_code == 201
    cluster = api.region.members[0].name

    async def ready_pods() -> list | None:
        r = await c.get(f"{BASE}/pinapps/web/pods")
        pods = [p for p in r.json().get("items", [])
                if any(x.get("type") == "Ready" and x.get("status") == "True"
                       for x in p.get("status", {}).get("conditions", []))]
        return pods if len(pods) == 2 else None

    pods = await eventually(ready_pods, timeout=30, what="both replicas ready")
    node = pods[0]["spec"]["nodeName"]
    r = await c.post(f"/api/v1/clusters/{cluster}/nodes/{node}/drain",
                     params={"timeoutSeconds": 0})
    assert r.status_code == 200, r.text
    result = r.json()
    # Both replicas are on the cluster's only node: the budget (2 available) refuses both.
    assert result["evicted"] == [] and result["complete"] is False
    assert len(result["blocked"]) == 2
    assert "disruption budget" in result["blocked"][0]["reason"]

    # Loosen the budget: the drain now evicts.
    async def loosened() -> bool:
        r = await c.patch(f"{BASE}/pinapps/web", json={"spec": {"disruptionBudget": {
            "minAvailable": 0}}})
        return r.status_code == 200

    await eventually(loosened, what="budget loosened")

    async def drained() -> bool:
        r = await c.post(f"/api/v1/clusters/{cluster}/nodes/{node}/drain",
                         params={"timeoutSeconds": 1})
        return r.json()["complete"]

    await eventually(drained, timeout=30, what="the node drained")
    r = await c.get(f"/api/v1/clusters/{cluster}/nodes/{node}")
    assert r.json()["spec"]["unschedulable"] is True


async def test_add_and_remove_an_embedded_member_cluster(api: ApiEnv) -> None:
    c = api.client
    r = await c.post("/api/v1/clusters", params={"nodes": 1},
                     json={"metadata": {"name": "zone-c-1"}, "spec": {"zone": "zone-c"}})
    assert r.status_code == 201, r.text
    assert r.json()["spec"]["zone"] == "zone-c"
    r = await c.get("/api/v1/clusters/zone-c-1/nodes")
    assert [n["metadata"]["name"] for n in r.json()["items"]] == ["zone-c-1-general-0"]
    r = await c.post("/api/v1/clusters", json={"metadata": {"name": "x"}, "spec": {}})
    assert r.status_code == 422 and r.json()["details"]["causes"][0]["field"] == "spec.zone"
    r = await c.delete("/api/v1/clusters/zone-c-1", params={"timeoutSeconds": 60})
    assert r.status_code == 200, r.text
    assert "zone-c-1" not in [m.name for m in api.region.members]
    r = await c.get("/api/v1/clusters")
    assert "zone-c-1" not in [m["metadata"]["name"] for m in r.json()["items"]]
