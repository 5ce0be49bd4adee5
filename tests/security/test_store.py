"""The store fails safe: a full disk cannot make it show writes it rejected (issue 8).

A tenant can fill the disk the stores live on (the exhaustion tests bound that, but a
disk fills for other reasons too).  The commit that then fails must not leave its
writes in memory: they were refused, watchers never hear of them, and a restart
would not have them — a read must show exactly what a restart would.
"""

from __future__ import annotations

import asyncio
from typing import Any

from pincompute.kube.backends.embedded import EmbeddedStore
from pincompute.kube.errors import ApiError, NotFound
from pincompute.kube.protocol import KubeClient
from pincompute.kube.resource import CONFIGMAPS, NAMESPACES

from .test_exhaustion import _fill, _tmpfs


async def _view(client: KubeClient, names: list[str]) -> dict[str, Any]:
    view: dict[str, Any] = {}
    listed = await client.list(CONFIGMAPS, namespace="ns")
    view["list"], view["rv"] = listed.items, listed.resource_version
    view["web"] = (await client.list(CONFIGMAPS, label_selector="tier=web")).items
    for name in names:
        try:
            view[name] = await client.get(CONFIGMAPS, name, namespace="ns")
        except NotFound:
            view[name] = None
    return view


async def test_a_full_disk_does_not_make_reads_show_rejected_writes(as_root: None) -> None:
    with _tmpfs(16) as disk:
        path = disk / "store"
        store = await EmbeddedStore.open(path=path)
        client = store.client()
        await client.create(NAMESPACES, {"metadata": {"name": "ns"}})
        for i in range(20):
            await client.create(CONFIGMAPS, {"metadata": {"name": f"old-{i}", "labels": {
                "tier": "web"}}, "data": {"v": "0"}}, namespace="ns")
        _fill(disk / "filler")
        # Creates, updates and deletes, round after round, until the disk refuses one.
        rejected: list[str] = []
        for round_ in range(20):
            results = await asyncio.gather(
                client.create(CONFIGMAPS, {"metadata": {"name": f"new-{round_}", "labels": {
                    "tier": "web"}}, "data": {"x": "y" * 20000}}, namespace="ns"),
                client.patch(CONFIGMAPS, f"old-{round_}", {"data": {"v": "x" * 20000},
                             "metadata": {"labels": {"tier": "db"}}}, namespace="ns"),
                client.delete(CONFIGMAPS, f"old-{19 - round_}", namespace="ns"),
                return_exceptions=True)
            if any(isinstance(r, ApiError) for r in results):
                rejected.append(f"new-{round_}")
                break
        assert rejected, "the disk never filled"
        assert not store.healthy
        names = [f"old-{i}" for i in range(20)] + [f"new-{i}" for i in range(20)]
        seen = await _view(client, names)
        assert seen[rejected[0]] is None  # the refused create is not shown
        await store.close()

        # A restart, with the space back, shows exactly what the failed store showed.
        (disk / "filler").unlink()
        store = await EmbeddedStore.open(path=path)
        try:
            assert store.healthy
            assert await _view(store.client(), names) == seen
        finally:
            await store.close()

