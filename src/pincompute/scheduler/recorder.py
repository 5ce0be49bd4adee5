"""What the scheduler tells users: Events and pod status, written off the decision path.

Theory of operation
-------------------
Decisions are synchronous and must not wait for the API, so everything the
scheduler *reports* — ``Scheduled`` and ``FailedScheduling`` events, the
``PodScheduled`` condition with the unschedulable message, a preemptor's
``status.nominatedNodeName`` — is queued here and written by a small pool of
worker tasks.

* **Events** are aggregated as the Kubernetes event recorder does: the same
  (object, reason, message) within ``aggregate_window`` seconds bumps ``count``
  and ``lastTimestamp`` of the existing Event instead of creating another, so a
  pod retried a hundred times costs one Event.
* **Status writes** are coalesced per pod and field (a condition type, the
  nomination): only the latest pending one is written, and a condition equal
  to what the pod already shows is not written at all (no update storms from
  retries).  Writes are merge patches of the status
  subresource; a pod that vanished meanwhile is not an error.
* **Bindings come first.**  Events are written by a pool of ``event_batch``
  writers, only while the scheduler is not busy (``busy()``: pods waiting to be
  decided or bound, checked before each write); the scheduler calls
  :meth:`Recorder.kick` when it goes idle.  Writers are woken one at a time: a
  write the store answers at once lets one writer go on to the next event (it
  yields to the loop every ``event_batch`` writes), and only writes that wait
  (a group commit) wake further writers, so those run concurrently.  Like the
  Kubernetes event broadcaster's bounded queue, at most ``max_pending`` events
  wait; beyond that they are dropped and counted, so reporting can never slow
  scheduling down or grow memory without bound.
  Status writes are never dropped (one per pod and field at most) and are not
  deferred.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable
from typing import Any

from pincompute.kube.errors import ApiError, NotFound
from pincompute.kube.objects import now
from pincompute.kube.protocol import KubeClient
from pincompute.kube.resource import EVENTS, PODS
from pincompute.runtime.logging import get_logger

from . import labels as L
from .podinfo import PodInfo

_log = get_logger(__name__)

AGGREGATE_WINDOW = 600.0
AGGREGATE_KEYS = 4096

Write = Callable[[], Awaitable[Any]]
# A queued event: (pod, type, reason, message).  A tuple rather than a closure: thousands
# can wait while the scheduler is busy, and a closure is six objects for the collector.
QueuedEvent = tuple[PodInfo, str, str, str]


def condition_patch(obj: dict[str, Any], type_: str, status: str, reason: str,
                    message: str) -> list[dict[str, Any]] | None:
    """The pod's conditions with ``type_`` set, or None if it already says exactly that."""
    conditions = list((obj.get("status") or {}).get("conditions") or ())
    for i, c in enumerate(conditions):
        if c.get("type") == type_:
            if c.get("status") == status and c.get("reason") == reason and \
                    c.get("message") == message:
                return None
            changed = dict(c, status=status, reason=reason, message=message)
            if c.get("status") != status:
                changed["lastTransitionTime"] = now()
            conditions[i] = changed
            return conditions
    conditions.append({"type": type_, "status": status, "reason": reason, "message": message,
                       "lastTransitionTime": now()})
    return conditions


