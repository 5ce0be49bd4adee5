"""Zone rollouts: a PinApp's new template reaches its member clusters one zone at a time.

Theory of operation
-------------------
When a host PinApp's template changes (a new *revision*: the template's hash), the
propagation controller does not write it into every shard at once.  It asks
:func:`step` which zones are *released* — their shards get the new template; the
others keep the template they run — and records the answer in ``status.rollout``
(:class:`~pincompute.model.app.ZoneRolloutStatus`), so a restarted controller
continues where it stood (no state lives only in memory).

Zones go in ``spec.strategy.zoneRollout.order``, then the others alphabetically.  A
zone is done when every shard in it runs the new template and is fully available
(the aggregated status of :mod:`.statusaggregation`), then it soaks for
``soakSeconds`` and the next zone starts.  A zone that takes longer than the app's
``progressDeadlineSeconds`` pauses the rollout (reason ``ProgressDeadlineExceeded``);
so does ``spec.paused``.  A rollout paused by the deadline resumes on the annotation
:data:`~pincompute.model.wellknown.RESUME_ROLLOUT_ANNOTATION`, one paused by the spec
when ``paused`` is false again.  A newer revision restarts the rollout.

The phases are the table :data:`TRANSITIONS` — (phase, event) → next phase —
readable and tested without a cluster.  ``status.lastProgressTime`` dates the
current phase (when the zone started, or when it became available and began to
soak).
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Literal

Phase = Literal["Progressing", "Soaking", "Paused", "Complete"]
Event = Literal["ZoneAvailable", "Soaked", "Finished", "DeadlineExceeded", "PauseRequested",
                "Resumed"]

TRANSITIONS: Final[Mapping[tuple[Phase, Event], Phase]] = {
    ("Progressing", "ZoneAvailable"): "Soaking",
    ("Progressing", "DeadlineExceeded"): "Paused",
    ("Progressing", "PauseRequested"): "Paused",
    ("Soaking", "Soaked"): "Progressing",        # the next zone starts
    ("Soaking", "Finished"): "Complete",         # that was the last zone
    ("Soaking", "PauseRequested"): "Paused",
    ("Paused", "Resumed"): "Progressing",        # the same zone, its deadline restarted
}
"""The rollout phases.  A new revision starts any phase over at ``Progressing``."""

DEADLINE_EXCEEDED: Final = "ProgressDeadlineExceeded"
PAUSED_BY_SPEC: Final = "RolloutPaused"


@dataclass(frozen=True, kw_only=True, slots=True)
class ZoneState:
    """How the shards of one zone stand against the new revision."""

    updated: bool
    """Every shard of the zone has the new template (a zone without shards has)."""
    available: bool
    """...and every shard is fully available at its share."""


@dataclass(frozen=True, kw_only=True, slots=True)
class Step:
    """What one look at a rollout decided."""

    status: dict[str, Any]
    """The new ``status.rollout`` (camelCase)."""
    released: frozenset[str]
    """Zones whose shards get the new template."""
    since: str | None
    """The new ``status.lastProgressTime``."""
    reason: str = ""
    """Why the rollout is paused (``ProgressDeadlineExceeded``, ``RolloutPaused``)."""
    requeue_after: float | None = None
    """When to look again even if nothing changes (deadline, soak)."""
    events: list[tuple[str, str]] = field(default_factory=list)
    """(reason, message) for the host object's events."""
    resumed: bool = False
    """The resume annotation was consumed."""


def zone_order(zones: Sequence[str], order: Sequence[str] | None) -> list[str]:
    """``zones`` in rollout order: those in ``order`` first, the rest alphabetically."""
    listed = [z for z in order or () if z in zones]
    return listed + sorted(set(zones) - set(listed))


