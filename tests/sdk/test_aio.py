"""The async client against the real gateway: CRUD, apply, watch, errors, hooks."""

from __future__ import annotations

import asyncio

import pytest

from pincompute.sdk import (
    AlreadyExists,
    AsyncClient,
    CallRecord,
    Conflict,
    Forbidden,
    Hooks,
    Invalid,
    NotFound,
    RetryPolicy,
    Unauthorized,
    Unreachable,
)
from tests.api.conftest import ApiEnv
from tests.waiting import eventually

from .support import pinapp

pytestmark = pytest.mark.asyncio(loop_scope="package")


async def test_crud_round_trip(pc: AsyncClient) -> None:
    created = await pc.create(pinapp("crud", replicas=2))
    assert created["metadata"]["namespace"] == "demo"
    assert "managedFields" not in created["metadata"]
    assert (await pc.get("app", "crud"))["spec"]["replicas"] == 2
    for _ in range(10):  # the federation writes it too (finalizer, status): read, change, put
        got = await pc.get("app", "crud")
        got["spec"]["replicas"] = 3
        try:
            updated = await pc.update(got)
            break
        except Conflict:
            await asyncio.sleep(0.05)
    assert updated["spec"]["replicas"] == 3
    patched = await pc.patch("pinapps", "crud", {"metadata": {"labels": {"x": "y"}}})
    assert patched["metadata"]["labels"]["x"] == "y"
    names = [o["metadata"]["name"] for o in (await pc.list("PinApp")).items]
    assert "crud" in names
    await pc.delete("pinapp", "crud")
    with pytest.raises(NotFound):
        await asyncio.wait_for(_until_gone(pc, "crud"), 10)


async def _until_gone(pc: AsyncClient, name: str) -> None:
    while True:
        await pc.get("app", name)
        await asyncio.sleep(0.05)


async def test_apply_creates_then_configures_then_leaves_unchanged(pc: AsyncClient) -> None:
    obj = pinapp("applied")
    assert (await pc.apply(obj))[0] == "created"
    assert (await pc.apply(obj))[0] == "unchanged"
    obj["spec"]["replicas"] = 2
    result, after = await pc.apply(obj)
    assert result == "configured" and after["spec"]["replicas"] == 2


async def test_errors_are_typed(pc: AsyncClient, gateway: ApiEnv) -> None:
    await pc.create(pinapp("typed"))
    with pytest.raises(AlreadyExists):
        await pc.create(pinapp("typed"))
    stale = await pc.get("app", "typed")
    await pc.patch("app", "typed", {"spec": {"replicas": 2}})
    with pytest.raises(Conflict):
        await pc.update(stale)
    with pytest.raises(NotFound):
        await pc.get("app", "nothing-here")
    bad = pinapp("bad")
    bad["spec"]["replicas"] = -1
    with pytest.raises(Invalid) as invalid:
        await pc.create(bad)
    assert any(c.field == "spec.replicas" for c in invalid.value.causes)
    token = await gateway.token(user="vera", project="demo", role="viewer")
    async with AsyncClient(gateway.url, token=token, project="demo") as viewer:
        assert (await viewer.get("app", "typed"))["metadata"]["name"] == "typed"
        with pytest.raises(Forbidden) as denied:
            await viewer.delete("app", "typed")
        assert "editor" in str(denied.value)
    async with AsyncClient(gateway.url, token="pct_000000000000_" + "x" * 43,
                           project="demo") as stranger:
        with pytest.raises(Unauthorized):
            await stranger.list("app")


async def test_who_and_health(pc: AsyncClient, gateway: ApiEnv) -> None:
    me = await pc.whoami()
    assert (me["user"], me["admin"]) == ("admin", True) and "token" not in me
    token = await gateway.token(user="carl", project="demo", role="editor")
    async with AsyncClient(gateway.url, token=token) as carl:
        assert {k: (await carl.whoami())[k] for k in ("user", "project", "role")} == {
            "user": "carl", "project": "demo", "role": "editor"}
    assert await pc.healthz() and await pc.readyz()


