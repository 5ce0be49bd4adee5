"""Decisions end to end: division modes, spread by zone, jobs and gangs, reasons, locality."""

from __future__ import annotations

from pincompute.federation.clusterscheduler import Profile
from pincompute.model.placement import FederatedStatusMixin

from .support import app, excluded, job, member, pod, scheduler, training


def three_zones(**kw: object) -> list[dict]:
    return [member(f"{z}-{i}", z, **kw) for z in ("z1", "z2", "z3") for i in (1, 2)]


def test_dynamic_division_follows_available_replicas() -> None:
    s = scheduler(member("big", "z1", cpu="30"), member("small", "z1", cpu="10"))
    assert s.schedule(app(8), reserve=False).replicas() == {"big": 6, "small": 2}


def test_static_weights_divide_by_weight_and_spill_over_caps() -> None:
    s = scheduler(member("a", "z1"), member("b", "z1"), member("c", "z1", cpu="2"),
                  member("d", "z1"))
    rs = {"weighting": "Static", "staticWeights": [
        {"weight": 2, "clusterNames": ["a"]}, {"weight": 1, "clusterNames": ["b"]},
        {"weight": 3, "clusterNames": ["c"]}]}
    d = s.schedule(app(12, placement={"replicaScheduling": rs}), reserve=False)
    # c holds only 2; its share spills to a and b by their weights; d has no weight.
    assert d.replicas() == {"a": 7, "b": 3, "c": 2}
    assert "d" not in excluded(d)  # feasible, just not needed: not an exclusion


def test_duplicated_runs_all_replicas_on_every_cluster_that_holds_them() -> None:
    s = scheduler(member("a", "z1"), member("b", "z2"), member("tiny", "z3", cpu="2"))
    d = s.schedule(app(3, placement={"replicaScheduling": {"type": "Duplicated"}}),
                   reserve=False)
    assert d.replicas() == {"a": 3, "b": 3}
    assert "insufficient cpu" in excluded(d)["tiny"][1]


def test_zone_spread_balances_zones_then_clusters() -> None:
    s = scheduler(*three_zones())
    d = s.schedule(app(9, placement={"spread": [{"topology": "zone", "minGroups": 3}]}),
                   reserve=False)
    per_zone: dict[str, int] = {}
    for p in d.placements:
        per_zone[p.zone] = per_zone.get(p.zone, 0) + (p.replicas or 0)
    assert per_zone == {"z1": 3, "z2": 3, "z3": 3}
    assert len(d.placements) == 6  # each zone's share divided over its two clusters


def test_zone_spread_max_groups_and_hard_min_groups() -> None:
    s = scheduler(*three_zones())
    d = s.schedule(app(4, placement={"spread": [{"topology": "zone", "maxGroups": 2}]}),
                   reserve=False)
    assert len({p.zone for p in d.placements}) == 2
    assert sum(d.replicas().values()) == 4
    s2 = scheduler(member("a", "z1"), member("b", "z2"))
    hard = {"topology": "zone", "minGroups": 3, "whenUnsatisfiable": "DoNotSchedule"}
    d = s2.schedule(app(6, placement={"spread": [hard]}), reserve=False)
    assert not d.scheduled and "minGroups is 3" in d.message
    soft = {**hard, "whenUnsatisfiable": "ScheduleAnyway"}
    assert s2.schedule(app(6, placement={"spread": [soft]}), reserve=False).replicas() == {
        "a": 3, "b": 3}


def test_hard_max_skew_refuses_an_unbalanced_split() -> None:
    s = scheduler(member("a", "z1", cpu="2"), member("b", "z2"))
    spread = {"topology": "zone", "maxSkew": 1, "whenUnsatisfiable": "DoNotSchedule"}
    d = s.schedule(app(6, placement={"spread": [spread]}), reserve=False)
    assert not d.scheduled and "maxSkew 1" in d.message
    soft = {**spread, "whenUnsatisfiable": "ScheduleAnyway"}
    assert s.schedule(app(6, placement={"spread": [soft]}), reserve=False).replicas() == {
        "a": 2, "b": 4}


