from __future__ import annotations

import pytest

from pincompute.scheduler.framework import Deps
from pincompute.scheduler.plugins.balancedallocation import new
from tests.scheduler.support import info, node, pod, scores, table_of


def test_even_use_of_resources_scores_higher() -> None:
    t = table_of(node("even", cpu="4", memory="4Gi"), node("skewed", cpu="4", memory="4Gi"))
    t.add_pod(info(pod("x", cpu="3", memory="0")), "skewed", assumed=False)
    plugin = new({}, None)
    p = info(pod("p", cpu="1", memory="1Gi"))
    got = scores(plugin, p, t)
    assert got["even"] == pytest.approx(100.0)
    assert got["skewed"] == pytest.approx((1 - (1.0 - 0.25) / 2) * 100)
    for name, value in got.items():
        assert plugin.score_row(p, t, t.row_of[name]) == pytest.approx(value)


def test_three_resources_use_the_standard_deviation() -> None:
    t = table_of(node("g", cpu="4", memory="4Gi", gpu=4))
    plugin = new({"resources": {"cpu": 1, "memory": 1, "nvidia.com/gpu": 1}}, None)
    p = info(pod("p", cpu="1", memory="2Gi", gpu=4))
    fr = [0.25, 0.5, 1.0]
    mean = sum(fr) / 3
    std = (sum((f - mean) ** 2 for f in fr) / 3) ** 0.5
    assert scores(plugin, p, t)["g"] == pytest.approx((1 - std) * 100)
    assert plugin.score_row(p, t, t.row_of["g"]) == pytest.approx((1 - std) * 100)


def test_a_single_scored_resource_skips_the_plugin() -> None:
    plugin = new({"resources": {"cpu": 1}}, None)
    assert plugin.score_deps(info(pod("p")), table_of(node("a"))) == Deps.NONE
