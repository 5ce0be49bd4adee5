"""Vectorized node selection: label requirements evaluated over columns of the node table.

Theory of operation
-------------------
A node selector (``spec.nodeSelector``), a node-affinity term or a spread
constraint's node filter is a boolean expression over node labels.  Instead of
evaluating it node by node, each requirement becomes one numpy comparison on the
label's value-id column (:meth:`~pincompute.scheduler.nodetable.NodeTable.column`):
``In`` is membership of the ids of the listed values, ``Exists`` is ``id >= 0``,
``Gt``/``Lt`` compare the column's numeric view.  Values no node carries have
no id and match nothing.  Terms AND their requirements; a list of terms ORs
them; an empty term matches no node, as in Kubernetes.

The scalar twins in :mod:`pincompute.scheduler.podinfo` (``term_matches``) are
the reference the tests hold these to.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .nodetable import NodeTable, Rows
from .podinfo import NodeRequirement, NodeSelectorTerm, PodInfo, tolerates_all


def row_count(table: NodeTable, rows: Rows) -> int:
    if isinstance(rows, slice):
        return len(range(*rows.indices(table.n)))
    return int(rows.shape[0])


def row_index(table: NodeTable, rows: Rows) -> np.ndarray:
    """``rows`` as an index array."""
    if isinstance(rows, slice):
        return np.arange(table.n, dtype=np.intp)[rows]
    return rows


def _ids(table: NodeTable, key: str, values: Sequence[str]) -> list[int]:
    return [vid for v in values if (vid := table.value_id(key, v)) >= 0]


def requirement_mask(table: NodeTable, req: NodeRequirement, rows: Rows) -> np.ndarray:
    op = req.op
    if op in ("Gt", "Lt"):
        nums = table.numeric_column(req.key, rows)
        bound = float(int(req.values[0]))
        with np.errstate(invalid="ignore"):
            return nums > bound if op == "Gt" else nums < bound
    col = table.column(req.key)[rows]
    if op == "Exists":
        return col >= 0
    if op == "DoesNotExist":
        return col < 0
    ids = _ids(table, req.key, req.values)
    if len(ids) == 1:
        hit = col == ids[0]
    elif ids:
        hit = np.isin(col, ids)
    else:
        hit = np.zeros(col.shape[0], dtype=bool)
    return hit if op == "In" else ~hit


def field_mask(table: NodeTable, req: NodeRequirement, rows: Rows) -> np.ndarray:
    """A ``metadata.name`` requirement."""
    idx = row_index(table, rows)
    wanted = [table.row_of[name] for name in req.values if name in table.row_of]
    hit = np.isin(idx, wanted) if wanted else np.zeros(idx.shape[0], dtype=bool)
    return hit if req.op == "In" else ~hit


def term_mask(table: NodeTable, term: NodeSelectorTerm, rows: Rows) -> np.ndarray:
    if not term.expressions and not term.fields:
        return np.zeros(row_count(table, rows), dtype=bool)
    mask: np.ndarray | None = None
    for req in term.expressions:
        m = requirement_mask(table, req, rows)
        mask = m if mask is None else mask & m
    for req in term.fields:
        m = field_mask(table, req, rows)
        mask = m if mask is None else mask & m
    assert mask is not None
    return mask


def terms_mask(table: NodeTable, terms: Sequence[NodeSelectorTerm], rows: Rows) -> np.ndarray:
    """Nodes matching any of ``terms`` (none when there are no terms)."""
    mask = np.zeros(row_count(table, rows), dtype=bool)
    for term in terms:
        mask |= term_mask(table, term, rows)
    return mask


def selector_mask(table: NodeTable, pairs: Sequence[tuple[str, str]], rows: Rows) -> np.ndarray:
    """Nodes carrying every ``key=value`` of a ``nodeSelector``."""
    mask = np.ones(row_count(table, rows), dtype=bool)
    for key, value in pairs:
        mask &= table.column(key)[rows] == table.value_id(key, value)
    return mask


def pod_node_mask(table: NodeTable, pod: PodInfo, rows: Rows) -> np.ndarray:
    """Nodes the pod's nodeSelector and required node affinity admit."""
    mask = selector_mask(table, pod.node_selector, rows)
    if pod.required_terms is not None:
        mask &= terms_mask(table, pod.required_terms, rows)
    return mask


def untolerated_hard(table: NodeTable, pod: PodInfo, rows: Rows) -> np.ndarray:
    """Nodes with a NoSchedule/NoExecute taint the pod does not tolerate."""
    tolerated = [tid for tid, (k, v, e) in enumerate(table.taint_list)
                 if tolerates_all(pod.tolerations, k, v, e)]
    mask = table.taint_mask(tolerated)
    bad = table.hard_taints[rows] & ~mask
    return bad.any(axis=1)
