"""The rules of failover and rebalance, as data and pure functions (no cluster needed).

Theory of operation
-------------------
The placement controller (:mod:`.placement`) moves a workload's replicas off a
member cluster that should no longer run them, and back when it recovers.  What
counts as "move away", how long to wait first, and how far one rebalance step
may go are decided here:

* :data:`EVACUATION_SIGNALS` — the MemberCluster facts that mean "move away", in
  order, each with whether the grace period applies.  A cluster that is not
  Ready, not Reachable or not Connected, or carries a ``NoExecute`` taint, may
  come back within the grace (a blip must not move a region's worth of
  replicas); a draining cluster (:data:`~pincompute.model.wellknown.
  CLUSTER_DRAINING_TAINT`) was drained on purpose, so its share moves at once.
  ``NoSchedule`` taints and ``spec.unschedulable`` only stop *new* placements
  (the cluster scheduler's filters): what runs there stays.
* :func:`grace_left` — seconds before an evacuation is due.
* :data:`SCHEDULED_REASONS` — the reasons of the workload's ``Scheduled``
  condition, a small state table: ``Scheduled`` (placed, nothing owed),
  ``FailedOver`` (moved off a cluster; owes a rebalance when clusters recover),
  ``Rebalancing`` (moving back step by step), ``Unschedulable`` (the last
  decision placed nothing; the old placements stay).  :func:`next_reason` is
  the transition function.  ``NotAdmitted``: admission took the workload back
  (``Preempted``), so its placements were cleared; re-admitted, it is placed anew.
* :func:`rebalance_step` — one gradual step from the current placement toward
  the ideal one, moving at most ``max_moves`` replicas; :func:`move_budget` —
  how many replicas of a workload may move at once (for a PinApp, its
  disruption budget, else its rolling update's ``maxUnavailable``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal

from pincompute.model.wellknown import (
    CLUSTER_DRAINING_TAINT,
    CLUSTER_NOT_READY_TAINT,
    CLUSTER_UNREACHABLE_TAINT,
)

EMPTY: Mapping[str, Any] = {}

# --- evacuation --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Evacuation:
    """Why a cluster's replicas must move, and whether the grace period applies."""

    reason: str
    message: str
    grace: bool


Signal = Literal["condition", "taint-effect", "taint-key"]

EVACUATION_SIGNALS: Final[tuple[tuple[Signal, str, str, bool], ...]] = (
    # (what, which, reason, grace applies)
    ("taint-key", CLUSTER_DRAINING_TAINT, "Draining", False),
    ("condition", "Reachable", "Unreachable", True),
    ("condition", "Connected", "Disconnected", True),
    ("condition", "Ready", "NotReady", True),
    ("taint-effect", "NoExecute", "NoExecute", True),
)
"""What makes a MemberCluster's replicas move away (first match wins; see module doc)."""


def evacuation(mc: Mapping[str, Any]) -> Evacuation | None:
    """Whether (and why) the MemberCluster ``mc`` should lose its replicas."""
    spec = mc.get("spec") or EMPTY
    status = mc.get("status") or EMPTY
    taints = spec.get("taints") or ()
    conditions = {c.get("type"): c for c in status.get("conditions") or ()}
    for what, which, reason, grace in EVACUATION_SIGNALS:
        if what == "condition":
            cond = conditions.get(which)
            if cond is not None and cond.get("status") != "True":
                why = cond.get("reason") or cond.get("message") or cond.get("status")
                return Evacuation(reason, f"condition {which} is {cond.get('status')} "
                                          f"({why})", grace)
        else:
            field = "key" if what == "taint-key" else "effect"
            for t in taints:
                if t.get(field) == which:
                    return Evacuation(reason, f"taint {t.get('key')}:{t.get('effect')}", grace)
    return None


HEALTH_TAINTS: Final = frozenset({CLUSTER_NOT_READY_TAINT, CLUSTER_UNREACHABLE_TAINT})
"""The taints the cluster health controller puts on an unhealthy cluster."""


def recovering(mc: Mapping[str, Any]) -> bool:
    """Whether ``mc`` is on its way back: no evacuation signal holds any more, but a health
    taint is still on it (the health controller lifts its taints in a write of their own,
    after the conditions).  The cluster scheduler's filters still exclude it, so a placement
    computed now is not the one to settle on."""
    taints = (mc.get("spec") or EMPTY).get("taints") or ()
    return evacuation(mc) is None and any(t.get("key") in HEALTH_TAINTS for t in taints)


def grace_left(*, since: float, now: float, grace: float, applies: bool) -> float:
    """Seconds until an evacuation noticed at ``since`` is due (0: due now)."""
    if not applies:
        return 0.0
    return max(0.0, since + grace - now)


# --- the Scheduled condition's reasons ---------------------------------------------------------

