"""Projects: list, create, members, quota, usage."""

from __future__ import annotations

from pincompute.model.registry import PROJECTS
from tests.api.conftest import ApiEnv
from tests.api.support import pinapp
from tests.waiting import eventually


async def test_projects_members_quota_and_usage(api: ApiEnv) -> None:
    c = api.client
    r = await c.post("/api/v1/projects", json={"metadata": {"name": "team-a"}, "spec": {
        "displayName": "Team A", "members": [{"user": "alice", "role": "admin"}],
        "quota": {"ondemand": {"cpu": "4", "memory": "8Gi"}}}})
    assert r.status_code == 201, r.text
    r = await c.post("/api/v1/projects", json={"metadata": {"name": "kube-x"}, "spec": {}})
    assert r.status_code == 422
    assert r.json()["details"]["causes"][0]["field"] == "metadata.name"

    async def listed() -> list[str]:
        r = await c.get("/api/v1/projects")
        return [p["metadata"]["name"] for p in r.json()["items"]]

    await eventually(lambda: _has(listed, "team-a"), what="the project listed")
    alice = await api.token(user="alice")
    async with api.as_token(alice) as a:
        r = await a.get("/api/v1/projects")
        assert [p["metadata"]["name"] for p in r.json()["items"]] == ["team-a"]
        r = await a.get("/api/v1/projects/team-a/members")
        assert r.json()["items"] == [{"user": "alice", "role": "admin"}]
        r = await a.post("/api/v1/projects/team-a/members", json={"user": "bob",
                                                                  "role": "editor"})
        assert r.status_code == 200, r.text
        assert {"user": "bob", "role": "editor"} in r.json()["items"]
        r = await a.post("/api/v1/projects/team-a/members", json={"user": "bob",
                                                                  "role": "boss"})
        assert r.status_code == 422 and r.json()["details"]["causes"][0]["field"] == \
            "body.role"
        # A project admin may not change the quota (platform admins only).
        r = await a.put("/api/v1/projects/team-a/quota", json={"ondemand": {"cpu": "100"}})
        assert r.status_code == 403
        assert "platform admin" in r.json()["message"]
        r = await a.get("/api/v1/projects/team-a/quota")
        assert r.json() == {"ondemand": {"cpu": "4", "memory": "8Gi"}}
        r = await a.delete("/api/v1/projects/team-a/members/bob")
        assert r.status_code == 200
        r = await a.delete("/api/v1/projects/team-a/members/bob")
        assert r.status_code == 404
    r = await c.put("/api/v1/projects/team-a/quota", json={"ondemand": {"cpu": "lots"}})
    assert r.status_code == 422
    assert r.json()["details"]["causes"][0]["field"].startswith("spec.quota.ondemand.cpu")
    r = await c.put("/api/v1/projects/team-a/quota", json={"ondemand": {"cpu": "8"}})
    assert r.status_code == 200
    stored = await api.region.host.client.get(PROJECTS, "team-a")
    assert stored["spec"]["quota"]["ondemand"]["cpu"] == "8"

    # Usage: the federation's admission charges admitted workloads to the project's tier.
    await c.post("/api/v1/projects/demo/pinapps", json=pinapp("web", replicas=2))

    async def used() -> dict | None:
        r = await c.get("/api/v1/projects/demo/usage")
        tiers = r.json()["tiers"]
        return tiers if tiers["ondemand"]["used"].get("cpu") else None

    tiers = await eventually(used, timeout=20, what="usage charged to the ondemand tier")
    assert set(tiers) == {"reserved", "ondemand", "preemptible"}
    assert tiers["ondemand"]["used"]["cpu"] in ("20m", "0.02")


async def _has(fn, name: str) -> bool:  # type: ignore[no-untyped-def]
    return name in await fn()