async def test_list_all_pages(pc: AsyncClient) -> None:
    for i in range(5):
        await pc.create(pinapp(f"page-{i}", labels={"paged": "yes"}))
    page = await pc.list("app", label_selector="paged=yes", limit=2)
    assert len(page.items) == 2 and page.continue_
    names = [o["metadata"]["name"] async for o in pc.list_all(
        "app", label_selector="paged=yes", page_size=2)]
    assert names == [f"page-{i}" for i in range(5)]


async def test_watch_streams_changes_of_one_object(pc: AsyncClient) -> None:
    await pc.create(pinapp("watched"))
    await pc.create(pinapp("other"))
    seen: list[tuple[str, int]] = []
    started = asyncio.Event()

    async def follow() -> None:
        async for event in pc.watch("app", name="watched"):
            seen.append((event.type, event.object["spec"]["replicas"]))
            started.set()
            if event.object["spec"]["replicas"] == 4:
                return

    task = asyncio.create_task(follow())
    await asyncio.wait_for(started.wait(), 10)
    await pc.patch("app", "other", {"spec": {"replicas": 9}})
    await pc.patch("app", "watched", {"spec": {"replicas": 4}})
    await asyncio.wait_for(task, 10)
    assert seen[0] == ("ADDED", 1)
    assert seen[-1] == ("MODIFIED", 4)
    assert all(replicas != 9 for _, replicas in seen)


async def test_a_quiet_watch_outlives_the_timeout(gateway: ApiEnv) -> None:
    """The timeout bounds answers, not the silence between a stream's lines."""
    async with AsyncClient(gateway.url, token=gateway.admin_token, project="demo",
                           timeout=0.5) as pc:
        stream = pc.watch("app", label_selector="quiet=yes")  # nothing matches yet
        first = asyncio.create_task(anext(stream))
        await asyncio.sleep(1.5)  # three timeouts of silence
        assert not first.done()
        await pc.create(pinapp("quiet", labels={"quiet": "yes"}))
        event = await asyncio.wait_for(first, 10)
        assert (event.type, event.name) == ("ADDED", "quiet")
        await stream.aclose()


async def test_hooks_see_every_attempt_and_retries_back_off(gateway: ApiEnv) -> None:
    records: list[CallRecord] = []
    hooks = Hooks(on_response=records.append)
    async with AsyncClient(gateway.url, token=gateway.admin_token, project="demo",
                           hooks=hooks) as pc:
        await pc.list("app")
    assert records[-1].route == "/api/v1/projects/{project}/pinapps"
    assert records[-1].status_code == 200 and records[-1].seconds > 0
    # Nothing listens here: every attempt fails to connect and is retried.
    records.clear()
    policy = RetryPolicy(attempts=3, wait_initial=0.01, wait_max=0.02, wait_jitter=0.0)
    async with AsyncClient("http://127.0.0.1:9", token="t", project="demo", hooks=hooks,
                           retry=policy) as down:
        with pytest.raises(Unreachable):
            await down.get("app", "x")
    assert [r.attempt for r in records] == [1, 2, 3]
    assert all(isinstance(r.error, Unreachable) for r in records)


