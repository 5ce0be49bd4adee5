"""Garbage collection through ownerReferences: background, foreground, orphan.

On a real cluster the garbage collector is an asynchronous controller, so every
expectation here is polled with a timeout (``harness.gc_timeout``).
"""

from __future__ import annotations

import asyncio

from pincompute.kube.objects import owner_reference

from .helpers import (
    CONFIGMAPS,
    HOLD,
    WIDGETS,
    configmap,
    eventually,
    exists,
    gone,
    remove_finalizer,
    widget,
)


def _owner_uids(obj) -> set[str]:
    return {r["uid"] for r in obj["metadata"].get("ownerReferences") or ()}


async def test_background_deletion_collects_dependents(client, ns, harness):
    owner = await client.create(WIDGETS, widget("owner", ns))
    for i in range(3):
        await client.create(CONFIGMAPS, configmap(f"dep{i}", ns, owners=[owner]))
    grandchild_owner = await client.get(CONFIGMAPS, "dep0", namespace=ns)
    await client.create(CONFIGMAPS, configmap("grandchild", ns, owners=[grandchild_owner]))
    await client.create(CONFIGMAPS, configmap("unrelated", ns))

    await client.delete(WIDGETS, "owner", namespace=ns)
    assert not await exists(client, WIDGETS, "owner", ns)
    for name in ("dep0", "dep1", "dep2", "grandchild"):
        await gone(client, CONFIGMAPS, name, ns, timeout=harness.gc_timeout)
    assert await exists(client, CONFIGMAPS, "unrelated", ns)


async def test_background_is_the_default_and_can_be_asked_for(client, ns, harness):
    owner = await client.create(CONFIGMAPS, configmap("owner", ns))
    await client.create(CONFIGMAPS, configmap("dep", ns, owners=[owner]))
    await client.delete(CONFIGMAPS, "owner", namespace=ns, propagation_policy="Background")
    assert not await exists(client, CONFIGMAPS, "owner", ns)
    await gone(client, CONFIGMAPS, "dep", ns, timeout=harness.gc_timeout)


async def test_dependent_of_a_missing_owner_is_collected(client, ns, harness):
    ghost = {"apiVersion": WIDGETS.api_version, "kind": "Widget", "name": "never-was",
             "uid": "2b0e8ea2-5c1b-4c8e-9b43-7d0c7f0d0c0e"}
    await client.create(CONFIGMAPS, configmap("orphaned", ns, owners=[ghost]))
    await gone(client, CONFIGMAPS, "orphaned", ns, timeout=harness.gc_timeout)


async def test_dependent_of_a_recreated_owner_is_collected(client, ns, harness):
    """An ownerReference names an owner by uid: a new object of the same name is not it."""
    first = await client.create(WIDGETS, widget("owner", ns))
    await client.delete(WIDGETS, "owner", namespace=ns)
    await client.create(WIDGETS, widget("owner", ns))
    await client.create(CONFIGMAPS, configmap("stale", ns, owners=[first]))
    await gone(client, CONFIGMAPS, "stale", ns, timeout=harness.gc_timeout)
    assert await exists(client, WIDGETS, "owner", ns)


async def test_foreground_deletion_waits_for_blocking_dependents(client, ns, harness):
    owner = await client.create(WIDGETS, widget("owner", ns))
    await client.create(CONFIGMAPS, configmap("plain", ns, owners=[owner]))
    await client.create(CONFIGMAPS, configmap("held", ns, owners=[owner], finalizers=[HOLD]))

    deleting = await client.delete(WIDGETS, "owner", namespace=ns,
                                   propagation_policy="Foreground")
    assert deleting["metadata"].get("deletionTimestamp")
    assert "foregroundDeletion" in deleting["metadata"].get("finalizers", [])

    await gone(client, CONFIGMAPS, "plain", ns, timeout=harness.gc_timeout)

    async def held_is_deleting():
        held = await client.get(CONFIGMAPS, "held", namespace=ns)
        return held["metadata"].get("deletionTimestamp")

    await eventually(held_is_deleting, timeout=harness.gc_timeout,
                     what="the held dependent to be marked for deletion")
    # The dependent's own finalizer holds the owner.
    await asyncio.sleep(0.2)
    still = await client.get(WIDGETS, "owner", namespace=ns)
    assert "foregroundDeletion" in still["metadata"]["finalizers"]
    assert still["metadata"].get("deletionTimestamp")

    await remove_finalizer(client, CONFIGMAPS, "held", ns, HOLD)
    await gone(client, CONFIGMAPS, "held", ns, timeout=harness.gc_timeout)
    await gone(client, WIDGETS, "owner", ns, timeout=harness.gc_timeout)


