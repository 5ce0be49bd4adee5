"""Events and history through the gateway, on a running (sim) region."""

from __future__ import annotations

from typing import Any

from pincompute.kube.resource import EVENTS
from tests.api.conftest import ApiEnv
from tests.api.support import pinapp
from tests.waiting import eventually

BASE = "/api/v1/projects/demo"


async def test_history_and_events_of_a_workload(api: ApiEnv) -> None:
    c = api.client
    r = await c.post(f"{BASE}/pinapps", json=pinapp("web", replicas=2))
    assert r.status_code == 201, r.text

    async def rolled_out() -> list[dict[str, Any]] | None:
        r = await c.get(f"{BASE}/pinapps/web/history")
        if r.status_code != 200:
            return None
        states = [e["state"] for e in r.json()["items"]]
        return r.json()["items"] if {"admitted", "placed", "rolled out"} <= set(states) \
            else None

    items = await eventually(rolled_out, timeout=30, what="web admitted, placed, rolled out")
    states = [e["state"] for e in items]
    assert states[0] == "created"
    assert states.index("admitted") < states.index("placed") < states.index("rolled out")
    times = [e["time"] for e in items]
    assert times == sorted(times)
    assert all(e["source"] in ("object", "condition", "event") for e in items)

    # The Events about it, those forwarded from its member clusters among them.
    async def forwarded() -> list[dict[str, Any]] | None:
        r = await c.get(f"{BASE}/pinapps/web/events")
        events = r.json()["items"]
        ok = any((e["metadata"].get("labels") or {}).get("pincompute.io/forwarded-from")
                 for e in events)
        return events if ok else None

    events = await eventually(forwarded, timeout=30, what="forwarded Events about web")
    assert all(e["involvedObject"]["name"] == "web" for e in events)
    assert all("managedFields" not in e["metadata"] for e in events)

    # Filters: type, reason, since; the project-wide list has them too.
    r = await c.get(f"{BASE}/pinapps/web/events", params={"type": "Warning"})
    assert all(e["type"] == "Warning" for e in r.json()["items"])
    reason = events[-1]["reason"]
    r = await c.get(f"{BASE}/pinapps/web/events", params={"reason": f"{reason},Nope"})
    assert r.json()["items"] and {e["reason"] for e in r.json()["items"]} == {reason}
    r = await c.get(f"{BASE}/pinapps/web/events", params={"since": "2999-01-01T00:00:00Z"})
    assert r.json()["items"] == []
    r = await c.get(f"{BASE}/pinapps/web/events", params={"sinceSeconds": 3600, "limit": 1})
    assert len(r.json()["items"]) == 1
    r = await c.get(f"{BASE}/events")
    assert r.json()["kind"] == "EventList"
    assert {e["metadata"]["name"] for e in events} <= {
        e["metadata"]["name"] for e in r.json()["items"]}

    # An Event of another object of the same kind and project is not web's.
    await api.region.host.client.create(EVENTS, {
        "metadata": {"name": "other.1", "namespace": "demo"},
        "involvedObject": {"kind": "PinApp", "name": "other", "namespace": "demo"},
        "reason": "ScaledUp", "message": "x", "type": "Normal", "count": 1,
        "firstTimestamp": "2026-01-01T00:00:00Z", "lastTimestamp": "2026-01-01T00:00:00Z"},
        namespace="demo")

    async def other_listed() -> bool:
        r = await c.get(f"{BASE}/pinapps/other/events")
        return [e["metadata"]["name"] for e in r.json()["items"]] == ["other.1"]

    await eventually(other_listed, what="the other app's Event")
    r = await c.get(f"{BASE}/pinapps/web/events", params={"reason": "ScaledUp"})
    assert "other.1" not in {e["metadata"]["name"] for e in r.json()["items"]}


async def test_bad_input_and_access(api: ApiEnv) -> None:
    c = api.client
    r = await c.get(f"{BASE}/pinwidgets/x/history")
    assert r.status_code == 404 and "pinwidgets" in r.json()["message"]
    r = await c.get(f"{BASE}/pinapps/missing/history")
    assert r.status_code == 404
    r = await c.get(f"{BASE}/events", params={"since": "yesterday"})
    assert r.status_code == 400 and r.json()["details"]["causes"][0]["field"] == "query.since"
    r = await c.get(f"{BASE}/events", params={"type": "Fatal"})
    assert r.status_code == 422
    r = await c.get(f"{BASE}/events", params={"limit": 0})
    assert r.status_code == 422

    await api.region.ensure_project("other")
    viewer = await api.token(user="vic", project="demo", role="viewer")
    outsider = await api.token(user="oscar", project="other", role="admin")
    async with api.as_token(viewer) as v:
        assert (await v.get(f"{BASE}/events")).status_code == 200
        assert (await v.get(f"{BASE}/pinapps/missing/events")).status_code == 200
    async with api.as_token(outsider) as o:
        for path in ("/events", "/pinapps/web/events", "/pinapps/web/history"):
            r = await o.get(f"{BASE}{path}")
            assert r.status_code == 403, path
