"""Locality: prefer the clusters where the workload already runs.

Scores 100 for a cluster holding replicas of the workload's last decision, 0
otherwise, so a re-decision chooses the same clusters when it must choose
(spread limits, one cluster for a job).  Enabling it also makes the scheduler
divide *stickily* (:func:`~..division.sticky`): only the change in replicas,
or replicas of clusters no longer feasible, move.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from pincompute.federation.clusterscheduler.interface import Context, Normalize

NAME = "Locality"


class Locality:
    name = NAME
    static = False
    normalize: Normalize = None

    def score(self, ctx: Context, pos: np.ndarray) -> np.ndarray:
        return np.where(ctx.current[pos] > 0, 100.0, 0.0)


def new(args: Mapping[str, Any]) -> Locality:
    return Locality()
