from __future__ import annotations

import numpy as np

from pincompute.scheduler.framework import Deps
from pincompute.scheduler.plugins.podtopologyspread import PodTopologySpread
from tests.scheduler.support import HOST, ZONE, explain, info, node, passes, pod, scores, table_of


def spread(key: str = ZONE, skew: int = 1, hard: bool = True, **extra: object) -> dict:
    return {"maxSkew": skew, "topologyKey": key,
            "whenUnsatisfiable": "DoNotSchedule" if hard else "ScheduleAnyway",
            "labelSelector": {"matchLabels": {"app": "web"}}, **extra}


def zones() -> object:
    return table_of(node("a1", labels={ZONE: "a"}), node("a2", labels={ZONE: "a"}),
                    node("b1", labels={ZONE: "b"}), node("nozone"))


def place(t: object, name: str, where: str, app: str = "web") -> None:
    t.add_pod(info(pod(name, labels={"app": app})), where, assumed=False)  # type: ignore[attr-defined]


def test_hard_zone_spread_keeps_skew_within_bounds() -> None:
    t = zones()
    place(t, "w1", "a1")
    place(t, "w2", "a2")
    place(t, "w3", "b1")
    place(t, "x", "b1", app="db")  # not matched by the selector
    p = info(pod("p", labels={"app": "web"}, spread=[spread()]))
    # zone a has 2, zone b has 1: one more in a gives skew 2.
    assert passes(PodTopologySpread(), p, t) == {"a1": False, "a2": False, "b1": True,
                                                 "nozone": False}
    assert explain(PodTopologySpread(), p, t) == {
        "node(s) didn't match pod topology spread constraints": 2,
        "node(s) didn't match pod topology spread constraints (missing required label)": 1}


def test_skew_allows_imbalance_up_to_max_skew_and_self_match_counts() -> None:
    t = zones()
    place(t, "w1", "a1")
    assert passes(PodTopologySpread(), info(pod("p", labels={"app": "web"},
                                                spread=[spread(skew=2)])), t)["a1"]
    # A pod not matching its own selector does not add to its domain.
    other = info(pod("q", labels={"app": "other"}, spread=[spread()]))
    assert passes(PodTopologySpread(), other, t)["a1"]


def test_min_domains_forces_spreading_to_more_domains() -> None:
    t = zones()
    place(t, "w1", "b1")
    p = info(pod("p", labels={"app": "web"}, spread=[spread(minDomains=3)]))
    # Only two zones exist, fewer than minDomains: the global minimum is taken as 0.
    assert passes(PodTopologySpread(), p, t)["b1"] is False
    assert passes(PodTopologySpread(), p, t)["a1"] is True


def test_node_affinity_policy_limits_the_domains() -> None:
    t = zones()
    place(t, "w1", "a1")
    honor = info(pod("p", labels={"app": "web"}, node_selector={ZONE: "a"},
                     spread=[spread()]))
    # Only zone a is eligible, so there is nothing to be skewed against.
    assert passes(PodTopologySpread(), honor, t)["a2"] is True
    ignore = info(pod("q", labels={"app": "web"}, node_selector={ZONE: "a"},
                      spread=[spread(nodeAffinityPolicy="Ignore")]))
    assert passes(PodTopologySpread(), ignore, t)["a2"] is False


def test_hostname_spread() -> None:
    t = zones()
    place(t, "w1", "a1")
    p = info(pod("p", labels={"app": "web"}, spread=[spread(key=HOST)]))
    got = passes(PodTopologySpread(), p, t)
    assert got == {"a1": False, "a2": True, "b1": True, "nozone": True}


def test_soft_spread_prefers_emptier_domains() -> None:
    t = zones()
    place(t, "w1", "a1")
    place(t, "w2", "a2")
    plugin = PodTopologySpread()
    p = info(pod("p", labels={"app": "web"}, spread=[spread(hard=False)]))
    assert plugin.filter_deps(p, t) == Deps.NONE
    assert plugin.score_deps(p, t) == Deps.GLOBAL
    raw = scores(plugin, p, t)
    assert np.isnan(raw["nozone"])
    norm = plugin.normalize(np.array([raw[t.names[r]] for r in range(t.n)]),
                            np.ones(t.n, dtype=bool))
    by_name = {t.names[r]: norm[r] for r in range(t.n)}
    assert by_name["b1"] > by_name["a1"] == by_name["a2"]
    assert by_name["nozone"] == 0.0


def test_terminating_pods_are_not_counted() -> None:
    t = zones()
    gone = pod("w1", labels={"app": "web"})
    gone["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    t.add_pod(info(gone), "a1", assumed=False)
    place(t, "w2", "b1")
    p = info(pod("p", labels={"app": "web"}, spread=[spread()]))
    assert passes(PodTopologySpread(), p, t)["a1"] is True
