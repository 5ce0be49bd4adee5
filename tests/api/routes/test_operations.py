"""Operations: spec changes on the host object that the federation carries to members."""

from __future__ import annotations

from typing import Any

from pincompute.model.registry import PINAPPS, PINCRONJOBS, PINJOBS, PINPODS
from pincompute.model.wellknown import CRON_TRIGGER_ANNOTATION, RESTARTED_AT_ANNOTATION
from tests.api.conftest import ApiEnv
from tests.api.support import pinapp, pinjob
from tests.waiting import eventually

BASE = "/api/v1/projects/demo"


async def _host(api: ApiEnv, resource: Any, name: str) -> dict:
    return await api.region.host.client.get(resource, name, namespace="demo")


async def test_app_operations_change_the_host_spec(api: ApiEnv) -> None:
    c = api.client
    assert (await c.post(f"{BASE}/pinapps", json=pinapp("web", replicas=1))).status_code == 201
    await eventually(lambda: _cached(api, "pinapps", "web"), what="the app cached")

    r = await c.post(f"{BASE}/pinapps/web/scale", json={"replicas": 3})
    assert r.status_code == 200, r.text
    assert (await _host(api, PINAPPS, "web"))["spec"]["replicas"] == 3
    r = await c.post(f"{BASE}/pinapps/web/scale", json={"replicas": -1})
    assert r.status_code == 422 and r.json()["details"]["causes"][0]["field"] == \
        "body.replicas"
    r = await c.post(f"{BASE}/pinapps/web/scale", json={})
    assert r.status_code == 422

    for op, field, value in (("pause", "paused", True), ("resume", "paused", False),
                             ("stop", "stopped", True), ("start", "stopped", False)):
        r = await c.post(f"{BASE}/pinapps/web/{op}")
        assert r.status_code == 200, (op, r.text)
        assert (await _host(api, PINAPPS, "web"))["spec"][field] is value, op

    r = await c.post(f"{BASE}/pinapps/web/restart")
    assert r.status_code == 200
    first = (await _host(api, PINAPPS, "web"))["spec"]["template"]["metadata"][
        "annotations"][RESTARTED_AT_ANNOTATION]
    await c.post(f"{BASE}/pinapps/web/restart")
    second = (await _host(api, PINAPPS, "web"))["spec"]["template"]["metadata"][
        "annotations"][RESTARTED_AT_ANNOTATION]
    assert first != second

    r = await c.post(f"{BASE}/pinapps/nothere/pause")
    assert r.status_code == 404
    r = await c.post(f"{BASE}/pinjobs/web/trigger")
    assert r.status_code == 404  # no such operation for jobs


async def test_restart_one_replica_container_and_rollback(api: ApiEnv) -> None:
    c = api.client
    await c.post(f"{BASE}/pinapps", json=pinapp("web", replicas=2))

    async def two_pods() -> list | None:
        r = await c.get(f"{BASE}/pinapps/web/pods")
        items = r.json()["items"] if r.status_code == 200 else []
        return items if len(items) == 2 else None

    pods = await eventually(two_pods, timeout=30, what="the app's two pods")
    replica = pods[0]["metadata"]["labels"]["pincompute.io/workload"]
    cluster = pods[0]["metadata"]["labels"]["pincompute.io/cluster"]
    r = await c.post(f"{BASE}/pinapps/web/restart-container",
                     json={"pod": replica, "container": "main"})
    assert r.status_code == 200, r.text
    member = api.region.member(cluster).client
    pinpod = await member.get(PINPODS, replica, namespace="demo")
    assert "main" in pinpod["spec"]["restarts"]
    r = await c.post(f"{BASE}/pinapps/web/restart-container",
                     json={"pod": replica, "container": "nope"})
    assert r.status_code == 422 and r.json()["details"]["causes"][0]["field"] == "container"
    r = await c.post(f"{BASE}/pinapps/web/restart-container",
                     json={"pod": "web-zzzzz", "container": "main"})
    assert r.status_code == 404

    # Roll out a new image, then roll back to the first revision.
    async def image_changed() -> bool:
        app = (await c.get(f"{BASE}/pinapps/web")).json()
        app["spec"]["template"]["spec"]["containers"][0]["image"] = "busybox:2"
        r = await c.put(f"{BASE}/pinapps/web", json=app)
        return r.status_code == 200

    await eventually(image_changed, what="the image updated")

    async def rolled_back() -> bool:
        r = await c.post(f"{BASE}/pinapps/web/rollback", json={"revision": "1"})
        assert r.status_code in (200, 409, 422), r.text
        return r.status_code == 200

    await eventually(rolled_back, timeout=30, what="revision 1 in the shards' history")
    app = await _host(api, PINAPPS, "web")
    assert app["spec"]["template"]["spec"]["containers"][0]["image"] == "busybox"
    r = await c.post(f"{BASE}/pinapps/web/rollback", json={"revision": "99"})
    assert r.status_code == 422 and r.json()["details"]["causes"][0]["field"] == "revision"


