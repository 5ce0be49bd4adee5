"""Bad input is a 4xx: hostile quantities, huge objects, deep nesting, reserved names.

Each test runs the attack against a real embedded store with every PinCompute
kind's validator installed, and checks the answer is the typed error naming the
field, quickly, with nothing written.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest

from pincompute.kube.backends.embedded import EmbeddedStore
from pincompute.kube.backends.embedded.limits import MAX_OBJECT_BYTES
from pincompute.kube.errors import ApiError, BadRequest, Invalid, RequestEntityTooLarge
from pincompute.kube.patch import MAX_DEPTH
from pincompute.kube.resource import CONFIGMAPS, NAMESPACES
from pincompute.model import registry
from pincompute.model.registry import MEMBERCLUSTERS, PINPODS, PROJECTS

from ._objects import make


@pytest.fixture
async def store() -> AsyncIterator[EmbeddedStore]:
    store = await EmbeddedStore.open(path=None)
    registry.install(store)
    await store.client().create(NAMESPACES, {"metadata": {"name": "team"}})
    yield store
    await store.close()


def _fields(error: ApiError) -> set[str]:
    return {c.field for c in error.causes}


def _nested(depth: int) -> dict[str, Any]:
    deep: dict[str, Any] = {}
    for _ in range(depth - 1):
        deep = {"a": deep}
    return deep


# --- quantities --------------------------------------------------------------------------------

HOSTILE_QUANTITIES = ["1e9999999", "1e999999", "-1e999999", "1e-9999999", "9" * 5000,
                      "1" + "0" * 40 + "Ei", "9223372036854775808", "8Ei", "1e65"]


@pytest.mark.parametrize("quantity", HOSTILE_QUANTITIES)
async def test_a_hostile_quantity_is_invalid_naming_the_field_and_fast(
        store: EmbeddedStore, quantity: str) -> None:
    obj = make("PinPod")
    obj["spec"]["containers"][0]["resources"]["limits"]["cpu"] = quantity
    started = time.perf_counter()
    with pytest.raises(Invalid) as err:
        await store.client().create(PINPODS, obj)
    assert time.perf_counter() - started < 0.5
    assert _fields(err.value) == {"spec.containers[0].resources.limits.cpu"}
    assert err.value.code == 422
    assert (await store.client().list(PINPODS)).items == []


@pytest.mark.parametrize("quantity", ["1e9999999", "-1e999999", 2**63])
async def test_a_hostile_quantity_in_a_status_is_invalid_too(
        store: EmbeddedStore, quantity: str | int) -> None:
    cluster = await store.client().create(MEMBERCLUSTERS, make("MemberCluster"))
    cluster["status"] = {"capacity": {"cpu": quantity}}
    with pytest.raises(Invalid) as err:
        await store.client().update_status(MEMBERCLUSTERS, cluster)
    assert _fields(err.value) == {"status.capacity.cpu"}


# --- size --------------------------------------------------------------------------------------

async def test_an_object_over_the_etcd_limit_is_refused_with_413(store: EmbeddedStore) -> None:
    client = store.client()
    big = {"metadata": {"name": "big"}, "data": {"a": "x" * MAX_OBJECT_BYTES}}
    rv = store.resource_version
    with pytest.raises(RequestEntityTooLarge) as err:
        await client.create(CONFIGMAPS, big, namespace="team")
    assert err.value.code == 413 and "big" in str(err.value)
    assert store.resource_version == rv  # nothing written, no version spent
    # Growing an object past the limit, by update or by patch, is refused as well.
    await client.create(CONFIGMAPS, {"metadata": {"name": "grows"}, "data": {"a": "x"}},
                        namespace="team")
    with pytest.raises(RequestEntityTooLarge):
        await client.patch(CONFIGMAPS, "grows", {"data": {"b": "y" * MAX_OBJECT_BYTES}},
                           namespace="team")
    for half in ("b", "c"):
        await client.patch(CONFIGMAPS, "grows",
                           {"data": {half: "y" * (MAX_OBJECT_BYTES // 2 - 1000)}},
                           namespace="team")
    assert len((await client.get(CONFIGMAPS, "grows", namespace="team"))["data"]) == 3
    with pytest.raises(RequestEntityTooLarge):
        await client.patch(CONFIGMAPS, "grows", {"data": {"d": "z" * 3000}}, namespace="team")


async def test_an_object_at_the_limit_can_still_be_deleted(store: EmbeddedStore) -> None:
    client = store.client()
    hold = "example.com/hold"
    obj = await client.create(CONFIGMAPS, {"metadata": {"name": "full", "finalizers": [hold]},
                                           "data": {"a": ""}}, namespace="team")
    # Fill it to a few bytes under the limit: marking it deleted then takes it over.
    obj["data"]["a"] = "x" * (MAX_OBJECT_BYTES - len(orjson.dumps(obj)) - 4)
    obj = await client.update(CONFIGMAPS, obj)
    assert MAX_OBJECT_BYTES - 20 < len(orjson.dumps(obj)) <= MAX_OBJECT_BYTES
    deleting = await client.delete(CONFIGMAPS, "full", namespace="team")
    assert deleting["metadata"]["deletionTimestamp"]
    await client.patch(CONFIGMAPS, "full", {"metadata": {"finalizers": None}}, namespace="team")
    assert (await client.list(CONFIGMAPS, namespace="team")).items == []


async def test_watch_history_memory_is_bounded_in_bytes(store: EmbeddedStore) -> None:
    client = store.client()
    chunk = "x" * (MAX_OBJECT_BYTES - 1024)
    for i in range(120):  # 120 writes of ~1.5 MiB: 180 MiB if the history kept them all
        await client.create(CONFIGMAPS, {"metadata": {"name": f"cm-{i}"}, "data": {"a": chunk}},
                            namespace="team")
        await client.delete(CONFIGMAPS, f"cm-{i}", namespace="team")
    history = store._collection(CONFIGMAPS).history
    assert history.bytes <= history.max_bytes


# --- nesting -----------------------------------------------------------------------------------

async def test_a_deep_merge_patch_is_a_bad_request(store: EmbeddedStore) -> None:
    client = store.client()
    await client.create(CONFIGMAPS, {"metadata": {"name": "cm"}}, namespace="team")
    rv = store.resource_version
    for depth in (MAX_DEPTH + 1, 5000, 100_000):
        with pytest.raises(BadRequest) as err:
            await client.patch(CONFIGMAPS, "cm", {"metadata": {"annotations": _nested(depth)}},
                               namespace="team")
        assert err.value.code == 400 and "nested" in str(err.value)
    assert store.resource_version == rv


@pytest.mark.parametrize("depth", [300, 5000, 100_000])
async def test_a_deep_body_is_a_bad_request(store: EmbeddedStore, depth: int) -> None:
    obj = {"metadata": {"name": "deep"}, "data": _nested(depth)}
    with pytest.raises(BadRequest):
        await store.client().create(CONFIGMAPS, obj, namespace="team")
    pod = make("PinPod")
    pod["spec"]["containers"][0]["env"] = [_nested(depth)]
    with pytest.raises(BadRequest):
        await store.client().create(PINPODS, pod)


# --- names -------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["default", "kube-system", "kube-public", "kube-node-lease",
                                  "pincompute-system", "kube-anything", "pincompute-ops"])
async def test_a_project_named_like_a_system_namespace_is_refused(
        store: EmbeddedStore, name: str) -> None:
    with pytest.raises(Invalid) as err:
        await store.client().create(PROJECTS, make("Project", name=name))
    assert _fields(err.value) == {"metadata.name"}
    assert "reserved" in str(err.value)


async def test_ordinary_project_names_are_fine(store: EmbeddedStore) -> None:
    for name in ("team-a", "kubeflow", "defaults", "pincompute"):
        await store.client().create(PROJECTS, make("Project", name=name))
