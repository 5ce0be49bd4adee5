"""BalancedAllocation (Score): prefer nodes whose resources stay evenly used.

Theory of operation
-------------------
A node using 90 % of its cpu and 10 % of its memory strands memory nobody can
use.  With the pod placed, take each scored resource's used fraction; the score
is ``(1 - standard deviation of the fractions) * 100`` — 100 when all resources
are used equally (kube-scheduler's formula).  Node-local, like the other
allocation scores.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from pincompute.scheduler.framework.handle import FrameworkHandle
from pincompute.scheduler.framework.interface import ClassContext, Deps
from pincompute.scheduler.nodetable import NodeTable, Rows
from pincompute.scheduler.podinfo import PodInfo

from .allocation import fraction_row, fractions, parse_resources, scored_resources

NAME = "BalancedAllocation"


class BalancedAllocation:
    name = NAME
    normalized = False

    def __init__(self, resources: Mapping[str, float]) -> None:
        self.resources = dict(resources)

    def score_deps(self, pod: PodInfo, table: NodeTable) -> Deps:
        return Deps.NODE | Deps.LOCAL if len(scored_resources(pod, self.resources)) > 1 \
            else Deps.NONE

    def score(self, ctx: ClassContext, pod: PodInfo, table: NodeTable, rows: Rows) -> np.ndarray:
        fracs = [fractions(table, pod, rows, r) for r in scored_resources(pod, self.resources)]
        if len(fracs) == 2:
            # Two resources (the common case): the deviation is half the difference.
            std = np.abs(fracs[0] - fracs[1]) * 0.5
        else:
            std = np.std(np.vstack(fracs), axis=0)
        return (1.0 - std) * 100.0

    def score_row(self, pod: PodInfo, table: NodeTable, row: int) -> float:
        """Scalar twin of :meth:`score` for one row."""
        resources = scored_resources(pod, self.resources)
        if len(resources) == 2:
            first, second = resources
            std = abs(fraction_row(table, pod, row, first)
                      - fraction_row(table, pod, row, second)) * 0.5
        else:
            fracs = [fraction_row(table, pod, row, r) for r in resources]
            mean = sum(fracs) / len(fracs)
            std = math.sqrt(sum((f - mean) ** 2 for f in fracs) / len(fracs))
        return (1.0 - std) * 100.0


def new(args: Mapping[str, Any], handle: FrameworkHandle) -> BalancedAllocation:
    return BalancedAllocation(parse_resources(args))
