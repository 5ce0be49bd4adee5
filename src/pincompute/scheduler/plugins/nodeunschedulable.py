"""NodeUnschedulable (Filter): cordoned nodes take no new pods.

Theory of operation
-------------------
A node with ``spec.unschedulable: true`` (``pincompute node cordon``) is
rejected unless the pod tolerates the ``node.kubernetes.io/unschedulable``
NoSchedule taint (DaemonSet-style pods do).  The answer depends on the node
object alone, so the class cache re-runs it only on node changes.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from pincompute.scheduler import labels as L
from pincompute.scheduler.framework.handle import FrameworkHandle
from pincompute.scheduler.framework.interface import (
    NODE_ADD,
    NODE_UNSCHEDULABLE,
    ClassContext,
    Deps,
)
from pincompute.scheduler.nodetable import NodeTable, Rows
from pincompute.scheduler.podinfo import PodInfo, tolerates_all

NAME = "NodeUnschedulable"
REASON = "node(s) were unschedulable"


class NodeUnschedulable:
    name = NAME
    unresolvable = True

    def filter_deps(self, pod: PodInfo, table: NodeTable) -> Deps:
        if tolerates_all(pod.tolerations, L.UNSCHEDULABLE_TAINT, "", "NoSchedule"):
            return Deps.NONE
        return Deps.NODE

    def filter(self, ctx: ClassContext, pod: PodInfo, table: NodeTable, rows: Rows) -> np.ndarray:
        return ~table.unschedulable[rows]

    def explain(self, ctx: ClassContext, pod: PodInfo, table: NodeTable,
                rows: np.ndarray) -> Mapping[str, int]:
        return {REASON: int(rows.shape[0])}

    def events(self) -> frozenset[str]:
        return frozenset((NODE_ADD, NODE_UNSCHEDULABLE))


def new(args: Mapping[str, Any], handle: FrameworkHandle) -> NodeUnschedulable:
    return NodeUnschedulable()
