"""The status subresource: status is written only through update_status / patch(status)."""

from __future__ import annotations

from .helpers import WIDGETS, copy, rv, widget


async def test_create_ignores_status(client, ns):
    obj = widget("s", ns, size=1)
    obj["status"] = {"phase": "Pretend"}
    created = await client.create(WIDGETS, obj)
    assert created.get("status") in (None, {})
    assert (await client.get(WIDGETS, "s", namespace=ns)).get("status") in (None, {})


async def test_update_ignores_status(client, ns):
    w = await client.create(WIDGETS, widget("s", ns, size=1))
    w["status"] = {"phase": "Real"}
    w = await client.update_status(WIDGETS, w)

    w["spec"]["size"] = 5
    w["status"] = {"phase": "Overwritten"}
    updated = await client.update(WIDGETS, w)
    assert updated["spec"]["size"] == 5
    assert updated["status"] == {"phase": "Real"}
    got = await client.get(WIDGETS, "s", namespace=ns)
    assert got["status"] == {"phase": "Real"} and got["spec"]["size"] == 5


async def test_update_that_changes_only_status_is_a_no_op(client, ns):
    w = await client.create(WIDGETS, widget("s", ns, size=1))
    w["status"] = {"phase": "Ignored"}
    same = await client.update(WIDGETS, w)
    assert rv(same) == rv(w)
    assert same.get("status") in (None, {})


async def test_update_status_changes_only_status(client, ns):
    w = await client.create(WIDGETS, widget("s", ns, size=1, labels={"keep": "me"}))
    changed = copy(w)
    changed["spec"]["size"] = 9
    changed["metadata"]["labels"] = {"other": "labels"}
    changed["metadata"]["annotations"] = {"sneaky": "yes"}
    changed["status"] = {"phase": "Ready", "replicas": 3, "conditions": [{"type": "Ok"}]}
    after = await client.update_status(WIDGETS, changed)

    assert after["status"] == {"phase": "Ready", "replicas": 3, "conditions": [{"type": "Ok"}]}
    assert after["spec"]["size"] == 1
    assert after["metadata"].get("labels") == {"keep": "me"}
    assert not after["metadata"].get("annotations")
    assert after["metadata"]["generation"] == 1
    assert rv(after) > rv(w)
    got = await client.get(WIDGETS, "s", namespace=ns)
    assert got["spec"]["size"] == 1 and got["status"]["phase"] == "Ready"
    assert got["metadata"].get("labels") == {"keep": "me"}


async def test_update_status_replaces_the_whole_status(client, ns):
    w = await client.create(WIDGETS, widget("s", ns))
    w["status"] = {"a": 1, "b": 2}
    w = await client.update_status(WIDGETS, w)
    w["status"] = {"b": 3}
    w = await client.update_status(WIDGETS, w)
    assert w["status"] == {"b": 3}
    assert (await client.get(WIDGETS, "s", namespace=ns))["status"] == {"b": 3}


async def test_status_survives_spec_updates_and_spec_survives_status_updates(client, ns):
    w = await client.create(WIDGETS, widget("s", ns, size=1))
    for i in range(3):
        w["status"] = {"round": i}
        w = await client.update_status(WIDGETS, w)
        w["spec"]["size"] = i + 10
        w = await client.update(WIDGETS, w)
        assert w["status"] == {"round": i} and w["spec"]["size"] == i + 10


async def test_patch_ignores_status_and_status_patch_ignores_spec(client, ns):
    await client.create(WIDGETS, widget("s", ns, size=1))
    await client.patch(WIDGETS, "s", {"status": {"phase": "Set"}}, namespace=ns,
                       subresource="status")

    p = await client.patch(WIDGETS, "s", {"spec": {"size": 2}, "status": {"phase": "Nope"}},
                           namespace=ns)
    assert p["spec"]["size"] == 2 and p["status"] == {"phase": "Set"}

    p = await client.patch(WIDGETS, "s", {"spec": {"size": 3}, "status": {"phase": "Yes"},
                                          "metadata": {"labels": {"x": "y"}}},
                           namespace=ns, subresource="status")
    assert p["spec"]["size"] == 2 and p["status"] == {"phase": "Yes"}
    assert not p["metadata"].get("labels")
    got = await client.get(WIDGETS, "s", namespace=ns)
    assert got["spec"]["size"] == 2 and got["status"] == {"phase": "Yes"}
    assert got["metadata"]["generation"] == 2
