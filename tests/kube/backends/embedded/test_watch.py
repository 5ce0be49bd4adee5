import asyncio

import pytest

from pincompute.kube.backends.embedded import EmbeddedStore
from pincompute.kube.errors import Gone
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
