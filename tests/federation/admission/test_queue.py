"""The admission queues without a cluster: charging, order, reasons, positions, reclaim."""

from __future__ import annotations

import pytest

from pincompute.federation.admission.queue import (
    CONDITIONS,
    EVENTS,
    STATES,
    TRANSITIONS,
    AdmissionQueues,
    Event,
    State,
    step,
    workload_key,
)

from .workloads import app, training


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def queues_with(quota: dict, *, clock: Clock | None = None) -> AdmissionQueues:
    q = AdmissionQueues(clock=clock or Clock(), backoff_base=10.0)
    q.set_project("team", quota)
    return q


def submit(q: AdmissionQueues, *objs: dict) -> list[str]:
    keys = []
    for obj in objs:
        q.observe(obj)
        keys.append(workload_key(obj))
    q.cycle("team")
    return keys


EXPECTED: dict[tuple[str, str], str | None] = {
    # (state, event): the next state, or None: no such move (a bug if it happened).
    ("Queued", "admit"): "Admitted",
    ("Queued", "reclaim"): None,
    ("Queued", "backoff-over"): None,
    ("Queued", "requeue"): None,
    ("Admitted", "admit"): None,
    ("Admitted", "reclaim"): "Preempted",
    ("Admitted", "backoff-over"): None,
    ("Admitted", "requeue"): "Queued",
    ("Preempted", "admit"): None,          # never straight back: Queued first
    ("Preempted", "reclaim"): None,
    ("Preempted", "backoff-over"): "Queued",
    ("Preempted", "requeue"): "Queued",
}


@pytest.mark.parametrize(("state", "event"), [(s, e) for s in STATES for e in EVENTS])
def test_every_state_and_event_is_defined(state: State, event: Event) -> None:
    want = EXPECTED[(state, event)]
    if want is None:
        with pytest.raises(ValueError):
            step(state, event)
    else:
        assert step(state, event) == want


def test_the_state_table_is_closed() -> None:
    assert set(EXPECTED) == {(s, e) for s in STATES for e in EVENTS}
    assert set(STATES) == set(CONDITIONS)
    for (state, event), after in TRANSITIONS.items():
        assert state in STATES and event in EVENTS and after in STATES
    # Every state is reachable from Queued, and every state can get back to Admitted.
    reach = {"Queued"}
    while True:
        more = {after for (state, _), after in TRANSITIONS.items() if state in reach} - reach
        if not more:
            break
        reach |= more
    assert reach == set(STATES)
    for start in STATES:
        seen, todo = {start}, [start]
        while todo:
            cur = todo.pop()
            for (state, _), after in TRANSITIONS.items():
                if state == cur and after not in seen:
                    seen.add(after)
                    todo.append(after)
        assert start == "Admitted" or "Admitted" in seen, start
    # What each state shows: Queued=True exactly while not admitted.
    for state, conds in CONDITIONS.items():
        assert conds["Queued"] is (state != "Admitted")
        assert conds["Admitted"] is (state == "Admitted")
        assert conds["Preempted"] is (state == "Preempted")


def test_quota_exhaustion_queues_the_next_workload_with_reason_and_position() -> None:
    q = queues_with({"ondemand": {"cpu": "12"}})
    a, b, c = submit(q, app("a", replicas=10), app("b", replicas=4), app("c", replicas=1))
    assert q.entries[a].state == "Admitted"
    assert q.entries[b].state == "Queued" and q.entries[c].state == "Queued"
    status = q.status(b)
    assert status["position"] == 1 and status["queue"] == "team/ondemand"
    assert status["reason"] == "cpu: requested 4, used 10 of 12 (ondemand)"
    assert "needs 2 cpu more free" in status["hint"] and "cpu 14" in status["hint"]
    # c would fit, but first come, first served: it waits behind b.
    assert q.status(c)["position"] == 2
    reason, why, _ = q.explain(c)
    assert reason == "WaitingInQueue" and "1 workloads ahead" in why and "team/ondemand/b" \
        not in why
    assert q.project_status("team") == (
        {"reserved": {"cpu": "0", "memory": "0", "gpu": "0", "pods": "0"},
         "ondemand": {"cpu": "10", "memory": "10Gi", "gpu": "0", "pods": "10"},
         "preemptible": {"cpu": "0", "memory": "0", "gpu": "0", "pods": "0"}},
        {"reserved": 0, "ondemand": 2, "preemptible": 0})


