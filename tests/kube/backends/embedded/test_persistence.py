import asyncio
import contextlib
import os
import stat
from pathlib import Path

import pytest

from pincompute.kube.backends.embedded import EmbeddedStore
from pincompute.kube.backends.embedded.persistence import SqliteLog
from pincompute.kube.errors import ApiError
from pincompute.kube.resource import CONFIGMAPS, NAMESPACES


async def test_reopen_restores_objects_and_keeps_counting(tmp_path: Path) -> None:
    store = await EmbeddedStore.open(path=tmp_path)
    client = store.client()
    await client.create(NAMESPACES, {"metadata": {"name": "ns"}})
    made = await client.create(CONFIGMAPS, {"metadata": {"name": "a", "labels": {"k": "v"}},
                                            "data": {"x": "1"}}, namespace="ns")
    await client.create(CONFIGMAPS, {"metadata": {"name": "b"}}, namespace="ns")
    await client.delete(CONFIGMAPS, "b", namespace="ns")
    last_rv = store.resource_version
    await store.close()

    store = await EmbeddedStore.open(path=tmp_path)
    client = store.client()
    got = await client.get(CONFIGMAPS, "a", namespace="ns")
    assert got == made
    assert [o["metadata"]["name"] for o in (await client.list(CONFIGMAPS)).items] == ["a"]
    # Indexes are rebuilt, and numbering never goes back (the newest write was a delete).
    assert len((await client.list(CONFIGMAPS, label_selector="k=v")).items) == 1
    assert store.resource_version == last_rv
    again = await client.create(CONFIGMAPS, {"metadata": {"name": "c"}}, namespace="ns")
    assert int(again["metadata"]["resourceVersion"]) > last_rv
    await store.close()


