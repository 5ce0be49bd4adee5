"""Per node, its pods per app, from pod events: what an application-aware pick reads."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from pincompute.kube.backends.embedded import EmbeddedStore
from pincompute.kube.protocol import KubeClient
from pincompute.kube.resource import NAMESPACES, PODS
from pincompute.model.wellknown import APP_UID_LABEL, DAEMON_POD_LABEL
from pincompute.ops.nodeapps import NodeApps
from pincompute.runtime.informer import SharedInformer
from tests.waiting import eventually, is_true


@pytest.fixture
async def client() -> AsyncIterator[KubeClient]:
    store = await EmbeddedStore.open(path=None)
    made = store.client()
    await made.create(NAMESPACES, {"metadata": {"name": "default"}})
    yield made
    await store.close()


def pod(name: str, *, app: str | None, node: str | None, daemon: bool = False
        ) -> dict[str, Any]:
    labels = {APP_UID_LABEL: app} if app else {}
    if daemon:
        labels[DAEMON_POD_LABEL] = "true"
    spec: dict[str, Any] = {"containers": [{"name": "main", "image": "x"}],
                            "terminationGracePeriodSeconds": 30}
    if node:
        spec["nodeName"] = node
    return {"metadata": {"name": name, "labels": labels}, "spec": spec}


async def test_counts_follow_the_pods(client: KubeClient) -> None:
    await client.create(PODS, pod("a1", app="A", node="n1"), namespace="default")
    informer = SharedInformer(client, PODS)
    informer.start()
    try:
        await eventually(lambda: is_true(informer.has_synced))
        apps = NodeApps(informer)  # after the sync: the cached pods are replayed
        assert dict(apps.of("n1")) == {"A": 1}
        for made in (pod("a2", app="A", node="n1"), pod("b1", app="B", node="n1"),
                     pod("b2", app="B", node="n2"), pod("d1", app="A", node="n1", daemon=True),
                     pod("plain", app=None, node="n1"), pod("unbound", app="B", node=None)):
            await client.create(PODS, made, namespace="default")

        async def counted(node: str, want: dict[str, int]) -> bool:
            return dict(apps.of(node)) == want

        await eventually(lambda: counted("n1", {"A": 2, "B": 1}))
        assert dict(apps.of("n2")) == {"B": 1}
        assert dict(apps.of("n3")) == {}
        # Being deleted (a grace period) no longer counts; nor does the pod once gone.
        await client.delete(PODS, "a1", namespace="default")
        await eventually(lambda: counted("n1", {"A": 1, "B": 1}))
        await client.delete(PODS, "b2", namespace="default", grace_period_seconds=0)
        await eventually(lambda: counted("n2", {}))
        await client.delete(PODS, "a1", namespace="default", grace_period_seconds=0)
        await client.delete(PODS, "a2", namespace="default", grace_period_seconds=0)
        await eventually(lambda: counted("n1", {"B": 1}))
    finally:
        await informer.stop()
