import asyncio
import contextlib
import os
import stat
from pathlib import Path

import pytest

from pincompute.kube.backends.embedded import EmbeddedStore, StoreCorrupt, StoreMisconfigured
from pincompute.kube.backends.embedded.persistence import SqliteLog
from pincompute.kube.errors import ApiError, NotFound
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
    while True:  # (on a loaded machine the write may not have been applied yet)
        try:
            got = await client.get(CONFIGMAPS, "a", namespace="ns")
            break
        except NotFound:
            await asyncio.sleep(0.01)
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


async def _filled(directory: Path, count: int = 300) -> None:
    store = await EmbeddedStore.open(path=directory)
    client = store.client()
    await client.create(NAMESPACES, {"metadata": {"name": "ns"}})
    await asyncio.gather(*(client.create(CONFIGMAPS, {"metadata": {"name": f"cm-{i}"},
                                                      "data": {"x": "y" * 1000}},
                                         namespace="ns") for i in range(count)))
    await store.close()  # the last close checkpoints the WAL into store.db


def corrupt_middle(db: Path) -> None:
    """Overwrite some pages in the middle of the file with garbage."""
    size = db.stat().st_size
    assert size > 8 * 16384, size
    with db.open("r+b") as f:
        f.seek(size // 2 - 2 * 16384)
        f.write(bytes(range(256)) * (4 * 16384 // 256))


async def test_a_corrupt_store_is_refused_with_one_line_naming_the_file(tmp_path: Path) -> None:
    await _filled(tmp_path)
    db = tmp_path / "store.db"
    corrupt_middle(db)
    with pytest.raises(StoreCorrupt) as refused:
        await EmbeddedStore.open(path=tmp_path)
    message = str(refused.value)
    assert "\n" not in message and str(db) in message
    assert "backup" in message and "aside" in message
    # The lock was released: the file can be moved aside and a new store opened.
    for name in ("store.db", "store.db-wal", "store.db-shm"):
        with contextlib.suppress(FileNotFoundError):
            (tmp_path / name).rename(tmp_path / f"{name}.corrupt")
    store = await EmbeddedStore.open(path=tmp_path)
    assert store.object_count() == 0
    await store.close()


async def test_a_file_that_is_not_a_database_is_refused_as_corrupt(tmp_path: Path) -> None:
    (tmp_path / "store.db").write_bytes(b"not a database" * 2000)
    with pytest.raises(StoreCorrupt, match=r"store\.db is corrupt"):
        await EmbeddedStore.open(path=tmp_path)


async def test_the_store_refuses_to_run_without_wal(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """The pragmas are read back: SQLite really left in another journal mode is refused."""
    import sqlite3

    class NoWal(sqlite3.Connection):
        def execute(self, sql: str, *args: object) -> sqlite3.Cursor:  # type: ignore[override]
            if sql == "PRAGMA journal_mode=WAL":  # as on a filesystem without shared memory
                sql = "PRAGMA journal_mode=TRUNCATE"
            return super().execute(sql, *args)

    connect = sqlite3.connect
    monkeypatch.setattr(sqlite3, "connect", lambda *a, **k: connect(*a, **k, factory=NoWal))
    with pytest.raises(StoreMisconfigured, match="journal_mode=truncate"):
        await EmbeddedStore.open(path=tmp_path)
    monkeypatch.undo()
    await (await EmbeddedStore.open(path=tmp_path)).close()  # and the lock was released


async def test_synchronous_is_one_of_sqlites_levels(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="synchronous must be one of"):
        await EmbeddedStore.open(path=tmp_path, synchronous="FULL; DROP TABLE objects")
    store = await EmbeddedStore.open(path=tmp_path, synchronous="normal")
    assert store._commit.log is not None
    assert store._commit.log._db.execute("PRAGMA synchronous").fetchone()[0] == 1
    await store.close()


async def test_rows_follow_updates_and_deletes_within_and_across_batches(tmp_path: Path) -> None:
    """Each row is keyed by its write's resourceVersion; every write must remove the row of
    the version it replaced, or a reopen would load stale or duplicate objects."""
    import sqlite3

    store = await EmbeddedStore.open(path=tmp_path)
    client = store.client()
    await client.create(NAMESPACES, {"metadata": {"name": "ns"}})
    await client.create(CONFIGMAPS, {"metadata": {"name": "kept"}}, namespace="ns")
    await client.create(CONFIGMAPS, {"metadata": {"name": "gone"}}, namespace="ns")

    async def churn(i: int) -> None:
        # Several writes of one key land in one batch (they are not awaited one by one).
        name = f"cm-{i}"
        await client.create(CONFIGMAPS, {"metadata": {"name": name}}, namespace="ns")
        await asyncio.gather(
            client.patch(CONFIGMAPS, name, {"data": {"v": "1"}}, namespace="ns"),
            client.patch(CONFIGMAPS, name, {"data": {"w": "2"}}, namespace="ns"))
        if i % 2:
            await client.delete(CONFIGMAPS, name, namespace="ns")
            await client.create(CONFIGMAPS, {"metadata": {"name": name}, "data": {"new": "y"}},
                                namespace="ns")

    # One batch holding several writes of each key, then batches across keys.
    await asyncio.gather(client.patch(CONFIGMAPS, "kept", {"data": {"a": "1"}}, namespace="ns"),
                         client.patch(CONFIGMAPS, "kept", {"data": {"b": "2"}}, namespace="ns"),
                         client.delete(CONFIGMAPS, "gone", namespace="ns"))
    await asyncio.gather(*(churn(i) for i in range(40)))
    expected = {o["metadata"]["name"]: o for o in (await client.list(CONFIGMAPS)).items}
    last_rv = store.resource_version
    await store.close()

    db = sqlite3.connect(tmp_path / "store.db")
    rows = db.execute("SELECT resource, key FROM records").fetchall()
    db.close()
    assert len(rows) == len(set(rows)) == len(expected) + 1  # + the namespace
    store = await EmbeddedStore.open(path=tmp_path)
    try:
        got = {o["metadata"]["name"]: o for o in (await store.client().list(CONFIGMAPS)).items}
        assert got == expected
        assert got["kept"]["data"] == {"a": "1", "b": "2"}
        assert "gone" not in got and got["cm-1"]["data"] == {"new": "y"}
        assert store.resource_version == last_rv
    finally:
        await store.close()


async def test_a_store_written_in_the_older_layout_is_converted_on_open(tmp_path: Path) -> None:
    """Files written before rows were keyed by resourceVersion (one row per object, keyed by
    resource and key) open with every object, and are converted."""
    import sqlite3

    import orjson

    objects = [
        ("core/v1/namespaces", "ns", 5, {"apiVersion": "v1", "kind": "Namespace",
                                  "metadata": {"name": "ns", "uid": "u-ns",
                                               "resourceVersion": "5"}}),
        ("core/v1/configmaps", "ns/a", 9, {
            "apiVersion": "v1", "kind": "ConfigMap", "data": {"x": "1"},
            "metadata": {"name": "a", "namespace": "ns", "uid": "u-a", "resourceVersion": "9"}}),
    ]
    db = sqlite3.connect(tmp_path / "store.db", isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.executescript("""
        CREATE TABLE objects (resource TEXT NOT NULL, key TEXT NOT NULL, rv INTEGER NOT NULL,
                              data BLOB NOT NULL, PRIMARY KEY (resource, key));
        CREATE TABLE meta (name TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;
    """)
    db.executemany("INSERT INTO objects VALUES (?, ?, ?, ?)",
                   [(r, k, rv, orjson.dumps(o)) for r, k, rv, o in objects])
    db.execute("INSERT INTO meta VALUES ('rv', 12)")
    db.close()
    os.chmod(tmp_path / "store.db", 0o600)

    store = await EmbeddedStore.open(path=tmp_path)
    try:
        client = store.client()
        got = await client.get(CONFIGMAPS, "a", namespace="ns")
        assert got["data"] == {"x": "1"} and got["metadata"]["resourceVersion"] == "9"
        assert store.resource_version == 12
        await client.patch(CONFIGMAPS, "a", {"data": {"x": "2"}}, namespace="ns")
    finally:
        await store.close()
    db = sqlite3.connect(tmp_path / "store.db")
    tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    rows = db.execute("SELECT rv, key FROM records ORDER BY rv").fetchall()
    db.close()
    assert "objects" not in tables
    assert rows == [(5, "ns"), (13, "ns/a")]