def step(*, revision: str, zones: Mapping[str, ZoneState], previous: Mapping[str, Any] | None,
         since: str | None, order: Sequence[str] | None = None, soak_seconds: float = 0,
         deadline_seconds: float = 600, paused: bool = False, resume: bool = False,
         paused_reason: str = "", now: _dt.datetime | None = None) -> Step:
    """Advance a rollout to ``revision`` given its zones' states; see the module docstring."""
    now = now or _dt.datetime.now(_dt.UTC)
    stamp = now.strftime("%Y-%m-%dT%H:%M:%SZ")
    ordered = zone_order(list(zones), order)
    prev = dict(previous or {})
    events: list[tuple[str, str]] = []
    if prev.get("revision") != revision:
        todo = [z for z in ordered if not zones[z].available]
        if not todo or not any(not zones[z].updated for z in ordered):
            # Nothing runs an older template (a first deployment, or every zone done).
            done = {"revision": revision, "completedZones": ordered, "pendingZones": [],
                    "currentZone": None, "phase": "Complete"}
            return Step(status=_clean(done), released=frozenset(zones), since=since)
        completed = [z for z in ordered if z not in todo]
        prev = {"revision": revision, "completedZones": completed, "currentZone": todo[0],
                "pendingZones": todo[1:], "phase": "Progressing"}
        since = stamp
        events.append(("ZoneRolloutStarted", f"rolling out revision {revision} zone by zone, "
                                             f"starting with {todo[0]}"))
    phase: Phase = prev.get("phase") or "Progressing"
    current: str | None = prev.get("currentZone")
    completed = list(prev.get("completedZones") or ())
    pending = [z for z in ordered if z not in completed and z != current]
    reason = paused_reason if phase == "Paused" else ""
    resumed = False
    requeue: float | None = None
    elapsed = (now - _parse(since)).total_seconds() if since else 0.0
    for _ in range(2 * len(ordered) + 4):
        event: Event | None = None
        if phase == "Complete":
            break
        if phase != "Paused" and paused:
            event, reason = "PauseRequested", PAUSED_BY_SPEC
        elif phase == "Paused":
            if (reason == DEADLINE_EXCEEDED and resume) or (reason != DEADLINE_EXCEEDED
                                                            and not paused):
                event, resumed = "Resumed", resume
        elif phase == "Progressing":
            if current is None or current not in zones or zones[current].available:
                event = "ZoneAvailable"
            elif elapsed > deadline_seconds:
                event, reason = "DeadlineExceeded", DEADLINE_EXCEEDED
            else:
                requeue = max(deadline_seconds - elapsed, 0.0) + 0.5
        elif phase == "Soaking":
            if elapsed >= soak_seconds:
                event = "Soaked" if pending else "Finished"
            else:
                requeue = soak_seconds - elapsed + 0.1
        if event is None:
            break
        nxt = TRANSITIONS[(phase, event)]
        if event == "ZoneAvailable":
            if current is not None and current in zones:
                completed.append(current)
                events.append(("ZoneRolledOut", f"zone {current} runs revision {revision}"))
            current, since, elapsed = None, stamp, 0.0
        elif event == "Soaked":
            current, pending = pending[0], pending[1:]
            since, elapsed = stamp, 0.0
            events.append(("ZoneRolloutProgressing", f"rolling out revision {revision} "
                                                     f"to zone {current}"))
        elif event == "Finished":
            events.append(("ZoneRolloutComplete", f"revision {revision} runs in every zone"))
        elif event == "DeadlineExceeded":
            events.append(("ZoneRolloutPaused", f"zone {current} did not become available "
                                                f"within {deadline_seconds:g}s"))
        elif event == "PauseRequested":
            events.append(("ZoneRolloutPaused", "the app is paused"))
        elif event == "Resumed":
            reason = ""
            since, elapsed = stamp, 0.0
            events.append(("ZoneRolloutResumed", f"resuming the rollout at zone {current}"))
        phase = nxt
        if phase == "Complete":
            break
    released = set(completed)
    if phase == "Complete":
        released = set(zones)
    elif current is not None:
        released.add(current)
    status = {"revision": revision, "currentZone": current, "completedZones": completed,
              "pendingZones": pending, "phase": phase}
    return Step(status=_clean(status), released=frozenset(released), since=since,
                reason=reason, requeue_after=requeue, events=events, resumed=resumed)


def _clean(status: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in status.items() if v is not None}


def _parse(value: str) -> _dt.datetime:
    return _dt.datetime.fromisoformat(value.replace("Z", "+00:00"))


__all__ = ["DEADLINE_EXCEEDED", "PAUSED_BY_SPEC", "TRANSITIONS", "Step", "ZoneState",
           "step", "zone_order"]
