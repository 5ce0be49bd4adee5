"""The PinTrainingJob operator: a gang of pods with roles, a rendezvous, restarts as one.

Theory of operation
-------------------
A PinTrainingJob (:mod:`pincompute.model.training`) runs one pod per replica of
each role, named ``<job>-<role>-<index>`` — the same names in every attempt, so
a restarted manager cannot duplicate a pod (creating one that exists is
``AlreadyExists``) — all of one pod group
(:class:`~pincompute.member.podtemplate.PodGroup`, named by the job's uid,
``minMember`` the gang's), so the scheduler's Gang plugin places them together or
not at all.  Each pod carries its role, index and *attempt* (label
``pincompute.io/attempt``) and the rendezvous environment of :mod:`.rendezvous` —
``MASTER_ADDR``/``MASTER_PORT``/``WORLD_SIZE``/``RANK``/``LOCAL_RANK`` or
``TF_CONFIG`` — whose peer addresses the pods read, when their containers start,
from the job's rendezvous ConfigMap, written here as soon as the pods' IPs are
known (why this way: see :mod:`.rendezvous`).

Each reconcile reads the job and its pods from the informers, reduces them to
:class:`~.trainingphases.Facts` and follows the phase table of
:mod:`.trainingphases`: write the status first (phase, attempt, per-role counts,
with the object's resourceVersion — a stale read conflicts and is retried), then
act (create the attempt's missing pods, delete an older attempt's, stop the
running ones of a finished job), then publish the rendezvous.  Failures are
judged per role (:func:`~.trainingphases.retryable`): with ``ExitCode`` a pod
killed by a signal (exit code 128 and above, or one of the role's
``retryableExitCodes``) ends the attempt and the whole gang is recreated, up to
``backoffLimit`` times, while any other exit code fails the job; ``Never`` fails
it on any failure; ``OnFailure``/``Always`` containers are restarted in place by
the node, and those restarts count against ``backoffLimit``.  A pod lost without
an exit code (deleted, evicted, its node gone) is always retryable.  Success is
the master's/chief's (worker 0 without one), or every worker's (``successPolicy:
AllWorkers``); finished pods are kept for their logs, running ones are deleted.
Every decision is an Event on the job.

Deadlines (``activeDeadlineSeconds``, counted from when the whole gang first ran)
and ``ttlSecondsAfterFinished`` are timers: the reconcile asks to be called back
when one is due.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pincompute.kube import objects
from pincompute.kube.errors import AlreadyExists, Conflict, NotFound
from pincompute.kube.protocol import KubeClient
from pincompute.kube.resource import CONFIGMAPS, PODS
from pincompute.model.registry import PINTRAININGJOBS
from pincompute.model.training import POD_RESTART_POLICY, PinTrainingJobSpec
from pincompute.model.views import spec_view
from pincompute.model.wellknown import (
    ATTEMPT_LABEL,
    INDEX_LABEL,
    ROLE_LABEL,
)
from pincompute.runtime.controller import Controller
from pincompute.runtime.events import EventRecorder
from pincompute.runtime.informer import SharedInformer
from pincompute.runtime.manager import Manager
from pincompute.runtime.reconciler import Request, Result

from . import rendezvous as rdv
from .operator import (
    CREATED,
    DELETED,
    FAILED,
    FAILED_CREATE,
    NORMAL,
    OWNER_INDEX,
    SUCCEEDED,
    WARNING,
    close_with_manager,
    create_pod,
    event_recorder,
    index_owned,
    is_controlled_by,
    observe,
    shard_of,
    workload_labels,
)
from .podtemplate import Backend, PodGroup, pod_for
from .trainingphases import TERMINAL, Action, Facts, Observation, Phase, Step, retryable
from .trainingphases import observe as observe_facts
from .trainingphases import step as next_step

Obj = dict[str, Any]

RESTARTING = "Restarting"
"""Event reason: the gang is being restarted (Warning; the message names the pod and code)."""
SUSPENDED = "Suspended"
RESUMED = "Resumed"
KIND_VALUE = PINTRAININGJOBS.kind.lower()
"""The ``pincompute.io/workload-kind`` value of the pods and ConfigMaps made here (as
:func:`~.operator.workload_labels` writes it)."""
_TRAINING_ROLES = ("master", "chief", "worker")
"""Roles the ``AllWorkers`` success policy waits for (ps and evaluators run until stopped)."""
_IN_PLACE = ("OnFailure", "Always")


# --- reading pods ----------------------------------------------------------------------------

def exit_code(pod: Mapping[str, Any]) -> int | None:
    """The failing exit code of a terminated pod: its first container that exited non-zero
    (``None`` when none did — evicted, its node lost)."""
    for c in (pod.get("status") or {}).get("containerStatuses") or ():
        terminated = (c.get("state") or {}).get("terminated") or {}
        code = terminated.get("exitCode")
        if code:
            return int(code)
    return None


def _labels(pod: Mapping[str, Any]) -> Mapping[str, str]:
    return objects.meta(pod).get("labels") or {}


def _attempt_of(pod: Mapping[str, Any]) -> int:
    try:
        return int(_labels(pod).get(ATTEMPT_LABEL, "0"))
    except ValueError:
        return 0


def _phase_of(pod: Mapping[str, Any]) -> str:
    return (pod.get("status") or {}).get("phase") or "Pending"


def _ready(pod: Mapping[str, Any]) -> bool:
    return objects.condition_true(pod, "Ready")


@dataclass(slots=True)
class Snapshot:
    """The job's pods as this reconcile sees them, sorted by attempt."""

    current: dict[tuple[str, int], Obj] = field(default_factory=dict)
    stale: list[Obj] = field(default_factory=list)
    newer: list[Obj] = field(default_factory=list)
    all: list[Obj] = field(default_factory=list)

    @classmethod
    def of(cls, pods: list[Obj], *, attempt: int) -> Snapshot:
        snap = cls(all=pods)
        for pod in pods:
            a = _attempt_of(pod)
            if a < attempt:
                snap.stale.append(pod)
            elif a > attempt:
                snap.newer.append(pod)
            else:
                labels = _labels(pod)
                try:
                    key = (labels.get(ROLE_LABEL, ""), int(labels.get(INDEX_LABEL, "-1")))
                except ValueError:
                    snap.stale.append(pod)  # ours but no member: not kept running
                    continue
                snap.current[key] = pod
        return snap

    def drop_extra(self, keys: set[tuple[str, int]]) -> None:
        """Pods of the attempt that are no member (the spec lost replicas) count as stale."""
        for key in [k for k in self.current if k not in keys]:
            self.stale.append(self.current.pop(key))


