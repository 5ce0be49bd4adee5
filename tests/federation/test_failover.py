"""The failover and rebalance rules as tables: no cluster needed."""

from __future__ import annotations

import pytest

from pincompute.federation import failover as f
from pincompute.model.wellknown import (
    CLUSTER_DRAINING_TAINT,
    CLUSTER_NOT_READY_TAINT,
    CLUSTER_UNREACHABLE_TAINT,
)


def mc(*, conditions: dict[str, str] | None = None,
       taints: list[dict[str, str]] | None = None) -> dict:
    return {"metadata": {"name": "c"}, "spec": {"zone": "z", "taints": taints or []},
            "status": {"conditions": [{"type": t, "status": s, "reason": "Probe"}
                                      for t, s in (conditions or {}).items()]}}


@pytest.mark.parametrize(("cluster", "reason", "grace"), [
    (mc(), None, None),
    (mc(conditions={"Ready": "True", "Reachable": "True"}), None, None),
    (mc(conditions={"Ready": "False"}), "NotReady", True),
    (mc(conditions={"Ready": "Unknown"}), "NotReady", True),
    (mc(conditions={"Reachable": "False", "Ready": "False"}), "Unreachable", True),
    (mc(conditions={"Connected": "False"}), "Disconnected", True),
    (mc(taints=[{"key": "x", "effect": "NoExecute"}]), "NoExecute", True),
    (mc(taints=[{"key": "x", "effect": "NoSchedule"}]), None, None),
    (mc(taints=[{"key": CLUSTER_DRAINING_TAINT, "effect": "NoSchedule"}]), "Draining", False),
    (mc(conditions={"Ready": "False"},
        taints=[{"key": CLUSTER_DRAINING_TAINT, "effect": "NoSchedule"}]), "Draining", False),
])
def test_evacuation_signals(cluster: dict, reason: str | None, grace: bool | None) -> None:
    got = f.evacuation(cluster)
    if reason is None:
        assert got is None
    else:
        assert got is not None and (got.reason, got.grace) == (reason, grace)


def test_unschedulable_is_not_an_evacuation() -> None:
    cluster = mc()
    cluster["spec"]["unschedulable"] = True
    assert f.evacuation(cluster) is None


NOT_READY_NO_SCHEDULE = {"key": CLUSTER_NOT_READY_TAINT, "effect": "NoSchedule"}


@pytest.mark.parametrize(("cluster", "back"), [
    # Conditions True again, the health taint not lifted yet: back, not yet placeable.
    (mc(conditions={"Ready": "True"}, taints=[NOT_READY_NO_SCHEDULE]), True),
    (mc(conditions={"Ready": "True"}, taints=[
        {"key": CLUSTER_UNREACHABLE_TAINT, "effect": "NoSchedule"}]), True),
    # Still out (an evacuation signal holds), or simply healthy, or someone else's taint.
    (mc(conditions={"Ready": "False"}, taints=[NOT_READY_NO_SCHEDULE]), False),
    (mc(conditions={"Ready": "True"}, taints=[
        {"key": CLUSTER_NOT_READY_TAINT, "effect": "NoExecute"}]), False),
    (mc(conditions={"Ready": "True"}), False),
    (mc(conditions={"Ready": "True"}, taints=[{"key": "gpu", "effect": "NoSchedule"}]), False),
])
def test_a_cluster_recovering_still_carries_its_health_taints(cluster: dict,
                                                              back: bool) -> None:
    assert f.recovering(cluster) is back


@pytest.mark.parametrize(("since", "now", "grace", "applies", "left"), [
    (100.0, 100.0, 30.0, True, 30.0),
    (100.0, 120.0, 30.0, True, 10.0),
    (100.0, 130.0, 30.0, True, 0.0),
    (100.0, 500.0, 30.0, True, 0.0),
    (100.0, 100.0, 30.0, False, 0.0),  # draining: at once
])
def test_grace_left(since: float, now: float, grace: float, applies: bool, left: float) -> None:
    assert f.grace_left(since=since, now=now, grace=grace, applies=applies) == left


