from __future__ import annotations

import numpy as np

from pincompute.scheduler.framework import Deps
from pincompute.scheduler.plugins.noderesourcesfit import NodeResourcesFit
from tests.scheduler.support import explain, info, node, passes, pod, table_of


def test_fit_counts_requests_assumed_pods_and_pod_limit() -> None:
    t = table_of(node("small", cpu="1", memory="1Gi"), node("full", pods=1),
                 node("gpu", gpu=2), node("big", cpu="8", memory="32Gi"))
    t.add_pod(info(pod("x")), "full", assumed=True)
    plugin = NodeResourcesFit()
    p = info(pod("p", cpu="1500m", memory="2Gi"))
    assert passes(plugin, p, t) == {"small": False, "full": False, "gpu": True, "big": True}
    assert explain(plugin, p, t) == {"Insufficient cpu": 1, "Insufficient memory": 1,
                                     "Too many pods": 1}
    g = info(pod("g", gpu=3))
    assert not any(passes(plugin, g, t).values())
    assert explain(plugin, g, t)["Insufficient nvidia.com/gpu"] == 4
    assert plugin.filter_deps(p, t) == Deps.NODE | Deps.LOCAL


def test_pods_without_requests_only_need_a_pod_slot() -> None:
    t = table_of(node("a", cpu="0", memory="0"))
    assert passes(NodeResourcesFit(), info(pod("p", cpu=None, memory=None)), t) == {"a": True}


def test_nominated_room_is_held_for_higher_priority_pods() -> None:
    t = table_of(node("a", cpu="2"))
    reserved = info(pod("r", cpu="2", tier="reserved"))
    t.nominate(reserved, "a")
    plugin = NodeResourcesFit()
    assert passes(plugin, info(pod("o", cpu="1", tier="ondemand")), t) == {"a": False}
    assert passes(plugin, info(pod("r2", cpu="1", tier="reserved", priority=2_000_000)),
                  t) == {"a": True}
    assert passes(plugin, reserved, t) == {"a": True}  # its own nomination does not count


def test_scalar_twin_agrees_with_vector() -> None:
    rng = np.random.default_rng(7)
    nodes = [node(f"n{i}", cpu=f"{rng.integers(1, 8)}", memory=f"{rng.integers(1, 8)}Gi",
                  pods=int(rng.integers(1, 5)), gpu=int(rng.integers(0, 3))) for i in range(40)]
    t = table_of(*nodes)
    for i in range(60):
        p = info(pod(f"p{i}", cpu=f"{rng.integers(1, 2000)}m", memory=f"{rng.integers(1, 2048)}Mi",
                     gpu=int(rng.integers(0, 2))))
        target = f"n{rng.integers(0, 40)}"
        t.add_pod(p, target, assumed=bool(i % 2))
    plugin = NodeResourcesFit()
    probe = info(pod("probe", cpu="700m", memory="900Mi", gpu=1))
    vector = plugin.filter(None, probe, t, slice(0, t.n))  # type: ignore[arg-type]
    for r in t.node_rows():
        assert plugin.filter_row(probe, t, int(r)) == bool(vector[r])
