"""The circuit breaker: stop remediating when too much of a scope looks unhealthy.

Theory of operation
-------------------
When many nodes of one pool, zone or cluster look unhealthy at once, the cause is
rarely the nodes: a network partition, a broken control plane or a bad image make
healthy machines look sick, and draining them would turn an outage into a bigger
one.  Medik8s' NodeHealthCheck remediates only while ``minHealthy`` (default
51 %) of its nodes are healthy; Cluster API's MachineHealthCheck has
``maxUnhealthy``.  Here each scope — every node pool, every zone, the cluster —
has a breaker with a ``max_unhealthy`` share (an int count or ``"N%"``, the
percentage rounding down, so the default ``"49%"`` keeps at least 51 % healthy).

A breaker is a state machine, :data:`TRANSITIONS` (state, reading) → state:

=========== ======== ============ ===============
state       over     under        under, cooled
=========== ======== ============ ===============
Closed      Open     Closed       Closed
Open        Open     CoolingDown  CoolingDown
CoolingDown Open     CoolingDown  Closed
=========== ======== ============ ===============

*over*: more unhealthy nodes than allowed; *cooled*: the breaker has been cooling
down for ``cooldown`` seconds — the storm cooldown: a breaker does not re-arm the
moment the share dips, because storms come in waves.  Remediation acts only
through scopes whose breakers are all Closed.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Mapping
from dataclasses import dataclass


class BreakerState(enum.Enum):
    CLOSED = "Closed"
    """Remediation may act."""
    OPEN = "Open"
    """Too many unhealthy nodes: remediation stops."""
    COOLING = "CoolingDown"
    """Back under the limit, waiting out the cooldown before acting again."""


class Reading(enum.Enum):
    OVER = "over"
    UNDER = "under"
    UNDER_COOLED = "under, cooled down"


TRANSITIONS: Mapping[tuple[BreakerState, Reading], BreakerState] = {
    (BreakerState.CLOSED, Reading.OVER): BreakerState.OPEN,
    (BreakerState.CLOSED, Reading.UNDER): BreakerState.CLOSED,
    (BreakerState.CLOSED, Reading.UNDER_COOLED): BreakerState.CLOSED,
    (BreakerState.OPEN, Reading.OVER): BreakerState.OPEN,
    (BreakerState.OPEN, Reading.UNDER): BreakerState.COOLING,
    (BreakerState.OPEN, Reading.UNDER_COOLED): BreakerState.COOLING,
    (BreakerState.COOLING, Reading.OVER): BreakerState.OPEN,
    (BreakerState.COOLING, Reading.UNDER): BreakerState.COOLING,
    (BreakerState.COOLING, Reading.UNDER_COOLED): BreakerState.CLOSED,
}


def allowed_unhealthy(max_unhealthy: int | str, total: int) -> int:
    """How many of ``total`` nodes may be unhealthy before the breaker trips."""
    if isinstance(max_unhealthy, str):
        return math.floor(int(max_unhealthy.rstrip("%")) * total / 100)
    return max_unhealthy


def parse_max_unhealthy(value: int | str) -> int | str:
    """``value`` checked: a count ≥ 0 or ``"N%"`` with 0 ≤ N ≤ 100 (ValueError otherwise)."""
    if isinstance(value, int):
        if value < 0:
            raise ValueError(f"max_unhealthy: {value}: must be >= 0")
        return value
    if not value.endswith("%") or not value[:-1].isdigit() or int(value[:-1]) > 100:
        raise ValueError(f"max_unhealthy: {value!r}: must be a count or a percentage 0%..100%")
    return value


@dataclass(frozen=True, slots=True)
class Transition:
    """A breaker changed state (what the caller reports as an Event and a metric)."""

    scope: str
    old: BreakerState
    new: BreakerState
    unhealthy: int
    total: int
    allowed: int


class Breaker:
    """The breaker of one scope (``pool/general``, ``zone/zone-a``, ``cluster``)."""

    def __init__(self, scope: str, *, max_unhealthy: int | str, cooldown: float) -> None:
        self.scope = scope
        self.max_unhealthy = parse_max_unhealthy(max_unhealthy)
        self.cooldown = cooldown
        self.state = BreakerState.CLOSED
        self.since = 0.0
        """When the breaker entered its state (epoch seconds)."""
        self.unhealthy = 0
        self.total = 0

    def reading(self, unhealthy: int, total: int, *, now: float) -> Reading:
        if unhealthy > allowed_unhealthy(self.max_unhealthy, total):
            return Reading.OVER
        if self.state is BreakerState.COOLING and now - self.since >= self.cooldown:
            return Reading.UNDER_COOLED
        return Reading.UNDER

    def evaluate(self, unhealthy: int, total: int, *, now: float) -> Transition | None:
        """Feed the scope's current counts; returns the transition, if any."""
        self.unhealthy, self.total = unhealthy, total
        new = TRANSITIONS[(self.state, self.reading(unhealthy, total, now=now))]
        if new is self.state:
            return None
        old, self.state, self.since = self.state, new, now
        return Transition(self.scope, old, new, unhealthy, total,
                          allowed_unhealthy(self.max_unhealthy, total))

    @property
    def closed(self) -> bool:
        return self.state is BreakerState.CLOSED

    def describe(self) -> str:
        share = 100 * self.unhealthy / self.total if self.total else 0.0
        return (f"circuit breaker of {self.scope} is {self.state.value}: {self.unhealthy} of "
                f"{self.total} nodes unhealthy ({share:.0f}%), at most "
                f"{allowed_unhealthy(self.max_unhealthy, self.total)} allowed "
                f"(maxUnhealthy {self.max_unhealthy})")


__all__ = [
    "TRANSITIONS",
    "Breaker",
    "BreakerState",
    "Reading",
    "Transition",
    "allowed_unhealthy",
    "parse_max_unhealthy",
]
