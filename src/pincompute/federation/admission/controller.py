"""The admission controller: host workloads charged against their project's quota.

Theory of operation
-------------------
The informers of the host's workloads (:data:`WORKLOAD_RESOURCES`) and Projects
feed one :class:`~.queue.AdmissionQueues` in their handlers — a few dictionary
and ``SortedList`` operations per event, on every replica, so a standby is
warm.  The leader's reconciler has two kinds of keys:

* a **project** (``Request("", project)``): a pass over its queues
  (:meth:`~.queue.AdmissionQueues.cycle`); the entries it admitted or preempted
  get their status written, the first :data:`REFRESH_FIRST` of each queue get
  their position refreshed, and the Project's status gets its usage (charged now,
  per tier) and queue lengths;
* a **workload** (``Request(namespace, "<Kind>.<name>")``): its
  ``status.admission`` and its ``Queued`` / ``Admitted`` / ``Preempted``
  conditions (:data:`~.queue.CONDITIONS`) written from the queues' answer (a
  preempted workload: ``Preempted`` with ``Queued`` reason ``BackingOff``, then,
  its back-off over, ``Queued`` with its reason and position).  A
  queued workload is looked at again every :data:`REFRESH_AFTER` seconds, which
  bounds how stale the position of one far down a long queue can be without
  rewriting every queued workload at each admission.

The status is the state of record (see :mod:`.queue`): a reclaimer's
``Admitted`` is written only once its victims' ``Preempted`` shows in their
status.  The propagation and the cluster scheduler act only on ``Admitted``
workloads and remove the shards of ``Preempted`` ones (gracefully, through the
pod scheduler's path).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Mapping
from typing import Any, Final

from pincompute.kube import objects
from pincompute.kube.errors import Conflict, NotFound
from pincompute.kube.protocol import KubeClient
from pincompute.kube.resource import Resource
from pincompute.model.registry import (
    PINAPPS,
    PINCRONJOBS,
    PINJOBS,
    PINPODS,
    PINTRAININGJOBS,
    PROJECTS,
)
from pincompute.runtime.controller import Controller
from pincompute.runtime.informer import FuncEventHandler, SharedInformer
from pincompute.runtime.manager import Manager
from pincompute.runtime.reconciler import Request, Result

from .queue import CONDITIONS, AdmissionQueues, workload_key

WORKLOAD_RESOURCES: Final[tuple[Resource, ...]] = (PINAPPS, PINJOBS, PINCRONJOBS,
                                                   PINTRAININGJOBS, PINPODS)
REFRESH_FIRST: Final = 100
"""Positions written after every pass, per queue (the rest: every REFRESH_AFTER)."""
REFRESH_AFTER: Final = 30.0


def workload_request(key: str) -> Request:
    kind, namespace, name = key.split("/", 2)
    return Request(namespace, f"{kind}.{name}")


class AdmissionReconciler:
    def __init__(self, *, host: KubeClient, queues: AdmissionQueues,
                 workloads: Mapping[str, SharedInformer], projects: SharedInformer,
                 refresh_first: int = REFRESH_FIRST, refresh_after: float = REFRESH_AFTER
                 ) -> None:
        self.host = host
        self.queues = queues
        self.workloads = workloads
        self.projects = projects
        self.refresh_first = refresh_first
        self.refresh_after = refresh_after
        self.controller: Controller | None = None

    async def reconcile(self, request: Request) -> Result | None:
        if not request.namespace:
            return await self._pass(request.name)
        kind, _, name = request.name.partition(".")
        return await self._write(kind, request.namespace, name)

    # -- a pass over a project --

    async def _pass(self, project: str) -> Result | None:
        assert self.controller is not None
        result = self.queues.cycle(project)
        for key in result.changed:
            self.controller.enqueue(workload_request(key))
        for tier in ("reserved", "ondemand", "preemptible"):
            for key in self.queues.queue_keys(project, tier, first=self.refresh_first):
                self.controller.enqueue(workload_request(key))
        await self._project_status(project)
        if result.wake_at is not None:
            return Result(requeue_after=max(0.05, result.wake_at - time.time()))
        return None

    async def _project_status(self, project: str) -> None:
        obj = self.projects.get(project)
        if obj is None or objects.is_deleting(obj):
            return
        usage, queued = self.queues.project_status(project)
        status = obj.get("status") or {}
        if status.get("usage") == usage and status.get("queued") == queued:
            return
        updated = objects.deepcopy(obj)
        updated.setdefault("status", {}).update(usage=usage, queued=queued)
        # Conflict: our cache is behind; the Project's next event brings a pass back.
        with contextlib.suppress(NotFound, Conflict):
            await self.host.update_status(PROJECTS, updated)

    # -- one workload's status --

    async def _write(self, kind: str, namespace: str, name: str) -> Result | None:
        key = f"{kind}/{namespace}/{name}"
        entry = self.queues.entries.get(key)
        informer = self.workloads.get(kind)
        if entry is None or informer is None:
            return None
        obj = informer.get(name, namespace=namespace)
        if obj is None or objects.uid_of(obj) != entry.uid:
            return None
        if entry.state == "Admitted" and entry.waits_for:
            # Its victims' Preempted must be recorded first; their events bring us back.
            return Result(requeue_after=1.0)
        admission = self.queues.status(key)
        reason, why, hint = self.queues.explain(key)
        updated = objects.deepcopy(obj)
        status = updated.setdefault("status", {})
        status["admission"] = admission
        if entry.state == "Admitted":
            status["tier"] = entry.tier
        generation = objects.meta(obj).get("generation")
        position = admission.get("position")
        for cond, value in CONDITIONS[entry.state].items():
            if not value:
                message = ""
                if cond == "Preempted" and entry.preemptions:
                    # Its back-off is over: it says how often it was preempted, and by whom last.
                    message = (f"back-off over; preempted {entry.preemptions} time(s), last by "
                               f"{entry.reclaimed_by}")
                objects.set_condition(updated, cond, False, reason=_off_reason(cond, entry.state),
                                      message=message, observed_generation=generation)
                continue
            if cond == "Preempted":
                message = f"reclaimed by {entry.reclaimed_by}: its tier needed the quota back"
                objects.set_condition(updated, cond, True, reason="Reclaimed", message=message,
                                      observed_generation=generation)
            elif cond == "Queued":
                message = f"position {position} in queue {admission['queue']}: {why}"
                if hint:
                    message = f"{message}; {hint}"
                objects.set_condition(updated, cond, True, reason=reason, message=message,
                                      observed_generation=generation)
            else:
                objects.set_condition(updated, cond, True, reason=reason, message=why,
                                      observed_generation=generation)
        if updated.get("status") != obj.get("status"):
            try:
                await self.host.update_status(_resource(kind), updated)
            except NotFound:
                return None
            except Conflict:
                return Result(requeue=True)
        if entry.state != "Admitted":
            return Result(requeue_after=self.refresh_after)
        return None


def _off_reason(cond: str, state: str) -> str:
    return {"Admitted": "NotAdmitted", "Queued": "Admitted", "Preempted": state}[cond]


def _resource(kind: str) -> Resource:
    for r in WORKLOAD_RESOURCES:
        if r.kind == kind:
            return r
    raise KeyError(kind)


def add_admission_controller(manager: Manager, *, host: KubeClient, name: str = "admission",
                             queues: AdmissionQueues | None = None, workers: int = 4,
                             refresh_first: int = REFRESH_FIRST,
                             refresh_after: float = REFRESH_AFTER) -> Controller:
    """Wire quota admission for the host's workloads into ``manager``.

    Pass ``queues`` to keep a handle on the admission state (positions and reasons
    on demand, e.g. for the API's usage and queue views).
    """
    queues = queues if queues is not None else AdmissionQueues()
    projects = manager.informer(host, PROJECTS)
    workloads = {r.kind: manager.informer(host, r) for r in WORKLOAD_RESOURCES}
    reconciler = AdmissionReconciler(host=host, queues=queues, workloads=workloads,
                                     projects=projects, refresh_first=refresh_first,
                                     refresh_after=refresh_after)
    controller = manager.controller(name, reconciler, workers=workers)
    reconciler.controller = controller

    def pass_over(project: str | None) -> None:
        if project is not None:
            controller.enqueue(Request("", project))

    def handlers(kind: str) -> FuncEventHandler:
        def seen(obj: dict[str, Any]) -> None:
            if "kind" not in obj:
                obj = {**obj, "kind": kind}
            project, due = queues.observe(obj)
            for key in due:
                controller.enqueue(workload_request(key))
            pass_over(project)

        def gone(obj: dict[str, Any]) -> None:
            if "kind" not in obj:
                obj = {**obj, "kind": kind}
            pass_over(queues.remove(workload_key(obj)))

        return FuncEventHandler(add=seen, update=lambda _old, new: seen(new), delete=gone)

    for kind, informer in workloads.items():
        informer.add_event_handler(handlers(kind))

    def project_seen(obj: dict[str, Any]) -> None:
        name = objects.name_of(obj)
        queues.set_project(name, (obj.get("spec") or {}).get("quota"))
        pass_over(name)

    def project_gone(obj: dict[str, Any]) -> None:
        queues.drop_project(objects.name_of(obj))

    def project_changed(old: dict[str, Any], new: dict[str, Any]) -> None:
        if (old.get("spec") or {}).get("quota") != (new.get("spec") or {}).get("quota") \
                or objects.name_of(new) not in queues.ledger.quotas:
            project_seen(new)

    projects.add_event_handler(FuncEventHandler(add=project_seen, update=project_changed,
                                                delete=project_gone))
    return controller


__all__ = ["REFRESH_AFTER", "REFRESH_FIRST", "WORKLOAD_RESOURCES", "AdmissionReconciler",
           "add_admission_controller", "workload_request"]
