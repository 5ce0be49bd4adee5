"""Workload CRUD through the gateway: /api/v1/projects/{project}/{plural}[/{name}]."""

from __future__ import annotations

import asyncio

import orjson

from pincompute.model.registry import PINAPPS
from tests.api.conftest import ApiEnv
from tests.api.support import pinapp, pinjob
from tests.waiting import eventually

BASE = "/api/v1/projects/demo"


async def test_create_read_list_update_patch_delete(api: ApiEnv) -> None:
    c = api.client
    r = await c.post(f"{BASE}/pinapps", json=pinapp("web", labels={"tier": "front"}))
    assert r.status_code == 201, r.text
    created = r.json()
    assert created["kind"] == "PinApp" and created["metadata"]["namespace"] == "demo"
    # It is on the host, where the federation takes it from.
    stored = await api.region.host.client.get(PINAPPS, "web", namespace="demo")
    assert stored["metadata"]["uid"] == created["metadata"]["uid"]

    async def cached() -> dict | None:
        r = await c.get(f"{BASE}/pinapps/web")
        return r.json() if r.status_code == 200 else None

    got = await eventually(cached, what="the app in the gateway's cache")
    assert got["kind"] == "PinApp"
    assert "managedFields" not in got["metadata"]
    assert got["spec"]["replicas"] == 1

    await c.post(f"{BASE}/pinapps", json=pinapp("api", labels={"tier": "back"}))
    await c.post(f"{BASE}/pinjobs", json=pinjob("batch"))

    async def listed() -> list[str]:
        r = await c.get(f"{BASE}/pinapps")
        names = [i["metadata"]["name"] for i in r.json()["items"]]
        return names if len(names) == 2 else []

    assert await eventually(listed, what="both apps listed") == ["api", "web"]
    r = await c.get(f"{BASE}/pinapps", params={"labelSelector": "tier=front"})
    assert [i["metadata"]["name"] for i in r.json()["items"]] == ["web"]
    assert r.json()["kind"] == "PinAppList"
    r = await c.get(f"{BASE}/pinapps", params={"labelSelector": "tier in (x"})
    assert r.status_code == 400 and "labelSelector" in r.json()["message"]

    # Pages.
    page1 = (await c.get(f"{BASE}/pinapps", params={"limit": 1})).json()
    assert [i["metadata"]["name"] for i in page1["items"]] == ["api"]
    token = page1["metadata"]["continue"]
    page2 = (await c.get(f"{BASE}/pinapps", params={"limit": 1, "continue": token})).json()
    assert [i["metadata"]["name"] for i in page2["items"]] == ["web"]
    assert "continue" not in page2["metadata"]
    r = await c.get(f"{BASE}/pinapps", params={"continue": "garbage!"})
    assert r.status_code == 400

    # PUT with the current version works (controllers write status too: retry on 409, as
    # any client does); with a stale one it is a 409.
    stale: dict = {}

    async def replaced() -> bool:
        current = (await c.get(f"{BASE}/pinapps/web")).json()
        current["spec"]["replicas"] = 3
        stale.update(current)
        r = await c.put(f"{BASE}/pinapps/web", json=current)
        assert r.status_code in (200, 409), r.text
        return r.status_code == 200 and r.json()["spec"]["replicas"] == 3

    await eventually(replaced, what="a PUT with the current resourceVersion")
    r = await c.put(f"{BASE}/pinapps/web", json=stale)
    assert r.status_code == 409 and r.json()["reason"] == "Conflict"

    # Merge patch.
    r = await c.patch(f"{BASE}/pinapps/web", json={"spec": {"replicas": 2}},
                      headers={"Content-Type": "application/merge-patch+json"})
    assert r.status_code == 200 and r.json()["spec"]["replicas"] == 2
    r = await c.patch(f"{BASE}/pinapps/web", json={"spec": {"replicas": "many"}})
    assert r.status_code == 422
    assert r.json()["details"]["causes"][0]["field"] == "spec.replicas"

    r = await c.delete(f"{BASE}/pinapps/api")
    assert r.status_code == 200
    r = await c.get(f"{BASE}/pinapps/nothere")
    assert r.status_code == 404 and r.json()["kind"] == "Status"