class Recorder:
    """Queues events and status writes; worker tasks write them (see module doc)."""

    def __init__(self, client: KubeClient, *, component: str = L.COMPONENT,
                 workers: int = 16, event_batch: int = 64, max_pending: int = 50_000,
                 aggregate_window: float = AGGREGATE_WINDOW,
                 busy: Callable[[], bool] = lambda: False,
                 latest: Callable[[PodInfo], dict[str, Any] | None] = lambda pod: pod.obj,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.client = client
        self.component = component
        self.workers = workers
        self.event_batch = event_batch
        self.max_pending = max_pending
        self.aggregate_window = aggregate_window
        self.busy = busy
        self.latest = latest
        self.clock = clock
        self._events: deque[QueuedEvent] = deque()
        # (pod uid, what) -> the latest write of that part of the pod's status
        self._status: OrderedDict[tuple[str, str], Write] = OrderedDict()
        self._idle_workers: deque[asyncio.Future[None]] = deque()
        self._idle_writers: deque[asyncio.Future[None]] = deque()
        self._writers_waking = 0    # event writers woken but not yet running
        self._writing_events = 0    # event writes awaiting the API
        self._done = asyncio.Event()
        self._done.set()
        self._busy = 0
        self._names = itertools.count(1)
        # (uid, reason, message) -> [event name, namespace, count, first seen]
        self._recent: OrderedDict[tuple[str, str, str], list[Any]] = OrderedDict()
        self.dropped = 0
        self.written = 0
        self.failed = 0

    # -- what callers queue --

    def event(self, pod: PodInfo, type_: str, reason: str, message: str) -> None:
        if len(self._events) >= self.max_pending:
            self.dropped += 1
            return
        self._events.append((pod, type_, reason, message))
        self._done.clear()
        if not self._writers_waking and not self.busy():
            self._wake_writer()

    def pod_condition(self, pod: PodInfo, *, status: str, reason: str, message: str,
                      type_: str = L.POD_SCHEDULED) -> None:
        if condition_patch(self.latest(pod) or pod.obj, type_, status, reason, message) is None:
            return
        self._queue_status(pod, f"condition {type_}", lambda: self._write_condition(
            pod, type_, status, reason, message))

    def nominate(self, pod: PodInfo, node: str) -> None:
        self._queue_status(pod, "nomination", lambda: self._patch_status(
            pod, {"nominatedNodeName": node or None}))

    def _queue_status(self, pod: PodInfo, what: str, write: Write) -> None:
        key = (pod.uid, what)
        self._status[key] = write
        self._status.move_to_end(key)
        self._done.clear()
        while self._idle_workers:
            waiter = self._idle_workers.popleft()
            if not waiter.done():
                waiter.set_result(None)
                break

    def kick(self) -> None:
        """The scheduler went idle: deferred events may be written now."""
        if self._events and not self._writers_waking:
            self._wake_writer()

    def _wake_writer(self) -> None:
        while self._idle_writers:
            waiter = self._idle_writers.popleft()
            if not waiter.done():
                waiter.set_result(None)
                self._writers_waking += 1
                return

    @property
    def pending(self) -> int:
        return len(self._events) + len(self._status)

    def _check_done(self) -> None:
        if not self._events and not self._status and not self._busy:
            self._done.set()

    async def flush(self) -> None:
        """Wait until everything queued so far is written (tests, benchmarks, shutdown)."""
        self.kick()
        while self.pending or self._busy:
            if self._events and not self._writers_waking and not self._writing_events:
                self._wake_writer()
            await self._done.wait()

    # -- writers --

    async def run(self) -> None:
        await asyncio.gather(*(self._event_writer() for _ in range(self.event_batch)),
                             *(self._status_worker() for _ in range(self.workers)))

    async def _status_worker(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            if not self._status:
                waiter = loop.create_future()
                self._idle_workers.append(waiter)
                await waiter
                continue
            _, write = self._status.popitem(last=False)
            await self._write(write())

    async def _event_writer(self) -> None:
        loop = asyncio.get_running_loop()
        events = self._events
        run = 0
        while True:
            if not events or self.busy():
                self._check_done()
                waiter = loop.create_future()
                self._idle_writers.append(waiter)
                try:
                    await waiter
                finally:
                    if waiter.done() and not waiter.cancelled():
                        self._writers_waking -= 1
                run = 0
                continue
            pod, type_, reason, message = events.popleft()
            if events and (self._writing_events or not self._writers_waking):
                self._wake_writer()
            self._writing_events += 1
            try:
                await self._write(self._write_event(pod, type_, reason, message))
            finally:
                self._writing_events -= 1
            run += 1
            if run >= self.event_batch:
                run = 0
                await asyncio.sleep(0)  # writes answered at once must not hold the loop

    async def _write(self, write: Awaitable[Any]) -> None:
        self._busy += 1
        try:
            await write
            self.written += 1
        except NotFound:
            pass  # the pod went away before its event or condition was written
        except ApiError as e:
            self.failed += 1
            _log.warning("scheduler report write failed: %s", e)
        except Exception:
            self.failed += 1
            _log.exception("scheduler report write failed")
        finally:
            self._busy -= 1
            self._check_done()

    async def _write_condition(self, pod: PodInfo, type_: str, status: str, reason: str,
                               message: str) -> None:
        # Against the newest view of the pod, so other conditions written meanwhile stay.
        current = self.latest(pod)
        if current is None or (current.get("metadata") or {}).get("uid") != pod.uid:
            return  # gone, or a new pod under the same name
        conditions = condition_patch(current, type_, status, reason, message)
        if conditions is not None:
            await self._patch_status(pod, {"conditions": conditions})

    async def _patch_status(self, pod: PodInfo, status: dict[str, Any]) -> None:
        await self.client.patch(PODS, pod.name, {"status": status}, namespace=pod.namespace,
                                subresource="status")

    async def _write_event(self, pod: PodInfo, type_: str, reason: str, message: str) -> None:
        key = (pod.uid, reason, message)
        t = self.clock()
        stamp = now()
        recent = self._recent.get(key)
        if recent is not None and t - recent[3] <= self.aggregate_window:
            recent[2] += 1
            self._recent.move_to_end(key)
            try:
                await self.client.patch(EVENTS, recent[0], {
                    "count": recent[2], "lastTimestamp": stamp}, namespace=recent[1])
                return
            except NotFound:
                pass  # expired or deleted: create a new one below
        name = f"{pod.name}.{time.time_ns():x}{next(self._names):x}"
        md = pod.obj.get("metadata") or {}
        await self.client.create(EVENTS, {
            "apiVersion": "v1", "kind": "Event",
            "metadata": {"name": name, "namespace": pod.namespace},
            "involvedObject": {"apiVersion": "v1", "kind": "Pod", "name": pod.name,
                               "namespace": pod.namespace, "uid": pod.uid,
                               "resourceVersion": md.get("resourceVersion", "")},
            "reason": reason, "message": message, "type": type_,
            "source": {"component": self.component}, "reportingComponent": self.component,
            "firstTimestamp": stamp, "lastTimestamp": stamp, "count": 1,
        }, namespace=pod.namespace)
        self._recent[key] = [name, pod.namespace, 1, t]
        self._recent.move_to_end(key)
        while len(self._recent) > AGGREGATE_KEYS:
            self._recent.popitem(last=False)
