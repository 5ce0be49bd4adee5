"""Remediation's escalation: cordon → drain → replace → give up, as a table.

Theory of operation
-------------------
Each node remediation works on has a :class:`Step` (kept on the Node in the
:data:`~pincompute.model.wellknown.REMEDIATION_ANNOTATION`, so a restarted
controller carries on).  Every reconcile classifies what it sees
(:class:`Seen`): the node is healthy, unhealthy but its step's delay has not run
out, or unhealthy and *due* (the delay ran out, or a person asked for a repair).
:data:`ESCALATION` maps (step, seen) to an :class:`Action`:

========== ========= =========== ========
step       healthy   unhealthy   due
========== ========= =========== ========
Healthy    none      suspect     suspect
Suspect    forget    wait        cordon
Cordoned   recover   wait        drain
Draining   recover   drain       drain
Drained    recover   wait        replace
Replacing  wait      wait        wait
GaveUp     none      none        none
========== ========= =========== ========

Delays: ``grace`` in Suspect, ``cordon_wait`` in Cordoned, ``drain_wait`` in
Drained.  A node that comes back (recover: uncordoned) and goes bad again is
*flapping*: each new attempt within ``flap_window`` starts further along —
attempt 2 skips the cordon wait, attempt 3 and later the drain wait too — and
once ``max_attempts`` attempts have not helped, the next one gives up
(:func:`decide`): the node stays cordoned, and remediation alerts (an Event, the
``RemediationFailed`` condition on its pool, a metric) and leaves it to a person,
who clears the remediation annotation to hand it back.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass


class Step(enum.Enum):
    HEALTHY = "Healthy"
    SUSPECT = "Suspect"
    CORDONED = "Cordoned"
    DRAINING = "Draining"
    DRAINED = "Drained"
    REPLACING = "Replacing"
    GAVE_UP = "GaveUp"


class Seen(enum.Enum):
    HEALTHY = "healthy"
    UNHEALTHY = "unhealthy"
    DUE = "due"


class Action(enum.Enum):
    NONE = "none"
    SUSPECT = "suspect"
    FORGET = "forget"
    WAIT = "wait"
    CORDON = "cordon"
    DRAIN = "drain"
    REPLACE = "replace"
    RECOVER = "recover"
    GIVE_UP = "give-up"


_H, _U, _D = Seen.HEALTHY, Seen.UNHEALTHY, Seen.DUE
ESCALATION: Mapping[tuple[Step, Seen], Action] = {
    (Step.HEALTHY, _H): Action.NONE,
    (Step.HEALTHY, _U): Action.SUSPECT,
    (Step.HEALTHY, _D): Action.SUSPECT,
    (Step.SUSPECT, _H): Action.FORGET,
    (Step.SUSPECT, _U): Action.WAIT,
    (Step.SUSPECT, _D): Action.CORDON,
    (Step.CORDONED, _H): Action.RECOVER,
    (Step.CORDONED, _U): Action.WAIT,
    (Step.CORDONED, _D): Action.DRAIN,
    (Step.DRAINING, _H): Action.RECOVER,
    (Step.DRAINING, _U): Action.DRAIN,
    (Step.DRAINING, _D): Action.DRAIN,
    (Step.DRAINED, _H): Action.RECOVER,
    (Step.DRAINED, _U): Action.WAIT,
    (Step.DRAINED, _D): Action.REPLACE,
    (Step.REPLACING, _H): Action.WAIT,
    (Step.REPLACING, _U): Action.WAIT,
    (Step.REPLACING, _D): Action.WAIT,
    (Step.GAVE_UP, _H): Action.NONE,
    (Step.GAVE_UP, _U): Action.NONE,
    (Step.GAVE_UP, _D): Action.NONE,
}

GUARDED: frozenset[Action] = frozenset({Action.CORDON, Action.DRAIN, Action.REPLACE})
"""Actions that disrupt: each passes the circuit breakers (and, when it starts a
step, the rate limits) first."""


@dataclass(frozen=True, slots=True)
class Delays:
    grace: float
    cordon_wait: float
    drain_wait: float


def delay(step: Step, *, attempts: int, delays: Delays) -> float:
    """How long ``step`` waits before it is due; a flapping node (``attempts`` > 1)
    waits less at each attempt."""
    if step is Step.SUSPECT:
        return delays.grace
    if step is Step.CORDONED:
        return delays.cordon_wait if attempts <= 1 else 0.0
    if step is Step.DRAINED:
        return delays.drain_wait if attempts <= 2 else 0.0
    return 0.0


def seen(*, unhealthy: bool, manual: bool, step: Step, in_step: float, attempts: int,
         delays: Delays) -> Seen:
    """Classify a node that has been ``in_step`` seconds in ``step``."""
    if not unhealthy:
        return Seen.HEALTHY
    if manual or in_step >= delay(step, attempts=attempts, delays=delays):
        return Seen.DUE
    return Seen.UNHEALTHY


def decide(step: Step, observed: Seen, *, attempts: int, max_attempts: int) -> Action:
    """The table's action, with the give-up rule: a cordon that would start attempt
    ``max_attempts + 1`` (within the flap window) gives up instead."""
    action = ESCALATION[(step, observed)]
    if action is Action.CORDON and attempts >= max_attempts:
        return Action.GIVE_UP
    return action


__all__ = ["ESCALATION", "GUARDED", "Action", "Delays", "Seen", "Step", "decide", "delay",
           "seen"]
