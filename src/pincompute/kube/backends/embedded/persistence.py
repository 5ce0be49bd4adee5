"""Durable storage for the embedded store: SQLite in WAL mode with group commit.

The in-memory store is the working copy; this log is the record.  One row per
live object holds its latest JSON; a meta row holds the last resourceVersion so
numbering never goes backwards across restarts even when the newest objects
were deleted.

Rows are keyed by the resourceVersion of the write that made them (unique: every
write takes the next one), not by the object's key.  A write appends its row at
the end of the table and deletes, by that number, the row of the version it
replaced, which the store knows (the entry it replaced carries it).  Creates are
then pure appends: a commit writes the pages its rows fill and little else,
where a ``(resource, key)`` primary key inserted kilobyte rows into random
places of a second B-tree and rewrote a 16 KiB page for nearly every row
(measured here, 120,000 pods in batches of 256: 25,000 rows/s keyed by object,
84,000 rows/s keyed by resourceVersion).  A file written with the older layout
(table ``objects``) is converted, in one transaction, when it is opened.

Group commit, as etcd batches its raft entries: writers do not commit one by
one.  The store collects every write made while the previous commit was on disk
into the next batch, and :meth:`SqliteLog.commit` writes the whole batch in one
transaction with one fsync (``synchronous=FULL``).  Under load batches grow and
the fsync cost is shared; when idle a batch holds a single write and latency is
one commit.  ``commit`` runs on a dedicated thread so the event loop keeps
accepting writes while the disk works.

Opening fails safe, with a :mod:`.errors` type and one line naming the file: the
settings durability rests on (WAL, the requested ``synchronous`` level) are read
back and the open refused if SQLite did not take them, and ``PRAGMA quick_check``
runs before anything is loaded, so a damaged file is reported, not half-read.
"""

from __future__ import annotations

import contextlib
import functools
import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path

from .errors import StoreCorrupt, StoreMisconfigured, StoreUnavailable
from .lock import StoreLock

