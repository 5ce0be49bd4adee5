from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from pincompute.kube.backends.embedded import EmbeddedStore
from pincompute.kube.protocol import KubeClient
from pincompute.kube.resource import NAMESPACES

StoreFactory = Callable[..., Awaitable[EmbeddedStore]]


async def _ensure_namespaces(client: KubeClient, *names: str) -> None:
    for name in names:
        await client.create(NAMESPACES, {"apiVersion": "v1", "kind": "Namespace",
                                         "metadata": {"name": name}})


@pytest.fixture(params=["memory", "sqlite"])
def store_kind(request: pytest.FixtureRequest) -> str:
    """Which store the test runs against (a module may override it with one kind)."""
    return str(request.param)


@pytest.fixture
async def make_store(store_kind: str, tmp_path: Path) -> AsyncIterator[StoreFactory]:
    """Open stores with options; namespaces ``default`` and ``other`` exist.

    Every test runs against a memory-only store and a persisted one: the latter
    acknowledges writes only after a group commit, which changes the interleaving
    of writers and watchers, and the runtime must not depend on either.
    """
    stores: list[EmbeddedStore] = []

    async def make(**options: Any) -> EmbeddedStore:
        options.setdefault("bookmark_interval", 60.0)
        if store_kind == "sqlite":
            options.setdefault("path", tmp_path / f"store{len(stores)}")
        store = await EmbeddedStore.open(**options)
        stores.append(store)
        await _ensure_namespaces(store.client(), "default", "other")
        return store

    yield make
    for store in stores:
        await store.close()


@pytest.fixture
async def store(make_store: StoreFactory) -> EmbeddedStore:
    return await make_store()


@pytest.fixture
def client(store: EmbeddedStore) -> KubeClient:
    return store.client()
