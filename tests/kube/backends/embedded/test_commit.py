"""A failed commit rolls the store back: reads only ever show committed data (issue 8).

The commit is failed by replacing ``SqliteLog.commit`` (a real full disk is in
tests/security/test_store.py); what a read shows afterwards is compared with what a
reopened store — the durable truth — shows.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from pincompute.kube.backends.embedded import EmbeddedStore
from pincompute.kube.backends.embedded.persistence import SqliteLog
from pincompute.kube.errors import ApiError, NotFound
from pincompute.kube.protocol import KubeClient
from pincompute.kube.resource import CONFIGMAPS, NAMESPACES, SECRETS


def _cm(name: str, **extra: Any) -> dict[str, Any]:
    return {"metadata": {"name": name, **extra.pop("metadata", {})}, **extra}


async def _view(client: KubeClient) -> dict[str, Any]:
    """Everything a reader can see, by several read paths (indexes included)."""
    view: dict[str, Any] = {}
    for resource in (NAMESPACES, CONFIGMAPS, SECRETS):
        listed = await client.list(resource)
        view[resource.key] = listed.items
        view[f"{resource.key}@rv"] = listed.resource_version
    for selector in ("tier=web", "tier=db", "tier"):
        view[selector] = [o["metadata"]["name"] for o in
                          (await client.list(CONFIGMAPS, label_selector=selector)).items]
    view["page"] = (await client.list(CONFIGMAPS, namespace="ns", limit=2)).items
    for name in ("a", "b", "c", "owner", "dependent"):
        try:
            view[f"get {name}"] = await client.get(CONFIGMAPS, name, namespace="ns")
        except NotFound:
            view[f"get {name}"] = None
    return view


async def test_a_failed_commit_leaves_reads_showing_only_committed_data(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = await EmbeddedStore.open(path=tmp_path)
    client = store.client()
    await client.create(NAMESPACES, {"metadata": {"name": "ns"}})
    await client.create(CONFIGMAPS, _cm("a", data={"v": "1"},
                                        metadata={"labels": {"tier": "web"}}), namespace="ns")
    await client.create(CONFIGMAPS, _cm("b", metadata={"labels": {"tier": "db"}}),
                        namespace="ns")
    owner = await client.create(CONFIGMAPS, _cm("owner"), namespace="ns")
    await client.create(CONFIGMAPS, _cm("dependent", metadata={"ownerReferences": [{
        "apiVersion": "v1", "kind": "ConfigMap", "name": "owner",
        "uid": owner["metadata"]["uid"]}]}), namespace="ns")
    before = await _view(client)
    committed = store.committed_resource_version

    def broken(self: SqliteLog, puts: list, deletes: list, rv: int) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(SqliteLog, "commit", broken)
    heard: list[str] = []
    store.on_read_only(heard.append)
    # One batch of every kind of write: creates (one in a new namespace), an update that
    # moves an object between label indexes, a delete, and a delete whose garbage
    # collection deletes a dependent.
    results = await asyncio.gather(
        client.create(CONFIGMAPS, _cm("c", metadata={"labels": {"tier": "web"}}),
                      namespace="ns"),
        client.patch(CONFIGMAPS, "a", {"data": {"v": "2"}, "metadata": {
            "labels": {"tier": "db"}}}, namespace="ns"),
        client.delete(CONFIGMAPS, "b", namespace="ns"),
        client.delete(CONFIGMAPS, "owner", namespace="ns"),
        client.create(NAMESPACES, {"metadata": {"name": "other"}}),
        client.create(SECRETS, {"metadata": {"name": "s"}}, namespace="ns"),
        return_exceptions=True)
    assert all(isinstance(r, ApiError) for r in results), results
    assert not store.healthy and len(heard) == 1

    # Reads show the state before the failed batch: no write that will vanish.
    after = await _view(client)
    assert after == before
    assert store.resource_version == committed
    assert store.object_count() == 5  # namespace ns, a, b, owner, dependent: nothing more
    # A watch from before the batch replays nothing of it.
    watcher = store.open_watch(CONFIGMAPS, namespace=None, label_selector=None,
                               field_selector=None, resource_version=str(committed - 1),
                               allow_bookmarks=False)
    assert [e.object["metadata"]["name"] for e in watcher.buffer] == ["dependent"]
    with pytest.raises(ApiError):  # and the store still refuses writes
        await client.create(CONFIGMAPS, _cm("d"), namespace="ns")
    await store.close()

    # A restart shows exactly the same.
    monkeypatch.undo()
    store = await EmbeddedStore.open(path=tmp_path)
    try:
        assert await _view(store.client()) == before
        assert store.resource_version == committed
        assert store.healthy
    finally:
        await store.close()


async def test_batches_queued_behind_a_failed_commit_are_rolled_back_too(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Writes in flight in later batches (group commit keeps two) are undone as well."""
    store = await EmbeddedStore.open(path=tmp_path)
    client = store.client()
    await client.create(NAMESPACES, {"metadata": {"name": "ns"}})
    original = SqliteLog.commit
    calls = 0

    def fails_once_slowly(self: SqliteLog, puts: list, deletes: list, rv: int) -> None:
        nonlocal calls
        calls += 1
        import time
        time.sleep(0.05)  # later writes queue up behind this batch
        if calls == 1:  # a row SQLite cannot store: the real commit fails, and stays failed
            puts = [*puts, ("x", "y", 1, object())]
        original(self, puts, deletes, rv)

    monkeypatch.setattr(SqliteLog, "commit", fails_once_slowly)
    results = await asyncio.gather(*(client.create(CONFIGMAPS, _cm(f"cm-{i}"), namespace="ns")
                                     for i in range(600)), return_exceptions=True)
    assert all(isinstance(r, ApiError) for r in results)
    assert calls >= 2  # batches were queued behind the failed one
    assert (await client.list(CONFIGMAPS)).items == []
    assert store.object_count() == 1
    await store.close()
    monkeypatch.undo()
    store = await EmbeddedStore.open(path=tmp_path)
    try:
        assert (await store.client().list(CONFIGMAPS)).items == []
    finally:
        await store.close()


async def test_a_store_that_cannot_roll_back_answers_no_reads(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = await EmbeddedStore.open(path=tmp_path)
    client = store.client()
    await client.create(NAMESPACES, {"metadata": {"name": "ns"}})

    def broken(self: SqliteLog, puts: list, deletes: list, rv: int) -> None:
        raise OSError("disk full")

    def no_roll_back(lost: list) -> None:
        raise RuntimeError("bug")

    monkeypatch.setattr(SqliteLog, "commit", broken)
    monkeypatch.setattr(store, "_roll_back", no_roll_back)
    with pytest.raises(ApiError, match="disk full"):
        await client.create(CONFIGMAPS, _cm("a"), namespace="ns")
    with pytest.raises(ApiError, match="cannot answer"):
        await client.get(CONFIGMAPS, "a", namespace="ns")
    with pytest.raises(ApiError, match="cannot answer"):
        await client.list(NAMESPACES)
    await store.close()