async def test_foreground_deletion_without_dependents_completes(client, ns, harness):
    await client.create(WIDGETS, widget("lonely", ns))
    await client.delete(WIDGETS, "lonely", namespace=ns, propagation_policy="Foreground")
    await gone(client, WIDGETS, "lonely", ns, timeout=harness.gc_timeout)


async def test_foreground_does_not_wait_for_non_blocking_dependents(client, ns, harness):
    owner = await client.create(WIDGETS, widget("owner", ns))
    ref = owner_reference(owner, controller=False, block_owner_deletion=False)
    await client.create(CONFIGMAPS, configmap("loose", ns, owners=[ref], finalizers=[HOLD]))
    await client.delete(WIDGETS, "owner", namespace=ns, propagation_policy="Foreground")
    await gone(client, WIDGETS, "owner", ns, timeout=harness.gc_timeout)

    async def loose_is_deleting():
        loose = await client.get(CONFIGMAPS, "loose", namespace=ns)
        return loose["metadata"].get("deletionTimestamp")

    await eventually(loose_is_deleting, timeout=harness.gc_timeout,
                     what="the non-blocking dependent to be deleted too")
    await remove_finalizer(client, CONFIGMAPS, "loose", ns, HOLD)
    await gone(client, CONFIGMAPS, "loose", ns, timeout=harness.gc_timeout)


async def test_orphan_deletion_keeps_dependents_without_the_reference(client, ns, harness):
    owner = await client.create(WIDGETS, widget("owner", ns))
    other = await client.create(WIDGETS, widget("other", ns))
    await client.create(CONFIGMAPS, configmap("dep1", ns, owners=[owner]))
    await client.create(CONFIGMAPS, configmap(
        "dep2", ns, owners=[owner, owner_reference(other, controller=False)]))
    await client.delete(WIDGETS, "owner", namespace=ns, propagation_policy="Orphan")
    await gone(client, WIDGETS, "owner", ns, timeout=harness.gc_timeout)

    owner_uid = owner["metadata"]["uid"]

    async def refs_dropped():
        deps = [await client.get(CONFIGMAPS, n, namespace=ns) for n in ("dep1", "dep2")]
        return all(owner_uid not in _owner_uids(d) for d in deps) and deps

    dep1, dep2 = await eventually(refs_dropped, timeout=harness.gc_timeout,
                                  what="the orphaned dependents to lose the ownerReference")
    assert _owner_uids(dep1) == set()
    assert _owner_uids(dep2) == {other["metadata"]["uid"]}
    await asyncio.sleep(0.2)
    assert await exists(client, CONFIGMAPS, "dep1", ns)
    assert await exists(client, CONFIGMAPS, "dep2", ns)


async def test_dependent_with_two_owners_survives_one(client, ns, harness):
    a = await client.create(WIDGETS, widget("a", ns))
    b = await client.create(WIDGETS, widget("b", ns))
    await client.create(CONFIGMAPS, configmap("shared", ns, owners=[
        owner_reference(a, controller=False), owner_reference(b, controller=False)]))
    await client.create(CONFIGMAPS, configmap("only-a", ns, owners=[a]))

    await client.delete(WIDGETS, "a", namespace=ns)
    await gone(client, CONFIGMAPS, "only-a", ns, timeout=harness.gc_timeout)

    async def dangling_ref_removed():
        shared = await client.get(CONFIGMAPS, "shared", namespace=ns)
        return a["metadata"]["uid"] not in _owner_uids(shared) and shared

    shared = await eventually(dangling_ref_removed, timeout=harness.gc_timeout,
                              what="the collector to drop the deleted owner's reference")
    assert _owner_uids(shared) == {b["metadata"]["uid"]}

    await client.delete(WIDGETS, "b", namespace=ns)
    await gone(client, CONFIGMAPS, "shared", ns, timeout=harness.gc_timeout)
