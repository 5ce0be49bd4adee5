"""LeastAllocated: prefer clusters with the most room left in the workload's tier.

The score is the mean, over the resources the workload requests (cpu and memory
at least), of the fraction of the tier's allocatable that stays free after one
replica is placed, times 100.  Resources a cluster does not report are left out.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from pincompute.federation.clusterscheduler.interface import Context, Normalize

from .allocation import free_fractions

NAME = "LeastAllocated"


class LeastAllocated:
    name = NAME
    static = False
    normalize: Normalize = None

    def score(self, ctx: Context, pos: np.ndarray) -> np.ndarray:
        frac, counted = free_fractions(ctx, pos)
        return 100.0 * np.where(counted, frac, 0).sum(axis=1) / np.maximum(counted.sum(axis=1),
                                                                              1)


def new(args: Mapping[str, Any]) -> LeastAllocated:
    return LeastAllocated()
