"""Schema validation on write: Invalid (422) naming each bad field; nothing half-written."""

from __future__ import annotations

import pytest

from pincompute.kube import Invalid

from .helpers import WIDGETS, assert_invalid, copy, fields_of, names, rv, watching, widget


@pytest.mark.parametrize(("spec", "field"), [
    pytest.param({"size": -1}, "spec.size", id="negative"),
    pytest.param({"size": "big"}, "spec.size", id="size-wrong-type"),
    pytest.param({"size": 1.5}, "spec.size", id="size-float"),
    pytest.param({"size": True}, "spec.size", id="size-bool"),
    pytest.param({"size": 1, "color": 7}, "spec.color", id="color-wrong-type"),
    pytest.param({"size": 1, "bogus": "x"}, "spec.bogus", id="unknown-field"),
    pytest.param({"size": 1, "tags": "not-a-list"}, "spec.tags", id="tags-wrong-type"),
])
async def test_create_rejects_bad_spec_naming_the_field(client, ns, spec, field):
    obj = widget("bad", ns)
    obj["spec"] = spec
    with pytest.raises(Invalid) as exc:
        await client.create(WIDGETS, obj)
    assert_invalid(exc, field)
    assert exc.value.code == 422
    assert "bad" in str(exc.value)
    assert names((await client.list(WIDGETS, namespace=ns)).items) == []


async def test_every_bad_field_is_named(client, ns):
    obj = widget("bad", ns)
    obj["spec"] = {"size": -1, "color": 3, "bogus": 1}
    with pytest.raises(Invalid) as exc:
        await client.create(WIDGETS, obj)
    fields = fields_of(exc.value)
    for f in ("spec.size", "spec.color", "spec.bogus"):
        assert f in fields, fields


async def test_defaults_are_applied(client, ns):
    created = await client.create(WIDGETS, widget("d", ns, size=0))
    assert created["spec"] == {"size": 0, "color": "blue"}
    assert (await client.get(WIDGETS, "d", namespace=ns))["spec"]["color"] == "blue"
    red = await client.create(WIDGETS, widget("r", ns, size=0, color="red"))
    assert red["spec"]["color"] == "red"
    # Removing a defaulted field brings the default back.
    patched = await client.patch(WIDGETS, "r", {"spec": {"color": None}}, namespace=ns)
    assert patched["spec"]["color"] == "blue"


async def test_update_and_patch_are_validated(client, ns):
    w = await client.create(WIDGETS, widget("v", ns, size=1))
    bad = copy(w)
    bad["spec"]["size"] = -2
    with pytest.raises(Invalid) as exc:
        await client.update(WIDGETS, bad)
    assert_invalid(exc, "spec.size")
    bad = copy(w)
    bad["spec"]["extra"] = {"x": 1}
    with pytest.raises(Invalid) as exc:
        await client.update(WIDGETS, bad)
    assert_invalid(exc, "spec.extra")
    with pytest.raises(Invalid) as exc:
        await client.patch(WIDGETS, "v", {"spec": {"size": "x"}}, namespace=ns)
    assert_invalid(exc, "spec.size")
    got = await client.get(WIDGETS, "v", namespace=ns)
    assert got["spec"]["size"] == 1 and rv(got) == rv(w)


async def test_rejected_writes_leave_the_store_unchanged(client, ns, harness):
    w = await client.create(WIDGETS, widget("v", ns, size=1))
    before = await client.list(WIDGETS, namespace=ns)
    async with watching(client.watch(WIDGETS, namespace=ns,
                                     resource_version=before.resource_version),
                        timeout=harness.event_timeout) as events:
        bad = widget("new-bad", ns)
        bad["spec"] = {"size": -1}
        with pytest.raises(Invalid):
            await client.create(WIDGETS, bad)
        bad = copy(w)
        bad["spec"]["size"] = -1
        with pytest.raises(Invalid):
            await client.update(WIDGETS, bad)
        with pytest.raises(Invalid):
            await client.patch(WIDGETS, "v", {"spec": {"bogus": 1}}, namespace=ns)
        with pytest.raises(Invalid):
            await client.patch(WIDGETS, "v", {"metadata": {"labels": {"bad key": "x"}}},
                               namespace=ns)
        bad = copy(w)
        bad["status"] = "not an object"
        with pytest.raises(Invalid):
            await client.update_status(WIDGETS, bad)

        after = await client.list(WIDGETS, namespace=ns)
        assert after.items == before.items
        if harness.isolated:
            # Nobody else writes to this store: a rejected write moved nothing.
            assert after.resource_version == before.resource_version

        # The first event after the rejected writes is the next good one.
        good = await client.patch(WIDGETS, "v", {"spec": {"size": 2}}, namespace=ns)
        ev = await events.next()
        assert (ev.type, ev.object["spec"]["size"], rv(ev)) == ("MODIFIED", 2, rv(good))
