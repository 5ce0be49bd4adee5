"""ZoneSpread: prefer clusters in the zones where the workload has the fewest replicas.

The raw score of a cluster is the workload's current replicas in the cluster's
zone (its last decision), reversed: the emptiest zone scores 100.  It steers
the choice of clusters (a job's one cluster, a limited number of clusters,
the bin-packing fill order) toward zones the workload does not use yet; the
hard rules are the placement's spread constraints, which the scheduler applies
when it divides.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from pincompute.federation.clusterscheduler.interface import Context, Normalize

NAME = "ZoneSpread"


class ZoneSpread:
    name = NAME
    static = False
    normalize: Normalize = "reverse"

    def score(self, ctx: Context, pos: np.ndarray) -> np.ndarray:
        if not ctx.current.any():
            return np.zeros(len(pos), dtype=np.float64)
        zones = ctx.table.zone_id[ctx.rows]
        per_zone = np.bincount(zones, weights=ctx.current, minlength=len(ctx.table.zones))
        return per_zone[zones[pos]].astype(np.float64)


def new(args: Mapping[str, Any]) -> ZoneSpread:
    return ZoneSpread()
