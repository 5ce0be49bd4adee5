"""Create, get, list, update, delete; server-set metadata; NotFound and AlreadyExists."""

from __future__ import annotations

import datetime as dt

import pytest

from pincompute.kube import AlreadyExists, NotFound
from pincompute.kube.objects import parse_time

from .helpers import CONFIGMAPS, WIDGETS, configmap, copy, names, rv, watching, widget

ALSO_MEMORY = True


async def test_create_get_list_delete(client, ns):
    created = await client.create(CONFIGMAPS, configmap("alpha", ns, data={"k": "v"}))
    assert created["metadata"]["name"] == "alpha"
    assert created["metadata"]["namespace"] == ns
    assert created["data"] == {"k": "v"}
    assert created["kind"] == "ConfigMap" and created["apiVersion"] == "v1"

    got = await client.get(CONFIGMAPS, "alpha", namespace=ns)
    assert got["data"] == {"k": "v"}
    assert got["metadata"]["uid"] == created["metadata"]["uid"]
    assert got["metadata"]["resourceVersion"] == created["metadata"]["resourceVersion"]

    listed = await client.list(CONFIGMAPS, namespace=ns)
    assert names(listed.items) == ["alpha"]
    assert listed.resource_version and rv(listed.resource_version) >= rv(created)

    deleted = await client.delete(CONFIGMAPS, "alpha", namespace=ns)
    assert deleted["metadata"]["name"] == "alpha"
    with pytest.raises(NotFound):
        await client.get(CONFIGMAPS, "alpha", namespace=ns)
    assert names((await client.list(CONFIGMAPS, namespace=ns)).items) == []


async def test_server_sets_uid_creation_timestamp_and_resource_version(client, ns):
    before = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)
    obj = configmap("a", ns, data={"x": "1"})
    obj["metadata"]["uid"] = "client-chosen-uid"
    obj["metadata"]["creationTimestamp"] = "2000-01-01T00:00:00Z"
    a = await client.create(CONFIGMAPS, obj)
    b = await client.create(CONFIGMAPS, configmap("b", ns))

    for o in (a, b):
        m = o["metadata"]
        assert m["uid"] and m["uid"] != "client-chosen-uid"
        assert parse_time(m["creationTimestamp"]) >= before
        assert m["resourceVersion"]
    assert a["metadata"]["uid"] != b["metadata"]["uid"]
    assert rv(b) > rv(a)

    a["data"] = {"x": "2"}
    a2 = await client.update(CONFIGMAPS, a)
    assert rv(a2) > rv(b)
    assert a2["metadata"]["uid"] == a["metadata"]["uid"]
    assert a2["metadata"]["creationTimestamp"] == a["metadata"]["creationTimestamp"]
    got = await client.get(CONFIGMAPS, "a", namespace=ns)
    assert got["data"] == {"x": "2"} and rv(got) == rv(a2)


async def test_resource_versions_increase_across_kinds(client, ns):
    seen = []
    for i in range(5):
        seen.append(rv(await client.create(CONFIGMAPS, configmap(f"c{i}", ns))))
        seen.append(rv(await client.create(WIDGETS, widget(f"w{i}", ns))))
    assert seen == sorted(seen) and len(set(seen)) == len(seen)


async def test_already_exists_leaves_the_original(client, ns):
    first = await client.create(CONFIGMAPS, configmap("dup", ns, data={"v": "first"}))
    with pytest.raises(AlreadyExists):
        await client.create(CONFIGMAPS, configmap("dup", ns, data={"v": "second"}))
    got = await client.get(CONFIGMAPS, "dup", namespace=ns)
    assert got["data"] == {"v": "first"} and rv(got) == rv(first)


async def test_same_name_in_another_namespace_is_another_object(client, ns, make_namespace):
    other = await make_namespace()
    a = await client.create(CONFIGMAPS, configmap("same", ns, data={"ns": "one"}))
    b = await client.create(CONFIGMAPS, configmap("same", other, data={"ns": "two"}))
    assert a["metadata"]["uid"] != b["metadata"]["uid"]
    assert (await client.get(CONFIGMAPS, "same", namespace=ns))["data"] == {"ns": "one"}
    assert (await client.get(CONFIGMAPS, "same", namespace=other))["data"] == {"ns": "two"}


