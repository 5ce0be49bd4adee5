"""NodeSelector (Filter): ``spec.nodeSelector`` — every listed label must match.

Theory of operation
-------------------
Each ``key: value`` pair is one comparison on the key's value-id column of the
node table (:mod:`pincompute.scheduler.nodematch`); the pairs are ANDed.  A
value no node carries matches nothing.  The reason text is kube-scheduler's,
shared with NodeAffinity, because users read both as one rule.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from pincompute.scheduler.framework.handle import FrameworkHandle
from pincompute.scheduler.framework.interface import NODE_ADD, NODE_LABEL, ClassContext, Deps
from pincompute.scheduler.nodematch import selector_mask
from pincompute.scheduler.nodetable import NodeTable, Rows
from pincompute.scheduler.podinfo import PodInfo

NAME = "NodeSelector"
REASON = "node(s) didn't match Pod's node affinity/selector"


class NodeSelector:
    name = NAME
    unresolvable = True

    def filter_deps(self, pod: PodInfo, table: NodeTable) -> Deps:
        return Deps.NODE if pod.node_selector else Deps.NONE

    def filter(self, ctx: ClassContext, pod: PodInfo, table: NodeTable, rows: Rows) -> np.ndarray:
        return selector_mask(table, pod.node_selector, rows)

    def explain(self, ctx: ClassContext, pod: PodInfo, table: NodeTable,
                rows: np.ndarray) -> Mapping[str, int]:
        return {REASON: int(rows.shape[0])}

    def events(self) -> frozenset[str]:
        return frozenset((NODE_ADD, NODE_LABEL))


def new(args: Mapping[str, Any], handle: FrameworkHandle) -> NodeSelector:
    return NodeSelector()
