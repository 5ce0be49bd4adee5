"""BalancedAllocation: prefer clusters whose cpu and memory stay equally used.

The score is ``100 x (1 - |used cpu fraction - used memory fraction|)`` after one
replica is placed, as kube-scheduler's NodeResourcesBalancedAllocation over two
resources; a cluster that does not report both scores 100.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from pincompute.federation.clusterscheduler.interface import Context, Normalize
from pincompute.federation.clusterscheduler.resources import CPU, MEMORY

from .allocation import free_fractions

NAME = "BalancedAllocation"


class BalancedAllocation:
    name = NAME
    static = False
    normalize: Normalize = None

    def score(self, ctx: Context, pos: np.ndarray) -> np.ndarray:
        frac, counted = free_fractions(ctx, pos)
        both = counted[:, CPU] & counted[:, MEMORY]
        return np.where(both, 100.0 * (1.0 - np.abs(frac[:, CPU] - frac[:, MEMORY])), 100.0)


def new(args: Mapping[str, Any]) -> BalancedAllocation:
    return BalancedAllocation()