def test_transition_table() -> None:
    assert f.next_reason(None, "placed") == f.SCHEDULED
    assert f.next_reason(f.SCHEDULED, "failover") == f.FAILED_OVER
    assert f.next_reason(f.FAILED_OVER, "step") == f.REBALANCING
    assert f.next_reason(f.REBALANCING, "step") == f.REBALANCING
    assert f.next_reason(f.REBALANCING, "balanced") == f.SCHEDULED
    assert f.next_reason(f.FAILED_OVER, "unschedulable") == f.UNSCHEDULABLE
    assert f.next_reason(f.UNSCHEDULABLE, "placed") == f.SCHEDULED
    assert f.next_reason(f.REBALANCING, "withdrawn") == f.NOT_ADMITTED
    assert f.next_reason(f.NOT_ADMITTED, "placed") == f.SCHEDULED
    with pytest.raises(KeyError):
        f.next_reason(f.SCHEDULED, "step")  # nothing owed: no rebalance step
    assert set(f.PENDING_REASONS) < set(f.SCHEDULED_REASONS)


@pytest.mark.parametrize(("current", "ideal", "moves", "want"), [
    ({"a": 3, "b": 3}, {"a": 2, "b": 2, "c": 2}, 1, {"a": 2, "b": 3, "c": 1}),
    ({"a": 3, "b": 3}, {"a": 2, "b": 2, "c": 2}, 2, {"a": 2, "b": 2, "c": 2}),
    ({"a": 3, "b": 3}, {"a": 2, "b": 2, "c": 2}, 9, {"a": 2, "b": 2, "c": 2}),
    ({"a": 2, "b": 2, "c": 2}, {"a": 2, "b": 2, "c": 2}, 3, {"a": 2, "b": 2, "c": 2}),
    ({"a": 6}, {"a": 2, "b": 2, "c": 2}, 3, {"a": 3, "b": 2, "c": 1}),
    ({"a": 1}, {"b": 1}, 1, {"b": 1}),
    ({"a": 4}, {"a": 2}, 1, {"a": 3}),  # scale-down rides along
])
def test_rebalance_step(current: dict, ideal: dict, moves: int, want: dict) -> None:
    got = f.rebalance_step(current, ideal, max_moves=moves)
    assert got == want
    assert f.moved(current, got) <= moves
    for c in set(current) | set(ideal):  # never beyond either placement
        lo, hi = sorted((current.get(c, 0), ideal.get(c, 0)))
        assert lo <= got.get(c, 0) <= hi


def test_rebalance_converges() -> None:
    current, ideal = {"a": 5, "b": 4}, {"a": 3, "b": 3, "c": 3}
    steps = 0
    while current != ideal:
        current = f.rebalance_step(current, ideal, max_moves=1)
        steps += 1
        assert sum(current.values()) == 9
    assert steps == 3


def app(replicas: int, *, budget: dict | None = None, unavailable: int | str | None = None
        ) -> dict:
    spec: dict = {"replicas": replicas}
    if budget:
        spec["disruptionBudget"] = budget
    if unavailable is not None:
        spec["strategy"] = {"rollingUpdate": {"maxUnavailable": unavailable}}
    return {"kind": "PinApp", "spec": spec}


@pytest.mark.parametrize(("obj", "step", "want"), [
    (app(12), 10, 3),                                  # rolling update default 25%
    (app(12, unavailable=1), 10, 1),
    (app(12, budget={"maxUnavailable": 2}), 10, 2),
    (app(12, budget={"maxUnavailable": "50%"}), 4, 4),  # the step bounds it
    (app(10, budget={"minAvailable": 8}), 10, 2),
    (app(10, budget={"minAvailable": "90%"}), 10, 1),
    (app(3, budget={"minAvailable": 3}), 10, 1),        # never stuck: one at a time
    ({"kind": "PinJob", "spec": {"parallelism": 8}}, 5, 5),
])
def test_move_budget(obj: dict, step: int, want: int) -> None:
    assert f.move_budget(obj, step=step) == want
