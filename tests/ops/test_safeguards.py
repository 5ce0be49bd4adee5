"""The safeguards' record in the cluster: a restarted controller keeps the rate windows."""

from __future__ import annotations

import json
import time

from pincompute.kube.backends.embedded import EmbeddedStore
from pincompute.kube.resource import CONFIGMAPS, NAMESPACES
from pincompute.model.wellknown import SYSTEM_NAMESPACE
from pincompute.ops.census import Census
from pincompute.ops.ratelimit import RateLimits
from pincompute.ops.safeguards import STATE_CONFIGMAP, SafeguardConfig, Safeguards


async def test_a_restarted_controller_keeps_the_rate_window() -> None:
    store = await EmbeddedStore.open(path=None)
    try:
        client = store.client()
        await client.create(NAMESPACES, {"metadata": {"name": SYSTEM_NAMESPACE}})
        config = SafeguardConfig(cluster_rate=2, zone_rate=10, rate_window=60.0)
        now = time.time()

        def fresh() -> Safeguards:
            return Safeguards(cluster="c1", census=Census(), config=config,
                              limits=RateLimits())

        first = fresh()
        await first.load(client)  # nothing saved yet
        for i in range(2):
            assert first.check((), zone="z1", now=now + i, rate_limited=True) is None
            await first.save(client, now=now + i)
        saved = await client.get(CONFIGMAPS, STATE_CONFIGMAP, namespace=SYSTEM_NAMESPACE)
        assert json.loads(saved["data"]["rates"])["cluster/c1"] == [now, now + 1]

        again = fresh()  # the process restarted: its memory is empty
        await again.load(client)
        refusal = again.check((), zone="z1", now=now + 2, rate_limited=True)
        assert refusal is not None and refusal.reason == "RateLimited"
        assert "2 actions in the last 60s, at most 2" in refusal.message
        assert again.check((), zone="z1", now=now + 60.5, rate_limited=True) is None
    finally:
        await store.close()
