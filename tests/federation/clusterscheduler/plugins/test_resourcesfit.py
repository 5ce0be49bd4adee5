from __future__ import annotations

from tests.federation.clusterscheduler.support import app, excluded, job, member, scheduler


def test_available_replicas_come_from_allocatable_minus_allocated_and_allocating() -> None:
    s = scheduler(member("c", "z1", cpu="10", memory="100Gi",
                         status={"tiers": {"ondemand": {
                             "allocatable": {"cpu": "10", "memory": "100Gi", "pods": 100},
                             "allocated": {"cpu": "4"}, "allocating": {"cpu": "2"}}}}))
    assert s.schedule(app(4), reserve=False).replicas() == {"c": 4}
    d = s.schedule(app(5), reserve=False)
    assert not d.scheduled and d.message == "only 4 of 5 replicas fit in the 1 feasible clusters"


def test_pods_and_memory_limit_too() -> None:
    s = scheduler(member("few-pods", "z1", pods=2), member("little-memory", "z1", memory="2Gi"),
                  member("roomy", "z1"))
    d = s.schedule(job(3), reserve=False)  # a job goes whole to one cluster
    assert d.replicas() == {"roomy": 3}
    why = excluded(d)
    assert why["few-pods"][0] == "ResourcesFit" and "insufficient pods" in why["few-pods"][1]
    assert "insufficient memory" in why["little-memory"][1]


def test_a_replica_larger_than_the_largest_node_fits_nowhere() -> None:
    s = scheduler(member("small-nodes", "z1", cpu="400", largest={"cpu": "8"}),
                  member("big-nodes", "z1", cpu="64", largest={"cpu": "32"}))
    d = s.schedule(app(2, cpu="16"), reserve=False)
    assert d.replicas() == {"big-nodes": 2}
    assert excluded(d)["small-nodes"] == (
        "ResourcesFit", "a replica (cpu=16, memory=1Gi, pods=1) is larger than the largest node "
                        "of tier ondemand (cpu)")


def test_cluster_wide_figures_or_declared_capacity_stand_in_without_tiers() -> None:
    s = scheduler(member("declared", "z1", capacity={"cpu": "4", "memory": "8Gi"}, status={}),
                  member("unknown", "z1", status={}))
    d = s.schedule(app(4), reserve=False)
    assert d.replicas() == {"declared": 4}
    assert excluded(d)["unknown"][0] == "ResourcesFit"
