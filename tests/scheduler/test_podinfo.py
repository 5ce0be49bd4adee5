from __future__ import annotations

import pytest

from pincompute.scheduler.podinfo import PodInfo, term_matches
from pincompute.scheduler.resources import PodSpecError

from .support import gang, info, pod


def test_tier_and_priority() -> None:
    assert info(pod("a")).tier == "ondemand"
    assert info(pod("a")).priority == 10_000
    assert info(pod("a", tier="reserved")).priority == 1_000_000
    assert info(pod("a", tier="preemptible")).priority == 0
    assert info(pod("a", tier="bogus")).tier == "ondemand"
    assert info(pod("a", tier="preemptible", priority=7)).priority == 7


def test_replicas_share_a_class_and_differences_split_it() -> None:
    a = info(pod("a", labels={"app": "x"}))
    b = info(pod("b", labels={"app": "x"}))
    assert a.class_key == b.class_key
    assert a.class_key != info(pod("c", labels={"app": "y"})).class_key
    assert a.class_key != info(pod("d", labels={"app": "x"}, cpu="200m")).class_key
    assert a.class_key != info(pod("e", labels={"app": "x"}, namespace="batch")).class_key
    assert a.class_key != info(pod("f", labels={"app": "x"},
                                   node_selector={"disk": "ssd"})).class_key


def test_group_and_spread_and_affinity_parse() -> None:
    g = gang("train", 4, timeout=2)
    p = info(pod("a", labels={**g["labels"], "app": "t"}, annotations=g["annotations"],
                 spread=[{"maxSkew": 1, "topologyKey": "zone", "whenUnsatisfiable":
                          "ScheduleAnyway", "labelSelector": {"matchLabels": {"app": "t"}},
                          "matchLabelKeys": ["app"]}],
                 affinity={"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
                     {"labelSelector": {"matchLabels": {"app": "t"}},
                      "topologyKey": "kubernetes.io/hostname"}]}}))
    assert p.group == "default/train" and p.min_member == 4 and p.group_timeout == 2.0
    assert len(p.spread) == 1 and not p.spread[0].hard
    assert p.spread[0].selector.matches({"app": "t"})
    assert p.anti_required[0].namespaces == frozenset({"default"})
    assert p.anti_required[0].matches_pod("default", {"app": "t"})
    assert not p.anti_required[0].matches_pod("batch", {"app": "t"})


def test_node_terms_scalar_semantics() -> None:
    p = info(pod("a", affinity={"nodeAffinity": {
        "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
            {"matchExpressions": [{"key": "cores", "operator": "Gt", "values": ["8"]},
                                  {"key": "zone", "operator": "NotIn", "values": ["z3"]}]},
            {"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["n9"]}]},
        ]}}}))
    assert p.required_terms is not None
    t1, t2 = p.required_terms
    assert term_matches(t1, {"cores": "16"}, "n1")
    assert not term_matches(t1, {"cores": "16", "zone": "z3"}, "n1")
    assert not term_matches(t1, {"cores": "x"}, "n1")
    assert term_matches(t2, {}, "n9") and not term_matches(t2, {}, "n1")


@pytest.mark.parametrize("bad", [
    {"spec": {"containers": [{"resources": {"requests": {"cpu": "lots"}}}]}},
    {"spec": {"tolerations": [{"key": "a", "operator": "Matches"}]}},
    {"spec": {"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
        "nodeSelectorTerms": [{"matchExpressions": [{"key": "a", "operator": "Gt",
                                                     "values": ["x"]}]}]}}}}},
    {"spec": {"topologySpreadConstraints": [{"maxSkew": 0, "topologyKey": "zone"}]}},
    {"metadata": {"labels": {"pincompute.io/pod-group": "g"},
                  "annotations": {"pincompute.io/pod-group-min-member": "many"}}},
])
def test_bad_specs_name_the_field(bad: dict) -> None:
    obj = {"metadata": {"name": "p", "namespace": "default", "uid": "u"}, "spec": {}}
    for k, v in bad.items():
        obj[k] = {**obj[k], **v}
    with pytest.raises(PodSpecError):
        PodInfo.from_pod(obj)
