"""Watch support for the embedded store: event history and watchers.

Every write produces one :class:`StoreEvent`.  Each resource keeps a
:class:`History` of its recent events, bounded in count and in bytes, so a
watcher can resume from any resourceVersion still inside it; older ones
answer Gone, as etcd does after compaction.  A resource's history starts empty
when a store is opened, so only resourceVersions at or after the open are
resumable.

Fan-out never blocks the writer: :meth:`Watcher.offer` appends to the watcher's
own buffer and wakes it.  A watcher whose buffer passes its bound is closed —
its stream ends and the client re-watches from the last resourceVersion it
saw (or relists on Gone) — so one slow consumer cannot hold events (and memory)
for everyone else.

A watch from resourceVersion "0" (or none) starts with an ADDED event for every
matching object; from a given resourceVersion it replays the committed history
after it (:func:`start_watch`) and then follows new commits.

Objects are parsed from their stored JSON lazily, at most once per event, and
shared by every watcher that receives that event: consumers must not mutate them.
A buffer holds the event itself (or, when a selector turns it into another type
of delivery, a :class:`_Deferred` naming it), not a parsed copy: the
first watcher to take it parses it, the others share that copy, and the event
drops it when the last watcher it was offered to has taken it (or was closed).
So neither the history nor a backlog of buffered events holds parsed objects —
under a burst of writes a backlog of thousands of events held ~10 KB per pod
each, and the peak stayed in the process's arenas after it drained.  A write
whose object nobody else holds (a binding answers with a Status) hands that
object to its event instead (:meth:`StoreEvent.share`), under the same rule: it
is dropped once the watchers it was offered to have taken it.
"""

from __future__ import annotations

import asyncio
from bisect import bisect_right
from collections import deque
from typing import TYPE_CHECKING, Any, Protocol

import orjson

from pincompute.kube.errors import BadRequest, Cause, Gone, ServerTimeout
from pincompute.kube.protocol import DELETED, MODIFIED, WatchEvent
from pincompute.kube.selectors import FieldSelector, LabelSelector

if TYPE_CHECKING:
    from .collection import Collection, Entry


class StoreEvent:
    __slots__ = ("_obj", "_pending", "_prev_obj", "entry", "prev", "rv", "type")

    def __init__(self, type_: str, rv: int, entry: Entry, prev: Entry | None) -> None:
        self.type = type_
        self.rv = rv
        self.entry = entry  # the object after the change (before it, for DELETED)
        self.prev = prev    # the object before a MODIFIED
        self._obj: dict[str, Any] | None = None
        self._prev_obj: dict[str, Any] | None = None
        # Buffered deliveries not yet taken; the parsed objects go when none is left.
        self._pending = 0

    def share(self, obj: dict[str, Any]) -> None:
        """Deliver ``obj`` — the object as written, held by nobody else — unparsed.

        Kept only until the watchers it is offered to have taken it (see
        :meth:`dispatched`), like a parsed copy.
        """
        self._obj = obj

    def dispatched(self) -> None:
        """The event was offered to every watcher: keep no object none of them holds."""
        if self._pending <= 0:
            self._obj = None
            self._prev_obj = None

    def _taken(self) -> None:
        self._pending -= 1
        if self._pending <= 0:
            self._pending = 0
            self._obj = None
            self._prev_obj = None

    @property
    def prev_object(self) -> dict[str, Any]:
        """The object before the change, at this event's resourceVersion.

        A watcher whose selector the object just left is told it was deleted, and
        shown the last state it matched — as the API server does.
        """
        if self._prev_obj is None:
            assert self.prev is not None
            obj = orjson.loads(self.prev.raw)
            obj["metadata"]["resourceVersion"] = str(self.rv)
            self._prev_obj = obj
        return self._prev_obj

    @property
    def object(self) -> dict[str, Any]:
        if self._obj is None:
            obj = orjson.loads(self.entry.raw)
            if self.type == DELETED:
                # A deleted object is reported at the resourceVersion of its deletion.
                obj["metadata"]["resourceVersion"] = str(self.rv)
            self._obj = obj
        return self._obj