SCHEDULED: Final = "Scheduled"
FAILED_OVER: Final = "FailedOver"
REBALANCING: Final = "Rebalancing"
UNSCHEDULABLE: Final = "Unschedulable"
NOT_ADMITTED: Final = "NotAdmitted"
SCHEDULED_REASONS: Final = (SCHEDULED, FAILED_OVER, REBALANCING, UNSCHEDULABLE, NOT_ADMITTED)
PENDING_REASONS: Final = frozenset({FAILED_OVER, REBALANCING, UNSCHEDULABLE})
"""Reasons that owe more work when the clusters change (a retry, a rebalance)."""

Outcome = Literal["placed", "failover", "step", "balanced", "unschedulable", "withdrawn"]

TRANSITIONS: Final[Mapping[tuple[str | None, Outcome], str]] = {
    # a decision for a new generation (or a first one) places the workload
    **{(r, "placed"): SCHEDULED for r in (None, *SCHEDULED_REASONS)},
    **{(r, "failover"): FAILED_OVER for r in (None, *SCHEDULED_REASONS)},
    **{(r, "unschedulable"): UNSCHEDULABLE for r in (None, *SCHEDULED_REASONS)},
    # admission took it back (Preempted): its placements are cleared
    **{(r, "withdrawn"): NOT_ADMITTED for r in (None, *SCHEDULED_REASONS)},
    (FAILED_OVER, "step"): REBALANCING,
    (REBALANCING, "step"): REBALANCING,
    (FAILED_OVER, "balanced"): SCHEDULED,
    (REBALANCING, "balanced"): SCHEDULED,
}
"""(reason now, what happened) → the reason to record."""


def next_reason(reason: str | None, outcome: Outcome) -> str:
    """The ``Scheduled`` condition's next reason (raises KeyError on a transition the
    controller never makes, e.g. a rebalance step of a workload that owes none)."""
    return TRANSITIONS[(reason, outcome)]


# --- rebalance ---------------------------------------------------------------------------------

def rebalance_step(current: Mapping[str, int], ideal: Mapping[str, int], *,
                   max_moves: int, order: Mapping[str, int] | None = None) -> dict[str, int]:
    """One step from ``current`` toward ``ideal`` (cluster → replicas) moving at most
    ``max_moves`` replicas: each moved replica leaves a cluster above its ideal share
    (the most over first) and goes to one below it (the most under first).  The total
    is kept when both totals agree; clusters are broken ties by ``order`` then name.
    Every intermediate count lies between the current and the ideal one, so a step
    never needs more room than one of the two placements does."""
    rank = order or {}
    names = sorted(set(current) | set(ideal), key=lambda n: (rank.get(n, 0), n))
    out = {n: int(current.get(n, 0)) for n in names}
    moves = 0
    while moves < max_moves:
        over = [n for n in names if out[n] > ideal.get(n, 0)]
        under = [n for n in names if out[n] < ideal.get(n, 0)]
        if not over and not under:
            break
        if over:
            src = max(over, key=lambda n: out[n] - ideal.get(n, 0))
            out[src] -= 1
        if under:
            dst = max(under, key=lambda n: ideal.get(n, 0) - out[n])
            out[dst] += 1
        moves += 1
    return {n: r for n, r in out.items() if r > 0}


def moved(old: Mapping[str, int], new: Mapping[str, int]) -> int:
    """Replicas that change cluster between two placements."""
    return sum(max(0, new.get(n, 0) - old.get(n, 0)) for n in set(old) | set(new))


def _count(value: int | str | None, total: int, *, round_up: bool) -> int | None:
    if value is None:
        return None
    if isinstance(value, int):
        return value
    fraction = int(value.rstrip("%")) * total / 100
    return math.ceil(fraction) if round_up else math.floor(fraction)


def move_budget(obj: Mapping[str, Any], *, step: int) -> int:
    """How many replicas of ``obj`` one rebalance step may move: at most ``step``, and for
    a PinApp no more than its disruption budget allows (``maxUnavailable``, or replicas
    minus ``minAvailable``), else its rolling update's ``maxUnavailable``; at least 1, so a
    rebalance always progresses (a budget of 0 still lets one replica move, new first)."""
    spec = obj.get("spec") or EMPTY
    allowed = step
    if obj.get("kind") == "PinApp":
        replicas = int(spec.get("replicas", 1))
        budget = spec.get("disruptionBudget") or EMPTY
        rolling = (spec.get("strategy") or EMPTY).get("rollingUpdate") or EMPTY
        limit = _count(budget.get("maxUnavailable"), replicas, round_up=False)
        if limit is None and budget.get("minAvailable") is not None:
            need = _count(budget.get("minAvailable"), replicas, round_up=True) or 0
            limit = replicas - need
        if limit is None:
            limit = _count(rolling.get("maxUnavailable", "25%"), replicas, round_up=False)
        allowed = min(allowed, limit if limit is not None else allowed)
    return max(1, allowed)


__all__ = [
    "EVACUATION_SIGNALS", "FAILED_OVER", "HEALTH_TAINTS", "NOT_ADMITTED", "PENDING_REASONS",
    "REBALANCING", "SCHEDULED", "SCHEDULED_REASONS", "TRANSITIONS", "UNSCHEDULABLE",
    "Evacuation", "evacuation", "grace_left", "move_budget", "moved", "next_reason",
    "rebalance_step", "recovering",
]
