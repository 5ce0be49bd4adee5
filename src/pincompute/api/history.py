"""The history of a workload: its state transitions with their times.

Theory of operation
-------------------
``GET .../{plural}/{name}/history`` answers "what happened to my app, and when?":
admitted, queued, placed, rolled out, scaled, failed over...  Nothing stores such a
list: it is derived, by :func:`history`, a pure function of the object and the
Events about it (the host's own and those the federation forwards from member
clusters, one per cluster and reason), so it needs no controller and is tested
without a cluster.

Two sources, each read through a table (data, not code):

* **conditions** — each condition keeps its *latest* transition
  (``lastTransitionTime``).  :data:`CONDITION_STATES` maps (type, status, reason)
  to a state; a ``None`` reason is the row for any reason.  The admission
  controller's ``Admitted``/``Queued``, the placement controller's ``Scheduled``
  (whose reason is the failover table's state: ``Scheduled``, ``FailedOver``,
  ``Rebalancing``, ``Unschedulable``, ``NotAdmitted``), the aggregated
  ``Available``/``Progressing``/``Complete``/``Failed`` and the operators'
  ``Paused``/``Stopped``/``Suspended``.
* **Events** — the record of every occurrence, with a count and first and last
  times for repeats.  :data:`EVENT_STATES` maps a reason to a state; reasons not
  in it (pod created, probe failed...) are detail, left to the events API.

Each row found becomes an :class:`Entry`; the creation (and a deletion in
progress) are entries too.  A condition transition and an Event saying the same
(a ``FailedOver`` condition and its ``FailedOver`` Event) within
:data:`SAME_MOMENT` seconds are one transition: the Event is kept, it has the
message, the cluster and the count.  Entries are sorted by time (ties keep
creation first, then conditions, then events, as recorded).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from pincompute.kube import objects
from pincompute.model.wellknown import FORWARDED_EVENT_LABEL

ADMITTED: Final = "admitted"
NOT_ADMITTED: Final = "not admitted"
PREEMPTED: Final = "preempted"
QUEUED: Final = "queued"
PLACED: Final = "placed"
UNSCHEDULABLE: Final = "unschedulable"
FAILED_OVER: Final = "failed over"
REBALANCING: Final = "rebalancing"
REBALANCED: Final = "rebalanced"
WITHDRAWN: Final = "withdrawn"
ROLLING_OUT: Final = "rolling out"
ROLLED_OUT: Final = "rolled out"
ROLLOUT_PAUSED: Final = "rollout paused"
ROLLOUT_STUCK: Final = "rollout stuck"
ROLLED_BACK: Final = "rolled back"
SCALED: Final = "scaled"
AVAILABLE: Final = "available"
UNAVAILABLE: Final = "unavailable"
READY: Final = "ready"
PAUSED: Final = "paused"
RESUMED: Final = "resumed"
STOPPED: Final = "stopped"
STARTED: Final = "started"
SUSPENDED: Final = "suspended"
COMPLETE: Final = "complete"
FAILED: Final = "failed"
RESTARTED: Final = "restarted"
TRIGGERED: Final = "triggered"
CREATED: Final = "created"
DELETING: Final = "deleting"

CONDITION_STATES: Final[Mapping[tuple[str, bool, str | None], str]] = {
    ("Admitted", True, None): ADMITTED,
    ("Admitted", False, "Preempted"): PREEMPTED,
    ("Admitted", False, None): NOT_ADMITTED,
    ("Queued", True, None): QUEUED,
    ("Scheduled", True, "Scheduled"): PLACED,
    ("Scheduled", True, "FailedOver"): FAILED_OVER,
    ("Scheduled", True, "Rebalancing"): REBALANCING,
    ("Scheduled", True, None): PLACED,
    ("Scheduled", False, "NotAdmitted"): WITHDRAWN,
    ("Scheduled", False, None): UNSCHEDULABLE,
    ("Progressing", True, "NewRevisionAvailable"): ROLLED_OUT,
    ("Progressing", True, None): ROLLING_OUT,
    ("Progressing", False, "ProgressDeadlineExceeded"): ROLLOUT_STUCK,
    ("Progressing", False, None): ROLLOUT_PAUSED,
    ("Available", True, None): AVAILABLE,
    ("Available", False, None): UNAVAILABLE,
    ("Ready", True, None): READY,
    ("Paused", True, None): PAUSED,
    ("Paused", False, "Resumed"): RESUMED,
    ("Stopped", True, None): STOPPED,
    ("Stopped", False, "Started"): STARTED,
    ("Suspended", True, None): SUSPENDED,
    ("Complete", True, None): COMPLETE,
    ("Failed", True, None): FAILED,
}
"""(condition type, status, reason or None for any) -> state.  A condition made False
with the object (within :data:`SAME_MOMENT` of its creation) is its initial state, no
transition: an app is not "resumed" or "unavailable" the moment it is created."""

EVENT_STATES: Final[Mapping[str, str]] = {
    "Admitted": ADMITTED, "Queued": QUEUED,
    "FailedOver": FAILED_OVER, "Rebalanced": REBALANCED, "Withdrawn": WITHDRAWN,
    "RolloutStarted": ROLLING_OUT, "ZoneRolloutStarted": ROLLING_OUT,
    "ZoneRolledOut": ROLLING_OUT, "ZoneRolloutProgressing": ROLLING_OUT,
    "ZoneRolloutResumed": ROLLING_OUT,
    "RolloutCompleted": ROLLED_OUT, "ZoneRolloutComplete": ROLLED_OUT,
    "ZoneRolloutPaused": ROLLOUT_PAUSED, "ProgressDeadlineExceeded": ROLLOUT_STUCK,
    "Rollback": ROLLED_BACK,
    "ScaledUp": SCALED, "ScaledDown": SCALED, "Scaled": SCALED,
    "Paused": PAUSED, "Resumed": RESUMED, "Stopped": STOPPED,
    "JobSuspended": SUSPENDED, "Suspended": SUSPENDED, "JobResumed": RESUMED,
    "JobRestarted": RESTARTED, "Succeeded": COMPLETE, "Triggered": TRIGGERED,
}
"""Event reason -> state (on the host: the federation's own Events and those it forwards).

Left out on purpose: reasons the pod scheduler and the node agents use too —
``Scheduled`` (a pod bound to a node), ``Started`` (a container), ``Failed``,
``Preempted``, ``BackOff`` — since the federation forwards a workload's pod Events
under the workload, merged with its own by reason; placement, start, failure and
preemption come from the conditions instead."""

SAME_MOMENT: Final = 5.0
"""Seconds within which a condition transition and an Event of the same state are one."""

_SOURCE_ORDER = {"object": 0, "condition": 1, "event": 2}


@dataclass(frozen=True, slots=True, kw_only=True)
class Entry:
    """One transition."""

    time: str
    """RFC 3339."""
    state: str
    reason: str = ""
    message: str = ""
    source: str = "event"
    """``object`` (creation, deletion), ``condition`` or ``event``."""
    condition: str | None = None
    """The condition's type, for a ``condition`` entry."""
    cluster: str | None = None
    """The member cluster an Event was forwarded from."""
    count: int = 1
    """How many times the Event occurred (``time`` is the last one)."""
    first_time: str | None = None
    """The first occurrence, when the Event repeated."""

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"time": self.time, "state": self.state, "reason": self.reason,
                               "message": self.message, "source": self.source}
        if self.condition is not None:
            out["condition"] = self.condition
        if self.cluster is not None:
            out["cluster"] = self.cluster
        if self.count != 1:
            out["count"] = self.count
        if self.first_time is not None:
            out["firstTime"] = self.first_time
        return out


