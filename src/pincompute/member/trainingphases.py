"""A training job's phases as a table: what the operator observes, where that leads, what it does.

Theory of operation
-------------------
A PinTrainingJob's pods run as one gang, so the job moves as one:

==========  ======================================================================
Created     the current attempt's pods are created (or being created) and wait
            for the whole gang to be placed and to run
Running     every pod of the attempt has run
Restarting  a pod failed in a way worth retrying: the attempt is over, its pods are
            being deleted; the next attempt's are created once they are gone
Succeeded   the success policy was met (terminal)
Failed      a permanent failure, the back-off limit or the deadline (terminal)
Suspended   ``spec.suspend``: no pods
==========  ======================================================================

Each reconcile reduces what the caches show (the job and its pods) to one
:class:`Observation` — :func:`observe` ranks them, the most decisive first — and
:data:`TRANSITIONS` maps ``(phase, observation)`` to a :class:`Step`: the next
phase, the :class:`Action` to take in it, and whether this is a restart (the
attempt number goes up).  The table is data: tests read it whole, and every
pair is defined.

The attempt number (``status.restarts``) is the only state that matters and it
lives in the job's status, written *before* any pod is touched, with the
object's resourceVersion: a manager that reads a stale job cannot restart a gang
twice (its write conflicts), and one that restarts finds the number it left,
deletes whatever pods belong to an older attempt and creates the missing ones
under their fixed names (``AlreadyExists`` is a no-op) — no pod is duplicated or
lost across a restart of the manager.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final


class Phase(enum.StrEnum):
    CREATED = "Created"
    RUNNING = "Running"
    RESTARTING = "Restarting"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    SUSPENDED = "Suspended"


TERMINAL: Final = frozenset({Phase.SUCCEEDED, Phase.FAILED})


class Observation(enum.Enum):
    """What the pods say, the most decisive first (the order :func:`observe` checks)."""

    SUSPEND = "Suspend"
    """``spec.suspend`` is set."""
    SUCCESS = "Success"
    """The success policy is met."""
    PERMANENT_FAILURE = "PermanentFailure"
    """A pod of the attempt failed and its role's policy does not retry that."""
    DEADLINE_EXCEEDED = "DeadlineExceeded"
    """``activeDeadlineSeconds`` passed since the gang first ran."""
    BACKOFF_EXCEEDED = "BackoffLimitExceeded"
    """A retryable failure, but no restart is left (or in-place restarts used them up)."""
    RETRYABLE_FAILURE = "RetryableFailure"
    """A pod of the attempt failed retryably or was lost, and a restart is left."""
    EMPTY = "Empty"
    """No pod of the job exists (of any attempt)."""
    STALE = "Stale"
    """Pods of an older attempt remain."""
    INCOMPLETE = "Incomplete"
    """Pods of the attempt are missing."""
    STARTING = "Starting"
    """Every pod exists, not all have run yet."""
    ALL_RUNNING = "AllRunning"
    """Every pod of the attempt runs (or has finished well)."""


class Action(enum.Enum):
    NONE = "None"
    CREATE = "Create"
    """Create the attempt's missing pods."""
    DELETE_STALE = "DeleteStale"
    """Delete the pods of older attempts."""
    DELETE_ACTIVE = "DeleteActive"
    """Delete the pods still running (finished pods are kept for their logs)."""
    DELETE_ALL = "DeleteAll"
    """Withdraw the rendezvous and delete every pod (suspended)."""


@dataclass(frozen=True, slots=True)
class Step:
    phase: Phase
    action: Action = Action.NONE
    restart: bool = False
    """Start the next attempt (``status.restarts`` + 1) on the way."""


