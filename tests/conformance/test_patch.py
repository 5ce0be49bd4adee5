"""JSON merge patch (RFC 7386) on objects and on the status subresource."""

from __future__ import annotations

import pytest

from pincompute.kube import Conflict, Invalid, NotFound

from .helpers import CONFIGMAPS, WIDGETS, assert_invalid, configmap, rv, widget


async def test_merge_patch_semantics_on_spec(client, ns):
    await client.create(WIDGETS, widget(
        "p", ns, size=1, color="red", tags=["a", "b", "c"],
        config={"outer": {"keep": 1, "change": 1, "drop": 1}, "list": [1, 2, 3], "gone": True}))
    patched = await client.patch(WIDGETS, "p", {"spec": {
        "size": 2,                                                    # replace a scalar
        "tags": ["z"],                                                # lists are replaced
        "config": {
            "outer": {"change": 2, "drop": None, "new": {"deep": 1}},  # nested merge
            "list": [9],
            "gone": None,                                              # null deletes
        },
    }}, namespace=ns)
    expected = {"size": 2, "color": "red", "tags": ["z"],
                "config": {"outer": {"keep": 1, "change": 2, "new": {"deep": 1}}, "list": [9]}}
    assert patched["spec"] == expected
    assert (await client.get(WIDGETS, "p", namespace=ns))["spec"] == expected


async def test_merge_patch_null_removes_a_whole_field(client, ns):
    await client.create(WIDGETS, widget("p", ns, size=1, tags=["a"], config={"a": {"b": 1}}))
    patched = await client.patch(WIDGETS, "p", {"spec": {"tags": None, "config": None}},
                                 namespace=ns)
    assert "tags" not in patched["spec"] and "config" not in patched["spec"]
    assert patched["spec"]["size"] == 1


async def test_merge_patch_on_configmap_data_and_labels(client, ns):
    await client.create(CONFIGMAPS, configmap("p", ns, data={"a": "1", "b": "2"},
                                              labels={"x": "1", "y": "2"}))
    patched = await client.patch(CONFIGMAPS, "p", {
        "data": {"a": None, "c": "3"},
        "metadata": {"labels": {"y": None, "z": "3"}, "annotations": {"note": "hi"}},
    }, namespace=ns)
    assert patched["data"] == {"b": "2", "c": "3"}
    assert patched["metadata"]["labels"] == {"x": "1", "z": "3"}
    assert patched["metadata"]["annotations"] == {"note": "hi"}


async def test_merge_patch_on_status_subresource(client, ns):
    w = await client.create(WIDGETS, widget("p", ns))
    w["status"] = {"phase": "A", "counts": {"ready": 1, "total": 2, "old": 0},
                   "conditions": [{"type": "One"}, {"type": "Two"}], "drop": "me"}
    await client.update_status(WIDGETS, w)
    patched = await client.patch(WIDGETS, "p", {"status": {
        "counts": {"ready": 2, "old": None},
        "conditions": [{"type": "Three"}],
        "drop": None,
    }}, namespace=ns, subresource="status")
    expected = {"phase": "A", "counts": {"ready": 2, "total": 2},
                "conditions": [{"type": "Three"}]}
    assert patched["status"] == expected
    assert (await client.get(WIDGETS, "p", namespace=ns))["status"] == expected


async def test_patch_with_resource_version_precondition(client, ns):
    w = await client.create(WIDGETS, widget("p", ns, size=1))
    old_rv = w["metadata"]["resourceVersion"]
    p1 = await client.patch(WIDGETS, "p", {"metadata": {"resourceVersion": old_rv},
                                           "spec": {"size": 2}}, namespace=ns)
    assert p1["spec"]["size"] == 2 and rv(p1) > rv(w)

    with pytest.raises(Conflict):
        await client.patch(WIDGETS, "p", {"metadata": {"resourceVersion": old_rv},
                                          "spec": {"size": 3}}, namespace=ns)
    with pytest.raises(Conflict):
        await client.patch(WIDGETS, "p", {"metadata": {"resourceVersion": old_rv},
                                          "status": {"phase": "x"}},
                           namespace=ns, subresource="status")
    got = await client.get(WIDGETS, "p", namespace=ns)
    assert got["spec"]["size"] == 2 and rv(got) == rv(p1)
    assert got.get("status") in (None, {})


async def test_patch_missing_object_is_not_found(client, ns):
    with pytest.raises(NotFound):
        await client.patch(WIDGETS, "nope", {"spec": {"size": 1}}, namespace=ns)
    with pytest.raises(NotFound):
        await client.patch(WIDGETS, "nope", {"status": {"a": 1}}, namespace=ns,
                           subresource="status")


async def test_patch_result_is_validated(client, ns):
    w = await client.create(WIDGETS, widget("p", ns, size=1))
    with pytest.raises(Invalid) as exc:
        await client.patch(WIDGETS, "p", {"spec": {"size": -4}}, namespace=ns)
    assert_invalid(exc, "spec.size")
    with pytest.raises(Invalid) as exc:
        await client.patch(WIDGETS, "p", {"spec": {"bogus": 1}}, namespace=ns)
    assert_invalid(exc, "spec.bogus")
    got = await client.get(WIDGETS, "p", namespace=ns)
    assert got["spec"]["size"] == 1 and rv(got) == rv(w)


async def test_patch_that_changes_nothing_is_not_a_write(client, ns):
    w = await client.create(WIDGETS, widget("p", ns, size=1, color="red"))
    same = await client.patch(WIDGETS, "p", {"spec": {"size": 1}}, namespace=ns)
    assert rv(same) == rv(w)
    same = await client.patch(WIDGETS, "p", {"spec": {"missing": None}}, namespace=ns)
    assert rv(same) == rv(w)
