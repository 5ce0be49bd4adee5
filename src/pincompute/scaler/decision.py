"""From the metrics' proposal to the replicas to set: windows, policies, cooldown, bounds.

Theory of operation
-------------------
:func:`decide` is pure: given the current replicas, the largest metric proposal,
the scaler's behaviour, the floor (``minReplicas`` raised by open schedule
windows), ``maxReplicas``, the time and the :class:`History` of this scaler, it
returns a :class:`Decision`.  The steps, in order (docs/scaling.md states them
for users):

1. **Out of bounds.**  A current size above ``maxReplicas`` goes to the maximum,
   one below the floor goes to the floor, at once: bounds are not subject to
   windows, policies or cooldown (as HPA's out-of-range branch; a schedule's
   floor therefore applies the moment its window opens).
2. **Recommendation.**  The proposal (without metrics: ``minReplicas``) is
   recorded with its time.
3. **Stabilization** (HPA's ``stabilizeRecommendationWithBehaviors``): the
   recommendation used is bounded below by the *smallest* recommendation of the
   scale-up window and above by the *largest* of the scale-down window — a
   scale-down happens only if every recommendation of the last
   ``scaleDown.stabilizationWindowSeconds`` was at most that low; a scale-up only
   if all of the (default empty) up window were at least that high.
4. **Rate policies** (HPA's ``calculateScaleUpLimitWithScalingRules``): each
   policy allows, from the replicas at the start of its period (current minus
   what the scaler added in the period plus what it removed), ``value`` pods or
   ``value`` % more (or fewer); ``selectPolicy: Max`` takes the policy allowing
   the most change, ``Min`` the least, ``Disabled`` forbids that direction.
5. **Bounds**: the result is clamped to ``[floor, maxReplicas]``.
6. **Cooldown**: if the result differs from the current size and the scaler
   changed the size less than ``cooldownSeconds`` ago, *in either direction*,
   the size is held (``AbleToScale`` False, reason ``Cooldown``); the windows keep
   recording meanwhile, so when the cooldown ends the scale-down still needs its
   whole window of low recommendations, while a scale-up proposed during the
   cooldown happens at its end.

Recommendations and scale events live in memory (as in the HPA).  A scaler seen
for the first time — a new scaler, or every scaler after a controller restart —
starts with its down window filled with the current size, so a restart never
lets a scale-down skip its window; the cooldown survives restarts because it is
measured from ``status.lastScaleTime``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

Direction = Literal["up", "down"]


@dataclass(frozen=True, slots=True)
class Policy:
    type: Literal["Pods", "Percent"]
    value: int
    period_seconds: int


@dataclass(frozen=True, slots=True)
class Rules:
    """One direction's behaviour."""

    window_seconds: float
    select: Literal["Max", "Min", "Disabled"] = "Max"
    policies: tuple[Policy, ...] = ()


@dataclass(frozen=True, slots=True)
class Behaviour:
    up: Rules
    down: Rules
    cooldown_seconds: float = 60.0


@dataclass(slots=True)
class History:
    """What one scaler remembers between evaluations (in memory)."""

    recommendations: list[tuple[float, int]] = field(default_factory=list)
    events: list[tuple[float, int]] = field(default_factory=list)
    """(time, replicas added (> 0) or removed (< 0)) of the scaler's own changes."""

    def prune(self, now: float, behaviour: Behaviour) -> None:
        keep = max(behaviour.up.window_seconds, behaviour.down.window_seconds)
        self.recommendations = [r for r in self.recommendations if r[0] > now - keep]
        period = max((p.period_seconds for rules in (behaviour.up, behaviour.down)
                      for p in rules.policies), default=0)
        self.events = [e for e in self.events if e[0] > now - period]


@dataclass(frozen=True, slots=True)
class Limit:
    """Why the desired size is not what the metrics asked for (``ScalingLimited``)."""

    reason: str
    message: str


@dataclass(frozen=True, slots=True)
class Decision:
    desired: int
    """The replicas the scaler wants now (before the cooldown)."""
    replicas: int
    """The replicas to set now (``desired``, or ``current`` while cooling down)."""
    reason: str
    """Why, for the Event and ``status.lastScaleReason``."""
    limit: Limit | None = None
    cooldown_until: float | None = None
    """Set while a change waits for the cooldown."""


def stabilize(history: History, proposal: int, current: int, now: float,
              behaviour: Behaviour) -> int:
    up = down = proposal
    for t, rec in history.recommendations:
        if t > now - behaviour.up.window_seconds:
            up = min(up, rec)
        if t > now - behaviour.down.window_seconds:
            down = max(down, rec)
    result = current
    result = max(result, up)
    return min(result, down)


