"""Cost: prefer cheaper clusters (``spec.costWeight``, absent: 1); among the feasible
clusters the cheapest scores 100, the dearest 0, the others in between."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from pincompute.federation.clusterscheduler.interface import Context, Normalize

NAME = "Cost"


class Cost:
    name = NAME
    static = False
    normalize: Normalize = "reverse"

    def score(self, ctx: Context, pos: np.ndarray) -> np.ndarray:
        return ctx.table.cost[ctx.rows[pos]]


def new(args: Mapping[str, Any]) -> Cost:
    return Cost()
