"""A PinJob's states, as a table, and the pure rules that decide its next step.

Theory of operation
-------------------
A job is in one of five phases.  What moves it is an :class:`JobEvent` the
reconciler derives from what it observes (pods counted, time, spec); the
:data:`TRANSITIONS` table maps ``(phase, event)`` to the next phase and the
reason written on the job (``status.phase``, the ``Complete``/``Failed``/
``Suspended`` condition, an Event).  A pair missing from the table leaves the
phase as it is: ``Succeeded`` and ``Failed`` are terminal and absorb every event.

==========  ============  ==========  ==========================================
phase       event         next        reason
==========  ============  ==========  ==========================================
Pending     START         Running     PodsCreated
Pending     SUSPEND       Suspended   JobSuspended
Running     SUSPEND       Suspended   JobSuspended
Suspended   RESUME        Running     JobResumed
Running     RESTART       Running     JobRestarted (a ``RestartJob`` rule)
any live    COMPLETE      Succeeded   CompletionsReached / SuccessPolicy
any live    FAIL_*        Failed      BackoffLimitExceeded, DeadlineExceeded, ...
==========  ============  ==========  ==========================================

:func:`decide` derives the event of a pass from the spec, the status and what
the pass :class:`Observed` of the pods, in priority order (a failure-policy
verdict, a restart, back-off limits, success, suspension, the deadline, the
start).  The rest of the module are the rules behind it: index ranges
(``"0-2,5"``), which failure-policy rule a failed pod matches, whether the
success criteria are met, the retry back-off and the active time
(``activeDeadlineSeconds`` counts neither time suspended nor time queued before
the first start).  Everything here is data and functions: tested without a
cluster.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from pincompute.kube import objects
from pincompute.model.jobs import FailurePolicy, PinJobSpec, SuccessPolicy


class JobPhase(StrEnum):
    PENDING = "Pending"
    RUNNING = "Running"
    SUSPENDED = "Suspended"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"


class JobEvent(StrEnum):
    START = "Start"
    SUSPEND = "Suspend"
    RESUME = "Resume"
    RESTART = "Restart"
    COMPLETE = "Complete"
    COMPLETE_BY_POLICY = "CompleteByPolicy"
    FAIL_BACKOFF = "FailBackoff"
    FAIL_DEADLINE = "FailDeadline"
    FAIL_POLICY = "FailPolicy"
    FAIL_INDEXES = "FailIndexes"
    FAIL_MAX_FAILED_INDEXES = "FailMaxFailedIndexes"
    FAIL_MAX_RESTARTS = "FailMaxRestarts"


TERMINAL = frozenset({JobPhase.SUCCEEDED, JobPhase.FAILED})
_LIVE = (JobPhase.PENDING, JobPhase.RUNNING, JobPhase.SUSPENDED)

_ENDINGS: dict[JobEvent, tuple[JobPhase, str]] = {
    JobEvent.COMPLETE: (JobPhase.SUCCEEDED, "CompletionsReached"),
    JobEvent.COMPLETE_BY_POLICY: (JobPhase.SUCCEEDED, "SuccessPolicy"),
    JobEvent.FAIL_BACKOFF: (JobPhase.FAILED, "BackoffLimitExceeded"),
    JobEvent.FAIL_DEADLINE: (JobPhase.FAILED, "DeadlineExceeded"),
    JobEvent.FAIL_POLICY: (JobPhase.FAILED, "PodFailurePolicy"),
    JobEvent.FAIL_INDEXES: (JobPhase.FAILED, "FailedIndexes"),
    JobEvent.FAIL_MAX_FAILED_INDEXES: (JobPhase.FAILED, "MaxFailedIndexesExceeded"),
    JobEvent.FAIL_MAX_RESTARTS: (JobPhase.FAILED, "MaxRestartsExceeded"),
}

TRANSITIONS: dict[tuple[JobPhase, JobEvent], tuple[JobPhase, str]] = {
    (JobPhase.PENDING, JobEvent.START): (JobPhase.RUNNING, "PodsCreated"),
    (JobPhase.PENDING, JobEvent.SUSPEND): (JobPhase.SUSPENDED, "JobSuspended"),
    (JobPhase.RUNNING, JobEvent.SUSPEND): (JobPhase.SUSPENDED, "JobSuspended"),
    (JobPhase.SUSPENDED, JobEvent.RESUME): (JobPhase.RUNNING, "JobResumed"),
    (JobPhase.RUNNING, JobEvent.RESTART): (JobPhase.RUNNING, "JobRestarted"),
    **{(phase, event): outcome for phase in _LIVE for event, outcome in _ENDINGS.items()},
}
"""(phase, event) → (next phase, reason).  Missing pairs leave the phase unchanged."""


def transition(phase: JobPhase, event: JobEvent) -> tuple[JobPhase, str | None]:
    """The next phase and its reason (``None`` when the event changes nothing)."""
    found = TRANSITIONS.get((phase, event))
    return found if found is not None else (phase, None)


# --- index sets ----------------------------------------------------------------------------------

def parse_index_set(text: str | None) -> set[int]:
    """``"0-2,5"`` → ``{0, 1, 2, 5}`` (empty or absent → empty)."""
    out: set[int] = set()
    for part in (text or "").split(","):
        if not part:
            continue
        lo, _, hi = part.partition("-")
        out.update(range(int(lo), int(hi or lo) + 1))
    return out


def format_index_set(indexes: Iterable[int]) -> str:
    """``{0, 1, 2, 5}`` → ``"0-2,5"`` (what ``status.completedIndexes`` holds)."""
    ranges: list[str] = []
    start = prev = None
    for i in sorted(set(indexes)):
        if prev is not None and i == prev + 1:
            prev = i
            continue
        if start is not None:
            ranges.append(str(start) if start == prev else f"{start}-{prev}")
        start = prev = i
    if start is not None:
        ranges.append(str(start) if start == prev else f"{start}-{prev}")
    return ",".join(ranges)


# --- slots: which pods a job runs ----------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Slot:
    """One index of an Indexed job or of a group: the pod that runs it is named after it."""

    index: int
    """The job-wide index (groups are laid out one after another)."""
    group: str | None = None
    local: int = 0
    """The index inside its group (= ``index`` without groups)."""


def group_slots(groups: Sequence[tuple[str, int]]) -> list[Slot]:
    """Groups ``[(name, replicas)]`` laid out in job-wide indexes, in order."""
    out: list[Slot] = []
    for name, replicas in groups:
        out.extend(Slot(len(out), name, i) for i in range(replicas))
    return out


# --- pods --------------------------------------------------------------------------------------

def pod_outcome(pod: Mapping[str, Any]) -> str | None:
    """``Succeeded``, ``Failed`` or None (still active or stopping)."""
    phase = (pod.get("status") or {}).get("phase")
    return phase if phase in ("Succeeded", "Failed") else None


def finished_at(pod: Mapping[str, Any]) -> str | None:
    """When the pod's last container terminated (RFC 3339), if any did."""
    latest = None
    for c in (pod.get("status") or {}).get("containerStatuses") or ():
        at = ((c.get("state") or {}).get("terminated") or {}).get("finishedAt")
        if at and (latest is None or at > latest):
            latest = at
    return latest


