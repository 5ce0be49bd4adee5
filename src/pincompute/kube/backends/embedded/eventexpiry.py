"""Event expiry: an embedded store forgets each Event an hour after its last write.

Theory of operation
-------------------
Events are advisory and written by whoever watches pods fail, so without an end
they would grow with the pods' misbehaviour, not with the cluster.  The API
server gives each Event an etcd lease of ``--event-ttl`` (one hour by default),
renewed by every write; :class:`EventExpiry` is that lease for the embedded store.

It watches the store's Events and keeps a heap of *deadlines* — (time of the
write + ``ttl``, the object, its resourceVersion) — one entry per write, so
keeping up costs O(log n) per Event write and nothing per unrelated write.  A
sweep every ``interval`` seconds pops the due entries and deletes each Event
with the entry's resourceVersion as a precondition: an Event written again since
then is not due yet (a later entry holds its new deadline) and the conflict is
ignored.  At start the existing Events are listed and each is given what is
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

from pincompute.kube.errors import ApiError, Conflict, Gone, NotFound
from pincompute.kube.protocol import ADDED, MODIFIED, Preconditions
from pincompute.kube.resource import EVENTS

if TYPE_CHECKING:
    from .store import EmbeddedStore

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

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._watch(), name="event expiry watch"),
                       loop.create_task(self._sweep(), name="event expiry sweep")]

    async def stop(self) -> None:
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def _push(self, obj: dict[str, Any], *, age: float = 0.0) -> None:
        md = obj.get("metadata") or {}
        deadline = self.clock() + max(0.0, self.ttl - age)
        heapq.heappush(self._heap, (deadline, md.get("namespace") or "", md.get("name", ""),
                                    str(md.get("resourceVersion", ""))))

    async def _watch(self) -> None:
        client = self.store.client()
        while True:
            try:
                listed = await client.list(EVENTS)
                now = dt.datetime.now(dt.UTC)
                for obj in listed.items:
                    self._push(obj, age=_age(obj, now))
                async for event in client.watch(EVENTS, resource_version=listed.resource_version,
                                                allow_bookmarks=False):
                    if event.type in (ADDED, MODIFIED):
                        self._push(event.object)
            except Gone:
                continue  # fell behind the history: list again (duplicates are harmless)
            except ApiError as exc:
                log.warning("event expiry: %s; retrying", exc)
            await asyncio.sleep(self.interval)

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
