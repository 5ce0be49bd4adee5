"""A controller: informer events -> keys -> work queue -> N workers -> reconciler.

Theory of operation
-------------------
A controller binds three things, as controller-runtime's does:

* **sources** — informers whose events say "something about object X changed";
* **key mapping** — which :class:`~pincompute.runtime.reconciler.Request` each event
  concerns: the object itself (:meth:`Controller.for_`), the controller-owner named
  in its ``ownerReferences`` (:meth:`Controller.owns`), or anything a map function
  says (:meth:`Controller.watches`), optionally filtered by a predicate;
* a :class:`~pincompute.runtime.workqueue.WorkQueue` and ``workers`` tasks that take
  keys from it and call the reconciler.

Events only ever enqueue keys, so a burst of changes to one object costs one
reconcile, and the queue guarantees one key is never reconciled by two workers at
once.  What a reconcile returns decides the key's fate (forget, ``requeue_after``,
rate-limited retry); see :mod:`pincompute.runtime.reconciler`.  Each reconcile
runs inside :func:`~pincompute.runtime.logging.log_context` with ``controller`` and
``key``, so everything it logs names the object.

Handlers are attached to the informers when the controller is built, before the
informers start, so the first list's adds are queued; workers start only after
every source has synced (:meth:`Controller.start`), so no reconcile ever sees a
half-filled cache and mistakes "not listed yet" for "does not exist".

Shutdown (:meth:`Controller.shutdown`) stops the queue from handing out keys,
waits up to a timeout for reconciles in flight to finish, then cancels the rest.
A cancelled reconcile is safe by design: reconcilers are idempotent and whatever
they did not finish is redone by whoever runs next.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Literal

from pincompute.kube.errors import NamespaceTerminating
from pincompute.kube.objects import controller_of, meta, namespace_of
from pincompute.kube.resource import Resource

from .informer import HandlerRegistration, SharedInformer
from .logging import get_logger, log_context
from .metrics import (
    RESULT_ERROR,
    RESULT_REQUEUE,
    RESULT_REQUEUE_AFTER,
    RESULT_SUCCESS,
    RuntimeMetrics,
)
from .reconciler import ReconcileFunc, Reconciler, Request, Result, TerminalError, as_reconciler
from .workqueue import RateLimiter, ShutDown, WorkQueue

Obj = dict[str, Any]
EventType = Literal["add", "update", "delete"]

_log = get_logger(__name__)


# --- events and predicates -------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Event:
    """An informer event as predicates and map functions see it (objects are read-only)."""

    type: EventType
    object: Obj
    old: Obj | None = None


Predicate = Callable[[Event], bool]
MapFunc = Callable[[Obj], Iterable[Request]]


def generation_changed(event: Event) -> bool:
    """Pass adds and deletes, and updates that changed ``metadata.generation`` (the spec)."""
    if event.type != "update" or event.old is None:
        return True
    return meta(event.old).get("generation") != meta(event.object).get("generation")


def labels_changed(event: Event) -> bool:
    """Pass adds and deletes, and updates that changed the labels."""
    if event.type != "update" or event.old is None:
        return True
    return meta(event.old).get("labels") != meta(event.object).get("labels")


_VOLATILE_METADATA = frozenset({"resourceVersion", "managedFields"})


def not_status_only(event: Event) -> bool:
    """Pass adds, deletes, and updates that changed more than the status: the spec or the
    metadata (labels, annotations, finalizers, deletion).  A controller's own status
    writes then do not bring it straight back."""
    if event.type != "update" or event.old is None:
        return True
    old, new = event.old, event.object
    if old.get("spec") != new.get("spec"):
        return True
    old_meta, new_meta = meta(old), meta(new)
    return any(old_meta.get(k) != new_meta.get(k)
               for k in old_meta.keys() | new_meta.keys() if k not in _VOLATILE_METADATA)


def any_of(*predicates: Predicate) -> Predicate:
    def pred(event: Event) -> bool:
        return any(p(event) for p in predicates)
    return pred


def all_of(*predicates: Predicate) -> Predicate:
    def pred(event: Event) -> bool:
        return all(p(event) for p in predicates)
    return pred


def owner_mapper(owner: Resource, *, cluster: str = "",
                 only_controller: bool = True) -> MapFunc:
    """Map an object to the owner of kind ``owner`` named in its ownerReferences."""
    group = owner.group

    def matches(ref: dict[str, Any]) -> bool:
        if ref.get("kind") != owner.kind:
            return False
        api_version = ref.get("apiVersion", "")
        ref_group = api_version.rpartition("/")[0] if "/" in api_version else ""
        # Versions of one group name the same objects; only the group must agree.
        return ref_group == group

    def fn(obj: Obj) -> list[Request]:
        ns = namespace_of(obj) if owner.namespaced else ""
        if only_controller:
            ref = controller_of(obj)
            refs = [ref] if ref is not None else []
        else:
            refs = list(meta(obj).get("ownerReferences") or ())
        return [Request(ns, r["name"], cluster) for r in refs if matches(r) and r.get("name")]

    return fn


class _EnqueueHandler:
    """The informer handler a controller installs for one source."""

    __slots__ = ("batch", "controller", "map_fn", "predicate")

    def __init__(self, controller: Controller, map_fn: MapFunc,
                 predicate: Predicate | None, *, batch: float = 0.0) -> None:
        self.controller = controller
        self.map_fn = map_fn
        self.predicate = predicate
        self.batch = batch

    def _enqueue(self, obj: Obj) -> None:
        queue = self.controller.queue
        for request in self.map_fn(obj):
            if not self.batch:
                queue.add(request)
            elif not queue.is_dirty(request):  # else its coming reconcile sees this event
                queue.add_after(request, self.batch)

    def on_add(self, obj: Obj) -> None:
        if self.predicate is None or self.predicate(Event("add", obj)):
            self._enqueue(obj)

    def on_update(self, old: Obj, new: Obj) -> None:
        if self.predicate is None or self.predicate(Event("update", new, old)):
            # Both: an owner reference (or whatever the map reads) may have moved.
            self._enqueue(old)
            self._enqueue(new)

    def on_delete(self, obj: Obj) -> None:
        if self.predicate is None or self.predicate(Event("delete", obj)):
            self._enqueue(obj)


# --- the controller --------------------------------------------------------------------------

class Controller:
    """Runs a reconciler for keys derived from informer events (see module doc)."""

    def __init__(self, name: str, reconciler: Reconciler | ReconcileFunc, *,
                 workers: int = 1, rate_limiter: RateLimiter | None = None,
                 metrics: RuntimeMetrics | None = None,
                 reconcile_timeout: float | None = None) -> None:
        if workers < 1:
            raise ValueError("workers must be >= 1")
        self.name = name
        self.reconciler = as_reconciler(reconciler)
        self.workers = workers
        self.reconcile_timeout = reconcile_timeout
        self.metrics = metrics
        self.queue: WorkQueue[Request] = WorkQueue(
            name=name, rate_limiter=rate_limiter,
            metrics=metrics.queue(name) if metrics is not None else None)
        self._sources: list[SharedInformer] = []
        self._registrations: list[HandlerRegistration] = []
        self._tasks: list[asyncio.Task[None]] = []
        self._in_flight: dict[Request, asyncio.Task[Any]] = {}
        self._started = False
        self._progress = asyncio.Event()
        self._log = _log.bind(controller=name)
        if metrics is not None:
            metrics.max_concurrent_reconciles.labels(name).set(workers)
            self._m_active = metrics.active_workers.labels(name)
            self._m_duration = metrics.reconcile_duration.labels(name)
            self._m_errors = metrics.reconcile_errors.labels(name)
            self._m_results = {r: metrics.reconcile_total.labels(name, r) for r in (
                RESULT_SUCCESS, RESULT_ERROR, RESULT_REQUEUE, RESULT_REQUEUE_AFTER)}

    def __repr__(self) -> str:
        return f"<Controller {self.name} workers={self.workers}>"

    # -- building --

    def for_(self, informer: SharedInformer, *, predicate: Predicate | None = None,
             cluster: str = "") -> Controller:
        """Reconcile the objects of ``informer`` themselves."""
        def own(obj: Obj) -> list[Request]:
            return [Request.for_object(obj, cluster=cluster)]
        return self.watches(informer, own, predicate=predicate)

    def owns(self, informer: SharedInformer, *, owner: Resource,
             predicate: Predicate | None = None, cluster: str = "",
             only_controller: bool = True, batch: float = 0.0) -> Controller:
        """Reconcile the ``owner`` named in ownerReferences of ``informer``'s objects."""
        return self.watches(informer, owner_mapper(owner, cluster=cluster,
                                                   only_controller=only_controller),
                            predicate=predicate, batch=batch)

    def watches(self, informer: SharedInformer, map_fn: MapFunc, *,
                predicate: Predicate | None = None, batch: float = 0.0) -> Controller:
        """Reconcile whatever ``map_fn`` names for each event of ``informer``.

        ``map_fn`` gets the (shared, read-only) object and returns requests; it runs
        inside the informer's task, so it must be quick — read caches, do not call
        the API.  With ``batch`` (seconds) a request waits that long before it is
        queued, and the events meanwhile join it: an owner of many objects that change
        together (an app's replicas during a drain) is reconciled once for them, not
        once each — at the price of ``batch`` more latency.
        """
        if informer not in self._sources:
            self._sources.append(informer)
        self._registrations.append(
            informer.add_event_handler(_EnqueueHandler(self, map_fn, predicate, batch=batch)))
        return self

    @property
    def sources(self) -> list[SharedInformer]:
        return list(self._sources)

    # -- enqueueing by hand --

    def enqueue(self, request: Request, *, after: float | None = None) -> None:
        if after:
            self.queue.add_after(request, after)
        else:
            self.queue.add(request)

    # -- running --

    @property
    def started(self) -> bool:
        return self._started

    @property
    def in_flight(self) -> list[Request]:
        """Requests being reconciled right now."""
        return list(self._in_flight)

    async def wait_idle(self) -> None:
        """Wait until no key is queued or being reconciled (delayed re-adds aside).

        For tests and tools that need "the controller has caught up"; production
        code has no use for it, since new events can arrive at any time.
        """
        queue = self.queue
        while len(queue) or queue.processing:
            self._progress.clear()
            await self._progress.wait()

    async def wait_synced(self) -> bool:
        """Wait until every source has listed; ``False`` if one stopped first.

        Bound the wait with ``asyncio.timeout`` where needed.
        """
        results = await asyncio.gather(*(s.wait_synced() for s in self._sources))
        return all(results)

    async def start(self, *, sync_timeout: float | None = None) -> None:
        """Wait for every source to sync, then start the workers (returns at once after)."""
        if self._started:
            return
        try:
            async with asyncio.timeout(sync_timeout):
                synced = await self.wait_synced()
        except TimeoutError:
            raise TimeoutError(f"controller {self.name}: sources did not sync "
                               f"within {sync_timeout}s") from None
        if not synced:
            raise RuntimeError(f"controller {self.name}: a source stopped before syncing")
        if self.queue.shutting_down:
            return
        self._started = True
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._worker(), name=f"{self.name} worker {i}")
                       for i in range(self.workers)]
        self._log.info("started %d workers", self.workers)

    async def shutdown(self, *, grace_period: float | None = 30.0) -> bool:
        """Stop taking keys, let in-flight reconciles finish, cancel after ``grace_period``.

        Returns whether every reconcile finished by itself.
        """
        for reg in self._registrations:
            reg.remove()
        self._registrations.clear()
        self.queue.shutdown()
        tasks = [t for t in self._tasks if not t.done()]
        if not tasks:
            return True
        _, pending = await asyncio.wait(tasks, timeout=grace_period)
        for task in pending:
            task.cancel()
        if pending:
            self._log.warning("cancelling %d reconciles still running after %.1fs: %s",
                              len(self._in_flight), grace_period or 0.0,
                              ", ".join(str(r) for r in self._in_flight))
            await asyncio.gather(*pending, return_exceptions=True)
        return not pending

    async def _worker(self) -> None:
        queue = self.queue
        while True:
            try:
                request = await queue.get()
            except ShutDown:
                return
            try:
                await self._process(request)
            finally:
                queue.done(request)
                self._progress.set()

    async def _process(self, request: Request) -> None:
        queue = self.queue
        m = self.metrics
        fields: dict[str, Any] = {"controller": self.name, "key": request.key}
        if request.cluster:
            fields["cluster"] = request.cluster
        start = time.perf_counter()
        if m is not None:
            self._m_active.inc()
        task = asyncio.current_task()
        assert task is not None
        self._in_flight[request] = task
        outcome = RESULT_SUCCESS
        try:
            with log_context(**fields):
                try:
                    if self.reconcile_timeout is not None:
                        async with asyncio.timeout(self.reconcile_timeout):
                            result = await self.reconciler.reconcile(request)
                    else:
                        result = await self.reconciler.reconcile(request)
                except asyncio.CancelledError:
                    outcome = ""  # shutdown cut it short: neither a success nor an error
                    raise
                except TerminalError as exc:
                    outcome = RESULT_ERROR
                    queue.forget(request)
                    self._log.error("reconcile failed (terminal, not retried): %s", exc)
                except NamespaceTerminating as exc:
                    # The object's namespace is being deleted: it and its object are going;
                    # not an error to shout about (Kubernetes' controllers skip it too).
                    outcome = RESULT_ERROR
                    delay = queue.add_rate_limited(request)
                    self._log.debug("namespace being deleted, retry in %.3fs: %s", delay, exc)
                except Exception as exc:
                    outcome = RESULT_ERROR
                    delay = queue.add_rate_limited(request)
                    self._log.error("reconcile failed, retry %d in %.3fs: %s",
                                    queue.num_requeues(request), delay, exc,
                                    exc_info=True)
                else:
                    outcome = self._after(request, result)
        finally:
            del self._in_flight[request]
            if m is not None:
                self._m_active.dec()
                self._m_duration.observe(time.perf_counter() - start)
                if outcome:
                    self._m_results[outcome].inc()
                if outcome == RESULT_ERROR:
                    self._m_errors.inc()

    def _after(self, request: Request, result: Result | None) -> str:
        queue = self.queue
        if result is None:
            queue.forget(request)
            return RESULT_SUCCESS
        if result.requeue_after is not None:
            # Nothing failed: a timer, not a retry, so the back-off starts over.
            queue.forget(request)
            queue.add_after(request, result.requeue_after)
            return RESULT_REQUEUE_AFTER
        if result.requeue:
            queue.add_rate_limited(request)
            return RESULT_REQUEUE
        queue.forget(request)
        return RESULT_SUCCESS

