"""Container records without processes: spec changes, and the moves that need no process."""

from __future__ import annotations

import pytest

from pincompute.node.backoff import CRASH_LOOP
from pincompute.node.containerlifecycle import IllegalTransition, State
from pincompute.node.containerrunner import ContainerRecord, initial_records, reconcile_spec

POLICY = CRASH_LOOP


def record(**spec) -> ContainerRecord:
    return ContainerRecord({"name": "main", "image": "a", **spec}, POLICY)


def test_a_changed_spec_is_outdated_an_equal_copy_is_not():
    rec = record()
    rec.desired = {"name": "main", "image": "a"}  # a new object, equal
    assert not rec.outdated
    rec.desired = {"name": "main", "image": "b"}
    assert rec.outdated
    rec.state = State.TERMINATED
    rec.update()
    assert rec.state is State.WAITING and rec.spec["image"] == "b" and not rec.outdated


def test_stop_ends_a_backoff_and_keeps_the_last_termination():
    rec = record()
    rec.state = State.BACKOFF
    rec.waiting_reason = "CrashLoopBackOff"
    rec.backoff_until = 123.0
    rec.stop()
    assert rec.state is State.TERMINATED
    assert (rec.waiting_reason, rec.backoff_until) == ("", None)
    rec.state = State.RUNNING
    with pytest.raises(IllegalTransition):
        rec.stop()  # a process must be killed, not stopped


def test_reconcile_spec_keeps_records_adds_new_and_marks_removed():
    a, b = {"name": "a"}, {"name": "b"}
    records = initial_records({"spec": {"containers": [a, b]}}, POLICY, None, "",
                              terminated=False)
    assert reconcile_spec(records, [a, b], POLICY) is None  # nothing changed
    a2, c = {"name": "a", "image": "new"}, {"name": "c"}
    after = reconcile_spec(records, [c, a2], POLICY)
    assert list(after) == ["c", "a", "b"]  # spec order, removed ones last
    assert after["a"] is records["a"] and after["a"].desired is a2
    assert after["b"].removed and not after["a"].removed and not after["c"].removed


def test_initial_records_continue_the_restart_count_of_an_earlier_run():
    pod = {"spec": {"containers": [{"name": "main"}, {"name": "side", "type": "sidecar"}]},
           "status": {"phase": "Succeeded",
                      "containerStatuses": [{"name": "main", "restartCount": 3}]}}
    records = initial_records(pod, POLICY, None, "", terminated=True)
    assert records["main"].restart_count == 3 and records["side"].restart_count == 0
    assert records["side"].sidecar
    assert {r.state for r in records.values()} == {State.TERMINATED}
