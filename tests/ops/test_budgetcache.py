"""Refusals from the caches: only ever a refusal, and only when the budget has no room."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from pincompute.kube.backends.embedded import EmbeddedStore
from pincompute.kube.protocol import KubeClient
from pincompute.kube.resource import NAMESPACES, PODS
from pincompute.model import registry
from pincompute.model.registry import PINAPPS
from pincompute.model.wellknown import APP_UID_LABEL
from pincompute.ops.budgetcache import BudgetCache
from pincompute.runtime.informer import SharedInformer
from tests.ops.conftest import pinapp
from tests.waiting import eventually


@pytest.fixture
async def client() -> AsyncIterator[KubeClient]:
    store = await EmbeddedStore.open(path=None)
    registry.install(store, resources=registry.MEMBER_RESOURCES)
    client = store.client()
    await client.create(NAMESPACES, {"metadata": {"name": "default"}})
    yield client
    await store.close()


async def test_a_refusal_only_when_the_cache_shows_no_room(client: KubeClient) -> None:
    app = await client.create(PINAPPS, pinapp("web", replicas=3,
                                              budget={"maxUnavailable": 1}))
    loose = await client.create(PINAPPS, pinapp("loose", replicas=2))
    pods = SharedInformer(client, PODS)
    pinapps = SharedInformer(client, PINAPPS)
    cache = BudgetCache(pods=pods, pinapps=pinapps)
    pods.start()
    pinapps.start()
    try:
        made: dict[str, dict[str, Any]] = {}
        for i, owner in ((0, app), (1, app), (2, app), (0, loose)):
            name = f"{owner['metadata']['name']}-{i}"
            pod = await client.create(PODS, {
                "metadata": {"name": name, "namespace": "default",
                             "labels": {APP_UID_LABEL: owner["metadata"]["uid"]}},
                "spec": {"containers": [{"name": "main", "image": "x"}]}}, namespace="default")
            pod["status"] = {"conditions": [{"type": "Ready", "status": "True"}]}
            made[name] = await client.update_status(PODS, pod)

        async def cached(count: int) -> bool:
            return len(pods.list()) == count and len(pinapps.list()) == 2 and all(
                (p.get("status") or {}).get("conditions") for p in pods.list())

        await eventually(lambda: cached(4))
        # All three ready: one may go, so the API is asked (no refusal from the cache).
        assert cache.refusal(made["web-0"]) is None
        assert cache.refusal(made["loose-0"]) is None  # no budget: not the cache's call
        # web-2 is not Ready: evicting a ready one would leave 1 of the 2 needed.
        web2 = dict(made["web-2"], status={"conditions": [{"type": "Ready",
                                                             "status": "False"}]})
        await client.update_status(PODS, web2)

        async def seen() -> bool:
            pod = pods.get("web-2", namespace="default") or {}
            return pod["status"]["conditions"][0]["status"] == "False"

        await eventually(seen)
        refusal = cache.refusal(made["web-0"])
        assert refusal is not None and not refusal.allowed
        assert refusal.app == "default/web" and "needs 2" in refusal.message
        # The pod that is not available itself costs nothing: the API decides.
        assert cache.refusal(pods.get("web-2", namespace="default") or {}) is None
    finally:
        await pods.stop()
        await pinapps.stop()
