from __future__ import annotations

from tests.federation.clusterscheduler.support import app, excluded, member, scheduler


def test_zones_selector_names_and_exclude_filter_clusters() -> None:
    gpu = {"gpu": "yes"}
    s = scheduler(member("a", "z1", labels=gpu), member("b", "z2", labels=gpu),
                  member("c", "z2"), member("d", "z3", labels=gpu))
    d = s.schedule(app(4, placement={
        "zones": ["z1", "z2"],
        "clusterSelector": {"matchLabels": {"gpu": "yes"}},
        "clusterAffinity": {"exclude": ["a"]},
    }), reserve=False)
    assert d.replicas() == {"b": 4}
    why = excluded(d)
    assert why["a"] == ("ClusterAffinity", "excluded by clusterAffinity.exclude")
    assert why["c"] == ("ClusterAffinity", "labels do not match the placement's clusterSelector")
    assert why["d"][0] == "ClusterAffinity" and "zone z3 is not one of" in why["d"][1]


def test_cluster_names_and_implied_labels() -> None:
    s = scheduler(member("a", "z1"), member("b", "z2"), member("c", "z2", region="west"))
    d = s.schedule(app(2, placement={"clusterAffinity": {"clusterNames": ["a", "b"]}}),
                   reserve=False)
    assert set(d.replicas()) == {"a", "b"}
    assert excluded(d)["c"] == ("ClusterAffinity", "not named in clusterAffinity.clusterNames")
    d = s.schedule(app(2, placement={"clusterSelector": {"matchExpressions": [
        {"key": "topology.kubernetes.io/region", "operator": "In", "values": ["west"]}]}}),
        reserve=False)
    assert d.replicas() == {"c": 2}
    d = s.schedule(app(1, placement={"clusterSelector": {"matchLabels": {
        "pincompute.io/cluster": "b"}}}), reserve=False)
    assert d.replicas() == {"b": 1}


def test_preferred_terms_decide_which_cluster_a_job_gets() -> None:
    from tests.federation.clusterscheduler.support import job
    s = scheduler(member("a", "z1", labels={"fast": "1"}), member("b", "z1"))
    placement = {"clusterAffinity": {"preferred": [
        {"weight": 100, "selector": {"matchLabels": {"fast": "1"}}}]}}
    assert s.schedule(job(2, placement=placement), reserve=False).replicas() == {"a": 2}
    placement["clusterAffinity"]["preferred"][0]["selector"] = {"matchLabels": {"fast": "0"}}
    # Without a match the tie goes by the other scores, then by name.
    assert set(s.schedule(job(2, placement=placement), reserve=False).replicas()) <= {"a", "b"}
