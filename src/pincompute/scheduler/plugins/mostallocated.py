"""MostAllocated (Score): prefer the fullest nodes that still fit — bin packing.

Theory of operation
-------------------
The mirror of LeastAllocated: per resource ``requested_after * 100 /
allocatable`` (clipped at 100), averaged with the resource weights.  Packing
pods onto fewer nodes leaves whole nodes idle for large pods and lets node pools
scale in — what batch, GPU and preemptible pools want.  Enable it instead of
LeastAllocated in a profile (:meth:`~pincompute.scheduler.framework.profile.Profile.with_plugins`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from ..framework.interface import ClassContext, Deps
from ..nodetable import NodeTable, Rows
from ..podinfo import PodInfo
from .allocation import fraction_row, fractions, parse_resources, scored_resources

NAME = "MostAllocated"


class MostAllocated:
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
            part = fractions(table, pod, rows, resource) * (100.0 * weight)
            total = part if total is None else total + part
        assert total is not None
        return total / sum(resources.values())

    def score_row(self, pod: PodInfo, table: NodeTable, row: int) -> float:
        """Scalar twin of :meth:`score` for one row."""
        resources = scored_resources(pod, self.resources)
        total = 0.0
        for resource, weight in resources.items():
            total += fraction_row(table, pod, row, resource) * (100.0 * weight)
        return total / sum(resources.values())


def new(args: Mapping[str, Any], handle: Any) -> MostAllocated:
    return MostAllocated(parse_resources(args))