def next_pod_name(base: str, taken: Iterable[str]) -> str:
    """``base`` for an index's first pod, ``base-<n>`` (the lowest free n) after that."""
    names = set(taken)
    if base not in names:
        return base
    n = 1
    while f"{base}-{n}" in names:
        n += 1
    return f"{base}-{n}"


# --- failure policy ------------------------------------------------------------------------------

def exit_codes(pod: Mapping[str, Any], *, sidecars: frozenset[str] = frozenset()
               ) -> dict[str, int]:
    """Container name → exit code, for the main containers that terminated."""
    out: dict[str, int] = {}
    for c in (pod.get("status") or {}).get("containerStatuses") or ():
        term = (c.get("state") or {}).get("terminated") or (
            c.get("lastState") or {}).get("terminated")
        if term is not None and c.get("name") not in sidecars:
            out[c["name"]] = int(term.get("exitCode", 0))
    return out


def failure_action(policy: FailurePolicy | None, pod: Mapping[str, Any], *,
                   sidecars: frozenset[str] = frozenset()) -> str:
    """The action of the first failure-policy rule a failed pod matches (``Count`` if none)."""
    if policy is None:
        return "Count"
    codes = exit_codes(pod, sidecars=sidecars)
    conditions = {(c.get("type"), c.get("status"))
                  for c in (pod.get("status") or {}).get("conditions") or ()}
    for rule in policy.rules:
        req = rule.on_exit_codes
        if req is not None:
            values = set(req.values)
            chosen = ([codes[req.container_name]] if req.container_name in codes
                      else [] if req.container_name else list(codes.values()))
            for code in chosen:
                if (req.operator == "In") == (code in values) and (
                        req.operator == "In" or code != 0):
                    return rule.action
        elif any((c.type, c.status) in conditions for c in rule.on_pod_conditions or ()):
            return rule.action
    return "Count"


# --- success -------------------------------------------------------------------------------------

def success_by_policy(policy: SuccessPolicy | None, completed: set[int], *,
                      slots_by_group: Mapping[str, Sequence[int]]) -> bool:
    """Whether any success rule holds for these completed job-wide indexes."""
    if policy is None:
        return False
    for rule in policy.rules:
        if rule.groups is not None:
            members = [i for g in rule.groups for i in slots_by_group.get(g, ())]
            if rule.operator == "All" and members and all(i in completed for i in members):
                return True
            if rule.operator == "Any" and any(i in completed for i in members):
                return True
            continue
        wanted = parse_index_set(rule.succeeded_indexes) if rule.succeeded_indexes else None
        done = completed if wanted is None else completed & wanted
        if rule.succeeded_count is not None:
            if len(done) >= rule.succeeded_count:
                return True
        elif wanted is not None and wanted <= completed:
            return True
    return False


