"""The pod scheduler component: informers in, decisions out, bindings written behind.

Theory of operation
-------------------
A :class:`Scheduler` watches pods and nodes of one cluster through shared
informers (a :class:`~pincompute.runtime.manager.Manager`'s, or its own) and
keeps four things current from their events:

* the :class:`~.nodetable.NodeTable` — nodes, and every pod bound or assumed
  onto them;
* the :class:`~.queue.SchedulingQueue` — pending pods it is responsible for
  (``spec.schedulerName`` equal to its name, no ``spec.nodeName``);
* what plugins track (gang membership, via :meth:`Framework.pod_seen`);
* *cluster events* — node added or changed, pod assigned or deleted — which move
  unschedulable pods back to the active queue when a plugin that rejected them
  cares about that event.  Nothing polls.

One task, the **decision loop**, pops pods and runs a synchronous scheduling
cycle (:meth:`Framework.schedule`) for each.  A successful cycle has already
*assumed* the pod on its node in the table; the binding is handed to a pool of
**bind workers** that write it concurrently (for a persisted store, hundreds of
bindings share one group commit).  A pod is therefore never bound to a node the
table has not accounted for, and the next decision never waits for the API.
When the informer later reports the pod bound, the assumption is confirmed;
when the API refuses the binding, the assumption is forgotten and the pod
retried after a backoff.  Pods held at Permit (gangs) keep their reservation
until allowed — then they join the bind workers — or rejected, which releases
it.

Unschedulable pods get the ``PodScheduled=False`` condition (reason
``Unschedulable``) and a ``FailedScheduling`` event whose message counts, per
reason, the nodes that failed it; both are written by the
:class:`~.recorder.Recorder` off the decision path.  Preemption victims get a
``DisruptionTarget`` condition and are deleted with their grace period.

The decision loop yields to the event loop every ``yield_every`` decisions, so
informers, bind workers and writers keep up under a full queue.

Running it::

    mgr = Manager(name="scheduler")
    scheduler = Scheduler.attach(mgr, client)          # shared informers, metrics
    await mgr.run()

or standalone, with informers of its own: ``await Scheduler(client).run()``.  Its own
pod informer then caches pods trimmed to what scheduling reads (:mod:`.trim`;
``trim_pods=False`` keeps them whole).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import replace
from typing import Any, cast

from pincompute.kube.errors import ApiError, NotFound
from pincompute.kube.protocol import KubeClient, Preconditions
from pincompute.kube.resource import NODES, PODS
from pincompute.runtime.informer import HandlerRegistration, InformerFactory, SharedInformer
from pincompute.runtime.logging import get_logger
from pincompute.runtime.manager import Manager

from . import labels as L
from .binder import Binder, BindingBinder
from .framework.interface import (
    ASSIGNED_POD_ADD,
    ASSIGNED_POD_DELETE,
    ASSIGNED_POD_UPDATE,
    NODE_ADD,
    NODE_ALLOCATABLE,
    NODE_DELETE,
    NODE_LABEL,
    NODE_TAINT,
    NODE_UNSCHEDULABLE,
    UNASSIGNED_POD_ADD,
    Code,
    QueuedPod,
    Status,
)
from .framework.pipeline import Decision, Framework
from .framework.profile import Profile
from .framework.registry import Registry
from .framework.waiting import WaitingPod
from .metrics import SchedulerMetrics
from .nodetable import NodeTable
from .plugins import in_tree
from .plugins.preemption import Preemption
from .podinfo import PodInfo, is_terminal
from .queue import SchedulingQueue
from .recorder import Recorder, condition_patch
from .reference import ReferenceFramework
from .resources import PodSpecError
from .trim import trim_pod

Obj = dict[str, Any]
_log = get_logger(__name__)

_NO_BIND_PLUGIN = Status(Code.ERROR, ("no bind plugin enabled",))
_NODE_EVENTS: Mapping[str, str] = {
    "allocatable": NODE_ALLOCATABLE, "labels": NODE_LABEL, "taints": NODE_TAINT,
    "unschedulable": NODE_UNSCHEDULABLE,
}


class Scheduler:
    """The node-level pod scheduler of one cluster (see module doc)."""

    def __init__(self, client: KubeClient, *, profile: Profile | None = None,
                 registry: Registry | None = None, binder: Binder | None = None,
                 pods: SharedInformer | None = None, nodes: SharedInformer | None = None,
                 handle_unnamed: bool = False, bind_workers: int = 256,
                 record_scheduled_events: bool = True, report_workers: int = 16,
                 yield_every: int = 64, initial_backoff: float = 1.0,
                 max_backoff: float = 10.0, max_unschedulable: float = 300.0,
                 max_classes: int = 64, metrics: SchedulerMetrics | None = None,
                 vectorized: bool = True, trim_pods: bool = True,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.client = client
        self.profile = profile if profile is not None else Profile()
        self.name = self.profile.scheduler_name
        self.handle_unnamed = handle_unnamed
        self.binder: Binder = binder if binder is not None else BindingBinder(client)
        self.record_scheduled_events = record_scheduled_events
        self.bind_workers = bind_workers
        self.yield_every = yield_every
        self.metrics = metrics
        self.clock = clock
        self._own_informers: InformerFactory | None = None
        self._own_pods: SharedInformer | None = None
        if pods is None or nodes is None:
            self._own_informers = InformerFactory()
            if pods is None:
                # Its own pod informer feeds only the scheduler: cache what it decides on.
                pods = SharedInformer(client, PODS, transform=trim_pod if trim_pods else None)
                self._own_pods = pods
            nodes = nodes or self._own_informers.informer(client, NODES)
        self.pods_informer = pods
        self.nodes_informer = nodes
        self.table = NodeTable()
        # vectorized=False: the node-by-node baseline (benchmarks and comparisons only).
        framework_cls = Framework if vectorized else ReferenceFramework
        self.framework = framework_cls(
            self.profile, registry if registry is not None else in_tree(), table=self.table,
            effects=self, binder=self.binder, clock=clock, call_later=self._call_later,
            max_classes=max_classes)
        self.queue = SchedulingQueue(
            sort_key=self.framework.sort_key, events_for=self.framework.events_for,
            admit=lambda info: self.framework.pre_enqueue(info).ok, clock=clock,
            call_later=self._call_later, initial_backoff=initial_backoff,
            max_backoff=max_backoff, max_unschedulable=max_unschedulable)
        self.framework.move_cycle = lambda: self.queue.move_request_cycle
        self.recorder = Recorder(client, workers=report_workers, clock=clock, busy=self.busy,
                                 latest=lambda pod: self.pods_informer.get_by_key(pod.key))
        if metrics is not None:
            metrics.watch_queue(self._queue_counts)
        # The in-tree Preemption (registries refuse a second plugin of that name).
        self._preemption = cast(Preemption | None, self.framework.by_name.get("Preemption"))
        self._in_flight: dict[str, QueuedPod] = {}
        self._binds: deque[Decision] = deque()
        self._idle_binders: deque[asyncio.Future[None]] = deque()
        self._waking = 0         # bind workers woken but not yet running
        self._binding = 0
        self._tasks: set[asyncio.Task[Any]] = set()
        self._registrations: list[HandlerRegistration] = []
        self._progress = asyncio.Event()
        self._started = False
        self.scheduled = 0       # bindings acknowledged by the API
        self.attempts = 0
        self.unschedulable_attempts = 0
        self.bind_failures = 0
        self.evictions = 0

    # -- wiring ------------------------------------------------------------------------------

    @classmethod
    def attach(cls, manager: Manager, client: KubeClient, **options: Any) -> Scheduler:
        """Create a scheduler on a manager's shared informers, run while it leads."""
        pods = manager.informer(client, PODS)
        nodes = manager.informer(client, NODES)
        if "metrics" not in options:  # (not setdefault: that would register them anyway)
            options["metrics"] = SchedulerMetrics(registry=manager.metrics.registry)
        scheduler = cls(client, pods=pods, nodes=nodes, **options)
        manager.add_runnable(scheduler.run, name=f"scheduler {scheduler.name}",
                             needs_leader=True)
        return scheduler

    def _call_later(self, delay: float, fn: Callable[[], None]) -> asyncio.TimerHandle:
        return asyncio.get_running_loop().call_later(delay, fn)

    def _spawn(self, coro: Coroutine[Any, Any, Any], name: str) -> None:
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            _log.error("scheduler task %s failed: %r", task.get_name(), task.exception())

    def _queue_counts(self) -> dict[str, int]:
        return self.queue.counts()

    # -- running -----------------------------------------------------------------------------

    async def run(self) -> None:
        """Schedule until cancelled."""
        if self._started:
            # Its table, queue and assumptions belong to one run; a restart (say, after
            # losing leadership) builds a new scheduler, as a restarted process would.
            raise RuntimeError("a scheduler runs once; create a new one to run again")
        self._started = True
        own = self._own_informers
        try:
            self._registrations = [
                self.nodes_informer.add_event_handler(
                    on_add=self._on_node_add, on_update=self._on_node_update,
                    on_delete=self._on_node_delete),
                self.pods_informer.add_event_handler(_PodEvents(self)),
            ]
            if own is not None:
                own.start()
            for inf in (self.nodes_informer, self.pods_informer):
                if not inf.running and not inf.has_synced:
                    inf.start()
            await self.nodes_informer.wait_synced()
            await self.pods_informer.wait_synced()
            _log.info("scheduler %s started: %d nodes, %d pending pods", self.name,
                      self.table.count, len(self.queue))
            workers = [self._bind_worker() for _ in range(self.bind_workers)]
            await asyncio.gather(self._decide(), self.recorder.run(), *workers)
        finally:
            for reg in self._registrations:
                reg.remove()
            self._registrations = []
            self.queue.close()
            for task in list(self._tasks):
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
            if own is not None:
                await own.stop()
            if self._own_pods is not None:
                await self._own_pods.stop()

    def busy(self) -> bool:
        """Whether pods wait to be decided or bound (reports are deferred meanwhile)."""
        return bool(self._binds) or self._binding > 0 or self.queue.has_active()

    async def _decide(self) -> None:
        count = 0
        queue = self.queue
        while True:
            qp = queue.pop_nowait()
            if qp is None:
                if not self._binds and not self._binding:
                    self.recorder.kick()
                qp = await queue.pop()
                count = 0
            self._schedule(qp)
            count += 1
            if count >= self.yield_every:
                count = 0
                # Let informers, bind workers and writers run under a full queue.
                await asyncio.sleep(0)

    # -- one pod -----------------------------------------------------------------------------

    def _schedule(self, qp: QueuedPod) -> None:
        info = qp.info
        self.attempts += 1
        metrics = self.metrics
        start = time.perf_counter() if metrics is not None else 0.0
        try:
            decision = self.framework.schedule(info)
        except Exception as e:
            _log.exception("scheduling %s failed", info.key)
            self.queue.requeue_backoff(qp)
            self._report_failure(info, f"scheduler error: {e}", reason=L.REASON_SCHEDULER_ERROR)
            if metrics is not None:
                metrics.errors.inc()
            return
        if metrics is not None:
            metrics.attempt_seconds.observe(time.perf_counter() - start)
        code = decision.status.code
        if code == Code.SUCCESS:
            self._in_flight[info.uid] = qp
            self._bind_later(decision)
            return
        if code == Code.WAIT:
            self._in_flight[info.uid] = qp
            self.framework.wait(decision, self._permit_done)
            if metrics is not None:
                metrics.waiting.inc()
            return
        if code == Code.ERROR:
            # A plugin failed rather than judged: retry after a backoff, not on an event.
            self.queue.requeue_backoff(qp)
            self._report_failure(info, decision.status.message,
                                 reason=L.REASON_SCHEDULER_ERROR)
            if metrics is not None:
                metrics.errors.inc()
            return
        self.unschedulable_attempts += 1
        if metrics is not None:
            metrics.unschedulable.inc()
        diag = decision.diagnosis
        if diag is not None:
            message = diag.message()
            rejectors = frozenset(diag.rejectors)
        else:
            message = decision.status.message
            rejectors = frozenset((decision.status.plugin,)) if decision.status.plugin \
                else frozenset()
        self.queue.requeue_unschedulable(qp, rejectors)
        self._report_failure(info, message)

    def _report_failure(self, info: PodInfo, message: str, *,
                        reason: str = L.REASON_UNSCHEDULABLE) -> None:
        current = self.pods_informer.get_by_key(info.key) or info.obj
        if current is not info.obj:
            # Compare against the pod as it is now, so an unchanged message is not rewritten.
            info = _with_obj(info, current)
        if condition_patch(info.obj, L.POD_SCHEDULED, "False", reason, message) is None:
            return
        self.recorder.pod_condition(info, status="False", reason=reason, message=message)
        self.recorder.event(info, "Warning", "FailedScheduling", message)

    def _permit_done(self, wp: WaitingPod, status: Status) -> None:
        info = wp.info
        if status.ok:
            self._bind_later(Decision(info, wp.state, status, node=wp.node))
            return
        self.framework.unreserve(wp.state, info, wp.node)
        self.unschedulable_attempts += 1
        qp = self._in_flight.pop(info.uid, None)
        if qp is None:
            return  # deleted meanwhile
        self.queue.requeue_unschedulable(qp, frozenset((status.plugin,)))
        self._report_failure(info, status.message)

    # -- binding -----------------------------------------------------------------------------

    def _bind_later(self, decision: Decision) -> None:
        self._binds.append(decision)
        if self._binding or not self._waking:
            self._wake_binder()

    def _wake_binder(self) -> None:
        while self._idle_binders:
            waiter = self._idle_binders.popleft()
            if not waiter.done():
                waiter.set_result(None)
                self._waking += 1
                return

    async def _bind_worker(self) -> None:
        # Workers are woken one at a time.  A binding that completes without waiting
        # (a memory-only store) lets the woken worker drain the whole deque in one
        # step, so waking one worker per decision would only wake idle ones for
        # nothing; once bindings wait (for the API, or a group commit), every popped
        # binding wakes the next worker, so they run concurrently.
        loop = asyncio.get_running_loop()
        binds = self._binds
        while True:
            if not binds:
                waiter = loop.create_future()
                self._idle_binders.append(waiter)
                try:
                    await waiter
                finally:
                    if waiter.done() and not waiter.cancelled():
                        self._waking -= 1
                continue
            decision = binds.popleft()
            if binds and (self._binding or not self._waking):
                self._wake_binder()
            await self._bind(decision)

    async def _bind(self, d: Decision) -> None:
        info = d.pod
        self._binding += 1
        try:
            status = _NO_BIND_PLUGIN
            for plugin in self.framework.binders:
                status = await plugin.bind(d.state, info, d.node)
                if status.code != Code.SKIP:
                    break
        finally:
            self._binding -= 1
        if not self._binding and not self._binds and not self.queue.has_active():
            self.recorder.kick()
        if status.ok:
            self._in_flight.pop(info.uid, None)
            if self._preemption is not None:
                self._preemption.forget(info.uid)
            self.scheduled += 1
            if self.metrics is not None:
                self.metrics.scheduled.inc()
                self.metrics.bindings.inc()
            if self.record_scheduled_events:
                self.recorder.event(info, "Normal", "Scheduled",
                                    f"Successfully assigned {info.key} to {d.node}")
            self._progress.set()
            return
        self.bind_failures += 1
        if self.metrics is not None:
            self.metrics.binding_errors.inc()
        _log.info("binding %s to %s failed: %s", info.key, d.node, status.message)
        self.framework.unreserve(d.state, info, d.node)
        qp = self._in_flight.pop(info.uid, None)
        current = self.pods_informer.get_by_key(info.key)
        if qp is None or current is None or (current.get("spec") or {}).get("nodeName") or \
                (current.get("metadata") or {}).get("uid") != info.uid:
            return  # gone, or bound by someone else: nothing to retry
        try:
            qp.info = PodInfo.from_pod(current)
        except PodSpecError:
            return
        self.queue.requeue_backoff(qp)
        self._report_failure(qp.info, status.message, reason=L.REASON_SCHEDULER_ERROR)

    # -- effects plugins ask for ---------------------------------------------------------------

    def nominate(self, pod: PodInfo, node: str) -> None:
        self.recorder.nominate(pod, node)

    def evict(self, victim: PodInfo, preemptor: PodInfo, node: str) -> None:
        self.evictions += 1
        if self.metrics is not None:
            self.metrics.victims.inc()
        self._spawn(self._evict(victim, preemptor, node), f"evict {victim.key}")

    async def _evict(self, victim: PodInfo, preemptor: PodInfo, node: str) -> None:
        message = (f"{L.COMPONENT}: preempting to accommodate a higher priority pod "
                   f"{preemptor.key} ({preemptor.tier}) on node {node}")
        conditions = condition_patch(victim.obj, L.DISRUPTION_TARGET, "True",
                                     L.REASON_PREEMPTED, message)
        try:
            if conditions is not None:
                await self.client.patch(PODS, victim.name, {"status": {"conditions": conditions}},
                                        namespace=victim.namespace, subresource="status")
            # Graceful: the pod's own terminationGracePeriodSeconds applies.
            await self.client.delete(PODS, victim.name, namespace=victim.namespace,
                                     preconditions=Preconditions(uid=victim.uid))
        except NotFound:
            return
        except ApiError as e:
            _log.warning("evicting %s failed: %s", victim.key, e)
            return
        self.recorder.event(victim, "Normal", "Preempted",
                            f"Preempted by pod {preemptor.uid} on node {node}")

    # -- informer events ---------------------------------------------------------------------

    def _cluster_event(self, event: str) -> None:
        self.queue.move(event)
        self.framework.cluster_event(event)

    def _responsible(self, obj: Mapping[str, Any]) -> bool:
        name = (obj.get("spec") or {}).get("schedulerName")
        return name == self.name or (not name and self.handle_unnamed)

    def _on_node_add(self, obj: Obj) -> None:
        _row, changed = self.table.upsert_node(obj)
        if "add" in changed:
            self._cluster_event(NODE_ADD)
        else:
            for what in changed:
                self._cluster_event(_NODE_EVENTS[what])

    def _on_node_update(self, old: Obj, new: Obj) -> None:
        _row, changed = self.table.upsert_node(new)
        for what in sorted(changed):
            self._cluster_event(NODE_ADD if what == "add" else _NODE_EVENTS[what])

    def _on_node_delete(self, obj: Obj) -> None:
        name = (obj.get("metadata") or {}).get("name") or ""
        if self.table.remove_node(name):
            self._cluster_event(NODE_DELETE)

    def _on_pod(self, obj: Obj, *, added: bool) -> None:
        md = obj.get("metadata") or {}
        uid = md.get("uid") or ""
        node = (obj.get("spec") or {}).get("nodeName")
        table = self.table
        if node:
            self._on_assigned(obj, uid, node)
            return
        if not self._responsible(obj):
            return
        if md.get("deletionTimestamp") or is_terminal(obj):
            self.queue.delete(uid)
            self._pod_gone(obj)
            return
        if table.is_assumed(uid) or uid in self.framework.waiting:
            return  # in flight: the binding's outcome decides what happens next
        try:
            info = PodInfo.from_pod(obj)
        except PodSpecError as e:
            self.queue.delete(uid)
            self._report_invalid(obj, str(e))
            return
        self.framework.pod_seen(info)
        if info.nominated_node and uid not in table.nominated:
            # A nomination made before a restart: keep honouring it.
            table.nominate(info, info.nominated_node)
        if uid in self.queue:
            self.queue.update(info)
        else:
            self.queue.add(info)
            if added:
                self._cluster_event(UNASSIGNED_POD_ADD)

    def _on_assigned(self, obj: Obj, uid: str, node: str) -> None:
        table = self.table
        entry = table.pods.get(uid)
        if is_terminal(obj):
            if table.remove_pod(uid) is not None:
                self._cluster_event(ASSIGNED_POD_DELETE)
            if entry is not None:
                self.framework.pod_gone(entry.info)
            return
        md = obj.get("metadata") or {}
        if entry is not None and entry.node_name == node:
            old = entry.info
            if old.obj is obj:
                return
            if old.labels == (md.get("labels") or {}) and \
                    old.deleting == bool(md.get("deletionTimestamp")):
                # The informer confirming our binding (or a status change): same accounting.
                entry.assumed = False
                old.obj = obj
                old.node_name = node
                return
        try:
            info = PodInfo.from_pod(obj)
        except PodSpecError:
            return  # bound by someone else with a spec we cannot read: nothing to account
        was_pending = uid in self.queue
        self.queue.delete(uid)
        wp = self.framework.waiting.get(uid)
        if wp is not None and wp.node != node:
            self._in_flight.pop(uid, None)  # bound elsewhere: nothing of ours to retry
            wp.reject("", f"bound to {node} by someone else")
        table.add_pod(info, node, assumed=False)
        self.framework.pod_seen(info)
        self._cluster_event(ASSIGNED_POD_ADD if entry is None or was_pending
                            else ASSIGNED_POD_UPDATE)

    def _on_pod_delete(self, obj: Obj) -> None:
        md = obj.get("metadata") or {}
        uid = md.get("uid") or ""
        entry = self.table.remove_pod(uid)
        self.table.clear_nomination(uid)
        self.queue.delete(uid)
        self._in_flight.pop(uid, None)
        wp = self.framework.waiting.get(uid)
        if wp is not None:
            wp.reject("", "pod deleted")
        if self._preemption is not None:
            self._preemption.forget(uid)
        if entry is not None:
            self.framework.pod_gone(entry.info)
            self._cluster_event(ASSIGNED_POD_DELETE)
        else:
            self._pod_gone(obj)

    def _pod_gone(self, obj: Obj) -> None:
        """Tell plugins a pod no longer counts (deleted, terminating or finished)."""
        # A pod whose spec never parsed was never counted, so there is nothing to undo.
        with contextlib.suppress(PodSpecError):
            self.framework.pod_gone(PodInfo.from_pod(obj))

    def _report_invalid(self, obj: Obj, message: str) -> None:
        try:
            info = PodInfo.from_pod({**obj, "spec": {}})
        except PodSpecError:  # pragma: no cover - an empty spec always parses
            return
        info.obj = obj
        self._report_failure(info, f"invalid pod: {message}")

    # -- waiting for progress (tests, benchmarks) ------------------------------------------------

    async def wait_scheduled(self, count: int, *, timeout: float | None = None) -> None:
        """Wait until at least ``count`` bindings were acknowledged by the API."""
        async with asyncio.timeout(timeout):
            while self.scheduled < count:
                self._progress.clear()
                await self._progress.wait()

    async def settle(self, *, timeout: float | None = None) -> None:
        """Wait until nothing is active, waiting at Permit, or being bound, and reports are out.

        Pods parked as unschedulable or backing off do not count: settling means the
        scheduler has nothing to do until the cluster changes or a backoff expires.
        """
        async with asyncio.timeout(timeout):
            while True:
                if (not self.queue.has_active() and not self._binds and not self._binding
                        and not len(self.framework.waiting)):
                    await self.recorder.flush()
                    await asyncio.sleep(0)
                    if (not self.queue.has_active() and not self._binds and not self._binding
                            and not len(self.framework.waiting) and not self.recorder.pending):
                        return
                # Between checks, let informers deliver what is in flight.
                await asyncio.sleep(0.005)

    def pending_keys(self) -> list[str]:
        """``namespace/name`` of every pod in the queue (any sub-queue), sorted."""
        return sorted(qp.info.key for qp in self.queue.pods())


class _PodEvents:
    """The scheduler's pod handler (methods, not functions: one call less per event)."""

    __slots__ = ("_scheduler",)

    def __init__(self, scheduler: Scheduler) -> None:
        self._scheduler = scheduler

    def on_add(self, obj: Obj) -> None:
        self._scheduler._on_pod(obj, added=True)

    def on_update(self, old: Obj, new: Obj) -> None:
        self._scheduler._on_pod(new, added=False)

    def on_delete(self, obj: Obj) -> None:
        self._scheduler._on_pod_delete(obj)


def _with_obj(info: PodInfo, obj: Obj) -> PodInfo:
    return replace(info, obj=obj)
