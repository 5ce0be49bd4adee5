"""A PinApp's rollout as data: its phase, what each phase does, and the next step's plan.

Theory of operation
-------------------
Pure functions and tables — counts and small records in, decisions out — so a
rollout is tested step by step without a cluster (tests/member/test_pinapps.py).
:mod:`.pinapps` reads the app's PinPods from its cache into :class:`Replica`
records, asks :func:`plan` what to do next, carries it out and reports
:func:`phase_of` through the :data:`PHASES` table.

**Phases** (:class:`Phase`, checked in this order): ``Stopped`` (``spec.stopped``:
no replicas), ``Paused`` (``spec.paused``: only scaling, with the current
revision's template), ``Recreating`` (strategy Recreate and old replicas left, or
replicas still terminating),
``Failed`` (the rollout made no progress for ``progressDeadlineSeconds``; it keeps
trying), ``Progressing`` (replicas to create, replace or wait for) and
``Complete``.  :data:`STEPS` says what each phase does; :data:`PHASES` what
the status says about it (the ``Progressing`` condition and ``status.phase``).

**The plan** of a pass (:func:`plan`) follows a Deployment's rolling update, with
PinPods in place of ReplicaSets' pods.  ``new`` replicas run the update
revision, ``old`` ones anything else.  With ``R`` replicas, ``maxSurge`` *s* and
``maxUnavailable`` *u* (resolved against R; both 0 is read as u = 1):

* create new replicas while fewer than R are new and the total stays within
  R + s;
* then release old ones while at least R - u replicas stay available: first
  the old ones that are not available anyway (they hold no availability), then
  available ones, ``available - (R - u)`` of them;
* old replicas whose template differs from the new one only in container images
  (same *shape*) are **updated in place** instead of being replaced, within the
  same budget (an in-place update takes its pod down while its containers
  restart).  With u = 0 there is no such budget, so they are replaced through the
  surge instead — maxUnavailable 0 is a promise, not a preference;
* when no old replica is left, replicas beyond R go, unavailable ones first.

Recreate deletes every old replica, waits for them to be gone (their PinPods are
deleted in the foreground: gone only once their pod is), then creates the new
ones.  Paused: the total follows R with the current revision's template, nothing
is replaced.  Stopped: everything goes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from .operator import resolve_count


@dataclass(frozen=True, slots=True)
class Replica:
    """One PinPod of the app, as the plan sees it."""

    name: str
    revision: str
    shape: str
    """The hash of its template with images blanked (in place when equal)."""
    ready: bool = False
    available: bool = False
    """Ready for at least minReadySeconds, running its current spec."""


class Phase(StrEnum):
    STOPPED = "Stopped"
    PAUSED = "Paused"
    RECREATING = "Recreating"
    FAILED = "Failed"
    PROGRESSING = "Progressing"
    COMPLETE = "Complete"


class Step(StrEnum):
    SCALE_TO_ZERO = "ScaleToZero"
    """Delete every replica."""
    SCALE = "Scale"
    """Keep the total at R with the current revision; replace nothing."""
    RECREATE = "Recreate"
    """Delete every old replica; once all are gone, create the new ones."""
    ROLL = "Roll"
    """The rolling update (which, when nothing is old, only scales)."""


STEPS: Mapping[Phase, Step] = {
    Phase.STOPPED: Step.SCALE_TO_ZERO,
    Phase.PAUSED: Step.SCALE,
    Phase.RECREATING: Step.RECREATE,
    Phase.FAILED: Step.ROLL,  # a stuck rollout keeps trying: the condition only says so
    Phase.PROGRESSING: Step.ROLL,
    Phase.COMPLETE: Step.ROLL,
}
"""What a pass does in each phase."""


@dataclass(frozen=True, slots=True)
class PhaseFacts:
    progressing: str
    """The ``Progressing`` condition's status: True, False or Unknown."""
    reason: str
    status_phase: str
    """``status.phase``."""


PHASES: Mapping[Phase, PhaseFacts] = {
    Phase.STOPPED: PhaseFacts("Unknown", "Stopped", "Stopped"),
    Phase.PAUSED: PhaseFacts("Unknown", "RolloutPaused", "Paused"),
    Phase.RECREATING: PhaseFacts("True", "Recreating", "Progressing"),
    Phase.FAILED: PhaseFacts("False", "ProgressDeadlineExceeded", "Failed"),
    Phase.PROGRESSING: PhaseFacts("True", "RolloutProgressing", "Progressing"),
    Phase.COMPLETE: PhaseFacts("True", "RolloutComplete", "Running"),
}
"""What the status says in each phase."""


