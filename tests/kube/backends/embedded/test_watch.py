import asyncio

import pytest

from pincompute.kube.backends.embedded import EmbeddedStore
from pincompute.kube.backends.embedded.collection import Entry
from pincompute.kube.backends.embedded.watch import History, StoreEvent
from pincompute.kube.errors import Gone
from pincompute.kube.protocol import ADDED, MODIFIED
from pincompute.kube.resource import CONFIGMAPS, NAMESPACES


async def _store(**options: object) -> EmbeddedStore:
    store = await EmbeddedStore.open(path=None, **options)  # type: ignore[arg-type]
    await store.client().create(NAMESPACES, {"metadata": {"name": "ns"}})
    return store


async def test_a_slow_watcher_is_dropped_without_holding_back_others() -> None:
    store = await _store(watch_buffer=10)
    client = store.client()
    rv = (await client.list(CONFIGMAPS)).resource_version
    slow = client.watch(CONFIGMAPS, resource_version=rv)
    fast_seen: list[str] = []

    async def fast() -> None:
        async for event in client.watch(CONFIGMAPS, resource_version=rv):
            fast_seen.append(event.object["metadata"]["name"])
            if len(fast_seen) == 30:
                return

    task = asyncio.create_task(fast())
    await client.create(CONFIGMAPS, {"metadata": {"name": "cm-00"}}, namespace="ns")
    first = await anext(slow)  # the slow watcher reads once, then stalls
    for i in range(1, 30):
        await client.create(CONFIGMAPS, {"metadata": {"name": f"cm-{i:02d}"}}, namespace="ns")
        await asyncio.sleep(0)
    await asyncio.wait_for(task, 5)
    assert len(fast_seen) == 30
    assert first.object["metadata"]["name"] == "cm-00"
    # The slow stream ends instead of buffering without bound; the caller re-watches.
    rest = [e async for e in slow]
    assert len(rest) < 30
    await store.close()


async def test_history_is_bounded_and_older_versions_are_gone() -> None:
    store = await _store(history_size=5)
    client = store.client()
    start = (await client.list(CONFIGMAPS)).resource_version
    for i in range(20):
        await client.create(CONFIGMAPS, {"metadata": {"name": f"cm-{i}"}}, namespace="ns")
    with pytest.raises(Gone):
        await anext(client.watch(CONFIGMAPS, resource_version=start))
    recent = str(store.resource_version - 3)
    events = []
    async for event in client.watch(CONFIGMAPS, resource_version=recent, timeout_seconds=0.2):
        events.append(event)
    assert [e.object["metadata"]["name"] for e in events] == ["cm-17", "cm-18", "cm-19"]
    await store.close()


async def test_other_resources_do_not_age_a_quiet_resource_out() -> None:
    store = await _store(history_size=5)
    client = store.client()
    await client.create(CONFIGMAPS, {"metadata": {"name": "quiet"}}, namespace="ns")
    rv = (await client.list(CONFIGMAPS)).resource_version
    for i in range(30):
        await client.create(NAMESPACES, {"metadata": {"name": f"ns-{i}"}})
    await client.create(CONFIGMAPS, {"metadata": {"name": "later"}}, namespace="ns")
    events = [e async for e in client.watch(CONFIGMAPS, resource_version=rv,
                                            timeout_seconds=0.2)]
    assert [e.object["metadata"]["name"] for e in events] == ["later"]
    await store.close()


async def test_bookmarks_carry_the_current_version() -> None:
    store = await _store(bookmark_interval=0.05)
    client = store.client()
    await client.create(CONFIGMAPS, {"metadata": {"name": "a"}}, namespace="ns")
    rv = str(store.resource_version)
    async for event in client.watch(CONFIGMAPS, resource_version=rv, timeout_seconds=1):
        assert event.type == "BOOKMARK"
        assert event.object["metadata"] == {"resourceVersion": rv}
        break
    else:
        pytest.fail("no bookmark")
    await store.close()


def _event(rv: int, size: int, *, prev: bool = False) -> StoreEvent:
    def entry(n: int) -> Entry:
        return Entry(key=f"ns/cm-{rv}", ns="ns", name=f"cm-{rv}", uid=str(rv), rv=n,
                     raw=b"x" * size, data={"metadata": {}})
    return StoreEvent(MODIFIED if prev else ADDED, rv, entry(rv), entry(rv - 1) if prev else None)


def test_history_is_bounded_in_bytes_as_well_as_in_events() -> None:
    history = History(1000, floor=0, max_bytes=10_000)
    for rv in range(1, 101):
        history.append(_event(rv, 1000))
        assert history.bytes <= 10_000
    # Trimmed in bulk to half the bound; what is kept is the newest, in order.
    kept = history.since(history.floor)
    assert kept is not None and 5 <= len(kept) <= 10
    assert [e.rv for e in kept] == list(range(101 - len(kept), 101))
    assert history.since(history.floor - 1) is None  # older ones are gone
    # An event's previous version counts too (it is kept alive by the event).
    history.append(_event(101, 3000, prev=True))
    assert history.bytes <= 10_000
    assert [e.rv for e in history.since(100) or ()] == [101]


def test_one_event_larger_than_the_bound_is_still_kept() -> None:
    history = History(10, floor=0, max_bytes=100)
    history.append(_event(1, 50))
    history.append(_event(2, 500))
    assert [e.rv for e in history.since(1) or ()] == [2]
    assert history.since(0) is None


@pytest.mark.parametrize("persisted", [False, True])
async def test_history_keeps_no_parsed_objects_once_watchers_have_them(
        tmp_path: object, persisted: bool) -> None:
    """Each event is parsed once for every watcher; the history must not keep that copy
    (a decoded version of every recent object), and a later resumed watch parses anew."""
    store = await EmbeddedStore.open(path=tmp_path if persisted else None)  # type: ignore[arg-type]
    client = store.client()
    try:
        await client.create(NAMESPACES, {"metadata": {"name": "ns"}})
        rv = (await client.list(CONFIGMAPS)).resource_version
        first: list[dict] = []
        second: list[dict] = []

        async def watch(into: list[dict]) -> None:
            async for event in client.watch(CONFIGMAPS, resource_version=rv):
                into.append(event.object)
                if len(into) == 2:
                    return

        watchers = [asyncio.create_task(watch(first)), asyncio.create_task(watch(second))]
        await asyncio.sleep(0)
        await client.create(CONFIGMAPS, {"metadata": {"name": "a", "namespace": "ns"}})
        await client.patch(CONFIGMAPS, "a", {"data": {"k": "v"}}, namespace="ns")
        await asyncio.wait_for(asyncio.gather(*watchers), 5)
        assert [a is b for a, b in zip(first, second, strict=True)] == [True, True]  # shared
        history = store.collections[CONFIGMAPS.key].history
        events = history.since(int(rv))
        assert events is not None and len(events) == 2
        assert all(e._obj is None and e._prev_obj is None for e in events)
        replayed = []
        async for event in client.watch(CONFIGMAPS, resource_version=rv):
            replayed.append(event.object)
            if len(replayed) == 2:
                break
        assert replayed == first and replayed[0] is not first[0]
    finally:
        await store.close()