def test_capacity_freed_goes_first_come_first_served() -> None:
    q = queues_with({"ondemand": {"cpu": "4"}})
    a, b, c = submit(q, app("a", replicas=4), app("b", replicas=3), app("c", replicas=1))
    q.remove(a)
    q.cycle("team")
    assert q.entries[b].state == "Admitted" and q.entries[c].state == "Admitted"


def test_a_deleted_blocking_head_leaves_nothing_behind_it_to_explain_by() -> None:
    # Between a deletion and the next pass the queue's blocking head is gone: a workload
    # behind it is explained without it (this raised KeyError, found by the property test).
    q = queues_with({"ondemand": {"cpu": "4"}})
    _, b, c = submit(q, app("a", replicas=4), app("b", replicas=3), app("c", replicas=1))
    assert q.explain(c)[0] == "WaitingInQueue"
    q.remove(b)
    assert q.explain(c)[0] == "QuotaExceeded"
    q.cycle("team")
    assert q.entries[c].state == "Queued"  # a holds all of it


def test_raising_the_quota_admits_the_queue() -> None:
    q = queues_with({"ondemand": {"cpu": "1"}})
    keys = submit(q, *(app(f"w{i}") for i in range(5)))
    assert [q.entries[k].state for k in keys].count("Admitted") == 1
    q.set_project("team", {"ondemand": {"cpu": "5"}})
    q.cycle("team")
    assert all(q.entries[k].state == "Admitted" for k in keys)


def test_reserved_has_its_own_queue_and_goes_first() -> None:
    q = queues_with({"reserved": {"cpu": "8"}, "ondemand": {"cpu": "0"}})
    od, rs = submit(q, app("od", tier="ondemand"), training("train", workers=3))
    assert q.entries[rs].state == "Admitted"
    assert q.entries[rs].charged[0] == 8000  # a gang: every role's pods at once
    assert q.entries[od].state == "Queued"
    assert q.explain(od)[0] == "ExceedsQuota"


def test_a_gang_is_charged_whole_or_not_at_all() -> None:
    q = queues_with({"reserved": {"cpu": "9"}})
    (t,) = submit(q, training("t", workers=4))  # 5 pods x 2 cpu = 10 > 9
    assert q.entries[t].state == "Queued" and q.explain(t)[0] == "ExceedsQuota"
    assert q.ledger.account("team", "reserved").used == (0, 0, 0, 0)


def test_an_unfittable_head_does_not_block_the_queue() -> None:
    q = queues_with({"ondemand": {"cpu": "4"}})
    big, small = submit(q, app("big", replicas=5), app("small"))
    assert q.explain(big)[0] == "ExceedsQuota"
    assert "raise project team's ondemand quota: cpu to at least 5" in q.explain(big)[2]
    assert q.entries[small].state == "Admitted"


def test_preemptible_borrows_idle_quota_and_is_reclaimed_with_a_back_off() -> None:
    clock = Clock()
    q = queues_with({"reserved": {"cpu": "4"}, "ondemand": {"cpu": "0"},
                     "preemptible": {"cpu": "0"}}, clock=clock)
    (p,) = submit(q, app("batch", tier="preemptible", replicas=3))
    assert q.entries[p].state == "Admitted" and q.entries[p].charged_tier == "reserved"
    assert q.explain(p)[0] == "Borrowing"
    (r,) = submit(q, app("serving", tier="reserved", replicas=2))
    assert q.entries[p].state == "Preempted" and q.entries[r].state == "Admitted"
    assert q.entries[r].waits_for == {p}
    assert q.explain(p)[0] == "BackingOff"
    status = q.status(p)
    assert status["preemptions"] == 1 and status["position"] == 1 and "notBefore" in status
    # The reclaimer holds its room; the preempted one does not come back early even if
    # room appears, then does once its back-off is over.
    q.set_project("team", {"reserved": {"cpu": "8"}, "ondemand": {"cpu": "0"},
                           "preemptible": {"cpu": "0"}})
    res = q.cycle("team")
    assert q.entries[p].state == "Preempted" and res.wake_at == clock.now + 10.0
    clock.now += 10.0
    res = q.cycle("team")
    # Queued again (its status is due), then admitted in the same pass: room is there.
    assert p in res.changed and res.wake_at is None
    assert q.entries[p].state == "Admitted" and q.entries[p].charged_tier == "reserved"
    assert q.status(p)["preemptions"] == 1 and "notBefore" not in q.status(p)


