"""Watching the Secrets that hold member kubeconfigs."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from pincompute.federation.secretwatch import KubeconfigSecrets
from pincompute.kube.backends.embedded import EmbeddedStore
from pincompute.kube.protocol import KubeClient
from pincompute.kube.resource import NAMESPACES, SECRETS
from tests.waiting import eventually, is_true

pytestmark = pytest.mark.timeout(30)


@pytest.fixture
async def host() -> AsyncIterator[KubeClient]:
    store = await EmbeddedStore.open(path=None)
    client = store.client()
    for ns in ("pincompute-system", "other"):
        await client.create(NAMESPACES, {"metadata": {"name": ns}})
    yield client
    await store.close()


def _tasks() -> set[str]:
    return {t.get_name() for t in asyncio.all_tasks() if t.get_name().startswith("informer ")}


async def test_changes_reach_the_members_using_the_secret(host: KubeClient) -> None:
    changed: list[str] = []
    secrets = KubeconfigSecrets(host, on_change=changed.append)
    await secrets.track("a", ("pincompute-system", "shared"))
    await secrets.track("b", ("pincompute-system", "shared"))
    await secrets.track("c", ("other", "own"))
    await secrets.track("d", None)
    assert sorted(secrets.watched) == ["other", "pincompute-system"]
    assert len(_tasks()) == 2

    await host.create(SECRETS, {"metadata": {"name": "shared"}, "data": {}},
                      namespace="pincompute-system")
    await host.create(SECRETS, {"metadata": {"name": "unrelated"}, "data": {}},
                      namespace="pincompute-system")
    await eventually(lambda: is_true(sorted(changed) == ["a", "b"]))
    changed.clear()
    await host.delete(SECRETS, "shared", namespace="pincompute-system")
    await eventually(lambda: is_true(sorted(changed) == ["a", "b"]))

    # The last member of a namespace stops its watch; moving a member moves it.
    await secrets.track("c", None)
    assert secrets.watched == ["pincompute-system"] and len(_tasks()) == 1
    await secrets.track("a", ("other", "own"))
    assert secrets.ref_of("a") == ("other", "own")
    await secrets.track("b", None)
    assert secrets.watched == ["other"]
    await secrets.stop()
    assert secrets.watched == [] and not _tasks()