# --- the reconciler --------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Judgement:
    """The facts, and in words what decided each that can end an attempt."""

    facts: Facts
    permanent: str = ""
    retry: str = ""
    """``pod <name> (<role> <index>) exited with <code>``, or how it was lost."""
    success: str = ""
    deadline: str = ""
    in_place: str = ""

    def message(self, observation: Observation, *, backoff_limit: int) -> str:
        """Why the job takes the step ``observation`` leads to."""
        Ob = Observation
        if observation is Ob.SUCCESS:
            return self.success
        if observation is Ob.PERMANENT_FAILURE:
            return f"{self.permanent} (not retryable)"
        if observation is Ob.DEADLINE_EXCEEDED:
            return self.deadline
        if observation is Ob.BACKOFF_EXCEEDED:
            why = self.in_place if self.facts.in_place_exhausted else self.retry
            return f"{why}; backoffLimit ({backoff_limit}) reached"
        if observation is Ob.RETRYABLE_FAILURE:
            return self.retry
        return ""


class TrainingJobReconciler:
    def __init__(self, *, client: KubeClient, backend: Backend, jobs: SharedInformer,
                 pods: SharedInformer, recorder: EventRecorder,
                 clock: Callable[[], float] = time.time) -> None:
        self.client = client
        self.backend = backend
        self.jobs = jobs
        self.pods = pods
        self.recorder = recorder
        self.clock = clock

    async def reconcile(self, request: Request) -> Result | None:
        job = self.jobs.get(request.name, namespace=request.namespace)
        if job is None or objects.is_deleting(job):
            return None
        shard = shard_of(job)
        spec = spec_view(PinTrainingJobSpec, shard)
        status = job.get("status") or {}
        phase = _phase(status.get("phase"))
        if phase in TERMINAL and (due := self._expiry(spec, status)) is not None and due <= 0:
            with contextlib.suppress(NotFound):
                await self.client.delete(PINTRAININGJOBS, request.name,
                                         namespace=request.namespace)
            return None
        attempt = int(status.get("restarts") or 0)
        pods = [p for p in self.pods.by_index(OWNER_INDEX, objects.uid_of(job))
                if is_controlled_by(p, job)]
        snap = Snapshot.of(pods, attempt=attempt)
        if snap.newer:
            return Result(requeue_after=0.2)  # our own status write is not in the cache yet
        members = rdv.members(spec)
        snap.drop_extra({m.key for m in members})
        # Read, not watched: the operator is its only writer, and a cluster-wide ConfigMap
        # watch would need a right the member controller does not have (docs/security.md).
        try:
            cm = await self.client.get(CONFIGMAPS, rdv.configmap_name(request.name),
                                       namespace=request.namespace)
        except NotFound:
            cm = None
        judgement = self._judge(job, spec, status, phase, attempt, members, snap, cm)
        observation = observe_facts(judgement.facts)
        step = next_step(phase, observation)
        new_attempt = attempt + (1 if step.restart else 0)
        moved = step.phase != phase or step.restart or not status
        message = judgement.message(observation, backoff_limit=spec.backoff_limit)
        new_status = self._status(job, status, step, new_attempt, members, snap,
                                  message=message if moved else None)
        if new_status != status:
            updated = objects.deepcopy(job)
            updated["status"] = new_status
            try:
                await self.client.update_status(PINTRAININGJOBS, updated)
            except Conflict:
                return Result(requeue=True)
            except NotFound:
                return None
            if moved:
                self._announce(job, phase, step, observation, message, new_attempt,
                               spec.backoff_limit)
        if step.restart:
            return None  # the status event brings the next step: delete the attempt's pods
        await self._act(job, shard, spec, step, new_attempt, members, snap, cm)
        if step.phase in (Phase.CREATED, Phase.RUNNING):
            await self._publish(job, spec, new_attempt, snap, cm)
        return self._timer(spec, new_status)

    # -- judging ------------------------------------------------------------------------------

    def _judge(self, job: Mapping[str, Any], spec: PinTrainingJobSpec,
               status: Mapping[str, Any], phase: Phase, attempt: int,
               members: list[rdv.Member], snap: Snapshot,
               cm: Mapping[str, Any] | None) -> Judgement:
        permanent = retry = ""
        in_place = 0
        roles = {name: getattr(spec.roles, name) for name in {m.role for m in members}}
        live = phase in (Phase.CREATED, Phase.RUNNING)
        for m in members:
            pod = snap.current.get(m.key)
            role = roles[m.role]
            if pod is None:
                if phase is Phase.RUNNING:  # every pod had run: this one was lost
                    name = rdv.pod_name(objects.name_of(job), m.role, m.index)
                    retry = retry or f"pod {name} ({m.role} {m.index}) was lost"
                continue
            name = objects.name_of(pod)
            pod_phase = _phase_of(pod)
            if pod_phase == "Failed":
                code = exit_code(pod)
                what = (f"pod {name} ({m.role} {m.index}) exited with {code}" if code is not None
                        else f"pod {name} ({m.role} {m.index}) failed: "
                             f"{(pod.get('status') or {}).get('reason') or 'no exit code'}")
                extra = frozenset(role.retryable_exit_codes or ())
                if retryable(code, policy=role.restart_policy, extra=extra):
                    retry = retry or what
                else:
                    permanent = permanent or what
            elif objects.is_deleting(pod) and live and pod_phase != "Succeeded":
                retry = retry or f"pod {name} ({m.role} {m.index}) was deleted"
            if role.restart_policy in _IN_PLACE:
                in_place += sum(int(c.get("restartCount") or 0) for c in
                                (pod.get("status") or {}).get("containerStatuses") or ())
        if live and not retry and cm is not None:
            # A member whose address the others were given is gone (recreated elsewhere):
            # the rendezvous is broken even if the new pod looks healthy.
            announced = rdv.addresses_of(cm.get("data"), attempt=attempt)
            ips = {ip for p in snap.current.values()
                   if not objects.is_deleting(p) and (ip := (p.get("status") or {}).get("podIP"))}
            if gone := announced - ips:
                retry = f"the member at {', '.join(sorted(gone))} is gone"
        coordinator = rdv.coordinator(spec)
        if spec.success_policy == "AllWorkers":
            targets = [m.key for m in members if m.role in _TRAINING_ROLES] or [coordinator]
            success_text = "every master, chief and worker pod succeeded"
        else:
            targets = [coordinator]
            success_text = (f"pod {rdv.pod_name(objects.name_of(job), *coordinator)} "
                            f"({coordinator[0]} {coordinator[1]}) succeeded")
        success = all(k in snap.current and _phase_of(snap.current[k]) == "Succeeded"
                      for k in targets)
        deadline = spec.active_deadline_seconds
        start = status.get("startTime")
        deadline_exceeded = bool(deadline and start
                                 and self.clock() - _epoch(start) >= deadline)
        running = all(m.key in snap.current
                      and _phase_of(snap.current[m.key]) in ("Running", "Succeeded")
                      for m in members)
        facts = Facts(
            suspend=spec.suspend, success=success, permanent_failure=bool(permanent),
            deadline_exceeded=deadline_exceeded, retryable_failure=bool(retry),
            restarts_left=attempt < spec.backoff_limit,
            in_place_exhausted=in_place > 0 and attempt + in_place > spec.backoff_limit,
            any_pods=bool(snap.all), stale_pods=bool(snap.stale),
            missing_pods=any(m.key not in snap.current for m in members), all_running=running)
        return Judgement(facts, permanent=permanent, retry=retry, success=success_text,
                         deadline=f"the job ran longer than activeDeadlineSeconds ({deadline}s)",
                         in_place=f"containers restarted {in_place} times in place")

    # -- status and events --------------------------------------------------------------------

    def _status(self, job: Mapping[str, Any], status: Mapping[str, Any], step: Step,
                attempt: int, members: list[rdv.Member], snap: Snapshot, *,
                message: str | None) -> Obj:
        """The status after ``step``: phase, attempt, per-role counts, times; ``message``
        replaces the old one when the phase moved (``None``: keep it)."""
        out: Obj = dict(status)
        out["phase"] = step.phase.value
        out["restarts"] = attempt
        roles: dict[str, Obj] = {}
        for m in members:
            counts = roles.setdefault(m.role, {"active": 0, "succeeded": 0, "failed": 0,
                                               "ready": 0})
            pod = snap.current.get(m.key)
            if pod is None:
                continue
            pod_phase = _phase_of(pod)
            if pod_phase == "Succeeded":
                counts["succeeded"] += 1
            elif pod_phase == "Failed":
                counts["failed"] += 1
            else:
                counts["active"] += 1
                counts["ready"] += _ready(pod)
        out["roles"] = roles
        if step.phase is Phase.RUNNING and not out.get("startTime"):
            out["startTime"] = objects.now()
        if step.phase in TERMINAL and not out.get("completionTime"):
            out["completionTime"] = objects.now()
        if message:
            out["message"] = message
        elif message is not None:
            out.pop("message", None)
        observe(dict(job), out)
        return out

    def _announce(self, job: Mapping[str, Any], phase: Phase, step: Step,
                  observation: Observation, message: str, attempt: int, limit: int) -> None:
        record = self.recorder.record
        if step.restart:
            record(job, WARNING, RESTARTING,
                   f"{message}: restarting the gang (restart {attempt} of {limit})")
        elif step.phase is Phase.SUCCEEDED:
            record(job, NORMAL, SUCCEEDED, f"Job succeeded: {message}")
        elif step.phase is Phase.FAILED:
            record(job, WARNING, FAILED, f"{observation.value}: {message}")
        elif step.phase is Phase.SUSPENDED:
            record(job, NORMAL, SUSPENDED, "Job suspended: its pods are deleted")
        elif phase is Phase.SUSPENDED:
            record(job, NORMAL, RESUMED, "Job resumed")

    # -- acting -------------------------------------------------------------------------------

    async def _act(self, job: Obj, shard: Mapping[str, Any], spec: PinTrainingJobSpec,
                   step: Step, attempt: int, members: list[rdv.Member],
                   snap: Snapshot, cm: Mapping[str, Any] | None) -> None:
        if step.action is Action.CREATE:
            made = []
            for m in members:
                if m.key in snap.current:
                    continue
                pod = self._pod(job, shard, spec, m, attempt)
                try:
                    await create_pod(self.client, pod)  # platform sidecars are injected here
                except AlreadyExists:
                    continue  # made by an earlier reconcile the cache has not shown yet
                except Exception as exc:
                    self.recorder.record(job, WARNING, FAILED_CREATE,
                                         f"Error creating pod {objects.name_of(pod)}: {exc}")
                    raise
                made.append(objects.name_of(pod))
            if made:
                self.recorder.record(job, NORMAL, CREATED,
                                     f"Created pods {', '.join(made)} (attempt {attempt})")
        elif step.action is Action.DELETE_STALE:
            await self._delete(job, snap.stale, why="of an earlier attempt")
        elif step.action is Action.DELETE_ACTIVE:
            await self._delete(job, [p for p in snap.all
                                     if _phase_of(p) not in ("Succeeded", "Failed")],
                               why=f"still running when the job {step.phase.value.lower()}")
        elif step.action is Action.DELETE_ALL:
            if cm is not None and cm.get("data"):
                withdrawn = objects.deepcopy(cm)
                withdrawn["data"] = {}
                await self.client.update(CONFIGMAPS, withdrawn)  # before any pod goes
            await self._delete(job, snap.all, why="of a suspended job")

    async def _delete(self, job: Mapping[str, Any], pods: list[Obj], *, why: str) -> None:
        gone = []
        for pod in pods:
            if objects.is_deleting(pod):
                continue
            with contextlib.suppress(NotFound):
                await self.client.delete(PODS, objects.name_of(pod),
                                         namespace=objects.namespace_of(pod))
                gone.append(objects.name_of(pod))
        if gone:
            self.recorder.record(job, NORMAL, DELETED, f"Deleted pods {', '.join(gone)} {why}")

    def _pod(self, job: Mapping[str, Any], shard: Mapping[str, Any], spec: PinTrainingJobSpec,
             m: rdv.Member, attempt: int) -> Obj:
        name = objects.name_of(job)
        raw = shard["spec"]
        template = raw["roles"][m.role]["template"]
        if "restartPolicy" not in template["spec"]:
            # Real clusters: the CRD cannot derive it from the role's policy as the store does.
            policy = POD_RESTART_POLICY[getattr(spec.roles, m.role).restart_policy]
            template = {**template, "spec": {**template["spec"], "restartPolicy": policy}}
        total = len(rdv.members(spec))
        group = None
        if spec.gang.enabled:
            group = PodGroup(name=objects.uid_of(job), min_member=spec.gang.min_member or total,
                             timeout_seconds=spec.gang.timeout_seconds)
        return pod_for(template, name=rdv.pod_name(name, m.role, m.index),
                       namespace=objects.namespace_of(job), owner=job, backend=self.backend,
                       tier=spec.tier, labels={ATTEMPT_LABEL: str(attempt)},
                       tolerations=(raw.get("placement") or {}).get("tolerations"),
                       env=rdv.env_for(spec, m, job=name, attempt=attempt),
                       pod_group=group, index=m.index, role=m.role)

    async def _publish(self, job: Mapping[str, Any], spec: PinTrainingJobSpec, attempt: int,
                       snap: Snapshot, cm: Mapping[str, Any] | None) -> None:
        """Write the rendezvous for ``attempt`` once the addresses it needs are known."""
        ips = {key: ip for key, pod in snap.current.items()
               if not objects.is_deleting(pod) and (ip := (pod.get("status") or {}).get("podIP"))}
        data = rdv.rendezvous_data(spec, attempt=attempt, ips=ips)
        if data is None or (cm is not None and cm.get("data") == data):
            return
        # A conflict means the cache is behind our own write: its event brings us back.
        with contextlib.suppress(AlreadyExists, Conflict):
            if cm is None:
                await self.client.create(CONFIGMAPS, {
                    "apiVersion": "v1", "kind": "ConfigMap",
                    "metadata": {"name": rdv.configmap_name(objects.name_of(job)),
                                 "namespace": objects.namespace_of(job),
                                 "labels": workload_labels(job),
                                 "ownerReferences": [objects.owner_reference(job)]},
                    "data": data}, namespace=objects.namespace_of(job))
            else:
                updated = objects.deepcopy(cm)
                updated["data"] = data
                await self.client.update(CONFIGMAPS, updated)

    # -- timers -------------------------------------------------------------------------------

    def _expiry(self, spec: PinTrainingJobSpec, status: Mapping[str, Any]) -> float | None:
        """Seconds until a finished job is deleted (``ttlSecondsAfterFinished``)."""
        ttl = spec.ttl_seconds_after_finished
        done = status.get("completionTime")
        if ttl is None or not done:
            return None
        return _epoch(done) + ttl - self.clock()

    def _timer(self, spec: PinTrainingJobSpec, status: Mapping[str, Any]) -> Result | None:
        phase = _phase(status.get("phase"))
        if phase in TERMINAL:
            due = self._expiry(spec, status)
        elif spec.active_deadline_seconds and status.get("startTime"):
            due = _epoch(status["startTime"]) + spec.active_deadline_seconds - self.clock()
        else:
            return None
        return None if due is None else Result(requeue_after=max(due, 0.05))


