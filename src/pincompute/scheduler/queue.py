"""The scheduling queue: active, backoff and unschedulable pods, moved by cluster events.

Theory of operation
-------------------
Like kube-scheduler's PriorityQueue, a pending pod is in exactly one of:

* **active** — a heap ordered by the profile's QueueSort key; the scheduler
  pops from it;
* **backoff** — pods that failed recently and wait ``initial_backoff x
  2^(attempts-1)`` seconds (capped at ``max_backoff``) before becoming active
  again; a single timer on the earliest expiry moves them, no polling;
* **unschedulable** — pods no node could take.  Each remembers the plugins
  that rejected it; a cluster event (node added, taint removed, a pod deleted,
  ...) moves back only the pods whose rejecting plugins registered interest in
  that event (:meth:`Framework.events_for`).  As a safety net, pods left there
  longer than ``max_unschedulable`` seconds are moved on a slow timer;
* **gated** — pods a PreEnqueue plugin holds back (scheduling gates), until an
  update lets them in.

A pod that failed while a move request happened *after* it was popped could
have missed the event that would have helped it, so it goes to backoff instead
of unschedulable (kube-scheduler's scheduling-cycle / move-request-cycle rule).

Stale heap entries are skipped on pop (lazy deletion): a pod re-added or
removed leaves its old entry behind, recognised by its sequence number.  The
queue belongs to one event loop; everything but :meth:`pop` is synchronous so
informer handlers can call it inline.
"""

from __future__ import annotations

import asyncio
import heapq
import time
from collections.abc import Callable
from typing import Any

from pincompute.runtime.backoff import exponential_delay

from .framework.interface import QueuedPod
from .framework.waiting import CallLater, Cancellable
from .podinfo import PodInfo

SortKey = Callable[[QueuedPod], tuple[Any, ...]]
EventsFor = Callable[[frozenset[str]], frozenset[str]]
Gate = Callable[[PodInfo], bool]

DEFAULT_INITIAL_BACKOFF = 1.0
DEFAULT_MAX_BACKOFF = 10.0
DEFAULT_MAX_UNSCHEDULABLE = 300.0

ACTIVE = "active"
BACKOFF = "backoff"
UNSCHEDULABLE = "unschedulable"
GATED = "gated"


def _loop_call_later(delay: float, fn: Callable[[], None]) -> Cancellable:
    return asyncio.get_running_loop().call_later(delay, fn)


