from __future__ import annotations

from pincompute.scheduler.framework import Deps
from pincompute.scheduler.plugins.nodeselector import NodeSelector
from tests.scheduler.support import explain, info, node, passes, pod, table_of


def test_every_pair_must_match() -> None:
    t = table_of(node("a", labels={"disk": "ssd", "zone": "z1"}),
                 node("b", labels={"disk": "ssd", "zone": "z2"}), node("c"))
    p = info(pod("p", node_selector={"disk": "ssd", "zone": "z1"}))
    assert passes(NodeSelector(), p, t) == {"a": True, "b": False, "c": False}
    assert explain(NodeSelector(), p, t) == {"node(s) didn't match Pod's node affinity/selector": 2}


def test_values_no_node_has_match_nothing_and_no_selector_skips() -> None:
    t = table_of(node("a", labels={"disk": "ssd"}))
    assert passes(NodeSelector(), info(pod("p", node_selector={"disk": "nvme"})), t) == \
        {"a": False}
    assert NodeSelector().filter_deps(info(pod("q")), t) == Deps.NONE
