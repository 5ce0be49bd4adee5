"""Optimistic concurrency: resourceVersion preconditions under contention."""

from __future__ import annotations

import asyncio

import pytest

from pincompute.kube import AlreadyExists, Conflict

from .helpers import CONFIGMAPS, WIDGETS, configmap, copy, mutate, rv, watching, widget

ALSO_MEMORY = True


async def test_stale_update_conflicts_and_leaves_the_store_unchanged(client, ns):
    v1 = await client.create(CONFIGMAPS, configmap("cas", ns, data={"v": "1"}))
    stale = copy(v1)
    v1["data"] = {"v": "2"}
    v2 = await client.update(CONFIGMAPS, v1)

    stale["data"] = {"v": "stale"}
    with pytest.raises(Conflict):
        await client.update(CONFIGMAPS, stale)
    got = await client.get(CONFIGMAPS, "cas", namespace=ns)
    assert got["data"] == {"v": "2"}
    assert rv(got) == rv(v2)


async def test_made_up_resource_version_conflicts(client, ns):
    obj = await client.create(WIDGETS, widget("cas", ns, size=1))
    obj["spec"]["size"] = 2
    obj["metadata"]["resourceVersion"] = str(rv(obj) - 1) if rv(obj) > 1 else "999999999"
    with pytest.raises(Conflict):
        await client.update(WIDGETS, obj)
    assert (await client.get(WIDGETS, "cas", namespace=ns))["spec"]["size"] == 1


async def test_stale_status_update_conflicts(client, ns):
    w = await client.create(WIDGETS, widget("cas", ns))
    stale = copy(w)
    w["status"] = {"phase": "one"}
    await client.update_status(WIDGETS, w)
    stale["status"] = {"phase": "stale"}
    with pytest.raises(Conflict):
        await client.update_status(WIDGETS, stale)
    assert (await client.get(WIDGETS, "cas", namespace=ns))["status"] == {"phase": "one"}


async def test_concurrent_updates_from_one_version_exactly_one_wins(client, ns):
    base = await client.create(CONFIGMAPS, configmap("race", ns, data={"winner": "none"}))

    async def attempt(i: int):
        obj = copy(base)
        obj["data"] = {"winner": str(i)}
        return await client.update(CONFIGMAPS, obj)

    results = await asyncio.gather(*(attempt(i) for i in range(16)), return_exceptions=True)
    wins = [r for r in results if isinstance(r, dict)]
    conflicts = [r for r in results if isinstance(r, Conflict)]
    assert len(wins) == 1, results
    assert len(conflicts) == 15, results
    got = await client.get(CONFIGMAPS, "race", namespace=ns)
    assert got["data"] == wins[0]["data"] and rv(got) == rv(wins[0])


async def test_read_modify_write_with_retries_loses_no_increment(client, ns):
    await client.create(CONFIGMAPS, configmap("counter", ns, data={"n": "0"}))

    def bump(obj):
        obj["data"]["n"] = str(int(obj["data"]["n"]) + 1)

    async def worker():
        for _ in range(5):
            await mutate(client, CONFIGMAPS, "counter", ns, bump, attempts=500)

    await asyncio.gather(*(worker() for _ in range(8)))
    assert (await client.get(CONFIGMAPS, "counter", namespace=ns))["data"] == {"n": "40"}


async def test_concurrent_creates_of_one_name_exactly_one_wins(client, ns):
    results = await asyncio.gather(
        *(client.create(CONFIGMAPS, configmap("only", ns, data={"i": str(i)}))
          for i in range(12)),
        return_exceptions=True)
    wins = [r for r in results if isinstance(r, dict)]
    assert len(wins) == 1, results
    assert all(isinstance(r, AlreadyExists) for r in results if not isinstance(r, dict)), results
    got = await client.get(CONFIGMAPS, "only", namespace=ns)
    assert got["metadata"]["uid"] == wins[0]["metadata"]["uid"]


async def test_concurrent_writers_get_distinct_versions_seen_in_order(client, ns, harness):
    start = (await client.list(CONFIGMAPS, namespace=ns)).resource_version
    async with watching(client.watch(CONFIGMAPS, namespace=ns, resource_version=start),
                        timeout=harness.event_timeout) as events:
        created = await asyncio.gather(
            *(client.create(CONFIGMAPS, configmap(f"c{i:02d}", ns)) for i in range(40)))
        seen = await events.take(40)
    versions = [rv(o) for o in created]
    assert len(set(versions)) == 40
    assert [rv(e) for e in seen] == sorted(versions)
    by_rv = {rv(o): o["metadata"]["name"] for o in created}
    assert [(e.type, e.object["metadata"]["name"]) for e in seen] == [
        ("ADDED", by_rv[v]) for v in sorted(versions)]
