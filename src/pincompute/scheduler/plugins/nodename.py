"""NodeName (Filter): a pod that names its node fits only there.

Theory of operation
-------------------
``spec.nodeName`` on a pod normally means it is already bound and the scheduler
never sees it; the filter matters when a pod is evaluated against a node it
asks for (what-if checks, preemption, kubelet-style admission).  It applies
only to pods that set the field, and depends on the node object alone.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from pincompute.scheduler.framework.handle import FrameworkHandle
from pincompute.scheduler.framework.interface import NODE_ADD, ClassContext, Deps
from pincompute.scheduler.nodematch import row_index
from pincompute.scheduler.nodetable import NodeTable, Rows
from pincompute.scheduler.podinfo import PodInfo

NAME = "NodeName"
REASON = "node(s) didn't match the requested node name"


class NodeName:
    name = NAME
    unresolvable = True

    def filter_deps(self, pod: PodInfo, table: NodeTable) -> Deps:
        return Deps.NODE if pod.node_name else Deps.NONE

    def filter(self, ctx: ClassContext, pod: PodInfo, table: NodeTable, rows: Rows) -> np.ndarray:
        wanted = table.row_of.get(pod.node_name, -1)
        return row_index(table, rows) == wanted

    def explain(self, ctx: ClassContext, pod: PodInfo, table: NodeTable,
                rows: np.ndarray) -> Mapping[str, int]:
        return {REASON: int(rows.shape[0])}

    def events(self) -> frozenset[str]:
        return frozenset((NODE_ADD,))


def new(args: Mapping[str, Any], handle: FrameworkHandle) -> NodeName:
    return NodeName()
