"""metadata.generation: 1 at creation, +1 per spec change, never for metadata or status."""

from __future__ import annotations

from .helpers import HOLD, WIDGETS, copy, widget


def gen(obj) -> int:
    return obj["metadata"]["generation"]


async def test_generation_starts_at_one_whatever_the_client_says(client, ns):
    obj = widget("g", ns)
    obj["metadata"]["generation"] = 7
    created = await client.create(WIDGETS, obj)
    assert gen(created) == 1
    assert gen(await client.get(WIDGETS, "g", namespace=ns)) == 1


async def test_generation_bumps_on_spec_change_only(client, ns):
    w = await client.create(WIDGETS, widget("g", ns, size=1))
    assert gen(w) == 1

    w["spec"]["size"] = 2
    w = await client.update(WIDGETS, w)
    assert gen(w) == 2

    w["metadata"]["labels"] = {"a": "b"}
    w["metadata"]["annotations"] = {"note": "metadata only"}
    w = await client.update(WIDGETS, w)
    assert gen(w) == 2

    w["status"] = {"observedGeneration": 2, "phase": "Ready"}
    w = await client.update_status(WIDGETS, w)
    assert gen(w) == 2
    w = await client.patch(WIDGETS, "g", {"status": {"phase": "Done"}}, namespace=ns,
                           subresource="status")
    assert gen(w) == 2

    w = await client.patch(WIDGETS, "g", {"metadata": {"labels": {"c": "d"}}}, namespace=ns)
    assert gen(w) == 2

    w = await client.patch(WIDGETS, "g", {"spec": {"color": "red"}}, namespace=ns)
    assert gen(w) == 3

    # Writing the same spec again is no change.
    same = await client.update(WIDGETS, copy(w))
    assert gen(same) == 3
    w = await client.patch(WIDGETS, "g", {"spec": {"color": "red"}}, namespace=ns)
    assert gen(w) == 3

    # A client cannot set generation itself.
    w["metadata"]["generation"] = 42
    w["metadata"]["labels"] = {"e": "f"}
    w = await client.update(WIDGETS, w)
    assert gen(w) == 3
    assert gen(await client.get(WIDGETS, "g", namespace=ns)) == 3


async def test_generation_bumps_once_per_spec_write(client, ns):
    w = await client.create(WIDGETS, widget("g", ns, size=0))
    for i in range(1, 6):
        w["spec"]["size"] = i
        w = await client.update(WIDGETS, w)
        assert gen(w) == i + 1


async def test_marking_for_deletion_bumps_generation_once(client, ns):
    """Setting deletionTimestamp changes how controllers must treat the object, so the
    API server bumps generation then (and only then) during a deletion."""
    w = await client.create(WIDGETS, widget("g", ns, finalizers=[HOLD]))
    deleting = await client.delete(WIDGETS, "g", namespace=ns)
    assert gen(deleting) == gen(w) + 1
    again = await client.delete(WIDGETS, "g", namespace=ns)
    assert gen(again) == gen(w) + 1
    got = await client.get(WIDGETS, "g", namespace=ns)
    assert gen(got) == gen(w) + 1
    got["metadata"]["finalizers"] = []
    await client.update(WIDGETS, got)
