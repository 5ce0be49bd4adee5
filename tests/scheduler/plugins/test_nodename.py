from __future__ import annotations

from pincompute.scheduler.framework import Deps
from pincompute.scheduler.plugins.nodename import NodeName
from tests.scheduler.support import explain, info, node, passes, pod, table_of


def test_only_the_named_node_passes() -> None:
    t = table_of(node("a"), node("b"))
    plugin = NodeName()
    p = info(pod("p", node_name="b"))
    assert passes(plugin, p, t) == {"a": False, "b": True}
    assert explain(plugin, p, t) == {"node(s) didn't match the requested node name": 1}
    assert not any(passes(plugin, info(pod("q", node_name="zzz")), t).values())


def test_pods_without_a_node_name_skip_it() -> None:
    assert NodeName().filter_deps(info(pod("p")), table_of(node("a"))) == Deps.NONE