def test_a_preempted_workload_is_queued_after_its_back_off_then_admitted() -> None:
    clock = Clock()
    q = queues_with({"reserved": {"cpu": "4"}, "ondemand": {"cpu": "0"},
                     "preemptible": {"cpu": "0"}}, clock=clock)
    (p,) = submit(q, app("batch", tier="preemptible", replicas=2))
    serving = app("serving", tier="reserved", replicas=4)
    q.observe(serving)
    r = workload_key(serving)
    res = q.cycle("team")
    # The pass that reclaims says when to come back: when the back-off ends.
    assert res.changed == [p, r] and res.wake_at == clock.now + 10.0
    assert q.entries[p].state == "Preempted" and q.explain(p)[0] == "BackingOff"
    assert q.status(p)["state"] == "Preempted"
    # Past the back-off, the quota is still held by the reservation: Queued, with why
    # and where it stands.
    clock.now += 10.0
    res = q.cycle("team")
    assert p in res.changed and res.wake_at is None
    assert q.entries[p].state == "Queued"
    status = q.status(p)
    assert status["state"] == "Queued" and status["position"] == 1
    assert status["preemptions"] == 1 and "notBefore" not in status
    assert q.explain(p)[0] == "QuotaExceeded"
    assert status["reason"] == "cpu: requested 2, used 0 of 0 (preemptible)"
    # The reservation goes: admitted again, borrowing the reserved quota.
    q.remove(r)
    q.cycle("team")
    assert q.entries[p].state == "Admitted" and q.entries[p].charged_tier == "reserved"
    assert q.status(p)["state"] == "Admitted" and q.status(p)["preemptions"] == 1


def test_a_back_off_ends_even_behind_a_blocked_head() -> None:
    clock = Clock()
    q = queues_with({"reserved": {"cpu": "4"}, "ondemand": {"cpu": "0"},
                     "preemptible": {"cpu": "0"}}, clock=clock)
    (p,) = submit(q, app("batch", tier="preemptible", replicas=2))
    (r,) = submit(q, app("serving", tier="reserved", replicas=4))
    # An older preemptible workload that does not fit now heads the queue and blocks it.
    (h,) = submit(q, app("head", tier="preemptible", replicas=3,
                         created="2000-01-01T00:00:00Z"))
    assert q.position(h) == 1 and q.position(p) == 2
    clock.now += 10.0
    res = q.cycle("team")
    assert q.entries[p].state == "Queued" and p in res.changed and res.wake_at is None
    assert q.explain(p)[0] == "WaitingInQueue"
    q.remove(r)
    q.cycle("team")
    assert q.entries[h].state == "Admitted" and q.entries[p].state == "Queued"


def test_a_tier_change_requeues_a_preempted_workload_keeping_its_count() -> None:
    clock = Clock()
    q = queues_with({"reserved": {"cpu": "4"}, "ondemand": {"cpu": "0"},
                     "preemptible": {"cpu": "0"}}, clock=clock)
    batch = app("batch", tier="preemptible", replicas=2)
    (p,) = submit(q, batch)
    submit(q, app("serving", tier="reserved", replicas=4))
    assert q.entries[p].state == "Preempted"
    q.set_project("team", {"reserved": {"cpu": "4"}, "ondemand": {"cpu": "2"},
                           "preemptible": {"cpu": "0"}})
    moved = app("batch", tier="ondemand", replicas=2, generation=2)
    moved["metadata"]["uid"] = batch["metadata"]["uid"]
    project, _ = q.observe(moved)
    assert project == "team"
    q.cycle("team")
    assert q.entries[p].state == "Admitted" and q.entries[p].charged_tier == "ondemand"
    assert q.entries[p].preemptions == 1
    assert not q._backoffs["team"]


