from pathlib import Path

import pytest

from pincompute.kube.backends.embedded import EmbeddedStore
from pincompute.kube.errors import BadRequest
from pincompute.kube.resource import CONFIGMAPS, NAMESPACES, Resource

THINGS = Resource("test.pincompute.io", "v1", "things", "Thing", selectable_fields=("spec.tier",))


def _default_color(obj: dict, old: dict | None) -> dict:
    out = {**obj, "spec": {"color": "blue", **(obj.get("spec") or {})}}
    return out


async def test_selectable_spec_fields_survive_a_reopen(tmp_path: Path) -> None:
    store = await EmbeddedStore.open(path=tmp_path)
    store.register(THINGS)
    client = store.client()
    await client.create(NAMESPACES, {"metadata": {"name": "ns"}})
    for name, tier in (("a", "reserved"), ("b", "ondemand"), ("c", "reserved")):
        await client.create(THINGS, {"metadata": {"name": name}, "spec": {"tier": tier}},
                            namespace="ns")
    await store.close()

    store = await EmbeddedStore.open(path=tmp_path)
    store.register(THINGS)  # registered after the objects were loaded
    client = store.client()
    listed = await client.list(THINGS, field_selector="spec.tier=reserved")
    assert [o["metadata"]["name"] for o in listed.items] == ["a", "c"]
    listed = await client.list(THINGS, field_selector="spec.tier!=reserved")
    assert [o["metadata"]["name"] for o in listed.items] == ["b"]
    with pytest.raises(BadRequest, match="not supported"):
        await client.list(CONFIGMAPS, field_selector="spec.tier=reserved")
    await store.close()


async def test_reapplying_a_manifest_without_defaults_is_no_change() -> None:
    store = await EmbeddedStore.open(path=None)
    store.register(THINGS, validator=_default_color)
    client = store.client()
    await client.create(NAMESPACES, {"metadata": {"name": "ns"}})
    made = await client.create(THINGS, {"metadata": {"name": "a"}, "spec": {"tier": "x"}},
                               namespace="ns")
    assert made["spec"] == {"color": "blue", "tier": "x"}
    again = await client.update(THINGS, {"metadata": {"name": "a", "namespace": "ns"},
                                         "spec": {"tier": "x"}})
    assert again["metadata"]["generation"] == 1
    assert again["metadata"]["resourceVersion"] == made["metadata"]["resourceVersion"]
    await store.close()


async def test_entries_share_equal_field_values_and_keep_their_strings_across_versions() -> None:
    store = await EmbeddedStore.open(path=None)
    store.register(THINGS)
    client = store.client()
    await client.create(NAMESPACES, {"metadata": {"name": "ns"}})
    for name in ("a", "b"):
        await client.create(THINGS, {"metadata": {"name": name}, "spec": {"tier": "gold"}},
                            namespace="ns")
    coll = store.collections[THINGS.key]
    a, b = coll.entries["ns/a"], coll.entries["ns/b"]
    assert a.fields is b.fields and a.fields == {"spec.tier": "gold"}
    await client.patch(THINGS, "a", {"spec": {"size": 2}}, namespace="ns")
    newer = coll.entries["ns/a"]
    assert newer is not a and (newer.ns, newer.name, newer.uid) == (a.ns, a.name, a.uid)
    assert newer.ns is a.ns and newer.name is a.name and newer.uid is a.uid
    listed = await client.list(THINGS, field_selector="spec.tier=gold")
    assert sorted(o["metadata"]["name"] for o in listed.items) == ["a", "b"]
    await store.close()