HISTORY_MAX_BYTES = 64 * 2**20
"""The most serialized object bytes one resource's history retains (before trimming to half)."""


class History:
    """The recent events of one resource, in resourceVersion order.

    Bounded twice: by ``capacity`` events and by ``max_bytes`` of the objects the
    events hold (their stored JSON; an event keeps the object's old version alive
    after the collection has moved on), so large objects cannot make a history of
    ``capacity`` events hold gigabytes.  Each bound trims in bulk — to
    ``capacity`` events, to half of ``max_bytes`` — so appends stay O(1) amortized.
    """

    def __init__(self, capacity: int, *, floor: int,
                 max_bytes: int = HISTORY_MAX_BYTES) -> None:
        self.capacity = capacity
        self.max_bytes = max_bytes
        # Every event with rv > floor is retained; older ones are gone.
        self.floor = floor
        self._rvs: list[int] = []
        self._events: list[StoreEvent] = []
        self._sizes: list[int] = []
        self.bytes = 0

    def append(self, event: StoreEvent) -> None:
        size = len(event.entry.raw) + (len(event.prev.raw) if event.prev is not None else 0)
        self._rvs.append(event.rv)
        self._events.append(event)
        self._sizes.append(size)
        self.bytes += size
        if len(self._events) > 2 * self.capacity:
            self._drop(len(self._events) - self.capacity)
        if self.bytes > self.max_bytes:
            drop, freed, keep = 0, 0, self.bytes - self.max_bytes // 2
            while freed < keep and drop < len(self._sizes) - 1:  # the newest always stays
                freed += self._sizes[drop]
                drop += 1
            self._drop(drop)

    def _drop(self, drop: int) -> None:
        if drop <= 0:
            return
        self.floor = self._rvs[drop - 1]
        self.bytes -= sum(self._sizes[:drop])
        del self._rvs[:drop]
        del self._events[:drop]
        del self._sizes[:drop]

    def truncate(self, rv: int) -> None:
        """Forget the events after ``rv`` (writes that never committed)."""
        keep = bisect_right(self._rvs, rv)
        self.bytes -= sum(self._sizes[keep:])
        del self._rvs[keep:]
        del self._events[keep:]
        del self._sizes[keep:]
        # Trimmed past ``rv``: nothing after it remains, and nothing more will come.
        self.floor = min(self.floor, rv)

    def since(self, rv: int) -> list[StoreEvent] | None:
        """Events after ``rv``; None if some of them are no longer retained."""
        if rv < self.floor:
            return None
        return self._events[bisect_right(self._rvs, rv):]


class Listener(Protocol):
    """What a collection's watchers are to the store: told of each committed write."""

    def offer(self, event: StoreEvent, *, replay: bool = False) -> None: ...

    def close(self) -> None: ...


class _Deferred:
    """An event in a watcher's buffer, parsed when the watcher takes it."""

    __slots__ = ("event", "prev", "type")

    def __init__(self, type_: str, event: StoreEvent, *, prev: bool) -> None:
        self.type = type_
        self.event = event
        self.prev = prev  # deliver the object before the change (it left the selector)
        event._pending += 1

    @property
    def object(self) -> dict[str, Any]:
        """The object this delivery carries (a peek: it stays in the buffer)."""
        return self.event.prev_object if self.prev else self.event.object

    def resolve(self) -> WatchEvent:
        event = self.event
        obj = event.prev_object if self.prev else event.object
        event._taken()
        return WatchEvent(self.type, obj)