def test_cluster_spread_max_groups_keeps_the_best_clusters() -> None:
    s = scheduler(member("a", "z1", cpu="100"), member("b", "z1", cpu="50"),
                  member("c", "z1", cpu="10"))
    d = s.schedule(app(6, placement={"spread": [{"topology": "cluster", "maxGroups": 2}]}),
                   reserve=False)
    assert d.replicas() == {"a": 3, "b": 3}
    assert excluded(d)["c"] == (None, "feasible, but not among the best 2 clusters (spread "
                                      "cluster maxGroups)")


def test_jobs_pods_and_gangs_go_whole_to_one_cluster() -> None:
    s = scheduler(member("a", "z1", cpu="8"), member("b", "z2", cpu="8"),
                  member("c", "z3", cpu="14"))
    assert s.schedule(job(6), reserve=False).replicas() in ({"a": 6}, {"b": 6}, {"c": 6})
    # A 1 master (2 cpu) + 3 worker (4 cpu) gang needs 14 cpu in one cluster.
    d = s.schedule(training(3), reserve=False)
    assert d.replicas() == {"c": 4}
    assert "the whole workload" in excluded(d)["a"][1]
    assert len(s.schedule(pod(), reserve=False).placements) == 1
    # Twelve 1-cpu job pods fit nowhere whole ...
    assert not s.schedule(job(16), reserve=False).scheduled
    # ... but may be split when the spec allows it.
    split = s.schedule(job(16, placement={"replicaScheduling": {"allowSplit": True}}),
                       reserve=False)
    assert sum(split.replicas().values()) == 16 and len(split.placements) > 1


def test_bin_packing_profile_fills_preferred_clusters_first() -> None:
    s = scheduler(member("a", "z1", cpu="4", labels={"pref": "1"}), member("b", "z1", cpu="64"),
                  member("c", "z1", cpu="64"), profile=Profile.binpacking())
    placement = {"clusterAffinity": {"preferred": [
        {"weight": 100, "selector": {"matchLabels": {"pref": "1"}}}]}}
    d = s.schedule(app(6, placement=placement), reserve=False)
    assert d.replicas()["a"] == 4 and sum(d.replicas().values()) == 6
    assert len(d.placements) == 2  # overflow to one more cluster only


def test_reasons_are_recorded_for_every_excluded_cluster_and_fit_the_status_model() -> None:
    s = scheduler(member("ok", "z1"), member("tainted", "z1", taints=[
        {"key": "k", "effect": "NoExecute"}]), member("full", "z1", cpu="0"),
        member("cordoned", "z2", unschedulable=True))
    d = s.schedule(app(2), reserve=False)
    assert d.replicas() == {"ok": 2}
    assert {c: p for c, (p, _) in excluded(d).items()} == {
        "tainted": "TaintToleration", "full": "ResourcesFit", "cordoned": "ClusterHealthy"}
    status = FederatedStatusMixin.model_validate(d.status())
    assert [p.cluster for p in status.placements or ()] == ["ok"]
    assert {e.cluster for e in status.excluded_clusters or ()} == {"tainted", "full",
                                                                     "cordoned"}
    nothing = s.schedule(app(2, placement={"zones": ["z2"]}), reserve=False)
    assert nothing.message == ("0/4 clusters are available: 1 excluded by ClusterHealthy, "
                               "3 excluded by ClusterAffinity")


