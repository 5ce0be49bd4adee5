"""Event expiry: an embedded store forgets each Event an hour after its last write.

Theory of operation
-------------------
Events are advisory and written by whoever watches pods fail, so without an end
they would grow with the pods' misbehaviour, not with the cluster.  The API
server gives each Event an etcd lease of ``--event-ttl`` (one hour by default),
renewed by every write; :class:`EventExpiry` is that lease for the embedded store.

It follows the store's Events from inside the store — a listener among the
Event collection's watchers, told of each write as it commits, which reads the
name and resourceVersion off the stored entry instead of parsing the object as
a watch would — and keeps a heap of *deadlines* — (time of the write + ``ttl``,
the object, its resourceVersion) — one entry per write, so keeping up costs
O(log n) per Event write and nothing per unrelated write.  A
sweep every ``interval`` seconds pops the due entries and deletes each Event
with the entry's resourceVersion as a precondition: an Event written again since
then is not due yet (a later entry holds its new deadline) and the conflict is
ignored.  At start the existing Events are read and each is given what is
left of its ttl since its ``lastTimestamp`` (or creation), so a restart neither
keeps old Events forever nor drops fresh ones.  A store that refuses writes
(read-only after a storage failure) cannot expire anything; the sweep just
retries later.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import heapq
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import orjson

from pincompute.kube.errors import ApiError, Conflict, NotFound
from pincompute.kube.protocol import ADDED, MODIFIED, Preconditions
from pincompute.kube.resource import EVENTS

if TYPE_CHECKING:
    from .store import EmbeddedStore
    from .watch import StoreEvent

log = logging.getLogger(__name__)

DEFAULT_EVENT_TTL = 3600.0
"""Seconds an Event lives after its last write (the API server's ``--event-ttl``)."""

_Deadline = tuple[float, str, str, str]
"""(monotonic deadline, namespace, name, resourceVersion)."""


def _age(obj: dict[str, Any], now: dt.datetime) -> float:
    """Seconds since the Event was last written, from its own timestamps (0 if unknown)."""
    md = obj.get("metadata") or {}
    for stamp in (obj.get("lastTimestamp"), obj.get("eventTime"), md.get("creationTimestamp")):
        if isinstance(stamp, str) and stamp:
            with contextlib.suppress(ValueError):
                t = dt.datetime.fromisoformat(stamp.replace("Z", "+00:00"))
                if t.tzinfo is None:
                    t = t.replace(tzinfo=dt.UTC)
                return max(0.0, (now - t).total_seconds())
    return 0.0


class EventExpiry:
    """Deletes a store's Events ``ttl`` seconds after their last write."""

    def __init__(self, store: EmbeddedStore, *, ttl: float = DEFAULT_EVENT_TTL,
                 interval: float | None = None,
                 clock: Callable[[], float] | None = None) -> None:
        self.store = store
        self.ttl = ttl
        self.clock = clock or asyncio.get_running_loop().time
        """Monotonic seconds (the loop's clock; tests pass their own)."""
        self.interval = interval if interval is not None else max(0.05, min(60.0, ttl / 10))
        self.expired = 0
        """Events deleted so far."""
        self._heap: list[_Deadline] = []
        self._tasks: list[asyncio.Task[None]] = []
        self._listening = False

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        coll = self.store.collections[EVENTS.key]
        # Listen first, then read what is there: both in this step, so no write is missed.
        coll.watchers.add(self)
        self._listening = True
        now = dt.datetime.now(dt.UTC)
        for entry in coll.entries.values():
            obj = orjson.loads(entry.raw)
            self._push(entry.ns, entry.name, entry.rv, age=_age(obj, now))
        self._tasks = [loop.create_task(self._sweep(), name="event expiry sweep")]

    # -- the listener (called by the store as each Event write commits) --

    def offer(self, event: StoreEvent, *, replay: bool = False) -> None:
        if event.type == ADDED or event.type == MODIFIED:
            entry = event.entry
            self._push(entry.ns, entry.name, event.rv)

    def close(self) -> None:
        """The store closed."""
        self._listening = False

    async def stop(self) -> None:
        if self._listening:
            self._listening = False
            coll = self.store.collections.get(EVENTS.key)
            if coll is not None:
                coll.watchers.discard(self)
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def _push(self, namespace: str, name: str, rv: int, *, age: float = 0.0) -> None:
        deadline = self.clock() + max(0.0, self.ttl - age)
        heapq.heappush(self._heap, (deadline, namespace, name, str(rv)))

    async def _sweep(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            await self.expire_due()

    async def expire_due(self) -> int:
        """Delete every Event whose deadline has passed; returns how many were deleted."""
        client = self.store.client()
        now = self.clock()
        deleted = 0
        while self._heap and self._heap[0][0] <= now:
            _, namespace, name, rv = heapq.heappop(self._heap)
            try:
                await client.delete(EVENTS, name, namespace=namespace,
                                    preconditions=Preconditions(resource_version=rv))
                deleted += 1
            except (NotFound, Conflict):
                continue  # gone already, or written again since (a later deadline holds)
            except ApiError as exc:
                # Read-only store: keep the entry for the next sweep.
                heapq.heappush(self._heap, (now + self.interval, namespace, name, rv))
                log.debug("event expiry: %s", exc)
                break
        self.expired += deleted
        return deleted


__all__ = ["DEFAULT_EVENT_TTL", "EventExpiry"]
