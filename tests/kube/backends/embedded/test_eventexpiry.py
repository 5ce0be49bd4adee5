"""Events expire ``ttl`` after their last write; a newer write postpones it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from pincompute.kube.backends.embedded import EmbeddedStore
from pincompute.kube.backends.embedded.eventexpiry import EventExpiry
from pincompute.kube.resource import CONFIGMAPS, EVENTS, NAMESPACES

TTL = 100.0


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def event(name: str, stamp: str = "") -> dict:
    body: dict = {"metadata": {"name": name}, "reason": "Test", "message": "m",
                  "involvedObject": {"kind": "Pod", "name": "p", "namespace": "ns"}}
    if stamp:
        body["lastTimestamp"] = stamp
    return body


async def names(client) -> list[str]:
    return sorted(e["metadata"]["name"] for e in (await client.list(EVENTS)).items)


async def settled(expiry: EventExpiry, writes: int) -> None:
    """Until the expiry's watch has seen ``writes`` writes."""
    for _ in range(1000):
        if len(expiry._heap) >= writes:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"the expiry saw {len(expiry._heap)} of {writes} writes")


@pytest.fixture
async def store() -> AsyncIterator[EmbeddedStore]:
    store = await EmbeddedStore.open(path=None, event_ttl=None)
    await store.client().create(NAMESPACES, {"metadata": {"name": "ns"}})
    yield store
    await store.close()


async def test_events_expire_after_the_ttl_and_other_objects_stay(store) -> None:
    clock = Clock()
    expiry = EventExpiry(store, ttl=TTL, interval=1000, clock=clock)
    expiry.start()
    client = store.client()
    await client.create(EVENTS, event("old"), namespace="ns")
    await client.create(CONFIGMAPS, {"metadata": {"name": "keep"}}, namespace="ns")
    await settled(expiry, 1)
    clock.now += 60
    await client.create(EVENTS, event("young"), namespace="ns")
    await settled(expiry, 2)
    clock.now += 41
    assert await expiry.expire_due() == 1
    assert await names(client) == ["young"]
    clock.now += 60
    assert await expiry.expire_due() == 1
    assert await names(client) == []
    await client.get(CONFIGMAPS, "keep", namespace="ns")
    await expiry.stop()


async def test_a_rewritten_event_lives_on_from_its_last_write(store) -> None:
    clock = Clock()
    expiry = EventExpiry(store, ttl=TTL, interval=1000, clock=clock)
    expiry.start()
    client = store.client()
    await client.create(EVENTS, event("bumped"), namespace="ns")
    await settled(expiry, 1)
    clock.now += 60
    await client.patch(EVENTS, "bumped", {"count": 2}, namespace="ns")
    await settled(expiry, 2)
    clock.now += 41  # the first write's deadline has passed: a conflict, the event stays
    assert await expiry.expire_due() == 0
    assert await names(client) == ["bumped"]
    clock.now += 60
    assert await expiry.expire_due() == 1
    await expiry.stop()


async def test_after_a_restart_old_events_go_and_fresh_ones_keep_their_time(
        tmp_path: Path) -> None:
    store = await EmbeddedStore.open(path=tmp_path, event_ttl=None)
    client = store.client()
    await client.create(NAMESPACES, {"metadata": {"name": "ns"}})
    await client.create(EVENTS, event("ancient", "2000-01-01T00:00:00Z"), namespace="ns")
    await client.create(EVENTS, event("fresh"), namespace="ns")
    await store.close()
    store = await EmbeddedStore.open(path=tmp_path)  # the default: an hour
    assert store._expiry is not None and store._expiry.ttl == 3600
    await settled(store._expiry, 2)
    await store._expiry.expire_due()
    assert await names(store.client()) == ["fresh"]
    await store.close()