def test_locality_moves_only_the_difference() -> None:
    s = scheduler(member("a", "z1", cpu="40"), member("b", "z1", cpu="40"),
                  member("c", "z1", cpu="40"))
    # The app runs 5/5 on a and b; c is as free. Scaling to 12 keeps those and adds 2.
    d = s.schedule(app(12, placements={"a": 5, "b": 5}, uid="x"), reserve=False)
    r = d.replicas()
    assert r["a"] >= 5 and r["b"] >= 5 and sum(r.values()) == 12
    same = s.schedule(app(10, placements={"a": 5, "b": 5}, uid="x", generation=2),
                      reserve=False)
    assert same.replicas() == {"a": 5, "b": 5}
    down = s.schedule(app(6, placements={"a": 5, "b": 5}, uid="x", generation=3),
                      reserve=False)
    assert down.replicas() == {"a": 3, "b": 3}
    ideal = s.schedule(app(9, placements={"a": 5, "b": 4}, uid="x", generation=4),
                       reserve=False, rebalance=True)
    assert ideal.replicas() == {"a": 3, "b": 3, "c": 3}


def test_failed_cluster_share_moves_and_the_rest_stays() -> None:
    clusters = [member(n, z) for n, z in (("a", "z1"), ("b", "z2"), ("c", "z3"))]
    s = scheduler(*clusters)
    spread = {"spread": [{"topology": "zone", "minGroups": 2}]}
    s.table.upsert(member("c", "z3", unschedulable=True))
    d = s.schedule(app(9, placement=spread, placements={"a": 3, "b": 3, "c": 3}),
                   reserve=False)
    r = d.replicas()
    assert "c" not in r and r["a"] >= 3 and r["b"] >= 3 and sum(r.values()) == 9


def test_daemons_go_to_every_matching_cluster_without_counts() -> None:
    from pincompute.model.infra import PinDaemonSpec

    from .support import template
    s = scheduler(member("a", "z1", labels={"role": "edge"}), member("b", "z2"),
                  member("c", "z3", labels={"role": "edge"}, taints=[
                      {"key": "k", "effect": "NoSchedule"}]))
    daemon = {"kind": "PinDaemon", "metadata": {"uid": "d", "name": "agent"},
              "spec": PinDaemonSpec.model_validate({
                  "template": template(), "clusterSelector": {"matchLabels": {"role": "edge"}},
                  "tolerations": [{"key": "k", "operator": "Exists"}]}).to_dict()}
    d = s.schedule(daemon)
    assert [(p.cluster, p.replicas) for p in d.placements] == [("a", None), ("c", None)]
    assert "d" not in s.assumed  # nothing to reserve: a daemon's pods follow the nodes


def test_static_weights_follow_changed_weights() -> None:
    s = scheduler(member("a", "z1"), member("b", "z1"))
    rs = {"weighting": "Static", "staticWeights": [
        {"weight": 1, "clusterNames": ["a"]}, {"weight": 3, "clusterNames": ["b"]}]}
    d = s.schedule(app(8, placement={"replicaScheduling": rs}, uid="w",
                       placements={"a": 4, "b": 4}), reserve=False)
    assert d.replicas() == {"a": 2, "b": 6}


def test_region_spread_uses_the_region_as_the_domain() -> None:
    s = scheduler(member("e1", "z1", region="east"), member("e2", "z2", region="east"),
                  member("w1", "z3", region="west"))
    d = s.schedule(app(6, placement={"spread": [{"topology": "region", "minGroups": 2}]}),
                   reserve=False)
    r = d.replicas()
    assert r["w1"] == 3 and r.get("e1", 0) + r.get("e2", 0) == 3


def test_preemptible_borrows_idle_room_that_ondemand_may_take_back() -> None:
    s = scheduler(member("c", "z1", cpu="10", tiers=("ondemand",)))
    borrowed = s.schedule(app(6, tier="preemptible"))
    assert borrowed.replicas() == {"c": 6}
    # The on-demand pool still counts its whole room as its own (preemption reclaims it) ...
    assert s.schedule(app(10, tier="ondemand")).replicas() == {"c": 10}
    # ... and no more preemptible work fits on what is left idle.
    assert not s.schedule(app(1, tier="preemptible")).scheduled