def _changes(events: Sequence[tuple[float, int]], now: float, period: float) -> tuple[int, int]:
    added = removed = 0
    for t, change in events:
        if t > now - period:
            if change > 0:
                added += change
            else:
                removed -= change
    return added, removed


def up_limit(current: int, rules: Rules, events: Sequence[tuple[float, int]],
             now: float) -> int:
    if rules.select == "Disabled" or not rules.policies:
        return current
    limits = []
    for p in rules.policies:
        added, removed = _changes(events, now, p.period_seconds)
        start = current - added + removed
        limits.append(start + p.value if p.type == "Pods"
                      else math.ceil(start * (1 + p.value / 100)))
    limit = max(limits) if rules.select == "Max" else min(limits)
    return max(limit, current)


def down_limit(current: int, rules: Rules, events: Sequence[tuple[float, int]],
               now: float) -> int:
    if rules.select == "Disabled" or not rules.policies:
        return current
    limits = []
    for p in rules.policies:
        added, removed = _changes(events, now, p.period_seconds)
        start = current + removed - added
        limits.append(start - p.value if p.type == "Pods"
                      else int(start * (1 - p.value / 100)))
    limit = min(limits) if rules.select == "Max" else max(limits)
    return min(limit, current)


def decide(*, current: int, proposal: int | None, behaviour: Behaviour, floor: int,
           maximum: int, now: float, history: History, last_scale_time: float | None,
           floor_reason: str = "minReplicas") -> Decision:
    """The replicas to set now; records the recommendation in ``history``."""
    history.prune(now, behaviour)
    if current > maximum:
        return Decision(maximum, maximum, f"current replicas above maxReplicas ({maximum})",
                        Limit("TooManyReplicas", f"the maximum is {maximum}"))
    if current < floor:
        return Decision(floor, floor, f"current replicas below {floor_reason} ({floor})",
                        Limit("TooFewReplicas", f"the floor is {floor} ({floor_reason})"))
    raw = proposal if proposal is not None else floor
    stabilized = stabilize(history, raw, current, now, behaviour)
    history.recommendations.append((now, raw))
    desired, limit = stabilized, None
    if stabilized != raw:
        direction: Direction = "down" if raw < current else "up"
        limit = Limit("StabilizationWindow",
                      f"recommendations of the last {_window(behaviour, direction):g}s hold "
                      f"{stabilized} (metrics ask {raw})")
    if desired > current:
        cap = up_limit(current, behaviour.up, history.events, now)
        if desired > cap:
            desired, limit = cap, Limit(
                "ScaleUpLimit", f"scale-up policies allow {cap} now (metrics ask {raw})")
    elif desired < current:
        low = down_limit(current, behaviour.down, history.events, now)
        if desired < low:
            desired, limit = low, Limit(
                "ScaleDownLimit", f"scale-down policies allow {low} now (metrics ask {raw})")
    desired = min(max(desired, floor), maximum)
    if raw > maximum and desired == maximum:
        limit = Limit("TooManyReplicas", f"the maximum is {maximum} (metrics ask {raw})")
    elif raw < floor and desired == floor:
        limit = Limit("TooFewReplicas", f"the floor is {floor} ({floor_reason}; metrics ask "
                      f"{raw})")
    if desired == current:
        return Decision(desired, current, "within target", limit)
    word = "above" if desired > current else "below"
    reason = f"metrics {word} target: {current} -> {desired}"
    if proposal is None:
        reason = f"{floor_reason}: {current} -> {desired}"
    if last_scale_time is not None and now < last_scale_time + behaviour.cooldown_seconds:
        until = last_scale_time + behaviour.cooldown_seconds
        return Decision(desired, current, reason, limit, cooldown_until=until)
    return Decision(desired, desired, reason, limit)


def record_scale(history: History, *, now: float, before: int, after: int) -> None:
    """Remember a change the scaler made (for the rate policies)."""
    if after != before:
        history.events.append((now, after - before))


def seed(history: History, *, now: float, current: int) -> None:
    """A scaler seen for the first time: its down window starts full of ``current``."""
    if not history.recommendations:
        history.recommendations.append((now, current))


def _window(behaviour: Behaviour, direction: Direction) -> float:
    return behaviour.up.window_seconds if direction == "up" else behaviour.down.window_seconds


__all__ = ["Behaviour", "Decision", "History", "Limit", "Policy", "Rules", "decide",
           "down_limit", "record_scale", "seed", "stabilize", "up_limit"]
