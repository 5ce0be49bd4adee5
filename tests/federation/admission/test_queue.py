"""The admission queues without a cluster: charging, order, reasons, positions, reclaim."""

from __future__ import annotations

import pytest

from pincompute.federation.admission.queue import (
    CONDITIONS,
    TRANSITIONS,
    AdmissionQueues,
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


def test_the_state_table_is_closed() -> None:
    for (state, _), after in TRANSITIONS.items():
        assert state in CONDITIONS and after in CONDITIONS
    with pytest.raises(ValueError):
        step("Queued", "reclaim")


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
    q.cycle("team")
    assert q.entries[p].state == "Admitted" and q.entries[p].charged_tier == "reserved"


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
