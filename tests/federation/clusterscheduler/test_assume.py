"""Reservations: decisions never overcommit a cluster, however they interleave.

The property test plays a random history against a few clusters: new workloads of
any kind, tier and size are placed; placed ones are re-decided with other
replica counts; the members report (confirm) some of what was placed, which the
test then adds to the clusters' reported figures as a health controller would;
workloads are deleted, their pods freed.  After every step, for every cluster
and tier, what the member reports plus what decisions reserved never exceeds
the allocatable.
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from pincompute.federation.clusterscheduler import ClusterScheduler, ClusterTable
from pincompute.federation.clusterscheduler.clustertable import PREEMPTIBLE
from pincompute.model.wellknown import TIERS

from .support import app, job, member, scheduler, training

TIER_NAMES = ("reserved", "ondemand")


def assert_not_overcommitted(table: ClusterTable) -> None:
    for row in table.rows().tolist():
        name = table.names[row]
        if table.pooled[row]:
            total = table.tot_used[row] + table.resv[row].sum(axis=0)
            assert (total <= table.tot_alloc[row]).all(), (name, total, table.tot_alloc[row])
            continue
        for t in range(len(TIERS)):
            if t == PREEMPTIBLE:
                continue  # borrows idle room, reclaimed by preemption (DESIGN §7)
            total = table.used[row, t] + table.resv[row, t]
            assert (total <= table.alloc[row, t]).all(), (name, TIERS[t], total)


class Members:
    """The clusters' reported figures, kept as a health controller would keep them."""

    def __init__(self, sizes: list[tuple[int, int, bool]]) -> None:
        self.sizes = sizes
        self.used: dict[tuple[str, str], np.ndarray] = {}

    def object(self, i: int) -> dict[str, Any]:
        cpu, memory_gi, pooled = self.sizes[i]
        name = f"c{i}"
        if pooled:
            u = self.used.get((name, "*"), np.zeros(4, dtype=np.int64))
            return member(name, f"z{i % 2}", status={
                "allocatable": {"cpu": cpu, "memory": f"{memory_gi}Gi", "pods": 50},
                "allocated": _figures(u)})
        tiers = {}
        for tier in TIER_NAMES:
            u = self.used.get((name, tier), np.zeros(4, dtype=np.int64))
            tiers[tier] = {"allocatable": {"cpu": cpu, "memory": f"{memory_gi}Gi", "pods": 50},
                           "allocated": _figures(u)}
        return member(name, f"z{i % 2}", status={"tiers": tiers})

    def add(self, cluster: str, tier: str, amount: np.ndarray) -> None:
        key = (cluster, "*" if self.sizes[int(cluster[1:])][2] else tier)
        self.used[key] = self.used.get(key, np.zeros(4, dtype=np.int64)) + amount


def _figures(u: np.ndarray) -> dict[str, Any]:
    return {"cpu": f"{int(u[0])}m", "memory": int(u[1]), "pods": int(u[3])}


workload = st.tuples(
    st.sampled_from(["app", "job", "training", "split-job"]),
    st.sampled_from(TIER_NAMES),
    st.integers(1, 12),                     # replicas
    st.sampled_from(["500m", "1", "2", "3"]),
)


def build(kind: str, tier: str, replicas: int, cpu: str, uid: str, generation: int
          ) -> dict[str, Any]:
    if kind == "app":
        obj = app(replicas, tier=tier, cpu=cpu, memory="1Gi", uid=uid)
    elif kind == "job":
        obj = job(replicas, tier=tier, cpu=cpu, uid=uid)
    elif kind == "split-job":
        obj = job(replicas, tier=tier, cpu=cpu, uid=uid,
                  placement={"replicaScheduling": {"allowSplit": True}})
    else:
        obj = training(replicas, worker_cpu=cpu, uid=uid)
        obj["spec"]["tier"] = tier
    obj["metadata"]["generation"] = generation
    return obj


@settings(max_examples=120, deadline=None)
@given(sizes=st.lists(st.tuples(st.integers(2, 24), st.integers(2, 32), st.booleans()),
                      min_size=1, max_size=4),
       data=st.data())
