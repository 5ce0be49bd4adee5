"""Fixtures for scheduler tests: an embedded store (memory-only) with two namespaces."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from pincompute.kube.backends.embedded import EmbeddedStore
from pincompute.kube.protocol import KubeClient
from pincompute.kube.resource import NAMESPACES


@pytest.fixture
async def store() -> AsyncIterator[EmbeddedStore]:
    store = await EmbeddedStore.open(path=None, bookmark_interval=60.0)
    client = store.client()
    for ns in ("default", "batch"):
        await client.create(NAMESPACES, {"metadata": {"name": ns}})
    yield store
    await store.close()


@pytest.fixture
def client(store: EmbeddedStore) -> KubeClient:
    return store.client()