async def test_pod_job_and_cron_operations(api: ApiEnv) -> None:
    c = api.client
    pod = {"metadata": {"name": "solo"}, "spec": {"containers": [
        {"name": "main", "image": "busybox", "command": ["sleep", "3600"]}]}}
    assert (await c.post(f"{BASE}/pinpods", json=pod)).status_code == 201
    await eventually(lambda: _cached(api, "pinpods", "solo"), what="the pod cached")
    r = await c.post(f"{BASE}/pinpods/solo/restart-container", json={"container": "main"})
    assert r.status_code == 200, r.text
    assert "main" in (await _host(api, PINPODS, "solo"))["spec"]["restarts"]
    r = await c.post(f"{BASE}/pinpods/solo/restart-container", json={"container": "other"})
    assert r.status_code == 422

    assert (await c.post(f"{BASE}/pinjobs", json=pinjob("batch"))).status_code == 201
    r = await c.post(f"{BASE}/pinjobs/batch/suspend")
    assert r.status_code == 200 and r.json()["spec"]["suspend"] is True
    assert (await _host(api, PINJOBS, "batch"))["spec"]["suspend"] is True
    r = await c.post(f"{BASE}/pinjobs/batch/resume")
    assert r.status_code == 200 and r.json()["spec"]["suspend"] is False

    cron = {"metadata": {"name": "nightly"}, "spec": {
        "schedule": "0 3 * * *", "jobTemplate": {"spec": pinjob("x")["spec"]}}}
    r = await c.post(f"{BASE}/pincronjobs", json=cron)
    assert r.status_code == 201, r.text
    r = await c.post(f"{BASE}/pincronjobs/nightly/trigger")
    assert r.status_code == 200
    host = await _host(api, PINCRONJOBS, "nightly")
    assert host["metadata"]["annotations"][CRON_TRIGGER_ANNOTATION]


async def _cached(api: ApiEnv, plural: str, name: str) -> bool:
    return (await api.client.get(f"{BASE}/{plural}/{name}")).status_code == 200


async def test_revisions_list_and_rollback_to_one(api: ApiEnv) -> None:
    c = api.client
    assert (await c.post(f"{BASE}/pinapps", json=pinapp("rev", replicas=1))).status_code == 201

    async def revisions(count: int) -> list | None:
        r = await c.get(f"{BASE}/pinapps/rev/revisions")
        assert r.status_code in (200, 404), r.text
        items = r.json()["items"] if r.status_code == 200 else []
        return items if len(items) >= count else None

    await eventually(lambda: revisions(1), timeout=30, what="the first revision")
    for image in ("busybox:2", "busybox:3"):
        async def updated(image: str = image) -> bool:
            app = (await c.get(f"{BASE}/pinapps/rev")).json()
            app["spec"]["template"]["spec"]["containers"][0]["image"] = image
            return (await c.put(f"{BASE}/pinapps/rev", json=app)).status_code == 200

        await eventually(updated, what=f"the image set to {image}")
    body = (await c.get(f"{BASE}/pinapps/rev/revisions")).json()
    assert body["kind"] == "RevisionList"
    items = await eventually(lambda: revisions(3), timeout=30, what="three revisions")
    assert [i["number"] for i in items] == [1, 2, 3]
    assert [i["current"] for i in items] == [False, False, True]
    assert items[0]["images"] == {"main": "busybox"}
    assert items[2]["change"] == "main: busybox:2 → busybox:3"
    assert all(i["revision"] and i["created"] for i in items)
    first = items[0]["revision"]

    r = await c.post(f"{BASE}/pinapps/rev/rollback", json={"revision": "1"})
    assert r.status_code == 200, r.text

    async def first_is_current() -> list | None:
        items = await revisions(1) or []
        current = [i for i in items if i["current"]]
        return items if current and current[0]["revision"] == first else None

    items = await eventually(first_is_current, timeout=30, what="revision 1 current again")
    assert items[-1]["images"] == {"main": "busybox"} and items[-1]["number"] == 4
    assert first not in [i["revision"] for i in items[:-1]]  # moved, not copied

    assert (await c.get(f"{BASE}/pinapps/nothere/revisions")).status_code == 404


async def test_revisions_need_a_role_in_the_project(api: ApiEnv) -> None:
    assert (await api.client.post(f"{BASE}/pinapps", json=pinapp("seen"))).status_code == 201
    await eventually(lambda: _cached(api, "pinapps", "seen"), what="the app cached")
    viewer = await api.token(user="vera", project="demo", role="viewer")
    async with api.as_token(viewer) as vera:
        r = await vera.get(f"{BASE}/pinapps/seen/revisions")
        assert r.status_code == 200 and r.json()["kind"] == "RevisionList"
        r = await vera.post(f"{BASE}/pinapps/seen/rollback", json={"revision": "1"})
        assert r.status_code == 403
    r = await api.client.post("/api/v1/projects", json={"metadata": {"name": "other"}, "spec": {}})
    assert r.status_code == 201, r.text
    outsider = await api.token(user="otto", project="other", role="admin")
    async with api.as_token(outsider) as otto:
        assert (await otto.get(f"{BASE}/pinapps/seen/revisions")).status_code == 403