async def test_concurrent_writes_share_commits(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    commits: list[int] = []
    original = SqliteLog.commit

    def counting(self: SqliteLog, puts: list, deletes: list, rv: int) -> None:
        commits.append(len(puts) + len(deletes))
        original(self, puts, deletes, rv)

    monkeypatch.setattr(SqliteLog, "commit", counting)
    store = await EmbeddedStore.open(path=tmp_path)
    client = store.client()
    await client.create(NAMESPACES, {"metadata": {"name": "ns"}})
    await asyncio.gather(*(client.create(CONFIGMAPS, {"metadata": {"name": f"cm-{i}"}},
                                         namespace="ns") for i in range(500)))
    await store.close()
    assert sum(commits) == 501
    # Group commit: far fewer transactions than writes.
    assert len(commits) < 100


async def test_watchers_only_see_durable_writes(tmp_path: Path) -> None:
    store = await EmbeddedStore.open(path=tmp_path)
    client = store.client()
    await client.create(NAMESPACES, {"metadata": {"name": "ns"}})
    seen: list[str] = []
    acked: set[str] = set()

    async def watch() -> None:
        async for event in client.watch(CONFIGMAPS, namespace="ns"):
            name = event.object["metadata"]["name"]
            # The commit resolves the writer's future and dispatches the event in the
            # same step; the writer's continuation runs later, so we can only check
            # that the store considers it committed.
            assert int(event.resource_version) <= store.committed_resource_version
            seen.append(name)
            if len(seen) == 50:
                return

    task = asyncio.create_task(watch())
    await asyncio.sleep(0)

    async def write(i: int) -> None:
        await client.create(CONFIGMAPS, {"metadata": {"name": f"cm-{i}"}}, namespace="ns")
        acked.add(f"cm-{i}")

    await asyncio.gather(*(write(i) for i in range(50)))
    await asyncio.wait_for(task, 5)
    assert sorted(seen) == sorted(acked)
    await store.close()


async def test_storage_failure_makes_the_store_refuse_writes(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = await EmbeddedStore.open(path=tmp_path)
    client = store.client()
    await client.create(NAMESPACES, {"metadata": {"name": "ns"}})

    def broken(self: SqliteLog, puts: list, deletes: list, rv: int) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(SqliteLog, "commit", broken)
    with pytest.raises(ApiError, match="disk full"):
        await client.create(CONFIGMAPS, {"metadata": {"name": "a"}}, namespace="ns")
    with pytest.raises(ApiError, match="storage failure"):
        await client.create(CONFIGMAPS, {"metadata": {"name": "b"}}, namespace="ns")
    await store.close()


async def test_cancelled_writer_does_not_cancel_others(tmp_path: Path) -> None:
    store = await EmbeddedStore.open(path=tmp_path)
    client = store.client()
    await client.create(NAMESPACES, {"metadata": {"name": "ns"}})
    first = asyncio.create_task(client.create(CONFIGMAPS, {"metadata": {"name": "a"}},
                                              namespace="ns"))
    second = asyncio.create_task(client.create(CONFIGMAPS, {"metadata": {"name": "b"}},
                                               namespace="ns"))
    await asyncio.sleep(0)
    first.cancel()
    created = await second
    assert created["metadata"]["name"] == "b"
    await store.close()
    store = await EmbeddedStore.open(path=tmp_path)
    names = [o["metadata"]["name"] for o in (await store.client().list(CONFIGMAPS)).items]
    assert names == ["a", "b"]  # the cancelled caller's write was still made durable
    await store.close()


async def test_reads_answer_only_with_committed_state(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    store = await EmbeddedStore.open(path=tmp_path)
    client = store.client()
    await client.create(NAMESPACES, {"metadata": {"name": "ns"}})
    original = SqliteLog.commit

    def slow(self: SqliteLog, puts: list, deletes: list, rv: int) -> None:
        import time
        time.sleep(0.2)
        original(self, puts, deletes, rv)

    monkeypatch.setattr(SqliteLog, "commit", slow)
    write = asyncio.create_task(client.create(CONFIGMAPS, {"metadata": {"name": "a"}},
                                              namespace="ns"))
    await asyncio.sleep(0.01)  # the write is applied in memory, its commit is on the way
    got = await client.get(CONFIGMAPS, "a", namespace="ns")
    assert store.committed_resource_version >= int(got["metadata"]["resourceVersion"])
    listed = await client.list(CONFIGMAPS, namespace="ns")
    assert store.committed_resource_version >= int(listed.resource_version)
    await write
    await store.close()


async def test_a_read_only_store_says_so_once_with_the_reason(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = await EmbeddedStore.open(path=tmp_path)
    client = store.client()
    await client.create(NAMESPACES, {"metadata": {"name": "ns"}})
    heard: list[str] = []
    store.on_read_only(heard.append)
    assert store.healthy and store.read_only_reason is None

    def broken(self: SqliteLog, puts: list, deletes: list, rv: int) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(SqliteLog, "commit", broken)
    for name in ("a", "b"):
        with pytest.raises(ApiError):
            await client.create(CONFIGMAPS, {"metadata": {"name": name}}, namespace="ns")
    assert not store.healthy
    assert len(heard) == 1 and "disk full" in heard[0] and str(tmp_path) in heard[0]
    assert store.read_only_reason == heard[0]
    await store.close()
    monkeypatch.undo()
    store = await EmbeddedStore.open(path=tmp_path)  # reopened with the storage fixed
    assert store.healthy
    await store.client().create(CONFIGMAPS, {"metadata": {"name": "c"}}, namespace="ns")


async def test_the_store_and_its_files_are_private(tmp_path: Path) -> None:
    """The store holds every Secret: directory 0700, store.db/-wal/-shm 0600 (issue 8)."""
    directory = tmp_path / "store"
    directory.mkdir(mode=0o755)
    store = await EmbeddedStore.open(path=directory)
    client = store.client()
    await client.create(NAMESPACES, {"metadata": {"name": "ns"}})
    files = sorted(p.name for p in directory.iterdir())
    assert {"store.db", "store.db-wal", "store.db-shm"} <= set(files)
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    for name in files:
        assert stat.S_IMODE((directory / name).stat().st_mode) == 0o600, name
    await store.close()
    # A store an older version left readable is tightened when opened.
    for name in files:
        with contextlib.suppress(FileNotFoundError):
            os.chmod(directory / name, 0o644)
    os.chmod(directory, 0o755)
    store = await EmbeddedStore.open(path=directory)
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    for name in sorted(p.name for p in directory.iterdir()):
        assert stat.S_IMODE((directory / name).stat().st_mode) == 0o600, name
    await store.close()
