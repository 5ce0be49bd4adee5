from __future__ import annotations

import numpy as np

from pincompute.scheduler import nodematch as M
from pincompute.scheduler.podinfo import NodeRequirement, NodeSelectorTerm

from .support import info, node, pod, table_of


def cluster() -> object:
    return table_of(node("a", labels={"zone": "z1", "cores": "16"}),
                    node("b", labels={"zone": "z2", "cores": "4"}),
                    node("c", taints=[("k", "v", "NoSchedule")]))


def names(t: object, mask: np.ndarray) -> list[str]:
    return [t.names[r] for r in range(t.n) if mask[r]]  # type: ignore[attr-defined]


def test_requirements_over_columns() -> None:
    t = cluster()
    rows = slice(0, t.n)  # type: ignore[attr-defined]
    req = M.requirement_mask
    assert names(t, req(t, NodeRequirement("zone", "In", ("z1", "z9")), rows)) == ["a"]
    assert names(t, req(t, NodeRequirement("zone", "NotIn", ("z1",)), rows)) == ["b", "c"]
    assert names(t, req(t, NodeRequirement("zone", "Exists", ()), rows)) == ["a", "b"]
    assert names(t, req(t, NodeRequirement("zone", "DoesNotExist", ()), rows)) == ["c"]
    assert names(t, req(t, NodeRequirement("cores", "Gt", ("8",)), rows)) == ["a"]
    assert names(t, req(t, NodeRequirement("cores", "Lt", ("8",)), rows)) == ["b"]
    assert names(t, M.field_mask(t, NodeRequirement("metadata.name", "In", ("b",)),
                                 rows)) == ["b"]


def test_terms_selectors_and_row_subsets() -> None:
    t = cluster()
    empty = NodeSelectorTerm((), ())
    assert not M.term_mask(t, empty, slice(0, t.n)).any()  # type: ignore[attr-defined]
    rows = np.array([t.row_of["b"], t.row_of["a"]])  # type: ignore[attr-defined]
    assert list(M.selector_mask(t, (("zone", "z1"),), rows)) == [False, True]
    assert M.row_count(t, slice(0, 2)) == 2 and M.row_count(t, rows) == 2
    p = info(pod("p", node_selector={"zone": "z2"}))
    assert names(t, M.pod_node_mask(t, p, slice(0, t.n))) == ["b"]  # type: ignore[attr-defined]
    assert names(t, M.untolerated_hard(t, p, slice(0, t.n))) == ["c"]  # type: ignore[attr-defined]
