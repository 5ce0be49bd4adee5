"""LeastAllocated (Score): prefer nodes with the most room left — spreads load.

Theory of operation
-------------------
kube-scheduler's default ``NodeResourcesFit`` scoring strategy: per resource,
``(allocatable - requested_after) * 100 / allocatable`` (0 when the pod would
not fit or nothing is allocatable), averaged with the resource weights.  It
depends on the node and its own pods only, so after a binding only that node's
score is recomputed.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from ..framework.interface import ClassContext, Deps
from ..nodetable import NodeTable, Rows
from ..podinfo import PodInfo
from .allocation import fraction_row, fractions, parse_resources, scored_resources

NAME = "LeastAllocated"


class LeastAllocated:
    name = NAME
    normalized = False

    def __init__(self, resources: Mapping[str, float]) -> None:
        self.resources = dict(resources)

    def score_deps(self, pod: PodInfo, table: NodeTable) -> Deps:
        return Deps.NODE | Deps.LOCAL

    def score(self, ctx: ClassContext, pod: PodInfo, table: NodeTable, rows: Rows) -> np.ndarray:
        resources = scored_resources(pod, self.resources)
        total = None
        for resource, weight in resources.items():
            part = (1.0 - fractions(table, pod, rows, resource)) * (100.0 * weight)
            total = part if total is None else total + part
        assert total is not None
        return total / sum(resources.values())

    def score_row(self, pod: PodInfo, table: NodeTable, row: int) -> float:
        """Scalar twin of :meth:`score` for one row."""
        resources = scored_resources(pod, self.resources)
        total = 0.0
        for resource, weight in resources.items():
            total += (1.0 - fraction_row(table, pod, row, resource)) * (100.0 * weight)
        return total / sum(resources.values())


def new(args: Mapping[str, Any], handle: Any) -> LeastAllocated:
    return LeastAllocated(parse_resources(args))