# --- time ----------------------------------------------------------------------------------------

def active_seconds(*, before: float, started: float | None, now: float) -> float:
    """Seconds the job has been active: before its last suspension, plus since its start."""
    return before + (max(0.0, now - started) if started is not None else 0.0)


def backoff_delay(failures: int, *, base: float, cap: float) -> float:
    """The wait before the next retry after ``failures`` failed pods (Kubernetes: 10 s,
    doubled each time, at most 6 min)."""
    if failures <= 0:
        return 0.0
    return min(cap, base * 2 ** min(failures - 1, 30))


# --- deciding ------------------------------------------------------------------------------------

def as_int(value: Any, default: int = 0) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def epoch(value: str | None) -> float | None:
    """An RFC 3339 time as epoch seconds (None stays None)."""
    return objects.parse_time(value).timestamp() if value else None


@dataclass(frozen=True, slots=True, kw_only=True)
class Observed:
    """What a pass saw of the job's pods, beyond what its status holds."""

    active: int
    """Pods running or pending."""
    restarts: int = 0
    """Container restarts of active pods (``OnFailure``): failures against backoffLimit."""
    failure: tuple[JobEvent, str] | None = None
    """A failed pod's failure-policy verdict that fails the job (FailJob, maxRestarts)."""
    restart: str | None = None
    """Why a ``RestartJob`` rule restarts the job, if one does."""


def decide(spec: PinJobSpec, status: Mapping[str, Any], seen: Observed, *, phase: JobPhase,
       now: float, slots: Sequence[Slot]) -> tuple[JobEvent | None, str]:
    """The event this pass observes (None: nothing changes) and its message, in priority
    order: a failure-policy verdict, a restart, back-off limits, success, suspension,
    the deadline, the start. ``status`` already holds the pass's newly finished pods
    (``uncountedTerminatedPods``, ``completedIndexes``, ``failedIndexes``)."""
    if phase in TERMINAL:
        return None, ""
    uncounted = status.get("uncountedTerminatedPods") or {}
    succeeded = as_int(status.get("succeeded")) + len(uncounted.get("succeeded") or ())
    failed = as_int(status.get("failed")) + len(uncounted.get("failed") or ()) + seen.restarts
    completed = parse_index_set(status.get("completedIndexes"))
    failed_indexes = parse_index_set(status.get("failedIndexes"))
    if seen.failure is not None:
        return seen.failure
    if seen.restart is not None:
        return JobEvent.RESTART, seen.restart
    if spec.backoff_limit_per_index is None and failed > spec.backoff_limit:
        return JobEvent.FAIL_BACKOFF, (f"{failed} pods failed; backoffLimit is "
                                       f"{spec.backoff_limit}")
    if spec.max_failed_indexes is not None and len(failed_indexes) > spec.max_failed_indexes:
        return JobEvent.FAIL_MAX_FAILED_INDEXES, (
            f"indexes {format_index_set(failed_indexes)} failed; maxFailedIndexes is "
            f"{spec.max_failed_indexes}")
    if slots:
        by_group: dict[str, list[int]] = {}
        for s in slots:
            by_group.setdefault(s.group or "", []).append(s.index)
        if success_by_policy(spec.success_policy, completed, slots_by_group=by_group):
            return JobEvent.COMPLETE_BY_POLICY, "a success policy rule was met"
        everything = {s.index for s in slots}
        if everything <= completed:
            return JobEvent.COMPLETE, f"all {len(everything)} indexes succeeded"
        if failed_indexes and everything <= completed | failed_indexes:
            return JobEvent.FAIL_INDEXES, (
                f"indexes {format_index_set(failed_indexes)} failed")
    elif spec.completions is not None:
        if succeeded >= spec.completions:
            return JobEvent.COMPLETE, f"{succeeded} of {spec.completions} pods succeeded"
    elif succeeded > 0 and not seen.active:
        return JobEvent.COMPLETE, "a pod succeeded and no other runs"
    if spec.suspend:
        return (JobEvent.SUSPEND, "spec.suspend is set") if \
            phase is not JobPhase.SUSPENDED else (None, "")
    if phase is JobPhase.SUSPENDED:
        return JobEvent.RESUME, "spec.suspend was cleared"
    deadline = spec.active_deadline_seconds
    if deadline is not None and active_seconds(
            before=float(status.get("activeSeconds") or 0.0),
            started=epoch(status.get("startTime")), now=now) >= deadline:
        return JobEvent.FAIL_DEADLINE, (f"the job was active longer than "
                                        f"activeDeadlineSeconds ({deadline})")
    if phase is JobPhase.PENDING:
        return JobEvent.START, "pods are being created"
    return None, ""


__all__ = [
    "TERMINAL", "TRANSITIONS", "JobEvent", "JobPhase", "Observed", "Slot", "active_seconds",
    "as_int", "backoff_delay", "decide", "epoch", "exit_codes", "failure_action",
    "finished_at", "format_index_set", "group_slots", "next_pod_name", "parse_index_set",
    "pod_outcome", "success_by_policy", "transition",
]