def test_interleaved_decisions_never_overcommit(sizes: list[tuple[int, int, bool]],
                                                 data: st.DataObject) -> None:
    members = Members(sizes)
    s = scheduler(*(members.object(i) for i in range(len(sizes))))
    # uid -> (object, confirmed per cluster: (replicas, what the member counts for them))
    live: dict[str, tuple[dict[str, Any], dict[str, tuple[int, np.ndarray]]]] = {}

    def release(uid: str, obj: dict[str, Any], confirmed: dict[str, tuple[int, np.ndarray]]
                ) -> None:
        """The member removes the workload's pods (a new template replaces them, or the
        workload is deleted): its figures drop."""
        tier = obj["spec"].get("tier", "ondemand")
        for cluster, (_, amount) in confirmed.items():
            members.add(cluster, tier, -amount)
            s.table.upsert(members.object(int(cluster[1:])))
        confirmed.clear()

    for step in range(data.draw(st.integers(1, 25), label="steps")):
        op = data.draw(st.sampled_from(["new", "new", "again", "confirm", "delete"]))
        if op == "new" or not live:
            uid = f"w{step}"
            obj = build(*data.draw(workload), uid=uid, generation=1)
            d = s.schedule(obj)
            if d.scheduled:
                obj["status"] = d.status()
                live[uid] = (obj, {})
        elif op == "again":
            uid = data.draw(st.sampled_from(sorted(live)))
            obj, confirmed = live[uid]
            kind = obj["kind"]
            replicas = data.draw(st.integers(1, 12))
            again = build("app" if kind == "PinApp" else "split-job" if kind == "PinJob" and
                          obj["spec"]["placement"] else "job" if kind == "PinJob"
                          else "training", obj["spec"].get("tier", "ondemand"), replicas,
                          data.draw(st.sampled_from(["500m", "1", "2"])), uid,
                          obj["metadata"]["generation"] + 1)
            again["status"] = obj.get("status", {})
            d = s.schedule(again)
            if d.scheduled:
                again["status"] = d.status()
                live[uid] = (again, confirmed)
                # The new template replaces the old pods: the member drops them, and the
                # new shards start unconfirmed.
                for cluster in list(confirmed):
                    s.confirm(uid, cluster, 0)
                release(uid, obj, confirmed)
        elif op == "confirm":
            uid = data.draw(st.sampled_from(sorted(live)))
            obj, confirmed = live[uid]
            placed = {p["cluster"]: p["replicas"] for p in obj["status"]["placements"]}
            cluster = data.draw(st.sampled_from(sorted(placed)))
            have, amount = confirmed.get(cluster, (0, np.zeros(4, dtype=np.int64)))
            n = data.draw(st.integers(have, placed[cluster]))
            if n > have:
                # The member runs more pods: the health controller reports them, then the
                # status controller confirms them (in that order; in between the room is
                # counted twice — conservative, never short).
                request = s.requests.get(obj)
                unit = (request.whole // placed[cluster] if request.mode == "Whole"
                        else request.per_replica)
                extra = unit * (n - have)
                members.add(cluster, request.tier, extra)
                s.table.upsert(members.object(int(cluster[1:])))
                s.confirm(uid, cluster, n)
                confirmed[cluster] = (n, amount + extra)
        else:
            uid = data.draw(st.sampled_from(sorted(live)))
            obj, confirmed = live.pop(uid)
            s.forget(uid)
            release(uid, obj, confirmed)
        assert_not_overcommitted(s.table)


def test_concurrent_threads_never_overcommit() -> None:
    s = scheduler(*(member(f"c{i}", f"z{i % 3}", cpu="16", memory="64Gi") for i in range(6)))
    placed: list[int] = []

    def worker(k: int) -> None:
        for i in range(150):
            d = s.schedule(app(1 + (i % 4), cpu="1", uid=f"t{k}-{i}"))
            if d.scheduled:
                placed.append(sum(d.replicas().values()))

    def churn() -> None:
        for i in range(300):
            s.update_cluster(member(f"c{i % 6}", f"z{i % 6 % 3}", cpu="16", memory="64Gi"))

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(4)]
    threads.append(threading.Thread(target=churn))
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert_not_overcommitted(s.table)
    assert sum(placed) == 96  # 6 clusters x 16 cpus, filled exactly


def test_superseded_decision_releases_and_forget_frees() -> None:
    s = scheduler(member("c", "z1", cpu="10"))
    first = s.schedule(app(10, uid="a"))
    assert first.replicas() == {"c": 10}
    assert not s.schedule(app(1, uid="b")).scheduled
    smaller = app(4, uid="a", generation=2)
    smaller["status"] = first.status()
    assert s.schedule(smaller).replicas() == {"c": 4}     # its own room is free to it
    assert s.schedule(app(6, uid="b", generation=2)).replicas() == {"c": 6}
    s.forget("a")
    assert s.schedule(app(4, uid="d")).replicas() == {"c": 4}


def test_confirmed_replicas_leave_the_reservation() -> None:
    s = scheduler(member("c", "z1", cpu="10"))
    s.schedule(app(6, uid="a"))
    row = s.table.row_of("c")
    tier = TIERS.index("ondemand")
    assert s.table.resv[row, tier, 0] == 6000
    s.confirm("a", "c", 4)
    assert s.table.resv[row, tier, 0] == 2000
    assert s.assumed.reserved("a") == {"c": 2}
    # A cluster removed and added again starts with nothing reserved.
    s.table.remove("c")
    s.table.upsert(member("c", "z1", cpu="10"))
    s.forget("a")
    assert (s.table.resv == 0).all()


def test_unconfirmed_restart_takes_current_placements_as_running() -> None:
    full = member("c", "z1", cpu="10", allocated={"cpu": "10"})
    s: ClusterScheduler = scheduler(full)
    obj = app(10, uid="a", placements={"c": 10})
    assert s.schedule(obj).replicas() == {"c": 10}
