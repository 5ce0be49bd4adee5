from __future__ import annotations

import asyncio

import pytest

from pincompute.scheduler.queue import SchedulingQueue

from .support import ManualTimers, framework, gang, info, pod, table_of


@pytest.fixture
def timers() -> ManualTimers:
    return ManualTimers()


def make(timers: ManualTimers, **kw: object) -> SchedulingQueue:
    fw = framework(table_of())
    return SchedulingQueue(sort_key=fw.sort_key, events_for=fw.events_for,
                           admit=lambda i: fw.pre_enqueue(i).ok, clock=timers.clock,
                           call_later=timers.call_later, **kw)  # type: ignore[arg-type]


def drain(q: SchedulingQueue) -> list[str]:
    out = []
    while (qp := q.pop_nowait()) is not None:
        out.append(qp.info.name)
    return out


def test_priority_then_fifo(timers: ManualTimers) -> None:
    q = make(timers)
    for p in (pod("a"), pod("spot", tier="preemptible"), pod("b"), pod("r", tier="reserved")):
        q.add(info(p))
    assert drain(q) == ["r", "a", "b", "spot"]
    assert q.scheduling_cycle == 4


def test_gang_members_leave_together(timers: ManualTimers) -> None:
    q = make(timers)
    g = gang("train", 2)
    q.add(info(pod("m1", **g)))
    q.add(info(pod("solo")))
    q.add(info(pod("m2", **g)))
    assert drain(q) == ["m1", "m2", "solo"]


def test_unschedulable_pods_move_only_on_events_their_rejectors_care_about(
        timers: ManualTimers) -> None:
    q = make(timers, initial_backoff=1.0)
    q.add(info(pod("p")))
    qp = q.pop_nowait()
    assert qp is not None
    q.requeue_unschedulable(qp, frozenset({"TaintToleration"}))
    assert q.where(qp.info.uid) == "unschedulable"
    assert q.move("AssignedPodDelete") == 0  # a deleted pod does not remove a taint
    assert q.move("NodeTaintChange") == 1
    # Still inside its backoff (1 s after one attempt): it waits in backoff, on a timer.
    assert q.where(qp.info.uid) == "backoff" and q.pop_nowait() is None
    timers.advance(1.0)
    assert drain(q) == ["p"]


def test_backoff_doubles_up_to_the_cap(timers: ManualTimers) -> None:
    q = make(timers, initial_backoff=1.0, max_backoff=3.0)
    q.add(info(pod("p")))
    waits = []
    for _ in range(4):
        qp = q.pop_nowait()
        assert qp is not None
        q.requeue_backoff(qp)
        waits.append(qp.backoff_until - timers.now)
        timers.advance(qp.backoff_until - timers.now)
    assert waits == [1.0, 2.0, 3.0, 3.0]


def test_a_move_during_the_attempt_sends_the_pod_to_backoff(timers: ManualTimers) -> None:
    q = make(timers, initial_backoff=0.0)
    q.add(info(pod("p")))
    qp = q.pop_nowait()
    assert qp is not None
    q.move("NodeAdd")  # the cluster changed while the pod was being decided
    q.requeue_unschedulable(qp, frozenset({"NodeResourcesFit"}))
    assert q.where(qp.info.uid) == "active"


def test_gated_pods_wait_for_an_update_without_gates(timers: ManualTimers) -> None:
    q = make(timers)
    gated = pod("g", gated=True)
    q.add(info(gated))
    assert q.where(gated["metadata"]["uid"]) == "gated" and q.pop_nowait() is None
    open_ = {**gated, "spec": {k: v for k, v in gated["spec"].items() if k != "schedulingGates"}}
    q.update(info(open_))
    assert drain(q) == ["g"]


def test_status_only_updates_leave_unschedulable_pods_alone(timers: ManualTimers) -> None:
    q = make(timers, initial_backoff=0.0)
    p = pod("p")
    q.add(info(p))
    qp = q.pop_nowait()
    assert qp is not None
    q.requeue_unschedulable(qp, frozenset({"NodeResourcesFit"}))
    q.update(info({**p, "status": {"phase": "Pending", "conditions": [{"type": "X"}]}}))
    assert q.where(qp.info.uid) == "unschedulable"
    q.update(info({**p, "metadata": {**p["metadata"], "labels": {"x": "y"}}}))
    assert q.where(qp.info.uid) == "active"


def test_leftover_unschedulable_pods_are_retried_eventually(timers: ManualTimers) -> None:
    q = make(timers, initial_backoff=0.0, max_unschedulable=60.0)
    q.add(info(pod("p")))
    qp = q.pop_nowait()
    assert qp is not None
    q.requeue_unschedulable(qp, frozenset({"NodeResourcesFit"}))
    timers.advance(59)
    assert q.where(qp.info.uid) == "unschedulable"
    timers.advance(7)
    assert q.where(qp.info.uid) == "active"


def test_delete_and_counts(timers: ManualTimers) -> None:
    q = make(timers)
    a, b = info(pod("a")), info(pod("b", gated=True))
    q.add(a)
    q.add(b)
    assert q.counts() == {"active": 1, "backoff": 0, "unschedulable": 0, "gated": 1}
    q.delete(a.uid)
    assert q.pop_nowait() is None and len(q) == 1


async def test_pop_waits_for_a_pod() -> None:
    timers = ManualTimers()
    q = make(timers)
    waiter = asyncio.ensure_future(q.pop())
    await asyncio.sleep(0)
    assert not waiter.done()
    q.add(info(pod("p")))
    assert (await waiter).info.name == "p"
