"""Namespaces: objects live in existing namespaces; deleting one deletes its contents."""

from __future__ import annotations

import pytest

from pincompute.kube import Forbidden, NotFound
from pincompute.kube.errors import NamespaceTerminating
from pincompute.kube.resource import NAMESPACES

from .helpers import (
    CONFIGMAPS,
    HOLD,
    WIDGETS,
    configmap,
    eventually,
    exists,
    gone,
    names,
    remove_finalizer,
    widget,
)


async def test_namespace_is_cluster_scoped_and_listed(client, ns):
    got = await client.get(NAMESPACES, ns)
    assert got["metadata"]["name"] == ns
    assert not got["metadata"].get("namespace")
    assert got["metadata"]["uid"]
    listed = await client.list(NAMESPACES, field_selector=f"metadata.name={ns}")
    assert [o["metadata"]["name"] for o in listed.items] == [ns]


async def test_creating_in_a_missing_namespace_is_not_found(client):
    with pytest.raises(NotFound):
        await client.create(CONFIGMAPS, configmap("x", "conformance-no-such-namespace"))
    with pytest.raises(NotFound):
        await client.create(WIDGETS, widget("x", "conformance-no-such-namespace"))


async def test_namespace_argument_places_the_object(client, ns):
    obj = configmap("placed", ns)
    del obj["metadata"]["namespace"]
    created = await client.create(CONFIGMAPS, obj, namespace=ns)
    assert created["metadata"]["namespace"] == ns
    assert await exists(client, CONFIGMAPS, "placed", ns)


async def test_list_across_namespaces(client, ns, make_namespace):
    other = await make_namespace()
    await client.create(WIDGETS, widget("a", ns))
    await client.create(WIDGETS, widget("b", other))
    everywhere = await client.list(WIDGETS)
    ours = {(o["metadata"]["namespace"], o["metadata"]["name"]) for o in everywhere.items
            if o["metadata"]["namespace"] in (ns, other)}
    assert ours == {(ns, "a"), (other, "b")}
    assert names((await client.list(WIDGETS, namespace=ns)).items) == ["a"]


async def test_deleting_a_namespace_deletes_its_objects(client, make_namespace, harness):
    doomed = await make_namespace()
    keep = await make_namespace()
    for i in range(3):
        await client.create(CONFIGMAPS, configmap(f"c{i}", doomed))
        await client.create(WIDGETS, widget(f"w{i}", doomed))
    await client.create(WIDGETS, widget("w0", keep))

    await client.delete(NAMESPACES, doomed)
    await gone(client, NAMESPACES, doomed, None, timeout=harness.gc_timeout)
    for i in range(3):
        assert not await exists(client, CONFIGMAPS, f"c{i}", doomed)
        assert not await exists(client, WIDGETS, f"w{i}", doomed)
    assert names((await client.list(WIDGETS, namespace=doomed)).items) == []
    assert await exists(client, WIDGETS, "w0", keep)


async def test_terminating_namespace_refuses_new_objects(client, make_namespace, harness):
    doomed = await make_namespace()
    await client.create(WIDGETS, widget("held", doomed, finalizers=[HOLD]))
    deleting = await client.delete(NAMESPACES, doomed)
    assert deleting["metadata"].get("deletionTimestamp")

    async def terminating():
        got = await client.get(NAMESPACES, doomed)
        return got["metadata"].get("deletionTimestamp") and (
            got.get("status") or {}).get("phase") == "Terminating"

    await eventually(terminating, timeout=harness.gc_timeout,
                     what="the namespace to be Terminating")
    # A Forbidden of its own kind (cause NamespaceTerminating), which controllers let pass.
    with pytest.raises(NamespaceTerminating):
        await client.create(CONFIGMAPS, configmap("late", doomed))
    with pytest.raises(Forbidden):
        await client.create(WIDGETS, widget("late", doomed))

    async def held_is_deleting():
        held = await client.get(WIDGETS, "held", namespace=doomed)
        return held["metadata"].get("deletionTimestamp")

    # The namespace's contents are deleted, and the namespace waits for them.
    await eventually(held_is_deleting, timeout=harness.gc_timeout,
                     what="the namespace's objects to be deleted")
    assert await exists(client, NAMESPACES, doomed, None)
    await remove_finalizer(client, WIDGETS, "held", doomed, HOLD)
    await gone(client, NAMESPACES, doomed, None, timeout=harness.gc_timeout)
