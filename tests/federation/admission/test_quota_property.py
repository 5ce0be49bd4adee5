"""Property: however submissions, deletions, passes, status writes and restarts interleave,
neither the admission state nor the statuses of record ever exceed a project's quota."""

from __future__ import annotations

import random
from typing import Any

from hypothesis import example, given, settings
from hypothesis import strategies as st

from pincompute.federation.admission.demand import DIMS
from pincompute.federation.admission.queue import AdmissionQueues, workload_key
from pincompute.kube.quantity import cpu_millis, to_int
from pincompute.model.wellknown import TIERS

from .workloads import app

QUOTA = {"reserved": {"cpu": "4", "pods": "5"}, "ondemand": {"cpu": "6"},
         "preemptible": {"cpu": "1"}}
LIMIT = {t: {d: (cpu_millis(v) if d == "cpu" else to_int(v)) for d, v in q.items()}
         for t, q in QUOTA.items()}

op = st.one_of(
    st.tuples(st.just("submit"), st.sampled_from(TIERS), st.integers(1, 4)),
    st.tuples(st.just("delete"), st.integers(0, 40)),
    st.tuples(st.just("cycle")),
    st.tuples(st.just("write"), st.integers(0, 40)),
    st.tuples(st.just("restart"), st.randoms(use_true_random=False)),
)


class Clock:
    now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def check_state(q: AdmissionQueues) -> None:
    for tier in TIERS:
        acct = q.ledger.account("team", tier)
        for d, name in enumerate(DIMS):
            limit = LIMIT[tier].get(name)
            if limit is not None:
                assert acct.used[d] <= limit, (tier, name, acct.used)


def check_record(api: dict[str, dict[str, Any]]) -> None:
    used: dict[str, int] = dict.fromkeys(TIERS, 0)
    for obj in api.values():
        adm = (obj.get("status") or {}).get("admission") or {}
        if adm.get("state") == "Admitted":
            used[adm["chargedTier"]] += cpu_millis(adm["charged"]["cpu"])
    for tier in TIERS:
        assert used[tier] <= LIMIT[tier]["cpu"], used


# Borrowers admitted and recorded, then reclaimed by an ondemand workload whose Admitted
# is written before its victim's Preempted could be: the write must wait.
RECLAIM = [("submit", "preemptible", 3), ("submit", "preemptible", 3), ("cycle",),
           ("write", 0), ("write", 1), ("submit", "ondemand", 2), ("cycle",), ("write", 2),
           ("restart", random.Random(1)), ("cycle",), ("write", 0),
           ("write", 1), ("write", 2)]


@settings(max_examples=300, deadline=None)
@example(RECLAIM)
@given(st.lists(op, max_size=60))
def test_interleavings_never_exceed_quota(ops: list[tuple[Any, ...]]) -> None:
    clock = Clock()
    q = AdmissionQueues(clock=clock, backoff_base=1.0)
    q.set_project("team", QUOTA)
    api: dict[str, dict[str, Any]] = {}   # the host's objects, statuses as written
    n = 0
    for item in ops:
        clock.now += 0.5
        kind = item[0]
        if kind == "submit":
            obj = app(f"w{n}", tier=item[1], replicas=item[2])
            n += 1
            api[workload_key(obj)] = obj
            q.observe(obj)
        elif kind == "delete" and api:
            key = sorted(api)[item[1] % len(api)]
            del api[key]
            q.remove(key)
        elif kind == "cycle":
            q.cycle("team")
        elif kind == "write" and api:
            key = sorted(api)[item[1] % len(api)]
            entry = q.entries[key]
            if entry.state == "Admitted" and entry.waits_for:
                continue  # the controller writes a reclaimer only after its victims
            api[key] = {**api[key], "status": {"admission": q.status(key)}}
            q.observe(api[key])
        elif kind == "restart":
            q = AdmissionQueues(clock=clock, backoff_base=1.0)
            objs = list(api.values())
            item[1].shuffle(objs)
            for obj in objs:
                q.observe(obj)
            q.set_project("team", QUOTA)
        check_state(q)
        check_record(api)