async def test_operations_and_the_audit_log(pc: AsyncClient) -> None:
    await pc.create(pinapp("ops"))
    assert (await pc.pause("ops"))["spec"]["paused"] is True
    assert (await pc.resume("ops"))["spec"]["paused"] is False
    assert (await pc.stop("ops"))["spec"]["stopped"] is True
    assert (await pc.start("ops"))["spec"]["stopped"] is False
    assert (await pc.scale("ops", 3))["spec"]["replicas"] == 3
    restarted = await pc.restart("ops")
    assert restarted["metadata"]["generation"] > 1
    job = {"apiVersion": "pincompute.io/v1alpha1", "kind": "PinJob",
           "metadata": {"name": "opsjob"},
           "spec": {"completions": 1, "template": {"spec": {"containers": [
               {"name": "main", "image": "busybox", "command": ["true"],
                "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}}}]}}}}
    await pc.create(job)
    assert (await pc.suspend("opsjob"))["spec"]["suspend"] is True
    assert (await pc.resume("opsjob", kind="job"))["spec"]["suspend"] is False
    with pytest.raises(Invalid):  # no such container: the field is named
        await pc.restart_container("ops", "nope", kind="app", pod="ops-xxxxx")
    records = await pc.audit(resource="pinapps", limit=50)
    assert any(r.get("name") == "ops" and r.get("verb") == "POST" for r in records), records


async def test_a_watch_resumes_from_the_last_version_seen(pc: AsyncClient) -> None:
    """What ``get -w`` does when the server ends a stream: watch again from the last
    resourceVersion, getting the changes since and nothing replayed."""
    await pc.create(pinapp("resumed", labels={"resume": "yes"}))
    version = None
    async for event in pc.watch("app", label_selector="resume=yes", timeout_seconds=1):
        version = event.resource_version  # the stream ends after a second
    assert version
    await pc.patch("app", "resumed", {"spec": {"replicas": 3}})
    async for event in pc.watch("app", label_selector="resume=yes",
                                resource_version=version):
        assert event.type == "MODIFIED"  # not the ADDED of a replay
        if event.object["spec"]["replicas"] == 3:
            break


async def test_platform_kinds(pc: AsyncClient) -> None:
    pools = (await pc.list("nodepools")).items  # over every member cluster
    clusters = {p["metadata"]["labels"]["pincompute.io/cluster"] for p in pools}
    assert {"zone-a-1", "zone-b-1"} <= clusters
    pool = await pc.get("pool", pools[0]["metadata"]["name"],
                        cluster=pools[0]["metadata"]["labels"]["pincompute.io/cluster"])
    assert pool["kind"] == "NodePool"
    image = {"apiVersion": "pincompute.io/v1alpha1", "kind": "NodeImage",
             "metadata": {"name": "general-2026-11"},
             "spec": {"type": "general", "version": "2026.11"}}
    assert (await pc.apply(image))[0] == "created"
    assert (await pc.get("ni", "general-2026-11"))["spec"]["version"] == "2026.11"
    await pc.delete("nodeimages", "general-2026-11")
    assert isinstance((await pc.list("pindaemons")).items, list)
    nodes = await pc.nodes("zone-a-1")
    assert nodes and all(n["metadata"]["name"].startswith("zone-a-1-") for n in nodes)


async def test_revisions_and_rollback_to_one(pc: AsyncClient) -> None:
    await pc.create(pinapp("revs"))

    async def updated() -> bool:
        app = await pc.get("app", "revs")
        app["spec"]["template"]["spec"]["containers"][0]["image"] = "busybox:2"
        try:
            await pc.update(app)
        except Conflict:  # the federation wrote the app meanwhile
            return False
        return True

    await eventually(updated, what="the image updated")

    async def two() -> list | None:
        items = await pc.revisions("revs")
        return items if len(items) >= 2 and items[-1]["images"]["main"] == "busybox:2" \
            else None

    items = await eventually(two, timeout=30, what="two revisions")
    assert [i["current"] for i in items] == [False, True]
    with pytest.raises(Invalid):  # no such revision: the field is named
        await pc.rollback("revs", revision=99)

    async def rolled_back() -> bool:
        try:
            await pc.rollback("revs", revision=1)  # an int, sent as the API's string
        except Conflict:
            return False
        return True

    await eventually(rolled_back, what="the rollback written")

    async def first_current() -> bool:
        now = await pc.revisions("revs", kind="app")
        return now[-1]["revision"] == items[0]["revision"] and now[-1]["current"]

    await eventually(first_current, timeout=30, what="revision 1 current again")
    with pytest.raises(NotFound):
        await pc.revisions("nothere")
