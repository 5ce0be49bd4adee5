from __future__ import annotations

import numpy as np

from pincompute.scheduler.framework import Deps
from pincompute.scheduler.plugins.tainttoleration import TaintToleration
from tests.scheduler.support import explain, info, node, passes, pod, scores, table_of


def test_untolerated_hard_taints_reject_and_name_the_taint() -> None:
    t = table_of(node("plain"), node("gpu", taints=[("dedicated", "gpu", "NoSchedule")]),
                 node("evict", taints=[("maint", "", "NoExecute")]),
                 node("soft", taints=[("spot", "yes", "PreferNoSchedule")]))
    p = info(pod("p"))
    assert passes(TaintToleration(), p, t) == {"plain": True, "gpu": False, "evict": False,
                                               "soft": True}
    assert explain(TaintToleration(), p, t) == {
        "node(s) had untolerated taint {dedicated: gpu}": 1,
        "node(s) had untolerated taint {maint: }": 1}


def test_tolerations_equal_exists_and_wildcards() -> None:
    t = table_of(node("gpu", taints=[("dedicated", "gpu", "NoSchedule")]),
                 node("tpu", taints=[("dedicated", "tpu", "NoSchedule")]))
    equal = info(pod("e", tolerations=[{"key": "dedicated", "value": "gpu",
                                        "effect": "NoSchedule"}]))
    exists = info(pod("x", tolerations=[{"key": "dedicated", "operator": "Exists"}]))
    everything = info(pod("w", tolerations=[{"operator": "Exists"}]))
    wrong_effect = info(pod("n", tolerations=[{"key": "dedicated", "operator": "Exists",
                                               "effect": "NoExecute"}]))
    plugin = TaintToleration()
    assert passes(plugin, equal, t) == {"gpu": True, "tpu": False}
    assert passes(plugin, exists, t) == {"gpu": True, "tpu": True}
    assert passes(plugin, everything, t) == {"gpu": True, "tpu": True}
    assert passes(plugin, wrong_effect, t) == {"gpu": False, "tpu": False}


def test_no_taints_anywhere_skips_the_plugin() -> None:
    t = table_of(node("a"))
    assert TaintToleration().filter_deps(info(pod("p")), t) == Deps.NONE
    assert TaintToleration().score_deps(info(pod("p")), t) == Deps.NONE


def test_prefer_no_schedule_scores_lower() -> None:
    t = table_of(node("clean"), node("one", taints=[("spot", "", "PreferNoSchedule")]),
                 node("two", taints=[("spot", "", "PreferNoSchedule"),
                                     ("old", "", "PreferNoSchedule")]))
    plugin = TaintToleration()
    p = info(pod("p"))
    assert plugin.score_deps(p, t) == Deps.NODE
    raw = scores(plugin, p, t)
    assert raw == {"clean": 0.0, "one": 1.0, "two": 2.0}
    norm = plugin.normalize(np.array([raw[t.names[r]] for r in range(t.n)]),
                            np.ones(t.n, dtype=bool))
    assert list(norm) == [100.0, 50.0, 0.0]
    tolerant = info(pod("q", tolerations=[{"key": "spot", "operator": "Exists"}]))
    assert scores(plugin, tolerant, t) == {"clean": 0.0, "one": 0.0, "two": 1.0}
