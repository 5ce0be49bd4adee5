"""Events expire ``ttl`` after their last write; a newer write postpones it."""

from __future__ import annotations

import asyncio
from pathlib import Path

from pincompute.kube.backends.embedded import EmbeddedStore
from pincompute.kube.errors import NotFound
from pincompute.kube.resource import CONFIGMAPS, EVENTS, NAMESPACES


def event(name: str, stamp: str = "") -> dict:
    body: dict = {"metadata": {"name": name}, "reason": "Test", "message": "m",
                  "involvedObject": {"kind": "Pod", "name": "p", "namespace": "ns"}}
    if stamp:
        body["lastTimestamp"] = stamp
    return body


async def names(client) -> list[str]:
    return sorted(e["metadata"]["name"] for e in (await client.list(EVENTS)).items)


async def test_events_expire_after_the_ttl_and_other_objects_stay() -> None:
    store = await EmbeddedStore.open(path=None, event_ttl=0.5)
    client = store.client()
    await client.create(NAMESPACES, {"metadata": {"name": "ns"}})
    await client.create(EVENTS, event("old"), namespace="ns")
    await client.create(CONFIGMAPS, {"metadata": {"name": "keep"}}, namespace="ns")
    await asyncio.sleep(0.3)
    await client.create(EVENTS, event("young"), namespace="ns")
    await asyncio.sleep(0.35)
    await store._expiry.expire_due()
    assert await names(client) == ["young"]
    await asyncio.sleep(0.3)
    await store._expiry.expire_due()
    assert await names(client) == []
    await client.get(CONFIGMAPS, "keep", namespace="ns")
    await store.close()


async def test_a_rewritten_event_lives_on_from_its_last_write() -> None:
    store = await EmbeddedStore.open(path=None, event_ttl=0.5)
    client = store.client()
    await client.create(NAMESPACES, {"metadata": {"name": "ns"}})
    await client.create(EVENTS, event("bumped"), namespace="ns")
    await asyncio.sleep(0.3)
    await client.patch(EVENTS, "bumped", {"count": 2}, namespace="ns")
    await asyncio.sleep(0.35)
    await store._expiry.expire_due()  # the first write's deadline passed: a conflict, kept
    assert await names(client) == ["bumped"]
    await asyncio.sleep(0.3)
    await store._expiry.expire_due()
    assert await names(client) == []
    await store.close()


async def test_after_a_restart_old_events_go_and_fresh_ones_keep_their_time(
        tmp_path: Path) -> None:
    store = await EmbeddedStore.open(path=tmp_path, event_ttl=None)
    client = store.client()
    await client.create(NAMESPACES, {"metadata": {"name": "ns"}})
    await client.create(EVENTS, event("ancient", "2000-01-01T00:00:00Z"), namespace="ns")
    await client.create(EVENTS, event("fresh"), namespace="ns")
    await store.close()
    store = await EmbeddedStore.open(path=tmp_path, event_ttl=3600)
    client = store.client()
    await asyncio.sleep(0.05)  # the expiry lists what is there
    await store._expiry.expire_due()
    assert await names(client) == ["fresh"]
    try:
        await client.get(EVENTS, "ancient", namespace="ns")
        raise AssertionError("an event older than the ttl survived a restart")
    except NotFound:
        pass
    await store.close()
