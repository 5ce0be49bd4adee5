"""Finalizers, delete preconditions, and the graceful deletion of pods."""

from __future__ import annotations

import pytest

from pincompute.kube import Conflict, Invalid, NotFound, Preconditions

from .helpers import (
    CONFIGMAPS,
    HOLD,
    HOLD2,
    PODS,
    WIDGETS,
    assert_invalid,
    configmap,
    copy,
    names,
    pod,
    remove_finalizer,
    rv,
    watching,
    widget,
)


async def test_finalizer_blocks_deletion_until_removed(client, ns, harness):
    created = await client.create(CONFIGMAPS, configmap("held", ns, data={"v": "1"},
                                                        finalizers=[HOLD]))
    async with watching(client.watch(CONFIGMAPS, namespace=ns,
                                     resource_version=created["metadata"]["resourceVersion"]),
                        timeout=harness.event_timeout) as events:
        deleting = await client.delete(CONFIGMAPS, "held", namespace=ns)
        assert deleting["metadata"].get("deletionTimestamp")
        assert deleting["metadata"].get("deletionGracePeriodSeconds") == 0
        assert deleting["metadata"]["finalizers"] == [HOLD]

        ev = await events.next()
        assert ev.type == "MODIFIED"
        assert ev.object["metadata"].get("deletionTimestamp")

        # Still readable and listed while held.
        got = await client.get(CONFIGMAPS, "held", namespace=ns)
        assert got["metadata"]["deletionTimestamp"] == deleting["metadata"]["deletionTimestamp"]
        assert got["data"] == {"v": "1"}
        assert names((await client.list(CONFIGMAPS, namespace=ns)).items) == ["held"]
        assert await events.quiet(0.1) == []

        got["metadata"]["finalizers"] = []
        await client.update(CONFIGMAPS, got)
        ev = await events.next()
        assert (ev.type, ev.object["metadata"]["name"]) == ("DELETED", "held")
        assert rv(ev) > rv(got)
        assert await events.quiet(0.1) == []
    with pytest.raises(NotFound):
        await client.get(CONFIGMAPS, "held", namespace=ns)


async def test_every_finalizer_must_go(client, ns):
    await client.create(WIDGETS, widget("held", ns, finalizers=[HOLD, HOLD2]))
    await client.delete(WIDGETS, "held", namespace=ns)
    await remove_finalizer(client, WIDGETS, "held", ns, HOLD)
    got = await client.get(WIDGETS, "held", namespace=ns)
    assert got["metadata"]["finalizers"] == [HOLD2]
    assert got["metadata"].get("deletionTimestamp")
    await client.patch(WIDGETS, "held", {"metadata": {"finalizers": None}}, namespace=ns)
    with pytest.raises(NotFound):
        await client.get(WIDGETS, "held", namespace=ns)


async def test_an_object_being_deleted_can_still_be_updated(client, ns):
    await client.create(WIDGETS, widget("held", ns, size=1, finalizers=[HOLD]))
    deleting = await client.delete(WIDGETS, "held", namespace=ns)
    deleting["spec"]["size"] = 2
    updated = await client.update(WIDGETS, deleting)
    assert updated["spec"]["size"] == 2
    assert updated["metadata"]["deletionTimestamp"] == deleting["metadata"]["deletionTimestamp"]
    status = await client.patch(WIDGETS, "held", {"status": {"phase": "Terminating"}},
                                namespace=ns, subresource="status")
    assert status["status"] == {"phase": "Terminating"}


async def test_no_new_finalizers_on_an_object_being_deleted(client, ns):
    await client.create(CONFIGMAPS, configmap("held", ns, finalizers=[HOLD]))
    deleting = await client.delete(CONFIGMAPS, "held", namespace=ns)
    more = copy(deleting)
    more["metadata"]["finalizers"] = [HOLD, HOLD2]
    with pytest.raises(Invalid) as exc:
        await client.update(CONFIGMAPS, more)
    assert_invalid(exc, "metadata.finalizers", prefix=True)
    with pytest.raises(Invalid) as exc:
        await client.patch(CONFIGMAPS, "held", {"metadata": {"finalizers": [HOLD, HOLD2]}},
                           namespace=ns)
    assert_invalid(exc, "metadata.finalizers", prefix=True)
    got = await client.get(CONFIGMAPS, "held", namespace=ns)
    assert got["metadata"]["finalizers"] == [HOLD] and rv(got) == rv(deleting)


async def test_deleting_again_changes_nothing(client, ns):
    await client.create(CONFIGMAPS, configmap("held", ns, finalizers=[HOLD]))
    first = await client.delete(CONFIGMAPS, "held", namespace=ns)
    second = await client.delete(CONFIGMAPS, "held", namespace=ns)
    assert second["metadata"]["deletionTimestamp"] == first["metadata"]["deletionTimestamp"]
    got = await client.get(CONFIGMAPS, "held", namespace=ns)
    assert got["metadata"]["finalizers"] == [HOLD]
    await remove_finalizer(client, CONFIGMAPS, "held", ns, HOLD)


