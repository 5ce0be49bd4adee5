from __future__ import annotations

import pytest

from pincompute.scheduler.plugins.leastallocated import LeastAllocated, new
from tests.scheduler.support import info, node, pod, scores, table_of


def test_emptier_nodes_score_higher() -> None:
    t = table_of(node("empty", cpu="4", memory="4Gi"), node("half", cpu="4", memory="4Gi"))
    t.add_pod(info(pod("x", cpu="2", memory="2Gi")), "half", assumed=False)
    got = scores(new({}, None), info(pod("p", cpu="1", memory="1Gi")), t)
    assert got["empty"] == pytest.approx(75.0)  # (4-1)/4 for both resources
    assert got["half"] == pytest.approx(25.0)


def test_resource_weights_and_overfull_nodes() -> None:
    t = table_of(node("a", cpu="1", memory="4Gi"))
    plugin = LeastAllocated({"cpu": 3.0, "memory": 1.0})
    got = scores(plugin, info(pod("p", cpu="2", memory="1Gi")), t)
    assert got["a"] == pytest.approx((0 * 3 + 75 * 1) / 4)


def test_scalar_twin_agrees() -> None:
    t = table_of(node("a", cpu="3", memory="5Gi"), node("b", cpu="0"))
    t.add_pod(info(pod("x", cpu="700m", memory="1Gi")), "a", assumed=True)
    plugin = new({}, None)
    p = info(pod("p", cpu="300m", memory="300Mi"))
    for name, value in scores(plugin, p, t).items():
        assert plugin.score_row(p, t, t.row_of[name]) == pytest.approx(value)


def test_bad_resources_are_rejected() -> None:
    with pytest.raises(ValueError):
        new({"resources": {"disk": 1}}, None)
    with pytest.raises(ValueError):
        new({"resources": {"cpu": 0}}, None)
