from __future__ import annotations

from pincompute.scheduler.framework import Deps
from pincompute.scheduler.plugins.nodeunschedulable import NodeUnschedulable
from tests.scheduler.support import explain, info, node, passes, pod, table_of


def test_cordoned_nodes_are_rejected() -> None:
    t = table_of(node("a"), node("b", unschedulable=True))
    p = info(pod("p"))
    assert passes(NodeUnschedulable(), p, t) == {"a": True, "b": False}
    assert explain(NodeUnschedulable(), p, t) == {"node(s) were unschedulable": 1}


def test_a_toleration_of_the_unschedulable_taint_lets_pods_in() -> None:
    p = info(pod("p", tolerations=[{"key": "node.kubernetes.io/unschedulable",
                                    "operator": "Exists", "effect": "NoSchedule"}]))
    assert NodeUnschedulable().filter_deps(p, table_of(node("a"))) == Deps.NONE
