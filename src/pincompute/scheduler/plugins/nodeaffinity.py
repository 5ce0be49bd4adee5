"""NodeAffinity (Filter, Score): required and preferred node affinity.

Theory of operation
-------------------
*Required* (``requiredDuringSchedulingIgnoredDuringExecution``): the node must
match at least one ``nodeSelectorTerm``; a term ANDs its ``matchExpressions``
(In, NotIn, Exists, DoesNotExist, Gt, Lt) and ``matchFields`` (metadata.name).
An empty term list matches no node.

*Preferred*: each matching preference adds its weight; the sums are normalized
over the feasible nodes so the best gets 100 (all 0 when nothing matches).
Both depend on the node object only.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from pincompute.scheduler.framework.handle import FrameworkHandle
from pincompute.scheduler.framework.interface import NODE_ADD, NODE_LABEL, ClassContext, Deps
from pincompute.scheduler.nodematch import row_count, term_mask, terms_mask
from pincompute.scheduler.nodetable import NodeTable, Rows
from pincompute.scheduler.podinfo import PodInfo

NAME = "NodeAffinity"
REASON = "node(s) didn't match Pod's node affinity/selector"


class NodeAffinity:
    name = NAME
    unresolvable = True
    normalized = True

    def filter_deps(self, pod: PodInfo, table: NodeTable) -> Deps:
        return Deps.NODE if pod.required_terms is not None else Deps.NONE

    def filter(self, ctx: ClassContext, pod: PodInfo, table: NodeTable, rows: Rows) -> np.ndarray:
        assert pod.required_terms is not None
        return terms_mask(table, pod.required_terms, rows)

    def explain(self, ctx: ClassContext, pod: PodInfo, table: NodeTable,
                rows: np.ndarray) -> Mapping[str, int]:
        return {REASON: int(rows.shape[0])}

    def score_deps(self, pod: PodInfo, table: NodeTable) -> Deps:
        return Deps.NODE if pod.preferred_terms else Deps.NONE

    def score(self, ctx: ClassContext, pod: PodInfo, table: NodeTable, rows: Rows) -> np.ndarray:
        total = np.zeros(row_count(table, rows), dtype=np.float64)
        for weight, term in pod.preferred_terms:
            if weight:
                total += weight * term_mask(table, term, rows)
        return total

    def normalize(self, raw: np.ndarray, feasible: np.ndarray) -> np.ndarray:
        top = raw[feasible].max() if feasible.any() else 0.0
        if top <= 0:
            return np.zeros_like(raw)
        return raw * (100.0 / top)

    def events(self) -> frozenset[str]:
        return frozenset((NODE_ADD, NODE_LABEL))


def new(args: Mapping[str, Any], handle: FrameworkHandle) -> NodeAffinity:
    return NodeAffinity()