def test_a_restart_requeues_a_recorded_preemption_whose_back_off_is_over() -> None:
    clock = Clock()
    q = queues_with({"reserved": {"cpu": "4"}, "ondemand": {"cpu": "0"},
                     "preemptible": {"cpu": "0"}}, clock=clock)
    (p,) = submit(q, app("batch", tier="preemptible", replicas=2))
    (r,) = submit(q, app("serving", tier="reserved", replicas=4))
    restarted = queues_with({"reserved": {"cpu": "4"}, "ondemand": {"cpu": "0"},
                             "preemptible": {"cpu": "0"}}, clock=clock)
    for key, obj in ((r, app("serving", tier="reserved", replicas=4)),
                     (p, app("batch", tier="preemptible", replicas=2))):
        obj["status"] = {"admission": q.status(key)}
        restarted.observe(obj)
    assert restarted.entries[p].state == "Preempted"
    assert restarted.entries[p].preemptions == 1
    clock.now += 10.0
    restarted.cycle("team")
    assert restarted.entries[p].state == "Queued" and restarted.position(p) == 1


def test_reclaim_takes_the_newest_borrowers_only_as_many_as_needed() -> None:
    q = queues_with({"reserved": {"cpu": "4"}, "ondemand": {"cpu": "0"},
                     "preemptible": {"cpu": "0"}})
    olds = submit(q, *(app(f"p{i}", tier="preemptible") for i in range(4)))
    assert all(q.entries[k].state == "Admitted" for k in olds)
    (r,) = submit(q, app("r", tier="reserved", replicas=2))
    assert [q.entries[k].state for k in olds] == ["Admitted", "Admitted", "Preempted",
                                                   "Preempted"]
    assert q.entries[r].state == "Admitted"


def test_a_restart_charges_what_the_statuses_record() -> None:
    q = queues_with({"ondemand": {"cpu": "4"}})
    a, b = submit(q, app("a", replicas=3), app("b", replicas=3))
    objs = {}
    for key, obj in (("a", app("a", replicas=3)), ("b", app("b", replicas=3))):
        objs[key] = obj
    # What the statuses say after the first controller wrote them:
    objs["a"]["status"] = {"admission": q.status(a)}
    objs["b"]["status"] = {"admission": q.status(b)}
    fresh = queues_with({"ondemand": {"cpu": "4"}})
    for obj in objs.values():
        fresh.observe(obj)
    assert fresh.entries[a].state == "Admitted"
    assert fresh.ledger.account("team", "ondemand").used[0] == 3000
    fresh.cycle("team")
    assert fresh.entries[b].state == "Queued"


def test_scaling_an_admitted_workload_is_charged_when_it_fits() -> None:
    q = queues_with({"ondemand": {"cpu": "4"}})
    (a,) = submit(q, app("a", replicas=2))
    obj = app("a", replicas=6, generation=2)
    obj["metadata"]["uid"] = q.entries[a].uid
    q.observe(obj)
    q.cycle("team")
    assert q.entries[a].charged[0] == 2000 and q.explain(a)[0] == "ResizeQueued"
    obj = app("a", replicas=3, generation=3)
    obj["metadata"]["uid"] = q.entries[a].uid
    q.observe(obj)
    q.cycle("team")
    assert q.entries[a].charged[0] == 3000 and q.explain(a)[0] == "QuotaReserved"


def test_no_project_means_waiting_with_that_reason() -> None:
    q = AdmissionQueues()
    obj = app("a", project="nobody")
    q.observe(obj)
    q.cycle("nobody")
    assert q.explain(workload_key(obj))[0] == "NoProject"


def test_changing_tier_moves_the_workload_to_that_queue() -> None:
    q = queues_with({"ondemand": {"cpu": "4"}, "reserved": {"cpu": "0"}})
    (a,) = submit(q, app("a", replicas=2))
    assert q.entries[a].state == "Admitted"
    obj = app("a", replicas=2, tier="reserved", generation=2)
    obj["metadata"]["uid"] = q.entries[a].uid
    q.observe(obj)
    q.cycle("team")
    assert q.entries[a].state == "Queued" and q.entries[a].tier == "reserved"
    assert q.ledger.account("team", "ondemand").used == (0, 0, 0, 0)