async def test_delete_preconditions(client, ns):
    obj = await client.create(CONFIGMAPS, configmap("pre", ns, data={"v": "1"}))
    with pytest.raises(Conflict):
        await client.delete(CONFIGMAPS, "pre", namespace=ns,
                            preconditions=Preconditions(uid="00000000-0000-0000-0000-000000000000"))
    stale = obj["metadata"]["resourceVersion"]
    obj = await client.patch(CONFIGMAPS, "pre", {"data": {"v": "2"}}, namespace=ns)
    with pytest.raises(Conflict):
        await client.delete(CONFIGMAPS, "pre", namespace=ns,
                            preconditions=Preconditions(resource_version=stale))
    got = await client.get(CONFIGMAPS, "pre", namespace=ns)
    assert got["data"] == {"v": "2"} and not got["metadata"].get("deletionTimestamp")

    await client.delete(CONFIGMAPS, "pre", namespace=ns, preconditions=Preconditions(
        uid=obj["metadata"]["uid"], resource_version=obj["metadata"]["resourceVersion"]))
    with pytest.raises(NotFound):
        await client.get(CONFIGMAPS, "pre", namespace=ns)


async def test_delete_precondition_on_a_recreated_object(client, ns):
    old = await client.create(WIDGETS, widget("again", ns))
    await client.delete(WIDGETS, "again", namespace=ns)
    await client.create(WIDGETS, widget("again", ns))
    with pytest.raises(Conflict):
        await client.delete(WIDGETS, "again", namespace=ns,
                            preconditions=Preconditions(uid=old["metadata"]["uid"]))
    assert (await client.get(WIDGETS, "again", namespace=ns))["metadata"]["uid"] != (
        old["metadata"]["uid"])


# --- pods: graceful deletion -------------------------------------------------------------------

async def _deleted(events, name):
    """The next events end with DELETED; a real API server first writes the pod with a
    zero grace period (one MODIFIED carrying the deletionTimestamp), the embedded store
    may not."""
    while True:
        ev = await events.next()
        assert ev.object["metadata"]["name"] == name
        if ev.type == "DELETED":
            return ev
        assert ev.type == "MODIFIED" and ev.object["metadata"].get("deletionTimestamp"), ev

async def test_bound_pod_is_deleted_gracefully(client, ns, harness):
    created = await client.create(PODS, pod("bound", ns, node="node-1"))
    async with watching(client.watch(PODS, namespace=ns,
                                     resource_version=created["metadata"]["resourceVersion"]),
                        timeout=harness.event_timeout) as events:
        deleting = await client.delete(PODS, "bound", namespace=ns)
        assert deleting["metadata"].get("deletionTimestamp")
        assert deleting["metadata"].get("deletionGracePeriodSeconds") == 30
        ev = await events.next()
        assert ev.type == "MODIFIED" and ev.object["metadata"].get("deletionTimestamp")
        got = await client.get(PODS, "bound", namespace=ns)
        assert got["metadata"]["deletionGracePeriodSeconds"] == 30

        # What the node does once the containers are stopped: delete with no grace.
        await client.delete(PODS, "bound", namespace=ns, grace_period_seconds=0)
        await _deleted(events, "bound")
    with pytest.raises(NotFound):
        await client.get(PODS, "bound", namespace=ns)


async def test_bound_pod_with_an_explicit_grace_period(client, ns):
    await client.create(PODS, pod("bound", ns, node="node-1"))
    deleting = await client.delete(PODS, "bound", namespace=ns, grace_period_seconds=5)
    assert deleting["metadata"]["deletionGracePeriodSeconds"] == 5
    # A shorter grace period may follow; the pod is still there until it is zero.
    shorter = await client.delete(PODS, "bound", namespace=ns, grace_period_seconds=2)
    assert shorter["metadata"]["deletionGracePeriodSeconds"] == 2
    assert (await client.get(PODS, "bound", namespace=ns))["metadata"]["deletionTimestamp"]
    await client.delete(PODS, "bound", namespace=ns, grace_period_seconds=0)
    with pytest.raises(NotFound):
        await client.get(PODS, "bound", namespace=ns)


async def test_bound_pod_deleted_with_zero_grace_goes_at_once(client, ns):
    await client.create(PODS, pod("bound", ns, node="node-1"))
    await client.delete(PODS, "bound", namespace=ns, grace_period_seconds=0)
    with pytest.raises(NotFound):
        await client.get(PODS, "bound", namespace=ns)


async def test_unbound_pod_is_deleted_at_once(client, ns, harness):
    created = await client.create(PODS, pod("unbound", ns))
    async with watching(client.watch(PODS, namespace=ns,
                                     resource_version=created["metadata"]["resourceVersion"]),
                        timeout=harness.event_timeout) as events:
        await client.delete(PODS, "unbound", namespace=ns)
        await _deleted(events, "unbound")
    with pytest.raises(NotFound):
        await client.get(PODS, "unbound", namespace=ns)


async def test_bound_pod_with_a_finalizer_waits_for_both(client, ns):
    obj = pod("both", ns, node="node-1")
    obj["metadata"]["finalizers"] = [HOLD]
    await client.create(PODS, obj)
    await client.delete(PODS, "both", namespace=ns, grace_period_seconds=0)
    got = await client.get(PODS, "both", namespace=ns)
    assert got["metadata"]["deletionTimestamp"] and got["metadata"]["finalizers"] == [HOLD]
    await remove_finalizer(client, PODS, "both", ns, HOLD)
    with pytest.raises(NotFound):
        await client.get(PODS, "both", namespace=ns)