class SchedulingQueue:
    def __init__(self, *, sort_key: SortKey, events_for: EventsFor,
                 admit: Gate = lambda info: True, clock: Callable[[], float] = time.monotonic,
                 call_later: CallLater = _loop_call_later,
                 initial_backoff: float = DEFAULT_INITIAL_BACKOFF,
                 max_backoff: float = DEFAULT_MAX_BACKOFF,
                 max_unschedulable: float = DEFAULT_MAX_UNSCHEDULABLE) -> None:
        self._sort_key = sort_key
        self._events_for = events_for
        self._admit = admit
        self._clock = clock
        self._call_later = call_later
        self.initial_backoff = initial_backoff
        self.max_backoff = max_backoff
        self.max_unschedulable = max_unschedulable
        self._pods: dict[str, QueuedPod] = {}
        self._where: dict[str, str] = {}
        self._active: list[tuple[tuple[Any, ...], int, QueuedPod]] = []
        self._backoff: list[tuple[float, int, QueuedPod]] = []
        self._unschedulable: dict[str, QueuedPod] = {}
        self._seq = 0
        self._group_first: dict[str, int] = {}
        self._group_count: dict[str, int] = {}
        self.scheduling_cycle = 0
        self.move_request_cycle = -1
        self._wake = asyncio.Event()
        self._backoff_timer: Cancellable | None = None
        self._backoff_timer_at = float("inf")
        self._leftover_timer: Cancellable | None = None
        self._interest: dict[frozenset[str], frozenset[str]] = {}
        # event -> uids of unschedulable pods that event may help (so a move is O(moved))
        self._by_event: dict[str, set[str]] = {}
        self._closed = False

    # -- introspection --

    def __len__(self) -> int:
        return len(self._pods)

    def __contains__(self, uid: object) -> bool:
        return uid in self._pods

    def where(self, uid: str) -> str | None:
        return self._where.get(uid)

    def counts(self) -> dict[str, int]:
        out = {ACTIVE: 0, BACKOFF: 0, UNSCHEDULABLE: 0, GATED: 0}
        for w in self._where.values():
            out[w] += 1
        return out

    def get(self, uid: str) -> QueuedPod | None:
        return self._pods.get(uid)

    def pods(self) -> list[QueuedPod]:
        return list(self._pods.values())

    # -- entering --

    def _enter(self, qp: QueuedPod) -> None:
        self._pods[qp.info.uid] = qp
        group = qp.info.group
        if group:
            self._group_count[group] = self._group_count.get(group, 0) + 1

    def _leave(self, uid: str) -> QueuedPod | None:
        qp = self._pods.pop(uid, None)
        self._where.pop(uid, None)
        if self._unschedulable:
            self._drop_unschedulable(uid)
        if qp is not None and qp.info.group:
            group = qp.info.group
            left = self._group_count.get(group, 1) - 1
            if left > 0:
                self._group_count[group] = left
            else:
                # The group's place in line is kept only while members wait.
                self._group_count.pop(group, None)
                self._group_first.pop(group, None)
        return qp

    def _next_seq(self) -> int:
        self._seq += 1
        return self._seq

    def _push_active(self, qp: QueuedPod) -> None:
        self._seq += 1
        qp.seq = self._seq
        group = qp.info.group
        if group:
            first = self._group_first.get(group)
            if first is None:
                first = self._group_first[group] = qp.seq
            qp.first_seq = first
        else:
            qp.first_seq = qp.seq
        qp.since = self._clock()
        uid = qp.info.uid
        self._where[uid] = ACTIVE
        if self._unschedulable:
            self._drop_unschedulable(uid)
        heapq.heappush(self._active, (self._sort_key(qp), qp.seq, qp))
        self._wake.set()

    def _push_backoff(self, qp: QueuedPod) -> None:
        qp.since = self._clock()
        self._where[qp.info.uid] = BACKOFF
        self._drop_unschedulable(qp.info.uid)
        heapq.heappush(self._backoff, (qp.backoff_until, self._next_seq(), qp))
        self._arm_backoff_timer()

    def _push_unschedulable(self, qp: QueuedPod) -> None:
        uid = qp.info.uid
        qp.since = self._clock()
        self._where[uid] = UNSCHEDULABLE
        self._unschedulable[uid] = qp
        for event in self._interested(qp.rejectors):
            self._by_event.setdefault(event, set()).add(uid)
        self._arm_leftover_timer()

    def _drop_unschedulable(self, uid: str) -> None:
        qp = self._unschedulable.pop(uid, None)
        if qp is not None:
            for event in self._interested(qp.rejectors):
                uids = self._by_event.get(event)
                if uids is not None:
                    uids.discard(uid)

    def _activate_or_backoff(self, qp: QueuedPod) -> None:
        if qp.backoff_until > self._clock():
            self._push_backoff(qp)
        else:
            self._push_active(qp)

    def add(self, info: PodInfo) -> None:
        """A new pending pod (or one not yet known to the queue)."""
        uid = info.uid
        if uid in self._pods:
            self.update(info)
            return
        qp = QueuedPod(info)
        self._enter(qp)
        if not self._admit(info):
            self._where[uid] = GATED
            return
        self._push_active(qp)

    def update(self, info: PodInfo) -> None:
        """A pending pod changed; a relevant change gives an unschedulable pod another try."""
        uid = info.uid
        qp = self._pods.get(uid)
        if qp is None:
            self.add(info)
            return
        old = qp.info
        qp.info = info
        where = self._where.get(uid)
        if where == GATED:
            if self._admit(info):
                self._push_active(qp)
        elif where == ACTIVE:
            if self._sort_key(QueuedPod(old, qp.seq, first_seq=qp.first_seq)) != \
                    self._sort_key(qp):
                self._push_active(qp)  # re-sorted; the old entry goes stale
        elif where == UNSCHEDULABLE and _spec_changed(old, info):
            self._activate_or_backoff(qp)

    def delete(self, uid: str) -> QueuedPod | None:
        return self._leave(uid)

    # -- leaving --

    def pop_nowait(self) -> QueuedPod | None:
        active = self._active
        while active:
            _key, seq, qp = heapq.heappop(active)
            uid = qp.info.uid
            if qp.seq != seq or self._where.get(uid) != ACTIVE or self._pods.get(uid) is not qp:
                continue  # stale: re-sorted, moved or deleted since it was pushed
            self._leave(uid)
            self.scheduling_cycle += 1
            qp.cycle = self.scheduling_cycle
            qp.attempts += 1
            return qp
        return None

    async def pop(self) -> QueuedPod:
        """The next pod to schedule (waits while none is active)."""
        while True:
            qp = self.pop_nowait()
            if qp is not None:
                return qp
            self._wake.clear()
            await self._wake.wait()

    def has_active(self) -> bool:
        return bool(self._active)

    # -- after an attempt --

    def _backoff_for(self, attempts: int) -> float:
        if attempts <= 0:
            return 0.0
        return exponential_delay(attempts - 1, initial=self.initial_backoff,
                                 maximum=self.max_backoff)

    def requeue_unschedulable(self, qp: QueuedPod, rejectors: frozenset[str]) -> None:
        """The pod fit nowhere; park it until a relevant event (or back off if one came)."""
        uid = qp.info.uid
        if uid in self._pods:
            return  # re-added meanwhile (an update arrived): keep the newer entry
        qp.rejectors = rejectors
        qp.backoff_until = self._clock() + self._backoff_for(qp.attempts)
        self._enter(qp)
        if self.move_request_cycle >= qp.cycle:
            self._activate_or_backoff(qp)
        else:
            self._push_unschedulable(qp)

    def requeue_backoff(self, qp: QueuedPod) -> None:
        """The attempt failed for a reason that may pass (an API error): retry after backoff."""
        uid = qp.info.uid
        if uid in self._pods:
            return
        qp.backoff_until = self._clock() + self._backoff_for(qp.attempts)
        self._enter(qp)
        self._push_backoff(qp)

    # -- events --

    def _interested(self, rejectors: frozenset[str]) -> frozenset[str]:
        got = self._interest.get(rejectors)
        if got is None:
            got = self._interest[rejectors] = self._events_for(rejectors)
        return got

    def move(self, event: str) -> int:
        """Move unschedulable pods this event may help; returns how many moved."""
        self.move_request_cycle = self.scheduling_cycle
        uids = self._by_event.get(event)
        if not uids:
            return 0
        # In their former order, so retries keep first-come-first-served.
        moved = sorted((self._unschedulable[uid] for uid in list(uids)), key=lambda q: q.seq)
        for qp in moved:
            self._activate_or_backoff(qp)
        return len(moved)

    def move_all(self) -> int:
        self.move_request_cycle = self.scheduling_cycle
        moved = sorted(self._unschedulable.values(), key=lambda q: q.seq)
        for qp in moved:
            self._activate_or_backoff(qp)
        return len(moved)

    # -- timers --

    def _arm_backoff_timer(self) -> None:
        if not self._backoff or self._closed:
            return
        at = self._backoff[0][0]
        if self._backoff_timer is not None and self._backoff_timer_at <= at:
            return
        if self._backoff_timer is not None:
            self._backoff_timer.cancel()
        self._backoff_timer_at = at
        self._backoff_timer = self._call_later(max(at - self._clock(), 0.0), self.flush_backoff)

    def flush_backoff(self) -> None:
        """Move pods whose backoff has expired to the active queue."""
        self._backoff_timer = None
        self._backoff_timer_at = float("inf")
        now = self._clock()
        heap = self._backoff
        while heap and heap[0][0] <= now:
            _, _, qp = heapq.heappop(heap)
            uid = qp.info.uid
            if self._where.get(uid) == BACKOFF and self._pods.get(uid) is qp:
                self._push_active(qp)
        # Drop stale heads so the timer is armed for a live entry.
        while heap and self._where.get(heap[0][2].info.uid) != BACKOFF:
            heapq.heappop(heap)
        self._arm_backoff_timer()

    def _arm_leftover_timer(self) -> None:
        if self._leftover_timer is None and not self._closed:
            self._leftover_timer = self._call_later(
                max(self.max_unschedulable / 10, 0.01), self.flush_leftover)

    def flush_leftover(self) -> None:
        """Move pods unschedulable for longer than ``max_unschedulable`` (the safety net)."""
        self._leftover_timer = None
        now = self._clock()
        old = [qp for qp in self._unschedulable.values()
               if now - qp.since >= self.max_unschedulable]
        for qp in old:
            self._activate_or_backoff(qp)
        if self._unschedulable:
            self._arm_leftover_timer()

    def close(self) -> None:
        self._closed = True
        for timer in (self._backoff_timer, self._leftover_timer):
            if timer is not None:
                timer.cancel()
        self._backoff_timer = self._leftover_timer = None


def _spec_changed(old: PodInfo, new: PodInfo) -> bool:
    """Whether a pending pod changed in a way that may change the decision (not status only)."""
    a, b = old.obj, new.obj
    if a is b:
        return False
    ma, mb = a.get("metadata") or {}, b.get("metadata") or {}
    return (a.get("spec") != b.get("spec") or ma.get("labels") != mb.get("labels")
            or ma.get("annotations") != mb.get("annotations"))
