"""DynamicWeight: replicas divided in proportion to the replicas each cluster can still
take (Karmada's dynamic weighting by available replicas)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from pincompute.federation.clusterscheduler.division import proportional
from pincompute.federation.clusterscheduler.interface import Context

NAME = "DynamicWeight"


class DynamicWeight:
    name = NAME

    def divide(self, ctx: Context, replicas: int, pos: np.ndarray, caps: np.ndarray,
               rank: np.ndarray) -> np.ndarray:
        return proportional(replicas, caps, caps, rank)


def new(args: Mapping[str, Any]) -> DynamicWeight:
    return DynamicWeight()
