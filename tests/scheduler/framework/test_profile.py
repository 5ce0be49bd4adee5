from __future__ import annotations

import pytest

from pincompute.scheduler.framework import DEFAULT_PLUGINS, Profile
from pincompute.scheduler.plugins import in_tree
from tests.scheduler.support import framework, table_of


def test_bin_packing_profile_swaps_the_allocation_score() -> None:
    p = Profile().with_plugins(disable=["LeastAllocated"], enable=["MostAllocated"])
    assert "LeastAllocated" not in p.plugins and "MostAllocated" in p.plugins
    # Tail plugins (preemption, binding) stay last.
    assert p.plugins[-1] == "DefaultBinder"
    assert p.plugins.index("MostAllocated") < p.plugins.index("Gang")
    fw = framework(table_of(), profile=p)
    assert [s.name for s, _ in fw.scorers] == ["TaintToleration", "NodeAffinity",
                                               "PodTopologySpread", "InterPodAntiAffinity",
                                               "BalancedAllocation", "MostAllocated"]


def test_weights_and_args() -> None:
    p = Profile().with_weights(LeastAllocated=5).with_args("Gang", timeout_seconds=7)
    assert p.weight("LeastAllocated") == 5 and p.weight("Unknown") == 1
    fw = framework(table_of(), profile=p)
    assert fw.by_name["Gang"].timeout == 7


def test_a_profile_needs_exactly_one_queue_sort() -> None:
    with pytest.raises(ValueError):
        framework(table_of(), profile=Profile(plugins=tuple(
            n for n in DEFAULT_PLUGINS if n != "PrioritySort")))
    assert set(DEFAULT_PLUGINS) <= set(in_tree())
