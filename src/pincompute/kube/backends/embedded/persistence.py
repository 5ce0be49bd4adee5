"""Durable storage for the embedded store: SQLite in WAL mode with group commit.

The in-memory store is the working copy; this log is the record.  One row per
live object holds its latest JSON; a meta row holds the last resourceVersion so
numbering never goes backwards across restarts even when the newest objects
were deleted.

Group commit, as etcd batches its raft entries: writers do not commit one by
one.  The store collects every write made while the previous commit was on disk
into the next batch, and :meth:`SqliteLog.commit` writes the whole batch in one
transaction with one fsync (``synchronous=FULL``).  Under load batches grow and
the fsync cost is shared; when idle a batch holds a single write and latency is
one commit.  ``commit`` runs on a dedicated thread so the event loop keeps
accepting writes while the disk works.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path

DB_FILE = "store.db"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS objects (
    resource TEXT NOT NULL,
    key TEXT NOT NULL,
    rv INTEGER NOT NULL,
    data BLOB NOT NULL,
    PRIMARY KEY (resource, key)
);
CREATE TABLE IF NOT EXISTS meta (
    name TEXT PRIMARY KEY,
    value INTEGER NOT NULL
) WITHOUT ROWID;
"""

Put = tuple[str, str, int, bytes]  # resource key, object key, resourceVersion, JSON
Delete = tuple[str, str]


class SqliteLog:
    def __init__(self, directory: Path, *, synchronous: str = "FULL") -> None:
        # The store holds every Secret: its directory is the agent's alone (0700) and its
        # files are created 0600 — SQLite gives the -wal and -shm files the database
        # file's mode — and tightened if an older version left them readable.
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(directory, 0o700)
        self.path = directory / DB_FILE
        os.close(os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC,
                         0o600))
        for suffix in ("", "-wal", "-shm", "-journal"):
            with contextlib.suppress(FileNotFoundError):
                os.chmod(f"{self.path}{suffix}", 0o600)
        # The connection is used by the store's single commit thread after load();
        # never by two threads at once.
        self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        # Objects are kilobytes each: a rowid table keeps them out of the key
        # B-tree (WITHOUT ROWID measured 3-4x slower here), and large pages cut
        # the page writes per commit.  page_size only applies to a new file.
        self._db.execute("PRAGMA page_size=16384")
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(f"PRAGMA synchronous={synchronous}")
        self._db.executescript(_SCHEMA)
        # After one failed commit, later batches must not land either: the record
        # has to stay a prefix of the acknowledged history.
        self._broken: BaseException | None = None

    def last_resource_version(self) -> int:
        row = self._db.execute("SELECT value FROM meta WHERE name = 'rv'").fetchone()
        top = self._db.execute("SELECT MAX(rv) FROM objects").fetchone()
        return max(row[0] if row else 0, top[0] or 0)

    def rows(self) -> Iterator[tuple[str, str, int, bytes]]:
        yield from self._db.execute("SELECT resource, key, rv, data FROM objects")

    def commit(self, puts: list[Put], deletes: list[Delete], rv: int) -> None:
        if self._broken is not None:
            raise self._broken
        db = self._db
        try:
            db.execute("BEGIN")
            if deletes:
                db.executemany("DELETE FROM objects WHERE resource = ? AND key = ?", deletes)
            if puts:
                db.executemany(
                    "INSERT OR REPLACE INTO objects (resource, key, rv, data) VALUES (?, ?, ?, ?)",
                    puts)
            db.execute("INSERT OR REPLACE INTO meta (name, value) VALUES ('rv', ?)", (rv,))
            db.execute("COMMIT")
        except BaseException as e:
            self._broken = e
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise

    def close(self) -> None:
        self._db.close()