DB_FILE = "store.db"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS records (
    rv INTEGER PRIMARY KEY,
    resource TEXT NOT NULL,
    key TEXT NOT NULL,
    data BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS meta (
    name TEXT PRIMARY KEY,
    value INTEGER NOT NULL
) WITHOUT ROWID;
"""
#: The layout before rows were keyed by resourceVersion; converted on open.
_OLD_TABLE = "objects"

Put = tuple[str, str, int, bytes]  # resource key, object key, resourceVersion, JSON
Delete = int
"""The resourceVersion of a row that no longer holds its object's latest state."""
#: Rows deleted by one statement (``rv IN (...)``), under SQLite's variable limit.
_DELETES_PER_STATEMENT = 500

SYNCHRONOUS_LEVELS = {"OFF": 0, "NORMAL": 1, "FULL": 2, "EXTRA": 3}
"""``PRAGMA synchronous`` names and the numbers SQLite reads back."""
# SQLite's primary result codes for a damaged file (SQLITE_CORRUPT, SQLITE_NOTADB).
_CORRUPT_CODES = {11, 26}


@functools.lru_cache(maxsize=64)
def _delete_sql(rows: int) -> str:
    return "DELETE FROM records WHERE rv IN (" + ",".join("?" * rows) + ")"


class SqliteLog:
    def __init__(self, directory: Path, *, synchronous: str = "FULL") -> None:
        # The store holds every Secret: its directory is the agent's alone (0700) and its
        # files are created 0600 — SQLite gives the -wal and -shm files the database
        # file's mode — and tightened if an older version left them readable.
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(directory, 0o700)
        self.path = directory / DB_FILE
        # One process at a time (see .lock); held until close().
        self._lock = StoreLock.acquire(directory)
        try:
            self._open(synchronous)
        except BaseException:
            self._lock.release()
            raise
        # After one failed commit, later batches must not land either: the record
        # has to stay a prefix of the acknowledged history.
        self._broken: BaseException | None = None

    def _open(self, synchronous: str) -> None:
        os.close(os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC,
                         0o600))
        for suffix in ("", "-wal", "-shm", "-journal"):
            with contextlib.suppress(FileNotFoundError):
                os.chmod(f"{self.path}{suffix}", 0o600)
        level = SYNCHRONOUS_LEVELS.get(synchronous.upper())
        if level is None:
            raise ValueError(f"synchronous must be one of {', '.join(SYNCHRONOUS_LEVELS)}")
        # The connection is used by the store's single commit thread after load();
        # never by two threads at once.
        self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        try:
            self._configure(synchronous.upper(), level)
        except BaseException as e:
            self._db.close()
            if isinstance(e, sqlite3.DatabaseError):
                raise self.unavailable(e) from None
            raise

    def _configure(self, synchronous: str, level: int) -> None:
        db = self._db
        # Objects are kilobytes each: a rowid table keeps them out of the key
        # B-tree (WITHOUT ROWID measured 3-4x slower here), and large pages cut
        # the page writes per commit.  page_size only applies to a new file.
        db.execute("PRAGMA page_size=16384")
        mode = db.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        db.execute(f"PRAGMA synchronous={synchronous}")
        got = db.execute("PRAGMA synchronous").fetchone()[0]
        if str(mode).lower() != "wal" or got != level:
            raise StoreMisconfigured(
                f"{self.path}: SQLite runs with journal_mode={mode}, synchronous={got} instead "
                f"of wal and {level} ({synchronous}); the store refuses to run without the "
                "durability it promises (is the filesystem one that supports WAL?)")
        problems = [row[0] for row in db.execute("PRAGMA quick_check(5)")]
        if problems != ["ok"]:
            raise StoreCorrupt(self._corrupt_message(" ".join(map(str, problems))))
        db.executescript(_SCHEMA)
        self._convert_old_layout()

    def _convert_old_layout(self) -> None:
        db = self._db
        found = db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?",
                           (_OLD_TABLE,)).fetchone()
        if found is None:
            return
        # One transaction: a crash leaves either layout whole, never half of each.
        db.execute("BEGIN IMMEDIATE")
        try:
            db.execute(f"INSERT INTO records (rv, resource, key, data) "
                       f"SELECT rv, resource, key, data FROM {_OLD_TABLE}")
            db.execute(f"DROP TABLE {_OLD_TABLE}")
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

    def _corrupt_message(self, detail: str) -> str:
        detail = " ".join(detail.split())  # one line, however SQLite words it
        if len(detail) > 160:
            detail = detail[:157] + "..."
        return (f"{self.path} is corrupt ({detail}): restore it from a backup, or move it and "
                f"its -wal/-shm files aside to start an empty store (`sqlite3 {self.path} "
                ".recover` may salvage its objects)")

    def unavailable(self, error: BaseException) -> StoreUnavailable:
        """The typed error for a failure reading the file (corrupt or unreadable)."""
        if isinstance(error, StoreUnavailable):
            return error
        detail = " ".join(str(error).split())[:200]
        if isinstance(error, sqlite3.DatabaseError) and (
                (getattr(error, "sqlite_errorcode", 0) & 0xFF) in _CORRUPT_CODES):
            return StoreCorrupt(self._corrupt_message(detail))
        if isinstance(error, (ValueError, KeyError, TypeError)):  # an undecodable row
            return StoreCorrupt(self._corrupt_message(f"an unreadable object: {detail}"))
        return StoreUnavailable(f"cannot open {self.path}: {detail}")

    def last_resource_version(self) -> int:
        row = self._db.execute("SELECT value FROM meta WHERE name = 'rv'").fetchone()
        top = self._db.execute("SELECT MAX(rv) FROM records").fetchone()
        return max(row[0] if row else 0, top[0] or 0)

    def rows(self) -> Iterator[tuple[str, str, int, bytes]]:
        for rv, rkey, key, data in self._db.execute(
                "SELECT rv, resource, key, data FROM records"):
            yield rkey, key, rv, data

    def commit(self, puts: list[Put], deletes: list[Delete], rv: int) -> None:
        """Write one batch in one transaction: ``puts`` are new rows (one per object
        written), ``deletes`` the resourceVersions of rows they replace or remove."""
        if self._broken is not None:
            raise self._broken
        db = self._db
        try:
            db.execute("BEGIN")
            for start in range(0, len(deletes), _DELETES_PER_STATEMENT):
                chunk = deletes[start:start + _DELETES_PER_STATEMENT]
                db.execute(_delete_sql(len(chunk)), chunk)
            if puts:
                db.executemany("INSERT INTO records (resource, key, rv, data) VALUES (?, ?, ?, ?)",
                               puts)
            db.execute("INSERT OR REPLACE INTO meta (name, value) VALUES ('rv', ?)", (rv,))
            db.execute("COMMIT")
        except BaseException as e:
            self._broken = e
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise

    def close(self) -> None:
        try:
            self._db.close()
        finally:
            self._lock.release()