def phase_of(*, stopped: bool, paused: bool, recreate: bool, old: int, complete: bool,
             stalled_for: float, deadline: float, terminating: int = 0) -> Phase:
    """The app's phase: ``old`` replicas of other revisions left, ``complete`` when every
    replica is new and available and there are exactly R, ``stalled_for`` seconds since the
    last progress (see the module docstring for the order)."""
    if stopped:
        return Phase.STOPPED
    if paused:
        return Phase.PAUSED
    if recreate and (old or terminating):
        return Phase.RECREATING  # Recreate: old replicas first go, and are gone
    if complete:
        return Phase.COMPLETE
    if stalled_for >= deadline:
        return Phase.FAILED
    return Phase.PROGRESSING


@dataclass(slots=True)
class Plan:
    """What one pass does: create ``create`` replicas (of ``revision``), delete ``delete``,
    update ``in_place`` to the new template."""

    create: int = 0
    revision: str = ""
    delete: list[str] = field(default_factory=list)
    in_place: list[str] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not (self.create or self.delete or self.in_place)


@dataclass(frozen=True, slots=True)
class Bounds:
    surge: int
    unavailable: int


def bounds(replicas: int, *, max_surge: int | str, max_unavailable: int | str) -> Bounds:
    """maxSurge (rounded up) and maxUnavailable (rounded down) as counts; never both 0."""
    surge = resolve_count(max_surge, replicas, round_up=True)
    unavailable = resolve_count(max_unavailable, replicas, round_up=False)
    if surge == 0 and unavailable == 0:
        unavailable = 1  # as a Deployment does: a rollout must be able to move
    return Bounds(surge, unavailable)


def _worst_first(replicas: Sequence[Replica]) -> list[Replica]:
    """Deletion order: not ready, then ready but not available, then available; by name
    (newest names are random: any stable order will do)."""
    return sorted(replicas, key=lambda r: (r.available, r.ready, r.name))


def plan(step: Step, replicas: Sequence[Replica], *, want: int, update_revision: str,
         update_shape: str, current_revision: str, bounds: Bounds) -> Plan:
    """The next step of the rollout (see the module docstring)."""
    if step is Step.SCALE_TO_ZERO:
        return Plan(delete=[r.name for r in replicas])
    new = [r for r in replicas if r.revision == update_revision]
    old = [r for r in replicas if r.revision != update_revision]
    if step is Step.SCALE:
        revision = current_revision or update_revision
        if len(replicas) < want:
            return Plan(create=want - len(replicas), revision=revision)
        return Plan(delete=[r.name for r in _worst_first(replicas)[:len(replicas) - want]])
    if step is Step.RECREATE:
        if old:
            return Plan(delete=[r.name for r in old])
        return _scale_new(new, want)
    return _roll(new, old, want=want, update_revision=update_revision,
                 update_shape=update_shape, bounds=bounds)


def _scale_new(new: Sequence[Replica], want: int) -> Plan:
    if len(new) < want:
        return Plan(create=want - len(new))
    return Plan(delete=[r.name for r in _worst_first(new)[:len(new) - want]])


def _roll(new: list[Replica], old: list[Replica], *, want: int, update_revision: str,
          update_shape: str, bounds: Bounds) -> Plan:
    if not old:
        return _scale_new(new, want)
    out = Plan(revision=update_revision)
    in_place_ok = bounds.unavailable > 0
    movable = [r for r in old if in_place_ok and r.shape == update_shape]
    total = len(new) + len(old)
    # Scale up: the replicas about to be updated in place count as new already.
    out.create = max(0, min(want - len(new) - len(movable), want + bounds.surge - total))
    min_available = want - bounds.unavailable
    new_unavailable = sum(1 for r in new if not r.available)
    budget = total - min_available - new_unavailable
    # Replicas that are not available cost no availability: update or release them first.
    for r in _worst_first(old):
        if r.available or budget <= 0:
            break
        (out.in_place if r in movable else out.delete).append(r.name)
        budget -= 1
    available = sum(1 for r in (*new, *old) if r.available)
    can_take = min(budget, available - min_available)
    # Then available ones, as many as availability allows: in place first (no new pod
    # needed), then the replaced ones.
    for r in sorted(old, key=lambda r: (r not in movable, r.name)):
        if can_take <= 0:
            break
        if not r.available:
            continue
        (out.in_place if r in movable else out.delete).append(r.name)
        can_take -= 1
    return out


__all__ = ["PHASES", "STEPS", "Bounds", "Phase", "PhaseFacts", "Plan", "Replica", "Step",
           "bounds", "phase_of", "plan"]
