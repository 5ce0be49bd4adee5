"""The PinCronJob operator: PinJobs on a schedule, in a time zone.

Theory of operation
-------------------
Each pass over a cron job (level-triggered; requeued for its next schedule
time) reads the PinJobs it owns from an informer and:

1. **Runs what is due.**  The schedule times since ``status.lastScheduleTime``
   (or the cron job's creation) up to now come from
   :func:`.cronschedule.missed`, which finds the most recent one directly, so a
   long downtime costs no more than a short one and scheduling never stops.  Only
   the most recent runs, unless it is older than ``startingDeadlineSeconds``
   (then it is skipped with a ``MissedSchedule`` Event); more than one time in the
   window means runs were missed while the controller was down: a
   ``MissedSchedules`` Event gives how many and the first and last.
   ``concurrencyPolicy``: ``Allow`` runs beside active jobs, ``Forbid`` waits (the
   run starts when the active one ends, if still within the deadline),
   ``Replace`` deletes the active ones first.
2. **Names runs for idempotency.**  The job of the run at time ``t`` is
   ``<cron>-<t in unix minutes>`` (a manual run ``<cron>-manual-<hash of the
   nonce>``): a pass repeated after a crash meets AlreadyExists, never a second
   job.  ``status.lastScheduleTime`` is written after the create.
3. **Manual trigger.**  A new value of the ``pincompute.io/trigger`` annotation
   runs the job once now; ``status.lastTrigger`` remembers the nonce acted on.
4. **Keeps history**: the newest ``successfulJobsHistoryLimit`` succeeded and
   ``failedJobsHistoryLimit`` failed jobs; older ones are deleted.

Time comes from an injectable clock; ``max_wait`` caps the requeue delay (tests
move the clock and need the controller to look again soon).
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import hashlib
import time
from collections.abc import Callable, Mapping
from typing import Any

from pincompute.kube import objects
from pincompute.kube.errors import AlreadyExists, Conflict, NotFound
from pincompute.kube.protocol import KubeClient
from pincompute.model.cron import PinCronJobSpec
from pincompute.model.registry import PINCRONJOBS, PINJOBS
from pincompute.model.views import spec_view
from pincompute.model.wellknown import CRON_SCHEDULED_TIME_ANNOTATION, CRON_TRIGGER_ANNOTATION
from pincompute.runtime.cache import index_by_controller_uid
from pincompute.runtime.controller import Controller
from pincompute.runtime.events import EventRecorder
from pincompute.runtime.informer import SharedInformer
from pincompute.runtime.manager import Manager
from pincompute.runtime.reconciler import Request, Result

from .cronschedule import Missed, missed, next_after
from .operator import (
    CREATED,
    DELETED,
    NORMAL,
    WARNING,
    event_recorder,
    observe,
    shard_of,
    workload_labels,
)

Obj = dict[str, Any]
BY_CRON = "cron-uid"
MISSED_SCHEDULES = "MissedSchedules"
"""Event: runs were missed while the controller was down (count, first, last)."""
MISSED_SCHEDULE = "MissedSchedule"
"""Event: a run was skipped, too late for startingDeadlineSeconds."""
JOB_ALREADY_ACTIVE = "JobAlreadyActive"
"""Event: a run waits for the active job (concurrencyPolicy Forbid)."""
TRIGGERED = "Triggered"


def _rfc3339(t: float) -> str:
    return _dt.datetime.fromtimestamp(t, _dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _epoch(value: str | None) -> float | None:
    return objects.parse_time(value).timestamp() if value else None


def job_name(cron: str, scheduled: float) -> str:
    """The job of the run scheduled at ``scheduled``: ``<cron>-<unix minutes>``."""
    return f"{cron}-{int(scheduled // 60)}"


def manual_job_name(cron: str, nonce: str) -> str:
    return f"{cron}-manual-{hashlib.blake2b(nonce.encode(), digest_size=4).hexdigest()}"


def job_finished(job: Mapping[str, Any]) -> str | None:
    """``Succeeded``, ``Failed`` or None (still running)."""
    phase = (job.get("status") or {}).get("phase")
    return phase if phase in ("Succeeded", "Failed") else None


class PinCronJobReconciler:
    def __init__(self, *, client: KubeClient, crons: SharedInformer, jobs: SharedInformer,
                 recorder: EventRecorder, clock: Callable[[], float] = time.time,
                 max_wait: float | None = None) -> None:
        self.client = client
        self.crons = crons
        self.jobs = jobs
        self.recorder = recorder
        self.clock = clock
        self.max_wait = max_wait

    async def reconcile(self, request: Request) -> Result | None:
        cron = self.crons.get(request.name, namespace=request.namespace)
        if cron is None or objects.is_deleting(cron):
            return None
        now = self.clock()
        spec = spec_view(PinCronJobSpec, shard_of(cron))
        status: Obj = objects.deepcopy(cron.get("status") or {})
        children = sorted(self.jobs.by_index(BY_CRON, objects.uid_of(cron)),
                          key=_scheduled_at)
        active = [j for j in children if job_finished(j) is None
                  and not objects.is_deleting(j)]

        # manual trigger
        nonce = (objects.meta(cron).get("annotations") or {}).get(CRON_TRIGGER_ANNOTATION)
        if nonce and nonce != status.get("lastTrigger"):
            made = await self._create(cron, spec, manual_job_name(objects.name_of(cron), nonce),
                                      scheduled=now)
            if made is not None:
                active.append(made)
            self.recorder.record(cron, NORMAL, TRIGGERED, f"run now (trigger {nonce!r})")
            status["lastTrigger"] = nonce

        # the schedule
        since = _epoch(status.get("lastScheduleTime")) or _epoch(
            objects.meta(cron).get("creationTimestamp")) or now
        due = None if spec.suspend else missed(spec.schedule, spec.time_zone, since=since,
                                                  now=now)
        if due is not None:
            active = await self._run(cron, spec, status, due, active=active, now=now)

        # status and history
        status["active"] = [{"apiVersion": j.get("apiVersion"), "kind": "PinJob",
                             "name": objects.name_of(j), "namespace": objects.namespace_of(j),
                             "uid": objects.uid_of(j)} for j in active] or None
        if status["active"] is None:
            del status["active"]
        done = [_epoch((j.get("status") or {}).get("completionTime")) for j in children
                if job_finished(j) == "Succeeded"]
        if any(done):
            status["lastSuccessfulTime"] = _rfc3339(max(t for t in done if t))
        upcoming = next_after(spec.schedule, spec.time_zone, now)
        if upcoming is not None:
            status["nextScheduleTime"] = _rfc3339(upcoming)
        observe(cron, status)
        if status != (cron.get("status") or {}):
            try:
                await self.client.update_status(PINCRONJOBS, {**cron, "status": status})
            except Conflict:
                return Result(requeue=True)  # runs are named: the retry creates nothing twice
        await self._prune(cron, spec, children)

        wait = None if upcoming is None else max(upcoming - now, 0.0) + 0.01
        if self.max_wait is not None:
            wait = self.max_wait if wait is None else min(wait, self.max_wait)
        return Result(requeue_after=wait) if wait is not None else None

    async def _run(self, cron: Obj, spec: PinCronJobSpec, status: Obj, due: Missed, *,
                   active: list[Obj], now: float) -> list[Obj]:
        name = objects.name_of(cron)
        if due.count > 1:
            more = "at least " if due.capped else ""
            self.recorder.record(
                cron, WARNING, MISSED_SCHEDULES,
                f"{more}{due.count} scheduled runs between {_rfc3339(due.first)} and "
                f"{_rfc3339(due.latest)} were due while the controller was away; "
                f"running the most recent ({_rfc3339(due.latest)})")
        deadline = spec.starting_deadline_seconds
        if deadline is not None and now - due.latest > deadline:
            self.recorder.record(cron, WARNING, MISSED_SCHEDULE,
                                 f"skipped the run of {_rfc3339(due.latest)}: more than "
                                 f"startingDeadlineSeconds ({deadline}) late")
            status["lastScheduleTime"] = _rfc3339(due.latest)
            return active
        run_name = job_name(name, due.latest)
        others = [j for j in active if objects.name_of(j) != run_name]
        if others and spec.concurrency_policy == "Forbid":
            self.recorder.record(cron, NORMAL, JOB_ALREADY_ACTIVE,
                                 f"the run of {_rfc3339(due.latest)} waits for "
                                 f"{objects.name_of(others[0])} (concurrencyPolicy Forbid)")
            return active
        if others and spec.concurrency_policy == "Replace":
            for j in others:
                with contextlib.suppress(NotFound):
                    await self.client.delete(PINJOBS, objects.name_of(j),
                                             namespace=objects.namespace_of(j),
                                             propagation_policy="Background")
                self.recorder.record(cron, NORMAL, DELETED,
                                     f"deleted {objects.name_of(j)} (concurrencyPolicy Replace)")
            active = [j for j in active if j not in others]
        made = await self._create(cron, spec, run_name, scheduled=due.latest)
        if made is not None and all(objects.name_of(j) != run_name for j in active):
            active.append(made)
        status["lastScheduleTime"] = _rfc3339(due.latest)
        return active

    async def _create(self, cron: Obj, spec: PinCronJobSpec, name: str, *,
                      scheduled: float) -> Obj | None:
        template = shard_of(cron)["spec"]["jobTemplate"]
        md = template.get("metadata") or {}
        labels = {**(md.get("labels") or {}), **workload_labels(cron)}
        job = {"apiVersion": cron["apiVersion"], "kind": "PinJob",
               "metadata": {"name": name, "namespace": objects.namespace_of(cron),
                            "labels": labels,
                            "annotations": {**(md.get("annotations") or {}),
                                            CRON_SCHEDULED_TIME_ANNOTATION: _rfc3339(scheduled)},
                            "ownerReferences": [objects.owner_reference(cron)]},
               "spec": {**template["spec"], "tier": spec.tier,
                        "placement": shard_of(cron)["spec"].get("placement") or {}}}
        try:
            made = await self.client.create(PINJOBS, job)
        except AlreadyExists:
            return self.jobs.get(name, namespace=objects.namespace_of(cron))
        self.recorder.record(cron, NORMAL, CREATED, f"Created job {name}")
        return made

    async def _prune(self, cron: Obj, spec: PinCronJobSpec, children: list[Obj]) -> None:
        for outcome, limit in (("Succeeded", spec.successful_jobs_history_limit),
                               ("Failed", spec.failed_jobs_history_limit)):
            finished = [j for j in children if job_finished(j) == outcome
                        and not objects.is_deleting(j)]
            for j in finished[:max(0, len(finished) - limit)]:
                with contextlib.suppress(NotFound):
                    await self.client.delete(PINJOBS, objects.name_of(j),
                                             namespace=objects.namespace_of(j),
                                             propagation_policy="Background")
                self.recorder.record(cron, NORMAL, DELETED,
                                     f"deleted {outcome.lower()} job {objects.name_of(j)} "
                                     f"(history limit {limit})")


def _scheduled_at(job: Mapping[str, Any]) -> str:
    md = objects.meta(job)
    return (md.get("annotations") or {}).get(CRON_SCHEDULED_TIME_ANNOTATION) or \
        md.get("creationTimestamp") or ""


def add_pincronjob_controller(manager: Manager, *, client: KubeClient,
                              name: str = "pincronjobs", identity: str = "pincompute",
                              clock: Callable[[], float] = time.time,
                              max_wait: float | None = None) -> Controller:
    """Add the PinCronJob controller to ``manager`` (the PinJob informer is shared)."""
    crons = manager.informer(client, PINCRONJOBS)
    jobs = manager.informer(client, PINJOBS)
    jobs.add_indexer(BY_CRON, index_by_controller_uid)
    reconciler = PinCronJobReconciler(
        client=client, crons=crons, jobs=jobs,
        recorder=event_recorder(client, operator=name.split("-")[0], identity=identity),
        clock=clock, max_wait=max_wait)
    controller = manager.controller(name, reconciler)
    controller.for_(crons)
    controller.owns(jobs, owner=PINCRONJOBS)
    return controller


__all__ = [
    "JOB_ALREADY_ACTIVE", "MISSED_SCHEDULE", "MISSED_SCHEDULES", "PinCronJobReconciler",
    "add_pincronjob_controller", "job_finished", "job_name", "manual_job_name",
]