def _phase(value: str | None) -> Phase:
    try:
        return Phase(value) if value else Phase.CREATED
    except ValueError:
        return Phase.CREATED


def _epoch(stamp: str) -> float:
    return objects.parse_time(stamp).timestamp()


# --- wiring ------------------------------------------------------------------------------------

def add_pintrainingjob_controller(manager: Manager, *, client: KubeClient, backend: Backend,
                                  identity: str, name: str = "pintrainingjobs",
                                  workers: int = 2) -> Controller:
    """The PinTrainingJob operator of one member cluster (``backend``: how its pods run)."""
    jobs = manager.informer(client, PINTRAININGJOBS)
    pods = index_owned(manager.informer(client, PODS))
    recorder = event_recorder(client, operator=name, identity=identity)
    reconciler = TrainingJobReconciler(client=client, backend=backend, jobs=jobs, pods=pods,
                                       recorder=recorder)
    controller = manager.controller(name, reconciler, workers=workers)
    controller.for_(jobs)
    controller.owns(pods, owner=PINTRAININGJOBS)

    close_with_manager(manager, recorder, name=name)
    return controller


__all__ = [
    "KIND_VALUE", "RESTARTING", "RESUMED", "SUSPENDED", "Snapshot",
    "TrainingJobReconciler", "add_pintrainingjob_controller", "exit_code",
]