def parse_time(value: str) -> dt.datetime | None:
    """An RFC 3339 time (``Z`` or an offset, with or without fractions), or None."""
    try:
        parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except (ValueError, AttributeError):
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=dt.UTC)


def condition_state(type_: str, status: bool, reason: str | None) -> str | None:
    """The state a condition at ``status`` with ``reason`` means, or None."""
    return (CONDITION_STATES.get((type_, status, reason))
            or CONDITION_STATES.get((type_, status, None)))


def _from_conditions(obj: Mapping[str, Any]) -> Iterable[Entry]:
    created = parse_time(objects.meta(obj).get("creationTimestamp") or "")
    for cond in (obj.get("status") or {}).get("conditions") or ():
        status = cond.get("status")
        if status not in ("True", "False") or not cond.get("lastTransitionTime"):
            continue
        at = parse_time(cond["lastTransitionTime"])
        if (status == "False" and created is not None and at is not None
                and (at - created).total_seconds() <= SAME_MOMENT):
            continue  # the initial state, not a transition
        type_ = str(cond.get("type") or "")
        state = condition_state(type_, status == "True", cond.get("reason"))
        if state is not None:
            yield Entry(time=cond["lastTransitionTime"], state=state,
                        reason=str(cond.get("reason") or ""),
                        message=str(cond.get("message") or ""), source="condition",
                        condition=type_)


def _from_events(events: Iterable[Mapping[str, Any]]) -> Iterable[Entry]:
    for event in events:
        state = EVENT_STATES.get(str(event.get("reason") or ""))
        last = (event.get("lastTimestamp") or event.get("eventTime")
                or event.get("firstTimestamp") or objects.meta(event).get("creationTimestamp"))
        if state is None or not last:
            continue
        first = event.get("firstTimestamp")
        count = int(event.get("count") or 1)
        labels = objects.meta(event).get("labels") or {}
        yield Entry(time=str(last), state=state, reason=str(event.get("reason")),
                    message=str(event.get("message") or ""), source="event",
                    cluster=labels.get(FORWARDED_EVENT_LABEL) or None, count=count,
                    first_time=str(first) if first and first != last else None)


def _epoch(entry: Entry) -> float:
    parsed = parse_time(entry.time)
    return parsed.timestamp() if parsed is not None else 0.0


def history(obj: Mapping[str, Any], events: Iterable[Mapping[str, Any]]) -> list[Entry]:
    """The transitions of ``obj``, oldest first, from its conditions and ``events``
    (the Events whose ``involvedObject`` is ``obj``; others are the caller's to leave out)."""
    md = objects.meta(obj)
    entries: list[Entry] = []
    if md.get("creationTimestamp"):
        entries.append(Entry(time=md["creationTimestamp"], state=CREATED, source="object",
                             message=f"{obj.get('kind', 'object')} {md.get('name', '')} "
                                     "created"))
    from_events = list(_from_events(events))
    times: dict[str, list[float]] = {}
    for e in from_events:
        times.setdefault(e.state, []).append(_epoch(e))
    for c in _from_conditions(obj):
        at = _epoch(c)
        if any(abs(at - t) <= SAME_MOMENT for t in times.get(c.state, ())):
            continue  # the Event says it, with more
        entries.append(c)
    entries += from_events
    if md.get("deletionTimestamp"):
        entries.append(Entry(time=md["deletionTimestamp"], state=DELETING, source="object",
                             message="deletion requested"))
    # A stable sort: for equal times, creation, then conditions, then events in order.
    entries.sort(key=lambda e: (_epoch(e), _SOURCE_ORDER[e.source]))
    return entries


__all__ = ["CONDITION_STATES", "EVENT_STATES", "SAME_MOMENT", "Entry", "condition_state",
           "history", "parse_time"]