class Watcher:
    __slots__ = ("allow_bookmarks", "buffer", "closed", "fields", "labels", "limit",
                 "namespace", "start_rv", "wake")

    def __init__(self, *, namespace: str | None, labels: LabelSelector, fields: FieldSelector,
                 start_rv: int, limit: int, allow_bookmarks: bool) -> None:
        self.namespace = namespace
        self.labels = labels
        self.fields = fields
        self.start_rv = start_rv
        self.limit = limit
        self.allow_bookmarks = allow_bookmarks
        # A StoreEvent stands for itself (the usual case: delivered as it happened).
        self.buffer: deque[WatchEvent | StoreEvent | _Deferred] = deque()
        self.wake = asyncio.Event()
        self.closed = False

    def matches(self, entry: Entry) -> bool:
        if self.namespace is not None and entry.ns != self.namespace:
            return False
        if self.labels.requirements and not self.labels.matches(entry.labels):
            return False
        return self.fields.empty or entry.match_fields(self.fields)

    def offer(self, event: StoreEvent, *, replay: bool = False) -> None:
        """Deliver ``event`` if this watcher wants it.

        Replayed history (``replay``) does not count against the buffer bound:
        a resumed watch must always make progress, or an informer that fell
        behind would be dropped again before it received anything.
        """
        if self.closed or event.rv <= self.start_rv:
            return
        now = self.matches(event.entry)
        if event.type == MODIFIED:
            before = self.matches(event.prev) if event.prev is not None else now
            if now and not before:
                self._push(_Deferred("ADDED", event, prev=False), replay)
            elif before and not now:
                # Left the selector: to this watcher the object is gone.
                self._push(_Deferred(DELETED, event, prev=True), replay)
            elif now:
                event._pending += 1
                self._push(event, replay)
        elif now:
            event._pending += 1
            self._push(event, replay)

    def push_initial(self, obj: dict[str, Any]) -> None:
        self.buffer.append(WatchEvent("ADDED", obj))

    def _push(self, event: WatchEvent | StoreEvent | _Deferred, replay: bool = False) -> None:
        self.buffer.append(event)
        if not replay and len(self.buffer) > self.limit:
            self.close()
        self.wake.set()

    def take(self) -> WatchEvent:
        """The next buffered event (the buffer must not be empty)."""
        item = self.buffer.popleft()
        if isinstance(item, StoreEvent):
            obj = item.object
            item._taken()
            return WatchEvent(item.type, obj)
        if isinstance(item, _Deferred):
            return item.resolve()
        return item

    def close(self) -> None:
        self.closed = True
        for item in self.buffer:
            if isinstance(item, _Deferred):
                item.event._taken()
            elif isinstance(item, StoreEvent):
                item._taken()
        self.buffer.clear()
        self.wake.set()


def start_watch(coll: Collection, *, namespace: str | None, labels: LabelSelector,
                fields: FieldSelector, resource_version: str | None, current_rv: int,
                committed_rv: int, limit: int, allow_bookmarks: bool) -> Watcher:
    """A watcher on ``coll`` primed with what precedes the live events (see above)."""
    if not resource_version or resource_version == "0":
        watcher = Watcher(namespace=namespace, labels=labels, fields=fields,
                          start_rv=current_rv, limit=limit, allow_bookmarks=allow_bookmarks)
        loads = orjson.loads
        for entry in coll.scan(namespace=namespace, labels=labels, fields=fields, after=None):
            watcher.push_initial(loads(entry.raw))
        return watcher
    try:
        start = int(resource_version)
    except ValueError as e:
        raise BadRequest(f"invalid resourceVersion {resource_version!r}",
                         causes=[Cause("resourceVersion", "must be an integer")]) from e
    if start > current_rv:
        raise ServerTimeout(f"Too large resource version: {start}, current: {current_rv}",
                            causes=[Cause("resourceVersion", "is in the future")])
    events = coll.history.since(start)
    if events is None:
        raise Gone(f"too old resource version: {start} ({coll.history.floor})")
    watcher = Watcher(namespace=namespace, labels=labels, fields=fields, start_rv=start,
                      limit=limit, allow_bookmarks=allow_bookmarks)
    for event in events:
        if event.rv > committed_rv:
            break
        watcher.offer(event, replay=True)
    return watcher