async def test_bad_objects_are_422_naming_the_field_and_nothing_is_written(
        api: ApiEnv) -> None:
    c = api.client
    bad = pinapp("bad")
    bad["spec"]["replicas"] = -1
    r = await c.post(f"{BASE}/pinapps", json=bad)
    assert r.status_code == 422
    assert [x["field"] for x in r.json()["details"]["causes"]] == ["spec.replicas"]
    r = await c.post(f"{BASE}/pinapps", json={**pinapp("x"), "kind": "PinJob"})
    assert r.status_code == 422 and r.json()["details"]["causes"][0]["field"] == "kind"
    other = pinapp("y")
    other["metadata"]["namespace"] = "elsewhere"
    r = await c.post(f"{BASE}/pinapps", json=other)
    assert r.status_code == 422
    assert r.json()["details"]["causes"][0]["field"] == "metadata.namespace"
    r = await c.post(f"{BASE}/pinapps", content=b"{not json")
    assert r.status_code == 400
    r = await c.post(f"{BASE}/pinapps", json=[1, 2])
    assert r.status_code == 400
    r = await c.put(f"{BASE}/pinapps/one", json=pinapp("two"))
    assert r.status_code == 422
    assert r.json()["details"]["causes"][0]["field"] == "metadata.name"
    r = await c.get(f"{BASE}/pinapps", params={"limit": -1})
    assert r.status_code == 422
    assert r.json()["details"]["causes"][0]["field"] == "query.limit"
    r = await c.post(f"{BASE}/pinapps", content=b"x" * (4 * 1024 * 1024),
                     headers={"Content-Type": "application/json"})
    assert r.status_code == 413 and r.json()["reason"] == "RequestEntityTooLarge"
    assert (await api.region.host.client.list(PINAPPS, namespace="demo")).items == []


async def test_watch_streams_ndjson_events(api: ApiEnv) -> None:
    c = api.client
    await c.post(f"{BASE}/pinapps", json=pinapp("first"))
    await eventually(lambda: _exists(api, "first"), what="the app cached")
    events: list[dict] = []

    async def watch() -> None:
        async with c.stream("GET", f"{BASE}/pinapps",
                            params={"watch": "true", "timeoutSeconds": 20}) as r:
            assert r.headers["content-type"].startswith("application/x-ndjson")
            async for line in r.aiter_lines():
                if line:
                    events.append(orjson.loads(line))
                seen = {(e["type"], e["object"]["metadata"]["name"],
                         bool(e["object"]["metadata"].get("deletionTimestamp")))
                        for e in events}
                if ("ADDED", "second", False) in seen and (
                        ("DELETED", "first", True) in seen
                        or ("MODIFIED", "first", True) in seen
                        or ("DELETED", "first", False) in seen):
                    return

    task = asyncio.create_task(watch())
    await eventually(_len_at_least(events, 1), what="the replayed ADDED")
    await c.post(f"{BASE}/pinapps", json=pinapp("second"))
    await c.delete(f"{BASE}/pinapps/first")
    await asyncio.wait_for(task, 20)
    kinds = [(e["type"], e["object"]["metadata"]["name"]) for e in events]
    assert kinds[0] == ("ADDED", "first")
    assert ("ADDED", "second") in kinds
    assert all(e["object"]["kind"] == "PinApp" for e in events)


async def test_watch_resumes_from_a_resource_version(api: ApiEnv) -> None:
    c = api.client
    r = await c.get(f"{BASE}/pinapps")
    rv = r.json()["metadata"]["resourceVersion"]
    await c.post(f"{BASE}/pinapps", json=pinapp("later"))
    async with c.stream("GET", f"{BASE}/pinapps", params={
            "watch": "true", "resourceVersion": rv, "timeoutSeconds": 10}) as r:
        async for line in r.aiter_lines():
            event = orjson.loads(line)
            assert event["type"] == "ADDED"
            assert event["object"]["metadata"]["name"] == "later"
            break


async def _exists(api: ApiEnv, name: str) -> bool:
    r = await api.client.get(f"{BASE}/pinapps/{name}")
    return r.status_code == 200


def _len_at_least(items: list, n: int):  # type: ignore[no-untyped-def]
    async def check() -> bool:
        return len(items) >= n
    return check
