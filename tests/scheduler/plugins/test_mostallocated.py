from __future__ import annotations

import pytest

from pincompute.scheduler.plugins.mostallocated import new
from tests.scheduler.support import info, node, pod, scores, table_of


def test_fuller_nodes_score_higher_for_bin_packing() -> None:
    t = table_of(node("empty", cpu="4", memory="4Gi"), node("half", cpu="4", memory="4Gi"))
    t.add_pod(info(pod("x", cpu="2", memory="2Gi")), "half", assumed=False)
    plugin = new({}, None)
    p = info(pod("p", cpu="1", memory="1Gi"))
    got = scores(plugin, p, t)
    assert got["half"] == pytest.approx(75.0)
    assert got["empty"] == pytest.approx(25.0)
    for name, value in got.items():
        assert plugin.score_row(p, t, t.row_of[name]) == pytest.approx(value)


def test_gpu_is_scored_only_for_gpu_pods() -> None:
    t = table_of(node("g", cpu="4", memory="4Gi", gpu=4))
    plugin = new({"resources": {"cpu": 1, "memory": 1, "nvidia.com/gpu": 2}}, None)
    assert scores(plugin, info(pod("c", cpu="1", memory="1Gi")), t)["g"] == pytest.approx(25.0)
    gpu = scores(plugin, info(pod("g", cpu="1", memory="1Gi", gpu=4)), t)["g"]
    assert gpu == pytest.approx((25 + 25 + 2 * 100) / 4)
