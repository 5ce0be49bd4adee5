"""Shared informers against the embedded store: list-then-watch, relist on Gone, indexes, cache."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from pincompute.kube.objects import deepcopy
from pincompute.kube.protocol import BOOKMARK, KubeClient
from pincompute.kube.resource import CONFIGMAPS, SECRETS, Resource
from pincompute.runtime.cache import CacheMutationError, index_by_label
from pincompute.runtime.informer import InformerFactory, SharedInformer
from pincompute.runtime.metrics import RuntimeMetrics

from .conftest import StoreFactory
from .support import GatedClient, Recorder, configmap

pytestmark = pytest.mark.timeout(20)


@pytest.fixture
async def factory() -> AsyncIterator[InformerFactory]:
    f = InformerFactory(detect_mutations=True)
    yield f
    await f.stop()


async def _started(informer: SharedInformer) -> SharedInformer:
    informer.start()
    assert await informer.wait_synced()
    return informer


async def test_sees_objects_before_and_after_start_in_order(
        client: KubeClient, factory: InformerFactory) -> None:
    await client.create(CONFIGMAPS, configmap("a", v="1"))
    await client.create(CONFIGMAPS, configmap("b", v="1"))
    inf = factory.informer(client, CONFIGMAPS)
    rec = Recorder()
    inf.add_event_handler(rec)
    assert not inf.has_synced
    await _started(inf)
    assert rec.events == [("add", "default/a"), ("add", "default/b")]

    await client.create(CONFIGMAPS, configmap("c", v="1"))
    await client.patch(CONFIGMAPS, "a", {"data": {"v": "2"}}, namespace="default")
    await client.delete(CONFIGMAPS, "b", namespace="default")
    await client.patch(CONFIGMAPS, "c", {"data": {"v": "2"}}, namespace="default")
    await rec.wait_count(6)
    assert rec.events == [
        ("add", "default/a"), ("add", "default/b"), ("add", "default/c"),
        ("update", "default/a"), ("delete", "default/b"), ("update", "default/c"),
    ]
    _, new, old = rec.objects[3]
    assert old is not None and old["data"] == {"v": "1"} and new["data"] == {"v": "2"}
    assert sorted(inf.keys()) == ["default/a", "default/c"]
    assert inf.get("a", namespace="default")["data"] == {"v": "2"}
    assert inf.get("b", namespace="default") is None
    assert inf.resource_version == (await client.list(CONFIGMAPS)).resource_version
    assert inf.relists == 1
    inf.check_mutations()


async def test_paginated_first_list(client: KubeClient) -> None:
    for i in range(7):
        await client.create(CONFIGMAPS, configmap(f"cm{i}"))
    gated = GatedClient(client)
    inf = SharedInformer(gated, CONFIGMAPS, page_size=3)
    try:
        await _started(inf)
        assert len(inf.list()) == 7
        assert gated.list_calls == 3
    finally:
        await inf.stop()


async def test_stream_end_rewatches_from_last_resource_version(
        client: KubeClient) -> None:
    gated = GatedClient(client)
    inf = SharedInformer(gated, CONFIGMAPS)
    rec = Recorder()
    inf.add_event_handler(rec)
    try:
        await _started(inf)
        await client.create(CONFIGMAPS, configmap("a"))
        await rec.wait_count(1)
        rv = inf.resource_version
        gated.disconnect()
        await client.create(CONFIGMAPS, configmap("b"))
        gated.reconnect()
        await rec.wait_count(2)
        assert rec.events == [("add", "default/a"), ("add", "default/b")]
        # Resumed from where it was, without listing again.
        assert gated.watch_rvs[-1] == rv, gated.watch_rvs
        assert inf.relists == 1 and gated.list_calls == 1
    finally:
        await inf.stop()


async def test_relist_on_gone_emits_synthetic_events(make_store: StoreFactory) -> None:
    # A tiny history, so a watch resumed after a few writes is too old.
    store = await make_store(history_size=2)
    client = store.client()
    for name in ("a", "b", "c", "keep"):
        await client.create(CONFIGMAPS, configmap(name, v="1"))
    gated = GatedClient(client)
    metrics = RuntimeMetrics()
    inf = SharedInformer(gated, CONFIGMAPS, namespace="default", metrics=metrics)
    rec = Recorder()
    inf.add_event_handler(rec)
    try:
        await _started(inf)
        await rec.wait_count(4)
        old_uid = inf.get("c", namespace="default")["metadata"]["uid"]
        kept = inf.get("keep", namespace="default")
        stale_rv = inf.resource_version
        gated.disconnect()

        # While disconnected: deletes, an update, a create, a name reused by a new
        # object, and enough unrelated writes to push the history past stale_rv.
        await client.delete(CONFIGMAPS, "a", namespace="default")
        await client.delete(CONFIGMAPS, "b", namespace="default")
        await client.patch(CONFIGMAPS, "keep", {"data": {"v": "2"}}, namespace="default")
        await client.create(CONFIGMAPS, configmap("d", v="1"))
        await client.delete(CONFIGMAPS, "c", namespace="default")
        await client.create(CONFIGMAPS, configmap("c", v="new"))
        await client.create(CONFIGMAPS, configmap("filler", "other"))
        for i in range(6):
            await client.patch(CONFIGMAPS, "filler", {"data": {"i": str(i)}}, namespace="other")
        rec.events.clear()
        rec.objects.clear()
        gated.reconnect()

        await rec.wait_count(6)
        # The resumed watch was refused as too old; the informer listed and watched anew.
        assert gated.watch_rvs[-2:] == [stale_rv, inf.resource_version]
        assert inf.relists == 2
        assert metrics.sample("informer_relists_total", {"resource": "configmaps"}) == 2
        # Deletes for what vanished, then adds/updates for the list, in key order.
        assert rec.events == [
            ("delete", "default/a"), ("delete", "default/b"),
            ("delete", "default/c"), ("add", "default/c"),
            ("add", "default/d"), ("update", "default/keep"),
        ]
        deleted_c = rec.objects[2][1]
        assert deleted_c["metadata"]["uid"] == old_uid
        update_old = rec.objects[5][2]
        assert update_old is kept
        assert sorted(inf.keys()) == ["default/c", "default/d", "default/keep"]
        assert inf.get("c", namespace="default")["data"] == {"v": "new"}

        # And it keeps watching after the relist.
        await client.create(CONFIGMAPS, configmap("e"))
        await rec.wait_count(7)
        assert rec.events[-1] == ("add", "default/e")
    finally:
        await inf.stop()


async def test_bookmark_advances_resource_version_only(make_store: StoreFactory) -> None:
    store = await make_store(bookmark_interval=0.05)
    client = store.client()
    gated = GatedClient(client)
    inf = SharedInformer(gated, CONFIGMAPS)
    rec = Recorder()
    inf.add_event_handler(rec)
    try:
        await _started(inf)
        before = int(inf.resource_version)
        # Writes to another resource move the store's resourceVersion; only a
        # bookmark can tell the configmaps informer about it.
        await client.create(SECRETS, {"metadata": {"name": "s", "namespace": "default"}})
        target = str(store.resource_version)
        await gated.wait_consumed(lambda ev: ev.type == BOOKMARK
                                  and ev.resource_version == target)
        assert int(inf.resource_version) > before
        assert inf.resource_version == target
        assert rec.events == []
        assert inf.events == 0
    finally:
        await inf.stop()


async def test_indexers_and_namespace_index(client: KubeClient,
                                            factory: InformerFactory) -> None:
    await client.create(CONFIGMAPS, configmap("a", labels={"app": "web"}))
    inf = factory.informer(client, CONFIGMAPS)
    inf.add_indexer("app", index_by_label("app"))
    await _started(inf)
    rec = Recorder()
    inf.add_event_handler(rec)   # late: replayed

    await client.create(CONFIGMAPS, configmap("b", labels={"app": "web"}))
    await client.create(CONFIGMAPS, configmap("c", "other", labels={"app": "db"}))
    await rec.wait_count(3)
    assert sorted(inf.index_keys("app", "web")) == ["default/a", "default/b"]
    assert [o["metadata"]["name"] for o in inf.by_index("app", "db")] == ["c"]
    assert sorted(o["metadata"]["name"] for o in inf.list(namespace="default")) == ["a", "b"]
    assert [o["metadata"]["name"] for o in inf.list(namespace="other")] == ["c"]

    # An index added later covers objects already cached.
    inf.add_indexer("name", lambda o: [o["metadata"]["name"]])
    assert inf.index_keys("name", "c") == ["other/c"]

    # Relabel and delete keep indexes exact.
    await client.patch(CONFIGMAPS, "b", {"metadata": {"labels": {"app": "db"}}},
                       namespace="default")
    await client.delete(CONFIGMAPS, "a", namespace="default")
    await rec.wait_count(5)
    assert inf.index_keys("app", "web") == []
    assert sorted(inf.index_keys("app", "db")) == ["default/b", "other/c"]
    assert inf.list(namespace="default")[0]["metadata"]["name"] == "b"
    with pytest.raises(KeyError):
        inf.by_index("nope", "x")


async def test_late_handler_is_replayed_and_failing_handler_is_isolated(
        client: KubeClient, factory: InformerFactory) -> None:
    await client.create(CONFIGMAPS, configmap("a"))
    inf = await _started(factory.informer(client, CONFIGMAPS))

    def boom(obj: dict) -> None:
        raise RuntimeError("handler bug")

    inf.add_event_handler(on_add=boom)
    rec = Recorder()
    reg = inf.add_event_handler(rec)
    assert rec.events == [("add", "default/a")] and reg.has_synced
    await client.create(CONFIGMAPS, configmap("b"))
    await rec.wait_count(2)
    reg.remove()
    await client.create(CONFIGMAPS, configmap("c"))
    rec2 = Recorder()
    inf.add_event_handler(rec2)
    await rec2.wait_for(lambda ev: ("add", "default/c") in ev)
    assert rec.events == [("add", "default/a"), ("add", "default/b")]


async def test_label_selector_informer_sees_objects_leave(client: KubeClient,
                                                          factory: InformerFactory) -> None:
    await client.create(CONFIGMAPS, configmap("a", labels={"tier": "gold"}))
    await client.create(CONFIGMAPS, configmap("b", labels={"tier": "iron"}))
    inf = factory.informer(client, CONFIGMAPS, label_selector="tier=gold")
    rec = Recorder()
    inf.add_event_handler(rec)
    await _started(inf)
    assert inf.keys() == ["default/a"]
    await client.patch(CONFIGMAPS, "a", {"metadata": {"labels": {"tier": "iron"}}},
                       namespace="default")
    await client.patch(CONFIGMAPS, "b", {"metadata": {"labels": {"tier": "gold"}}},
                       namespace="default")
    await rec.wait_count(3)
    assert rec.events == [("add", "default/a"), ("delete", "default/a"), ("add", "default/b")]
    assert inf.keys() == ["default/b"]


async def test_cache_hands_out_shared_objects_and_detects_mutation(
        client: KubeClient, factory: InformerFactory) -> None:
    await client.create(CONFIGMAPS, configmap("a", v="1"))
    rec = Recorder()
    inf = factory.informer(client, CONFIGMAPS)
    inf.add_event_handler(rec)
    await _started(inf)
    obj = inf.get("a", namespace="default")
    # Shared: the same dict every time, and the one handlers were given.
    assert obj is inf.get_by_key("default/a") is inf.list()[0] is rec.objects[0][1]

    # Following the rule: copy, change the copy, write it.  The cache is intact.
    mine = deepcopy(obj)
    mine["data"]["v"] = "2"
    await client.update(CONFIGMAPS, mine)
    await rec.wait_count(2)
    assert obj["data"] == {"v": "1"}
    inf.check_mutations()

    # Breaking the rule is caught by the mutation detector.
    inf.get("a", namespace="default")["data"]["v"] = "corrupted"
    with pytest.raises(CacheMutationError) as err:
        factory.check_mutations()
    assert err.value.keys == ["default/a"]


async def test_factory_shares_informers(client: KubeClient, store: object,
                                        factory: InformerFactory) -> None:
    a = factory.informer(client, CONFIGMAPS)
    assert factory.informer(client, CONFIGMAPS) is a
    assert factory.informer(client, CONFIGMAPS, namespace="default") is not a
    assert factory.informer(client, SECRETS) is not a
    other_client = store.client()  # type: ignore[attr-defined]
    assert factory.informer(other_client, CONFIGMAPS) is not a
    factory.start()
    assert await factory.wait_synced()
    late = factory.informer(client, CONFIGMAPS, label_selector="x=y")
    assert late.running            # started because the factory already runs
    assert await late.wait_synced()
    await factory.stop()
    assert not a.running


async def test_list_errors_retry_and_wait_synced_fails_when_stopped(
        client: KubeClient) -> None:
    # A resource the store does not serve: every list fails with NotFound.
    widgets = Resource("example.com", "v1", "widgets", "Widget")
    gated = GatedClient(client)
    inf = SharedInformer(gated, widgets, backoff_initial=0.001)
    inf.start()
    waiter = asyncio.ensure_future(inf.wait_synced())
    await gated.wait_lists(3)   # it failed, backed off and retried
    assert not waiter.done() and inf.running
    await inf.stop()
    assert await waiter is False
    assert not inf.has_synced


async def test_a_transform_applies_to_listed_and_watched_objects_before_caching(
        client: KubeClient) -> None:
    def only_v(obj: dict) -> dict:
        return {**obj, "data": {"v": obj.get("data", {}).get("v", "")}}

    await client.create(CONFIGMAPS, configmap("a", v="1", big="x" * 100))
    inf = SharedInformer(client, CONFIGMAPS, transform=only_v)
    seen: list[dict] = []
    inf.add_event_handler(on_add=seen.append, on_update=lambda _old, new: seen.append(new))
    await _started(inf)
    try:
        await client.create(CONFIGMAPS, configmap("b", v="2", big="y" * 100))
        await client.patch(CONFIGMAPS, "a", {"data": {"v": "3"}}, namespace="default")

        async def both() -> bool:
            a, b = inf.get_by_key("default/a"), inf.get_by_key("default/b")
            return a is not None and b is not None and a["data"]["v"] == "3"

        for _ in range(200):
            if await both():
                break
            await asyncio.sleep(0.01)
        assert await both()
        assert inf.get_by_key("default/a")["data"] == {"v": "3"}
        assert inf.get_by_key("default/b")["data"] == {"v": "2"}
        assert all(set(o["data"]) == {"v"} for o in seen) and len(seen) == 3
    finally:
        await inf.stop()
