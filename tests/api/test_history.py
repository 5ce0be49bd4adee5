"""The history of an object, derived from its conditions and Events (table-driven, no cluster)."""

from __future__ import annotations

from typing import Any

import pytest

from pincompute.api.history import CONDITION_STATES, EVENT_STATES, condition_state, history
from pincompute.model.wellknown import FORWARDED_EVENT_LABEL

T0 = "2026-11-30T10:00:00Z"


def at(seconds: int) -> str:
    return f"2026-11-30T10:{seconds // 60:02d}:{seconds % 60:02d}Z"


def app(*conditions: dict[str, Any], deleting: str | None = None) -> dict[str, Any]:
    md: dict[str, Any] = {"name": "web", "namespace": "p", "uid": "u1", "creationTimestamp": T0}
    if deleting:
        md["deletionTimestamp"] = deleting
    return {"kind": "PinApp", "metadata": md, "status": {"conditions": list(conditions)}}


def cond(type_: str, status: str, reason: str, when: str, message: str = "") -> dict[str, Any]:
    return {"type": type_, "status": status, "reason": reason, "lastTransitionTime": when,
            "message": message}


def event(reason: str, last: str, *, first: str | None = None, count: int = 1,
          cluster: str | None = None, message: str = "") -> dict[str, Any]:
    labels = {FORWARDED_EVENT_LABEL: cluster} if cluster else {}
    return {"metadata": {"name": f"web.{reason}", "labels": labels}, "reason": reason,
            "message": message, "count": count, "firstTimestamp": first or last,
            "lastTimestamp": last}


@pytest.mark.parametrize(("type_", "status", "reason", "state"), [
    ("Admitted", True, "Admitted", "admitted"),
    ("Admitted", False, "Preempted", "preempted"),
    ("Admitted", False, "QuotaExceeded", "not admitted"),
    ("Queued", True, "QuotaExceeded", "queued"),
    ("Queued", False, "Admitted", None),
    ("Scheduled", True, "Scheduled", "placed"),
    ("Scheduled", True, "FailedOver", "failed over"),
    ("Scheduled", True, "Rebalancing", "rebalancing"),
    ("Scheduled", False, "Unschedulable", "unschedulable"),
    ("Scheduled", False, "NotAdmitted", "withdrawn"),
    ("Progressing", True, "NewRevisionAvailable", "rolled out"),
    ("Progressing", True, "ReplicasUpdating", "rolling out"),
    ("Progressing", False, "ProgressDeadlineExceeded", "rollout stuck"),
    ("Progressing", False, "RolloutPaused", "rollout paused"),
    ("Available", True, "MinimumReplicasAvailable", "available"),
    ("Available", False, "MinimumReplicasUnavailable", "unavailable"),
    ("Paused", True, "Paused", "paused"),
    ("Paused", False, "Resumed", "resumed"),
    ("Stopped", False, "Started", "started"),
    ("Stopped", True, "Stopped", "stopped"),
    ("Complete", True, "ShardsComplete", "complete"),
    ("Failed", True, "ShardFailed", "failed"),
    ("SomethingElse", True, "Whatever", None),
])
def test_condition_table(type_: str, status: bool, reason: str, state: str | None) -> None:
    assert condition_state(type_, status, reason) == state


def test_every_table_row_names_a_state() -> None:
    assert all(CONDITION_STATES.values()) and all(EVENT_STATES.values())


CASES: list[tuple[str, dict[str, Any], list[dict[str, Any]], list[tuple[str, str, str]]]] = [
    ("a new object has only its creation", app(), [], [(T0, "created", "object")]),
    ("queued, then admitted, placed and rolled out",
     app(cond("Queued", "False", "Admitted", at(20)),
         cond("Admitted", "True", "Admitted", at(20)),
         cond("Scheduled", "True", "Scheduled", at(21)),
         cond("Progressing", "True", "NewRevisionAvailable", at(40))),
     [event("Queued", at(5)), event("ZoneRolloutStarted", at(22)),
      event("ZoneRolloutComplete", at(40))],
     [(T0, "created", "object"), (at(5), "queued", "event"),
      (at(20), "admitted", "condition"), (at(21), "placed", "condition"),
      (at(22), "rolling out", "event"), (at(40), "rolled out", "event")]),
    ("a failover: the condition and its Event are one transition, the Event kept",
     app(cond("Scheduled", "True", "FailedOver", at(62))),
     [event("FailedOver", at(60), message="moved 2 replicas off zone-a-1")],
     [(T0, "created", "object"), (at(60), "failed over", "event")]),
    ("a condition far from an Event of the same state stays",
     app(cond("Scheduled", "True", "FailedOver", at(100))),
     [event("FailedOver", at(60))],
     [(T0, "created", "object"), (at(60), "failed over", "event"),
      (at(100), "failed over", "condition")]),
    ("forwarded scale Events of two clusters, with counts",
     app(),
     [event("ScaledUp", at(30), first=at(10), count=3, cluster="zone-a-1"),
      event("ScaledDown", at(20), cluster="zone-b-1"), event("Created", at(9))],
     [(T0, "created", "object"), (at(20), "scaled", "event"), (at(30), "scaled", "event")]),
    ("paused, resumed, deleting",
     app(cond("Paused", "False", "Resumed", at(50)), deleting=at(70)),
     [event("Paused", at(40)), event("Resumed", at(50))],
     [(T0, "created", "object"), (at(40), "paused", "event"), (at(50), "resumed", "event"),
      (at(70), "deleting", "object")]),
    ("conditions made False with the object are its initial state, not transitions",
     app(cond("Paused", "False", "Resumed", at(1)), cond("Available", "False", "X", at(0)),
         cond("Stopped", "False", "Started", at(90))), [],
     [(T0, "created", "object"), (at(90), "started", "condition")]),
    ("pod-level reasons forwarded with the workload's are not its transitions",
     app(), [event("Scheduled", at(5)), event("Started", at(6)), event("Failed", at(7)),
             event("Preempted", at(8)), event("BackOff", at(9))],
     [(T0, "created", "object")]),
    ("conditions without a transition time or an unknown status are skipped",
     app({"type": "Admitted", "status": "True"}, cond("Admitted", "Unknown", "X", at(5))), [],
     [(T0, "created", "object")]),
]


@pytest.mark.parametrize(("obj", "events", "expected"), [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])
def test_history(obj: dict[str, Any], events: list[dict[str, Any]],
                 expected: list[tuple[str, str, str]]) -> None:
    assert [(e.time, e.state, e.source) for e in history(obj, events)] == expected


def test_entries_carry_cluster_count_and_first_time() -> None:
    entries = history(app(), [event("ScaledUp", at(30), first=at(10), count=3,
                                    cluster="zone-a-1", message="[zone-a-1] scaled to 3")])
    assert entries[-1].to_json() == {
        "time": at(30), "state": "scaled", "reason": "ScaledUp",
        "message": "[zone-a-1] scaled to 3", "source": "event", "cluster": "zone-a-1",
        "count": 3, "firstTime": at(10)}
    assert history(app(cond("Admitted", "True", "Admitted", at(3))), [])[-1].to_json() == {
        "time": at(3), "state": "admitted", "reason": "Admitted", "message": "",
        "source": "condition", "condition": "Admitted"}
