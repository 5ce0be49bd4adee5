"""The PinJob operator: run-to-finish pods, counted once, in a member cluster.

Theory of operation
-------------------
A level-triggered reconciler over the job's pods (informer, indexed by the
owner uid label).  Each pass:

1. **Counts finished pods exactly once** — Kubernetes' Job tracking with
   finalizers.  Every pod is created with :data:`JOB_TRACKING_FINALIZER`, so it
   cannot disappear before it is counted.  A pod seen finished for the first
   time is judged (failure-policy rule, per-index back-off) and its uid written
   into ``status.uncountedTerminatedPods`` *in the same status write* as any
   decision it caused (job failed, index failed, job restarted); only then is
   its finalizer removed; a later write moves released uids into the
   ``succeeded``/``failed`` counters.  A manager killed between any two steps
   finds the pod either still holding the finalizer and not yet recorded
   (judged again: same verdict), recorded (released and counted), or released
   and recorded (counted): never twice, never lost.
2. **Decides the job's phase** through the table of :mod:`.jobstate`.
3. **Creates pods** with deterministic names (``<job>-<n>`` non-indexed,
   ``<job>-<index>`` indexed, ``<job>-<group>-<index>`` for groups; a retry of an
   index adds ``-<attempt>``), so a lagging cache or a restarted manager meets
   AlreadyExists instead of making a duplicate.  Retries wait out an exponential
   back-off from the last failure.

Groups (JobSet's replicated jobs) are laid out as one index space; every pod of
a job with groups gets ``hostname`` ``<job>-<group>-<index>`` (its stable name,
``subdomain`` the job), the environment ``PINCOMPUTE_<GROUP>_HOSTS`` (the stable
names of each group's pods, comma-separated), ``PINCOMPUTE_JOB_GROUP`` and
``JOB_COMPLETION_INDEX`` (its index in the group), and the discovery file
``/etc/pincompute/job/hosts`` (``<ip> <stable name>`` lines, /etc/hosts form), a
ConfigMap ``<job>-hosts`` the operator rewrites as pods get addresses.  The node
agent writes a configMap volume once, when the pod starts, so today a pod sees
the addresses known then; it sees later ones when configMap volumes are updated
in place (issue 9, DESIGN §8).

``activeDeadlineSeconds`` counts active time only: ``status.activeSeconds``
accumulates across suspensions and ``startTime`` restarts at each resume.
``ttlSecondsAfterFinished`` deletes the job (its pods with it).  Time comes from
an injectable clock.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pincompute.kube import objects
from pincompute.kube.errors import AlreadyExists, Conflict, Forbidden, NotFound
from pincompute.kube.protocol import KubeClient, Preconditions
from pincompute.kube.resource import CONFIGMAPS, PODS, SERVICES
from pincompute.model.jobs import PinJobSpec
from pincompute.model.registry import PINJOBS
from pincompute.model.views import spec_view
from pincompute.model.wellknown import (
    INDEX_FAILURES_ANNOTATION,
    INDEX_LABEL,
    JOB_RESTART_LABEL,
    JOB_TRACKING_FINALIZER,
    OWNER_UID_LABEL,
)
from pincompute.runtime.cache import index_by_label
from pincompute.runtime.controller import Controller
from pincompute.runtime.events import EventRecorder
from pincompute.runtime.informer import SharedInformer
from pincompute.runtime.manager import Manager
from pincompute.runtime.reconciler import Request, Result

from .expectations import Expectations
from .jobgroups import (
    current_hosts,
    group_env,
    headless_service,
    hosts_configmap,
    hosts_text,
    mount_hosts,
    stable_name,
)
from .jobstate import (
    TERMINAL,
    JobEvent,
    JobPhase,
    Observed,
    Slot,
    active_seconds,
    as_int,
    backoff_delay,
    decide,
    epoch,
    exit_codes,
    failure_action,
    finished_at,
    format_index_set,
    group_slots,
    next_pod_name,
    parse_index_set,
    pod_outcome,
    transition,
)
from .operator import (
    BACK_OFF,
    CREATED,
    DELETED,
    FAILED,
    FAILED_CREATE,
    NORMAL,
    SUCCEEDED,
    WARNING,
    create_pod,
    event_recorder,
    observe,
    shard_of,
)
from .podtemplate import Backend, pod_for

Obj = dict[str, Any]
BY_OWNER = "owner-uid"
BY_JOB_NAME = "pinjob-name"
BY_LIVE_OWNER = "pinjob-live-owner"
SUSPENDED_REASON = "JobSuspended"
RESUMED_REASON = "JobResumed"
RESTARTED_REASON = "JobRestarted"


def _by_job_name(pod: Mapping[str, Any]) -> list[str]:
    """Pods we still hold (finalizer), by ``<namespace>/<job name>``: released when their job
    is gone or replaced by a new one of the same name."""
    ref = objects.controller_of(pod)
    if ref is None or ref.get("kind") != "PinJob" or not objects.has_finalizer(
            pod, JOB_TRACKING_FINALIZER):
        return []
    return [f"{objects.namespace_of(pod)}/{ref.get('name')}"]


def _by_live_owner(pod: Mapping[str, Any]) -> list[str]:
    """A job's pods that still matter to a pass, by owner uid: held (our finalizer) or not
    finished.  A finished, released pod of a job with no failure, restart or index has
    nothing left to tell (it is counted), so a pass need not look at it again."""
    value = (objects.meta(pod).get("labels") or {}).get(OWNER_UID_LABEL)
    if value is None or (pod_outcome(pod) is not None
                         and not objects.has_finalizer(pod, JOB_TRACKING_FINALIZER)):
        return []
    return [value]


def _rfc3339(t: float) -> str:
    return _dt.datetime.fromtimestamp(t, _dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(kw_only=True, slots=True)
class _Pass:
    """What one reconcile learned from the pods (before acting)."""

    active: list[Obj] = field(default_factory=list)
    release: list[Obj] = field(default_factory=list)
    """Finished pods to let go (recorded, or ignored by the failure policy)."""
    stale: list[Obj] = field(default_factory=list)
    """Pods of an earlier restart: released uncounted and deleted."""
    by_index: dict[int, list[Obj]] = field(default_factory=dict)
    failure: tuple[JobEvent, str] | None = None
    """A failure-policy verdict that fails the job, and why."""
    restart: str | None = None
    last_failure: float | None = None
    restarts: int = 0
    """Container restarts of active pods (restartPolicy OnFailure): failures too."""


FORBIDDEN_RETRY = 60.0
"""Seconds before a job whose writes were refused (Forbidden) is looked at again."""


class PinJobReconciler:
    """Reconciles PinJobs (see the module doc)."""

    def __init__(self, *, client: KubeClient, jobs: SharedInformer, pods: SharedInformer,
                 backend: Backend, recorder: EventRecorder,
                 clock: Callable[[], float] = time.time, backoff_base: float = 10.0,
                 backoff_cap: float = 360.0) -> None:
        self.client = client
        self.jobs = jobs
        self.pods = pods
        self.backend = backend
        self.recorder = recorder
        self.clock = clock
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap
        self.expectations = Expectations()
        self._next_name: dict[str, tuple[str, int]] = {}
        """Per job (``namespace/name``): its uid and the n from which to search a free name
        ``<job>-<n>`` (below it every name was taken, or handed out, when last looked).  A
        search start only: a restarted manager searches from 0; a non-indexed job's pods are
        kept from duplicating by the counts and expectations, not by their names."""

    # --- the pass ---

    async def reconcile(self, request: Request) -> Result | None:
        try:
            return await self._reconcile(request)
        except Forbidden as exc:
            # Not ours to act in: a namespace PinCompute has no rights in on a real cluster,
            # or one being deleted.  Retrying at once cannot help; say it on the job.
            job = self.jobs.get(request.name, namespace=request.namespace)
            if job is not None:
                self.recorder.record(job, WARNING, "NotAllowed", exc.message)
            return Result(requeue_after=FORBIDDEN_RETRY)

    async def _reconcile(self, request: Request) -> Result | None:
        job = self.jobs.get(request.name, namespace=request.namespace)
        live_uid = None if job is None or objects.is_deleting(job) else objects.uid_of(job)
        for pod in self.pods.by_index(BY_JOB_NAME, f"{request.namespace}/{request.name}"):
            ref = objects.controller_of(pod) or {}
            if ref.get("uid") != live_uid:  # its job is gone: nothing will count it
                await self._release(pod)
        if job is None or live_uid is None:
            self._next_name.pop(f"{request.namespace}/{request.name}", None)
            return None
        try:
            return await self._sync(job)
        except Conflict:
            return Result(requeue=True)  # the job moved on: look again from the cache

    async def _sync(self, job: Obj) -> Result | None:
        now = self.clock()
        shard = shard_of(job)
        spec = spec_view(PinJobSpec, shard)
        old_status = job.get("status") or {}
        status: Obj = objects.deepcopy(old_status)
        phase = JobPhase(status.get("phase") or JobPhase.PENDING)
        restarts = as_int(status.get("restarts"))
        slots = self._slots(spec)
        pods = self._pods_to_look_at(job, status, restarts=restarts, slots=slots)
        seen = self._classify(job, spec, status, pods, restarts=restarts)

        updated = objects.deepcopy(job)
        updated["status"] = status
        requeue: float | None = None

        # --- decide the phase --------------------------------------------------------------------
        event, message = decide(spec, status, Observed(
            active=len(seen.active), restarts=seen.restarts, failure=seen.failure,
            restart=seen.restart), phase=phase, now=now, slots=slots)
        if event is JobEvent.RESTART:
            status["restarts"] = restarts + 1
            for key in ("succeeded", "failed", "completedIndexes", "failedIndexes",
                        "uncountedTerminatedPods"):
                status.pop(key, None)
        new_phase, reason = transition(phase, event) if event else (phase, None)
        if reason is not None:
            self._enter(updated, spec, phase=new_phase, event=event, reason=reason,
                        message=message, now=now)
        status["phase"] = new_phase
        status["active"] = len(seen.active)
        status["ready"] = sum(1 for p in seen.active if objects.condition_true(p, "Ready"))
        if slots and any(s.group for s in slots):
            await self._publish_hosts(updated, slots, seen)
        observe(updated, status)
        written = await self._write_status(job, status)

        # --- act: release finished pods, remove pods no longer wanted ---------------------------
        released = [p for p in seen.release if await self._release(p)]
        for pod in seen.stale:
            await self._release(pod)
            await self._delete(pod)
        if new_phase in TERMINAL or new_phase is JobPhase.SUSPENDED or \
                event is JobEvent.RESTART:
            for pod in seen.active:
                await self._release(pod)
                await self._delete(pod)
        if released:
            self._count(status, released)
            written = await self._write_status(written, status)

        if new_phase in TERMINAL:
            return await self._expire(written, spec, now=now)
        if new_phase is JobPhase.SUSPENDED or event is JobEvent.RESTART:
            return Result(requeue_after=0.0) if event is JobEvent.RESTART else None
        requeue = await self._create_pods(written, spec, status, seen, pods, slots=slots,
                                          now=now,
                                          restarts=as_int(status.get("restarts")))
        deadline = spec.active_deadline_seconds
        if deadline is not None:
            left = deadline - active_seconds(before=float(status.get("activeSeconds") or 0.0),
                                             started=epoch(status.get("startTime")), now=now)
            requeue = min(requeue, max(left, 0.0)) if requeue is not None else max(left, 0.0)
        return Result(requeue_after=requeue) if requeue is not None else None

    # --- observing ---

    @staticmethod
    def _slots(spec: PinJobSpec) -> list[Slot]:
        if spec.groups:
            return group_slots([(g.name, g.replicas) for g in spec.groups])
        if spec.completion_mode == "Indexed" and spec.completions is not None:
            return [Slot(i, None, i) for i in range(spec.completions)]
        return []

    def _pods_to_look_at(self, job: Obj, status: Obj, *, restarts: int,
                         slots: list[Slot]) -> list[Obj]:
        """The job's pods a pass must see.  Every pod, when finished pods still tell
        something: the last failure (back-off), the pods of each index, stale pods of an
        earlier restart.  Otherwise only the held or unfinished ones (:func:`_by_live_owner`),
        so a pass costs O(parallelism), not O(pods the job ever ran)."""
        uid = objects.uid_of(job)
        uncounted = status.get("uncountedTerminatedPods") or {}
        if slots or restarts or as_int(status.get("failed")) or uncounted.get("failed"):
            return self.pods.by_index(BY_OWNER, uid)
        return self.pods.by_index(BY_LIVE_OWNER, uid)

    def _classify(self, job: Obj, spec: PinJobSpec, status: Obj, pods: list[Obj], *,
                  restarts: int) -> _Pass:
        seen = _Pass()
        uncounted = status.setdefault("uncountedTerminatedPods", {})
        ok = set(uncounted.get("succeeded") or ())
        bad = set(uncounted.get("failed") or ())
        completed = parse_index_set(status.get("completedIndexes"))
        failed_indexes = parse_index_set(status.get("failedIndexes"))
        sidecars = frozenset(c.get("name") for c in
                             shard_of(job)["spec"]["template"]["spec"].get("containers") or ()
                             if c.get("type") == "sidecar")
        policy = spec.failure_policy
        per_index = spec.backoff_limit_per_index
        for pod in pods:
            labels = objects.meta(pod).get("labels") or {}
            if labels.get(INDEX_LABEL) is not None:
                seen.by_index.setdefault(as_int(labels[INDEX_LABEL]), []).append(pod)
            if as_int(labels.get(JOB_RESTART_LABEL)) != restarts:
                seen.stale.append(pod)
                continue
            uid = objects.uid_of(pod)
            held = objects.has_finalizer(pod, JOB_TRACKING_FINALIZER)
            if self.expectations.released(uid, still_held=held):
                continue  # released by an earlier pass the cache has not caught up with
            outcome = pod_outcome(pod)
            if outcome is None and held and objects.is_deleting(pod):
                outcome = "Failed"  # deleted by someone else (drain, eviction): a failure
            if outcome == "Failed":
                finished = epoch(finished_at(pod))
                if finished is not None:
                    seen.last_failure = max(seen.last_failure or 0.0, finished)
            if outcome is None:
                if not objects.is_deleting(pod):
                    seen.active.append(pod)
                    seen.restarts += sum(int(c.get("restartCount") or 0) for c in (
                        pod.get("status") or {}).get("containerStatuses") or ())
                continue
            if not held:
                continue  # counted (or ignored) already
            if uid in ok or uid in bad:
                seen.release.append(pod)
                continue
            index = as_int(labels.get(INDEX_LABEL), -1)
            if outcome == "Succeeded":
                ok.add(uid)
                if index >= 0:
                    completed.add(index)
                seen.release.append(pod)
                continue
            action = failure_action(policy, pod, sidecars=sidecars)
            if action == "Ignore":
                seen.release.append(pod)
                continue
            if action == "RestartJob":
                max_restarts = policy.max_restarts if policy is not None else 0
                if restarts < max_restarts:
                    seen.restart = f"pod {objects.name_of(pod)} failed (RestartJob rule)"
                    continue  # stale after the restart: released uncounted
                seen.failure = (JobEvent.FAIL_MAX_RESTARTS,
                                f"pod {objects.name_of(pod)} failed after {restarts} "
                                f"restarts (maxRestarts {max_restarts})")
            elif action == "FailJob":
                seen.failure = (JobEvent.FAIL_POLICY,
                                f"pod {objects.name_of(pod)} failed with exit codes "
                                f"{_codes(pod)}: a FailJob rule matched")
            elif index >= 0 and (action == "FailIndex" or (
                    per_index is not None and _index_failures(pod) + 1 > per_index)):
                failed_indexes.add(index)
            bad.add(uid)
            seen.release.append(pod)
        uncounted["succeeded"] = sorted(ok)
        uncounted["failed"] = sorted(bad)
        if completed:
            status["completedIndexes"] = format_index_set(completed)
        if failed_indexes:
            status["failedIndexes"] = format_index_set(failed_indexes)
        return seen

    # --- acting ---

    def _enter(self, job: Obj, spec: PinJobSpec, *, phase: JobPhase, event: JobEvent | None,
               reason: str, message: str, now: float) -> None:
        status = job["status"]
        generation = objects.meta(job).get("generation")
        if event is JobEvent.START or event is JobEvent.RESUME:
            status["startTime"] = _rfc3339(now)
        if event is JobEvent.SUSPEND and status.get("startTime"):
            status["activeSeconds"] = active_seconds(
                before=float(status.get("activeSeconds") or 0.0),
                started=epoch(status.get("startTime")), now=now)
            status.pop("startTime", None)
        if phase is JobPhase.SUSPENDED or event is JobEvent.RESUME:
            objects.set_condition(job, "Suspended", phase is JobPhase.SUSPENDED, reason=reason,
                                  message=message, observed_generation=generation)
            self.recorder.record(job, NORMAL, "Suspended" if phase is JobPhase.SUSPENDED
                                 else "Resumed", message)
        elif phase is JobPhase.SUCCEEDED:
            status["completionTime"] = _rfc3339(now)
            objects.set_condition(job, "Complete", True, reason=reason, message=message,
                                  observed_generation=generation)
            self.recorder.record(job, NORMAL, SUCCEEDED, f"{reason}: {message}")
        elif phase is JobPhase.FAILED:
            objects.set_condition(job, "Failed", True, reason=reason, message=message,
                                  observed_generation=generation)
            self.recorder.record(job, WARNING, FAILED, f"{reason}: {message}")
        elif event is JobEvent.RESTART:
            self.recorder.record(job, WARNING, RESTARTED_REASON, message)

    async def _create_pods(self, job: Obj, spec: PinJobSpec, status: Obj, seen: _Pass,
                           pods: list[Obj], *, slots: list[Slot], now: float,
                           restarts: int) -> float | None:
        failed = as_int(status.get("failed"))
        uncounted = status.get("uncountedTerminatedPods") or {}
        failed += len(uncounted.get("failed") or ())
        if seen.last_failure is not None and failed:
            wait = seen.last_failure + backoff_delay(
                failed, base=self.backoff_base, cap=self.backoff_cap) - now
            if wait > 0:
                self.recorder.record(job, NORMAL, BACK_OFF,
                                     f"{failed} failed pods: next retry in {wait:.0f}s")
                return wait
        uid = objects.uid_of(job)
        # A pod this operator created holds the finalizer until a pass has seen it finish:
        # the pods looked at include it once the cache has it.
        if self.expectations.creations_pending(uid, (objects.name_of(p) for p in pods)):
            return 1.0  # the pods made by the last pass are not in the cache yet
        wanted = self._wanted(job, spec, status, seen, slots=slots)
        name = objects.name_of(job)
        shard_spec = shard_of(job)["spec"]
        groups = {g["name"]: g for g in shard_spec.get("groups") or ()}
        tolerations = (shard_spec.get("placement") or {}).get("tolerations")
        if wanted and groups and self.backend == "kubernetes":
            with contextlib.suppress(AlreadyExists):  # DNS for <stable name>.<job>
                await self.client.create(SERVICES, headless_service(job))
        for slot, pod_name, failures in wanted:
            template = shard_spec["template"]
            if slot is not None and slot.group is not None:
                template = groups[slot.group].get("template") or template
            pod = pod_for(template, name=pod_name, namespace=objects.namespace_of(job),
                          owner=job, backend=self.backend, tier=spec.tier,
                          env=self._env(job, spec, slot), tolerations=tolerations,
                          index=None if slot is None else slot.index,
                          role=None if slot is None else slot.group,
                          labels={JOB_RESTART_LABEL: str(restarts)},
                          annotations=({INDEX_FAILURES_ANNOTATION: str(failures)}
                                       if slot is not None else None),
                          hostname=(stable_name(name, slot)
                                    if slot is not None and slot.group else None),
                          subdomain=name if slot is not None and slot.group else None)
            if slot is not None and slot.group is not None:
                mount_hosts(pod, name)
            pod["metadata"]["finalizers"] = [JOB_TRACKING_FINALIZER]
            try:
                await create_pod(self.client, pod)  # platform sidecars are injected here
            except AlreadyExists:
                self.expectations.created(uid, pod_name)
                continue  # made by a pass the cache has not shown us yet
            except Exception as e:
                self.recorder.record(job, WARNING, FAILED_CREATE, f"{pod_name}: {e}")
                raise
            self.expectations.created(uid, pod_name)
            self.recorder.record(job, NORMAL, CREATED, f"Created pod: {pod_name}")
        return None

    def _wanted(self, owner: Obj, spec: PinJobSpec, status: Obj, seen: _Pass, *,
                slots: list[Slot]) -> list[tuple[Slot | None, str, int]]:
        """The pods to create now: (slot, name, failures of its index so far)."""
        job = objects.name_of(owner)
        out: list[tuple[Slot | None, str, int]] = []
        if slots:
            completed = parse_index_set(status.get("completedIndexes"))
            failed = parse_index_set(status.get("failedIndexes"))
            running = {as_int((objects.meta(p).get("labels") or {}).get(INDEX_LABEL), -1)
                       for p in seen.active}
            room = len(slots) if spec.groups else spec.parallelism - len(seen.active)
            for slot in slots:
                if len(out) >= room:
                    break
                if slot.index in completed or slot.index in failed or slot.index in running:
                    continue
                mine = seen.by_index.get(slot.index, [])
                if any(pod_outcome(p) is None for p in mine):
                    continue  # still stopping (a deleted pod of an earlier restart)
                base = (f"{job}-{slot.group}-{slot.local}" if slot.group
                        else f"{job}-{slot.index}")
                failures = max((_index_failures(p) + (1 if pod_outcome(p) == "Failed" else 0)
                                for p in mine), default=0)
                name = next_pod_name(base, (objects.name_of(p) for p in mine))
                out.append((slot, name, failures))
            return out
        uncounted = status.get("uncountedTerminatedPods") or {}
        succeeded = as_int(status.get("succeeded")) + len(uncounted.get("succeeded") or ())
        if spec.completions is None:
            want = spec.parallelism if succeeded == 0 else 0
        else:
            want = min(spec.parallelism, spec.completions - succeeded)
        # The lowest free names ``<job>-<n>``, searched from where the last pass stopped
        # (names are looked up in the cache: O(pods created), not O(pods of the job)).
        uid = objects.uid_of(owner)
        namespace = objects.namespace_of(owner)
        key = f"{namespace}/{job}"
        hint_uid, n = self._next_name.get(key, (uid, 0))
        if hint_uid != uid:
            n = 0  # a new job of the same name
        for _ in range(max(0, want - len(seen.active))):
            while self.pods.get(f"{job}-{n}", namespace=namespace) is not None:
                n += 1
            out.append((None, f"{job}-{n}", 0))
            n += 1
        if out:
            self._next_name[key] = (uid, n)
        return out

    @staticmethod
    def _env(job: Obj, spec: PinJobSpec, slot: Slot | None) -> dict[str, str]:
        name = objects.name_of(job)
        env = {"PINCOMPUTE_JOB_NAME": name}
        if slot is not None and slot.group is not None:
            env.update(group_env(name, [(g.name, g.replicas) for g in spec.groups or ()], slot))
        elif slot is not None:
            env["JOB_COMPLETION_INDEX"] = str(slot.local)
        return env

    async def _publish_hosts(self, job: Obj, slots: list[Slot], seen: _Pass) -> None:
        """Rewrite the discovery ConfigMap when the addresses changed (``status.hosts``)."""
        name = objects.name_of(job)
        hosts = current_hosts(name, slots, seen.by_index)
        status = job["status"]
        if status.get("hosts") is not None and hosts == status["hosts"]:
            return
        cm = hosts_configmap(job, hosts_text(hosts, slots, name))
        try:
            await self.client.create(CONFIGMAPS, cm)
        except AlreadyExists:
            await self.client.patch(CONFIGMAPS, cm["metadata"]["name"], {"data": cm["data"]},
                                    namespace=objects.namespace_of(job))
        status["hosts"] = hosts

    def _count(self, status: Obj, released: list[Obj]) -> None:
        uncounted = status.setdefault("uncountedTerminatedPods", {})
        ok = set(uncounted.get("succeeded") or ())
        bad = set(uncounted.get("failed") or ())
        for pod in released:
            uid = objects.uid_of(pod)
            if uid in ok:
                ok.discard(uid)
                status["succeeded"] = as_int(status.get("succeeded")) + 1
            elif uid in bad:
                bad.discard(uid)
                status["failed"] = as_int(status.get("failed")) + 1
        uncounted["succeeded"] = sorted(ok)
        uncounted["failed"] = sorted(bad)

    async def _write_status(self, stored: Obj, status: Obj) -> Obj:
        """Write ``status`` over the job as last ``stored`` (the cache's object, or what the
        last write returned) when it differs; returns the job as stored now. A conflict
        raises: the pass is retried from the cache."""
        new = dict(status)
        uncounted = new.get("uncountedTerminatedPods") or {}
        if not uncounted.get("succeeded") and not uncounted.get("failed"):
            new.pop("uncountedTerminatedPods", None)
        if new == (stored.get("status") or {}):
            return stored
        return await self.client.update_status(PINJOBS, {**stored, "status": new})

    async def _release(self, pod: Obj) -> bool:
        """Remove our finalizer from ``pod``; True when it is gone or released."""
        if not objects.has_finalizer(pod, JOB_TRACKING_FINALIZER):
            return True
        remaining = [f for f in objects.meta(pod).get("finalizers") or ()
                     if f != JOB_TRACKING_FINALIZER]
        for attempt in range(3):
            try:
                await self.client.patch(
                    PODS, objects.name_of(pod),
                    {"metadata": {"finalizers": remaining or None,
                                  "resourceVersion": objects.meta(pod)["resourceVersion"]}},
                    namespace=objects.namespace_of(pod))
                self.expectations.release(objects.uid_of(pod))
                return True
            except NotFound:
                return True
            except Conflict:
                if attempt == 2:
                    raise
                try:
                    pod = await self.client.get(PODS, objects.name_of(pod),
                                                namespace=objects.namespace_of(pod))
                except NotFound:
                    return True
                remaining = [f for f in objects.meta(pod).get("finalizers") or ()
                             if f != JOB_TRACKING_FINALIZER]
                if len(remaining) == len(objects.meta(pod).get("finalizers") or ()):
                    return True
        return False

    async def _delete(self, pod: Obj) -> None:
        if objects.is_deleting(pod):
            return
        with contextlib.suppress(NotFound):
            await self.client.delete(PODS, objects.name_of(pod),
                                     namespace=objects.namespace_of(pod),
                                     preconditions=Preconditions(uid=objects.uid_of(pod)))

    async def _expire(self, job: Obj, spec: PinJobSpec, *, now: float) -> Result | None:
        """``ttlSecondsAfterFinished``: delete the job that long after it finished."""
        ttl = spec.ttl_seconds_after_finished
        if ttl is None:
            return None
        status = job.get("status") or {}
        finished = status.get("completionTime") or next(
            (c.get("lastTransitionTime") for c in status.get("conditions") or ()
             if c.get("type") == "Failed" and c.get("status") == "True"), None)
        at = epoch(finished)
        if at is None:
            return None
        if now < at + ttl:
            return Result(requeue_after=at + ttl - now)
        self.recorder.record(job, NORMAL, DELETED,
                             f"deleted {ttl}s after it finished (ttlSecondsAfterFinished)")
        with contextlib.suppress(NotFound):
            await self.client.delete(PINJOBS, objects.name_of(job),
                                     namespace=objects.namespace_of(job),
                                     preconditions=Preconditions(uid=objects.uid_of(job)),
                                     propagation_policy="Background")
        return None


# --- pod helpers ---------------------------------------------------------------------------------

def _codes(pod: Mapping[str, Any]) -> str:
    return ",".join(f"{k}={v}" for k, v in sorted(exit_codes(pod).items())) or "(none)"


def _index_failures(pod: Mapping[str, Any]) -> int:
    return as_int((objects.meta(pod).get("annotations") or {}).get(INDEX_FAILURES_ANNOTATION))


# --- wiring --------------------------------------------------------------------------------------

def add_pinjob_controller(manager: Manager, *, client: KubeClient, backend: Backend,
                          name: str = "pinjobs", identity: str = "pincompute",
                          clock: Callable[[], float] = time.time, backoff_base: float = 10.0,
                          backoff_cap: float = 360.0, workers: int = 4) -> Controller:
    """Add the PinJob controller to ``manager`` (the pods informer is shared)."""
    jobs = manager.informer(client, PINJOBS)
    pods = manager.informer(client, PODS)
    pods.add_indexer(BY_OWNER, index_by_label(OWNER_UID_LABEL))
    pods.add_indexer(BY_JOB_NAME, _by_job_name)
    pods.add_indexer(BY_LIVE_OWNER, _by_live_owner)
    reconciler = PinJobReconciler(
        client=client, jobs=jobs, pods=pods, backend=backend,
        recorder=event_recorder(client, operator=name.split("-")[0], identity=identity),
        clock=clock, backoff_base=backoff_base, backoff_cap=backoff_cap)
    controller = manager.controller(name, reconciler, workers=workers)
    controller.for_(jobs)

    def to_job(pod: Obj) -> list[Request]:
        ref = objects.controller_of(pod)
        if ref is None or ref.get("kind") != "PinJob":
            return []
        return [Request(objects.namespace_of(pod), ref["name"])]

    controller.watches(pods, to_job)
    return controller


__all__ = ["BY_OWNER", "PinJobReconciler", "add_pinjob_controller", "pod_outcome"]
