"""Group commit: how the embedded store's writes reach the disk and then the watchers.

Theory of operation
-------------------
The store applies a write to memory at once and hands it here with
:meth:`GroupCommit.record`, which returns a *waiter*: the future the client
awaits before acknowledging the write (None when there is nothing to wait for).

Without a log (a memory-only store) a write is committed as soon as it is made:
its event goes to the watchers at once and there is nothing to wait for.

With a :class:`~.persistence.SqliteLog`, writes are grouped into batches.  While
one batch is being committed on the commit thread, new writes collect in the next
one (group commit, as etcd batches its raft entries).  When a batch is on disk its
waiters resolve and its events are dispatched to watchers, so a watcher never
sees a change that a crash could take back.  Readers see the newest in-memory
state and then wait for the commit of whatever they saw (:meth:`read_barrier`).
Batches commit in order on one thread, so a crash can only lose a suffix of
writes nobody was told about.  After one failed commit the store is read-only:
every later waiter fails, since the record must stay a prefix of what was
acknowledged.  Each write keeps the entry it replaced until its batch commits, so
on that failure ``on_failure`` receives every uncommitted write, newest first,
and the store can put back the entries they replaced: reads then show exactly
what the log holds, what a restart would load.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from pincompute.kube.errors import ApiError

from .collection import Collection, Entry
from .persistence import SqliteLog
from .watch import StoreEvent

log = logging.getLogger(__name__)

Waiter = asyncio.Future[None] | None
Write = tuple[Collection, StoreEvent, Entry | None]
"""A write on its way to the log: its event and the entry it replaced (None: none)."""
# Group commit tuning.  A batch collects the writes made while the previous one
# commits.  When every writer waits on one batch, the loop idles while it commits
# and the disk idles while the loop works; cutting a batch at SPLIT_BATCH_AT
# writes and letting a second one queue behind it overlaps the two.  Below that
# size the fsync dominates, and fewer, larger batches are better.
SPLIT_BATCH_AT = 256
MAX_BATCHES_IN_FLIGHT = 2


class _Batch:
    __slots__ = ("events", "ops", "rv", "waiters")

    def __init__(self) -> None:
        # Last write per (resource, key) wins within a batch; each op also names the
        # resourceVersion of the object's row on disk before the batch (None: none),
        # the row the batch replaces or deletes.
        self.ops: dict[tuple[str, str], tuple[int, bytes | None, int | None]] = {}
        self.events: list[Write] = []
        # One future per waiting caller rather than one shared future: a caller
        # cancelled while waiting then cancels only its own.
        self.waiters: list[asyncio.Future[None]] = []
        self.rv = 0

    def waiter(self, loop: asyncio.AbstractEventLoop) -> asyncio.Future[None]:
        future = loop.create_future()
        self.waiters.append(future)
        return future

    def resolve(self, error: BaseException | None) -> None:
        for future in self.waiters:
            if not future.done():
                if error is None:
                    future.set_result(None)
                else:
                    future.set_exception(error)
                    # Some waiters are dropped unawaited (a delete returns the newest
                    # batch's); the failure is logged once, loudly, by the store.
                    future.exception()


class GroupCommit:
    """The writes of one store on their way to its log (see the module docstring)."""

    def __init__(self, log: SqliteLog | None, *, loop: asyncio.AbstractEventLoop,
                 committed_rv: int = 0,
                 on_failure: Callable[[BaseException, list[Write]], None] | None = None,
                 ) -> None:
        self.log = log
        self.on_failure = on_failure
        """Called once when a commit fails (the store turns read-only), with the error and
        every write not committed, newest first."""
        self.committed_rv = committed_rv
        """The newest resourceVersion that is durable (and dispatched to watchers)."""
        self.failed: BaseException | None = None
        """The commit error that made the store read-only, if any."""
        self._loop = loop
        self._executor = (ThreadPoolExecutor(max_workers=1, thread_name_prefix="store-commit")
                          if log is not None else None)
        self._open_batch: _Batch | None = None
        self._in_flight: deque[_Batch] = deque()
        self._flush_scheduled = False

    def record(self, coll: Collection, event: StoreEvent, key: str, raw: bytes | None,
               before: Entry | None) -> Waiter:
        """Commit a write already applied in memory (``raw`` None: a delete).

        ``before`` is the entry the write replaced or removed (None for a create).
        """
        if self.log is None:
            self.committed_rv = event.rv
            for watcher in tuple(coll.watchers) if coll.watchers else ():
                watcher.offer(event)
            event.dispatched()
            return None
        batch = self._open_batch
        if batch is None:
            batch = self._open_batch = _Batch()
        op = (coll.resource_key, key)
        earlier = batch.ops.get(op)
        # The first write of a key in a batch replaces the row of the version before it
        # (written by an earlier batch, which commits first); later ones in the same
        # batch replace that same row, since only the last write is stored.
        on_disk = earlier[2] if earlier is not None else (
            before.rv if before is not None else None)
        batch.ops[op] = (event.rv, raw, on_disk)
        batch.events.append((coll, event, before))
        batch.rv = event.rv
        if len(batch.ops) >= SPLIT_BATCH_AT and len(self._in_flight) < MAX_BATCHES_IN_FLIGHT:
            waiter = batch.waiter(self._loop)
            self._flush()
            return waiter
        if not self._flush_scheduled and not self._in_flight:
            self._flush_scheduled = True
            self._loop.call_soon(self._flush)
        return batch.waiter(self._loop)

    def read_barrier(self, rv: int) -> Waiter:
        """What a reader who saw the store at ``rv`` must await before answering."""
        if self.committed_rv >= rv:
            return None
        return self.current_waiter()

    def current_waiter(self) -> Waiter:
        """What a caller must await to know everything it has seen so far is durable."""
        if self._open_batch is not None:
            return self._open_batch.waiter(self._loop)
        if self._in_flight:
            return self._in_flight[-1].waiter(self._loop)
        return None

    def _flush(self) -> None:
        self._flush_scheduled = False
        batch = self._open_batch
        if batch is None or len(self._in_flight) >= MAX_BATCHES_IN_FLIGHT:
            return
        self._in_flight.append(batch)
        self._open_batch = None
        puts = [(rkey, key, rv, raw) for (rkey, key), (rv, raw, _) in batch.ops.items()
                if raw is not None]
        deletes = [on_disk for _, _, on_disk in batch.ops.values() if on_disk is not None]
        assert self._executor is not None and self.log is not None
        done = self._loop.run_in_executor(self._executor, self.log.commit, puts, deletes,
                                          batch.rv)

        def committed(future: asyncio.Future[None]) -> None:
            self._committed(batch, future)

        done.add_done_callback(committed)

    def _committed(self, batch: _Batch, done: asyncio.Future[None]) -> None:
        # One commit thread runs batches in submission order, so they finish in it too.
        finished = self._in_flight.popleft()
        assert finished is batch
        error = done.exception() or self.failed
        if error is not None:
            if self.failed is None:
                self.failed = error
                if self.on_failure is not None:
                    # The first failure: this batch and every one after it are lost.
                    lost = [batch, *self._in_flight]
                    if self._open_batch is not None:
                        lost.append(self._open_batch)
                    self.on_failure(error, [write for b in reversed(lost)
                                            for write in reversed(b.events)])
                else:
                    log.error("store commit failed; the store is now read-only: %s", error)
            batch.resolve(ApiError(f"storage failure: {error}"))
            if self._open_batch is not None:
                self._open_batch.resolve(ApiError(f"storage failure: {error}"))
                self._open_batch = None
            return
        self.committed_rv = batch.rv
        for coll, event, _ in batch.events:
            for watcher in tuple(coll.watchers) if coll.watchers else ():
                watcher.offer(event)
            event.dispatched()
        batch.resolve(None)
        if self._open_batch is not None:
            self._flush()

    async def sync(self) -> None:
        """Wait until every write recorded so far is durable."""
        while True:
            waiter = self.current_waiter()
            if waiter is None:
                return
            await waiter

    def close(self) -> None:
        """Stop the commit thread and close the log (after :meth:`sync`)."""
        if self._executor is not None:
            self._executor.shutdown(wait=True)
        if self.log is not None:
            self.log.close()


__all__ = ["MAX_BATCHES_IN_FLIGHT", "SPLIT_BATCH_AT", "GroupCommit", "Waiter", "Write"]
