"""Aggregated: fill the best-scored cluster first and overflow to the next only when it is
full — the fewest clusters, the preferred ones first (with the bin-packing profile)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from pincompute.federation.clusterscheduler.division import fill
from pincompute.federation.clusterscheduler.interface import Context

NAME = "Aggregated"


class Aggregated:
    name = NAME

    def divide(self, ctx: Context, replicas: int, pos: np.ndarray, caps: np.ndarray,
               rank: np.ndarray) -> np.ndarray:
        return fill(replicas, caps, rank)


def new(args: Mapping[str, Any]) -> Aggregated:
    return Aggregated()
