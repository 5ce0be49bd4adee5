"""The score plugins: Locality, LeastAllocated, BalancedAllocation, BinPacking, ZoneSpread,
Cost — each shown deciding which one cluster a job gets, with the others' weights off."""

from __future__ import annotations

from pincompute.federation.clusterscheduler import Profile
from tests.federation.clusterscheduler.support import job, member, scheduler

ONLY = dict.fromkeys(("Locality", "ClusterAffinity", "TaintToleration", "LeastAllocated",
                      "BalancedAllocation", "ZoneSpread", "Cost", "BinPacking"), 0)


def only(name: str) -> Profile:
    return Profile().with_scores(**{**ONLY, name: 1})


def _pair() -> tuple[dict, dict]:
    busy = member("a-busy", "z1", cpu="64", allocated={"cpu": "48"})
    idle = member("b-idle", "z1", cpu="64")
    return busy, idle


def test_least_allocated_prefers_room() -> None:
    assert scheduler(*_pair(), profile=only("LeastAllocated")).schedule(
        job(1), reserve=False).replicas() == {"b-idle": 1}


def test_binpacking_prefers_the_fuller_cluster() -> None:
    assert scheduler(*_pair(), profile=only("BinPacking")).schedule(
        job(1), reserve=False).replicas() == {"a-busy": 1}


def test_balanced_allocation_prefers_even_cpu_and_memory_use() -> None:
    lopsided = member("a-lopsided", "z1", cpu="64", memory="64Gi", allocated={"cpu": "60"})
    even = member("b-even", "z1", cpu="64", memory="64Gi",
                  allocated={"cpu": "32", "memory": "32Gi"})
    assert scheduler(lopsided, even, profile=only("BalancedAllocation")).schedule(
        job(1), reserve=False).replicas() == {"b-even": 1}


def test_cost_prefers_the_cheaper_cluster() -> None:
    s = scheduler(member("a-dear", "z1", costWeight=3), member("b-cheap", "z1", costWeight=1.5),
                  profile=only("Cost"))
    assert s.schedule(job(1), reserve=False).replicas() == {"b-cheap": 1}


def test_locality_keeps_a_job_where_it_runs() -> None:
    busy, idle = _pair()
    s = scheduler(busy, idle, profile=Profile().with_scores(Locality=3))
    assert s.schedule(job(1, placements={"a-busy": 1}), reserve=False).replicas() == {
        "a-busy": 1}
    assert s.schedule(job(1), reserve=False).replicas() == {"b-idle": 1}


def test_zone_spread_prefers_zones_the_workload_does_not_use() -> None:
    s = scheduler(member("a", "z1"), member("b", "z1"), member("c", "z2"),
                  profile=only("ZoneSpread"))
    # Two replicas already run in z1 (on "a"); a new cluster choice goes to z2.
    from tests.federation.clusterscheduler.support import app
    d = s.schedule(app(3, placement={"spread": [{"topology": "cluster", "maxGroups": 2}]},
                       placements={"a": 2}), reserve=False)
    assert "c" in d.replicas()