def _table() -> dict[tuple[Phase, Observation], Step]:
    Ob, P, A = Observation, Phase, Action  # a table reads better short
    t: dict[tuple[Phase, Observation], Step] = {}
    finished = {Ob.SUCCESS: Step(P.SUCCEEDED, A.DELETE_ACTIVE),
                Ob.PERMANENT_FAILURE: Step(P.FAILED, A.DELETE_ACTIVE),
                Ob.DEADLINE_EXCEEDED: Step(P.FAILED, A.DELETE_ACTIVE),
                Ob.BACKOFF_EXCEEDED: Step(P.FAILED, A.DELETE_ACTIVE),
                Ob.RETRYABLE_FAILURE: Step(P.RESTARTING, A.NONE, restart=True),
                Ob.SUSPEND: Step(P.SUSPENDED, A.DELETE_ALL)}
    for phase in (P.CREATED, P.RUNNING):
        t.update({(phase, o): s for o, s in finished.items()})
        t[phase, Ob.STALE] = Step(phase, A.DELETE_STALE)
        t[phase, Ob.INCOMPLETE] = Step(phase, A.CREATE)
        t[phase, Ob.STARTING] = Step(phase)
        t[phase, Ob.ALL_RUNNING] = Step(P.RUNNING)
    t[P.CREATED, Ob.EMPTY] = Step(P.CREATED, A.CREATE)
    # Every pod of a running gang vanished: lost, which observe() reports as a failure;
    # an empty Running job can only be read from a stale cache — start over as Created.
    t[P.RUNNING, Ob.EMPTY] = Step(P.CREATED, A.CREATE)
    # Restarting: the attempt's pods are old ones now; delete them, then start afresh.
    t.update({(P.RESTARTING, o): s for o, s in finished.items()
              if o in (Ob.SUSPEND, Ob.DEADLINE_EXCEEDED)})
    for o in (Ob.SUCCESS, Ob.PERMANENT_FAILURE, Ob.BACKOFF_EXCEEDED, Ob.RETRYABLE_FAILURE,
              Ob.STALE):
        t[P.RESTARTING, o] = Step(P.RESTARTING, A.DELETE_STALE)
    t[P.RESTARTING, Ob.EMPTY] = Step(P.CREATED, A.CREATE)
    t[P.RESTARTING, Ob.INCOMPLETE] = Step(P.CREATED, A.CREATE)
    t[P.RESTARTING, Ob.STARTING] = Step(P.CREATED)
    t[P.RESTARTING, Ob.ALL_RUNNING] = Step(P.RUNNING)
    # Suspended: no pods until resumed, then a fresh start once the old ones are gone.
    for o in Observation:
        t[P.SUSPENDED, o] = Step(P.SUSPENDED, A.DELETE_ALL)
    t[P.SUSPENDED, Ob.EMPTY] = Step(P.CREATED, A.CREATE)
    t[P.SUSPENDED, Ob.SUSPEND] = Step(P.SUSPENDED, A.DELETE_ALL)
    # Terminal phases stay; whatever still runs is stopped.
    for phase in TERMINAL:
        for o in Observation:
            t[phase, o] = Step(phase, A.DELETE_ACTIVE)
    return t


TRANSITIONS: Final[Mapping[tuple[Phase, Observation], Step]] = _table()
"""``(phase, observation) → step``, defined for every pair."""


def step(phase: Phase, observation: Observation) -> Step:
    return TRANSITIONS[phase, observation]


@dataclass(frozen=True, slots=True, kw_only=True)
class Facts:
    """What a reconcile saw, reduced to what decides the observation."""

    suspend: bool = False
    success: bool = False
    permanent_failure: bool = False
    deadline_exceeded: bool = False
    retryable_failure: bool = False
    restarts_left: bool = True
    """Another restart of the gang is allowed (``status.restarts < backoffLimit``)."""
    in_place_exhausted: bool = False
    """Containers restarted in place more often than the back-off limit allows."""
    any_pods: bool = False
    stale_pods: bool = False
    missing_pods: bool = False
    all_running: bool = False


def observe(f: Facts) -> Observation:
    """The one observation that decides the step, the most decisive first."""
    Ob = Observation
    if f.suspend:
        return Ob.SUSPEND
    if f.success:
        return Ob.SUCCESS
    if f.permanent_failure:
        return Ob.PERMANENT_FAILURE
    if f.deadline_exceeded:
        return Ob.DEADLINE_EXCEEDED
    if f.in_place_exhausted or (f.retryable_failure and not f.restarts_left):
        return Ob.BACKOFF_EXCEEDED
    if f.retryable_failure:
        return Ob.RETRYABLE_FAILURE
    if not f.any_pods:
        return Ob.EMPTY
    if f.stale_pods:
        return Ob.STALE
    if f.missing_pods:
        return Ob.INCOMPLETE
    return Ob.ALL_RUNNING if f.all_running else Ob.STARTING


def retryable(exit_code: int | None, *, policy: str, extra: frozenset[int] = frozenset()
              ) -> bool:
    """Whether a pod that failed with ``exit_code`` restarts the gang under its role's policy.

    ``None`` (no exit code: evicted, its node lost, deleted) is always retryable — the
    program did not fail. ``ExitCode``: 128 and above (killed by a signal: 137 is
    SIGKILL, e.g. the OOM killer) and the role's ``retryableExitCodes``. ``Never``:
    nothing. ``OnFailure``/``Always`` pods are restarted in place by the node and fail
    only without an exit code.
    """
    if exit_code is None:
        return True
    if policy == "ExitCode":
        return exit_code >= 128 or exit_code in extra
    return policy in ("OnFailure", "Always")


__all__ = ["TERMINAL", "TRANSITIONS", "Action", "Facts", "Observation", "Phase", "Step",
           "observe", "retryable", "step"]
