"""Budget decisions from the caches: the same answers as the API, and evictions in a row
see each other before the caches see the deletions."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from pincompute.kube import objects
from pincompute.kube.resource import NAMESPACES, PODS
from pincompute.model.disruption import evict, may_evict
from pincompute.model.registry import PINAPPS, PINPODS
from pincompute.model.wellknown import APP_UID_LABEL, OWNER_UID_LABEL
from pincompute.ops.budgetcache import BY_APP_UID, BudgetCache
from pincompute.runtime.informer import SharedInformer
from tests.ops.conftest import Member, MemberFactory, pod_ready, settle_app, settle_pool
from tests.waiting import eventually


@pytest.fixture
async def member(member_cluster: MemberFactory) -> Member:
    m: Member = await member_cluster()
    await settle_pool(m, size=3)
    await settle_app(m, "web", 4, budget={"maxUnavailable": 2})
    await settle_app(m, "loose", 2)
    return m


@pytest.fixture
async def cache(member: Member) -> AsyncIterator[BudgetCache]:
    informers = [SharedInformer(member.client, r) for r in (PODS, PINPODS, PINAPPS)]
    made = BudgetCache(pods=informers[0], pinpods=informers[1], pinapps=informers[2])
    for informer in informers:
        informer.start()

    async def synced() -> bool:
        return made.has_synced

    await eventually(synced, what="the caches synced")
    try:
        yield made
    finally:
        for informer in informers:
            await informer.stop()


async def pods_of(member: Member, app: str) -> list[dict[str, Any]]:
    uid = objects.uid_of(await member.client.get(PINAPPS, app, namespace="default"))
    items = (await member.client.list(PODS, namespace="default",
                                      label_selector=f"{APP_UID_LABEL}={uid}")).items
    return sorted(items, key=objects.name_of)


async def test_the_cache_decides_as_the_api_does(member: Member, cache: BudgetCache) -> None:
    web = await pods_of(member, "web")
    loose = await pods_of(member, "loose")

    async def caught_up() -> bool:
        return len(cache.pods.list()) == 6 and all(
            cache.decide(p) is not None for p in (*web, *loose))

    await eventually(caught_up, what="the cache showing every pod")
    for pod in (web[0], loose[0]):
        cached, read = cache.decide(pod), await may_evict(member.client, pod)
        assert cached is not None
        assert (cached.allowed, cached.reason, cached.room) == (read.allowed, read.reason,
                                                                read.room)
    assert cache.decide(loose[0]).reason == "NoBudget"  # type: ignore[union-attr]
    # A pod of an app the caches do not show: the API is asked.
    stranger = objects.deepcopy(web[0])
    stranger["metadata"]["labels"][APP_UID_LABEL] = "no-such-app"
    assert cache.decide(stranger) is None


async def test_evictions_in_a_row_see_each_other_before_the_cache_does(
        member: Member, cache: BudgetCache) -> None:
    web = await pods_of(member, "web")
    uid = web[0]["metadata"]["labels"][APP_UID_LABEL]

    async def shown() -> bool:
        return len(cache.pods.by_index(BY_APP_UID, uid)) == 4 and all(
            cache.decide(p) is not None for p in web)

    await eventually(shown, what="the cache showing web's pods")
    # The cache falls behind for good: it shows all four pods available whatever happens.
    await cache.pods.stop()
    # maxUnavailable 2 of 4: two may go; the third would leave one.  Only the record of
    # the evictions tells, since the cache never sees them.
    decisions = [await evict(member.client, pod, decide=cache.decide) for pod in web[:3]]
    assert [d.allowed for d in decisions] == [True, True, False]
    assert decisions[1].room == 0
    assert "needs 2" in decisions[2].message
    after = {objects.name_of(p): p for p in await pods_of(member, "web")}
    assert objects.name_of(web[2]) in after and not objects.is_deleting(
        after[objects.name_of(web[2])])
    # The API agrees: two of web's first pods are going.
    assert sum(1 for p in web[:2] if objects.name_of(p) not in after
               or objects.is_deleting(after[objects.name_of(p)])) == 2


async def test_another_namespace_cannot_lend_an_app_its_pods(
        member: Member, cache: BudgetCache) -> None:
    """A tenant copies one of web's PinPods, labels and all, into its own namespace: its
    Ready pod carries web's app uid, and must not count as one of web's."""
    client = member.client
    await client.create(NAMESPACES, {"metadata": {"name": "other"}})
    web = await pods_of(member, "web")
    uid = web[0]["metadata"]["labels"][APP_UID_LABEL]
    original = (await client.list(PINPODS, namespace="default",
                                  label_selector=f"{OWNER_UID_LABEL}={uid}")).items[0]
    for i in range(2):
        copy = {"metadata": {"name": f"copy-{i}", "namespace": "other",
                             "labels": dict(original["metadata"]["labels"])},
                "spec": objects.deepcopy(original["spec"])}
        await client.create(PINPODS, copy, namespace="other")

    async def lent() -> bool:
        return sum(1 for p in cache.pods.by_index(BY_APP_UID, uid)
                   if objects.namespace_of(p) == "other" and pod_ready(p)) == 2

    await eventually(lent, timeout=20, what="the copies' pods Ready under web's label")
    cached, read = cache.decide(web[0]), await may_evict(member.client, web[0])
    assert cached is not None and read.room == 1
    assert (cached.allowed, cached.room) == (True, 1)  # 4 available, 2 needed: one more