async def test_not_found_everywhere(client, ns, make_namespace):
    with pytest.raises(NotFound):
        await client.get(CONFIGMAPS, "missing", namespace=ns)
    with pytest.raises(NotFound):
        await client.delete(CONFIGMAPS, "missing", namespace=ns)
    with pytest.raises(NotFound):
        await client.patch(CONFIGMAPS, "missing", {"data": {"a": "b"}}, namespace=ns)
    with pytest.raises(NotFound):
        await client.update(CONFIGMAPS, configmap("missing", ns, data={"a": "b"}))
    w = widget("missing", ns)
    w["status"] = {"phase": "x"}
    with pytest.raises(NotFound):
        await client.update_status(WIDGETS, w)
    # An object exists only in its own namespace.
    await client.create(CONFIGMAPS, configmap("here", ns))
    other = await make_namespace()
    with pytest.raises(NotFound):
        await client.get(CONFIGMAPS, "here", namespace=other)


async def test_update_of_deleted_object_is_not_found(client, ns):
    obj = await client.create(CONFIGMAPS, configmap("short-lived", ns, data={"a": "1"}))
    await client.delete(CONFIGMAPS, "short-lived", namespace=ns)
    obj["data"] = {"a": "2"}
    with pytest.raises(NotFound):
        await client.update(CONFIGMAPS, obj)


async def test_unconditional_update_with_empty_resource_version(client, ns):
    # ConfigMaps allow unconditional updates; custom resources do not (a real API
    # server requires a resourceVersion for them), so the suite checks a ConfigMap.
    first = await client.create(CONFIGMAPS, configmap("uncond", ns, data={"v": "1"}))
    await client.patch(CONFIGMAPS, "uncond", {"data": {"v": "2"}}, namespace=ns)
    blind = configmap("uncond", ns, data={"v": "3"})
    blind["metadata"]["resourceVersion"] = ""
    updated = await client.update(CONFIGMAPS, blind)
    assert updated["data"] == {"v": "3"}
    assert rv(updated) > rv(first)
    assert updated["metadata"]["uid"] == first["metadata"]["uid"]
    assert (await client.get(CONFIGMAPS, "uncond", namespace=ns))["data"] == {"v": "3"}


async def test_no_op_update_keeps_resource_version_and_emits_no_event(client, ns, harness):
    obj = await client.create(CONFIGMAPS, configmap("same", ns, data={"v": "1"}))
    async with watching(client.watch(CONFIGMAPS, namespace=ns,
                                     resource_version=obj["metadata"]["resourceVersion"]),
                        timeout=harness.event_timeout) as events:
        again = await client.update(CONFIGMAPS, copy(obj))
        assert rv(again) == rv(obj)
        patched = await client.patch(CONFIGMAPS, "same", {"data": {"v": "1"}}, namespace=ns)
        assert rv(patched) == rv(obj)
        assert rv(await client.get(CONFIGMAPS, "same", namespace=ns)) == rv(obj)

        obj["data"] = {"v": "2"}
        real = await client.update(CONFIGMAPS, obj)
        assert rv(real) > rv(again)
        ev = await events.next()
        # The first event after the no-op writes is the real change.
        assert (ev.type, ev.object["data"], rv(ev)) == ("MODIFIED", {"v": "2"}, rv(real))


async def test_no_op_update_of_a_widget_keeps_resource_version(client, ns):
    w = await client.create(WIDGETS, widget("quiet", ns, size=3))
    again = await client.update(WIDGETS, copy(w))
    assert rv(again) == rv(w)
    assert again["metadata"]["generation"] == w["metadata"]["generation"]


async def test_returned_objects_belong_to_the_caller(client, ns):
    created = await client.create(CONFIGMAPS, configmap("mine", ns, data={"v": "1"}))
    created["data"]["v"] = "changed locally"
    created["metadata"]["labels"] = {"local": "yes"}
    got = await client.get(CONFIGMAPS, "mine", namespace=ns)
    assert got["data"] == {"v": "1"} and not got["metadata"].get("labels")
    got["data"]["v"] = "also local"
    listed = await client.list(CONFIGMAPS, namespace=ns)
    assert [o["data"] for o in listed.items if o["metadata"]["name"] == "mine"] == [{"v": "1"}]
