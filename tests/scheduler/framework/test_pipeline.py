from __future__ import annotations

from typing import Any

from pincompute.scheduler.framework import (
    SUCCESS,
    Code,
    CycleState,
    Framework,
    Profile,
    Registry,
    Status,
    unschedulable,
    wait,
)
from pincompute.scheduler.plugins import in_tree
from tests.scheduler.support import ManualTimers, framework, info, node, pod, table_of


class Recorder:
    """A Reserve/Permit plugin that records calls and answers as told."""

    def __init__(self, name: str, *, reserve: Status = SUCCESS, permit: Status = SUCCESS) -> None:
        self.name = name
        self._reserve = reserve
        self._permit = permit
        self.calls: list[str] = []

    def reserve(self, state: CycleState, p: Any, node: str) -> Status:
        self.calls.append(f"reserve {p.name}")
        return self._reserve

    def unreserve(self, state: CycleState, p: Any, node: str) -> None:
        self.calls.append(f"unreserve {p.name}")

    def permit(self, state: CycleState, p: Any, node: str) -> Status:
        self.calls.append(f"permit {p.name}")
        return self._permit


def with_plugins(*plugins: Recorder, timers: ManualTimers | None = None) -> Any:
    """A two-node table and a default-profile framework with ``plugins`` added."""
    timers = timers or ManualTimers()
    registry = in_tree().merge(Registry({p.name: (lambda args, handle, p=p: p)
                                         for p in plugins}))
    profile = Profile().with_plugins(enable=[p.name for p in plugins])
    t = table_of(node("a"), node("b"))
    return t, Framework(profile, registry, table=t, clock=timers.clock,
                        call_later=timers.call_later)


def test_a_successful_cycle_assumes_the_pod() -> None:
    rec = Recorder("Rec")
    t, fw = with_plugins(rec)
    p = info(pod("p", cpu="1"))
    d = fw.schedule(p)
    assert d.status.ok and d.node in ("a", "b")
    assert t.is_assumed(p.uid)
    assert rec.calls == ["reserve p", "permit p"]


def test_a_failed_reserve_unreserves_and_forgets() -> None:
    rec = Recorder("Rec", reserve=unschedulable("no"))
    t, fw = with_plugins(rec)
    p = info(pod("p"))
    d = fw.schedule(p)
    assert d.status.code == Code.UNSCHEDULABLE and d.status.plugin == "Rec"
    assert not t.pods
    assert rec.calls == ["reserve p", "unreserve p"]


def test_a_permit_rejection_undoes_the_reservation() -> None:
    rec = Recorder("Rec", permit=unschedulable("denied"))
    t, fw = with_plugins(rec)
    p = info(pod("p"))
    assert fw.schedule(p).status.plugin == "Rec"
    assert not t.pods and rec.calls[-1] == "unreserve p"


def test_permit_wait_parks_the_pod_with_its_reservation() -> None:
    timers = ManualTimers()
    rec = Recorder("Rec", permit=wait(4))
    t, fw = with_plugins(rec, timers=timers)
    p = info(pod("p"))
    d = fw.schedule(p)
    assert d.status.code == Code.WAIT and d.waiting == {"Rec": 4}
    verdicts: list[Status] = []
    fw.wait(d, lambda wp, st: verdicts.append(st))
    assert p.uid in fw.waiting and t.is_assumed(p.uid)
    timers.advance(4)
    assert verdicts and verdicts[0].code == Code.UNSCHEDULABLE and p.uid not in fw.waiting


def test_prefilter_rejection_reports_for_all_nodes() -> None:
    class Picky:
        name = "Picky"

        def pre_filter(self, state: CycleState, p: Any) -> Status:
            return unschedulable("pod is picky", resolvable=False)

    reg = in_tree().merge(Registry({"Picky": lambda args, handle: Picky()}))
    t = table_of(node("a"), node("b"))
    timers = ManualTimers()
    fw = Framework(Profile().with_plugins(enable=["Picky"]), reg, table=t,
                   call_later=timers.call_later)
    d = fw.schedule(info(pod("p")))
    assert d.diagnosis is not None
    assert d.diagnosis.message() == "0/2 nodes are available: pod is picky."
    assert d.diagnosis.rejectors == {"Picky"}


def test_each_node_is_charged_to_its_first_failing_filter() -> None:
    t = table_of(node("cordoned", cpu="1", unschedulable=True),
                 node("tainted", cpu="1", taints=[("k", "v", "NoExecute")]),
                 node("small", cpu="1"), node("small2", cpu="1"))
    fw = framework(t)
    d = fw.schedule(info(pod("p", cpu="2")))
    assert d.diagnosis is not None
    assert d.diagnosis.message().split(" preemption")[0] == (
        "0/4 nodes are available: 1 node(s) had untolerated taint {k: v}, "
        "1 node(s) were unschedulable, 2 Insufficient cpu.")
    assert d.diagnosis.rejectors == {"NodeUnschedulable", "TaintToleration", "NodeResourcesFit"}
    assert sorted(t.names[r] for r in d.diagnosis.resolvable_rows) == ["small", "small2"]


def test_events_for_unions_the_rejecting_plugins_interests() -> None:
    fw = framework(table_of())
    events = fw.events_for(frozenset({"NodeResourcesFit", "TaintToleration"}))
    assert {"NodeAdd", "NodeTaintChange", "AssignedPodDelete"} <= events
    assert "NodeLabelChange" not in events
