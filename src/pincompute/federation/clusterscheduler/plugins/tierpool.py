"""TierPool: the cluster has a pool for the workload's tier.

Read from the MemberCluster's per-tier resource summary (``status.tiers``): a
``reserved`` or ``ondemand`` workload needs a pool of its tier; a
``preemptible`` one runs on whatever capacity the others leave idle, so any
pool will do.  A cluster without a per-tier summary (*pooled*) passes: its
cluster-wide figures stand for every tier.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from pincompute.federation.clusterscheduler.clustertable import PREEMPTIBLE
from pincompute.federation.clusterscheduler.interface import Context, Normalize

NAME = "TierPool"


class TierPool:
    name = NAME
    static = False
    normalize: Normalize = None

    def filter(self, ctx: Context, pos: np.ndarray) -> np.ndarray:
        rows = ctx.rows[pos]
        t = ctx.table
        tier = ctx.request.tier_index
        has = t.has_pool[rows].any(axis=1) if tier == PREEMPTIBLE else t.has_pool[rows, tier]
        return has | t.pooled[rows]

    def explain(self, ctx: Context, pos: np.ndarray) -> list[str]:
        if ctx.request.tier_index == PREEMPTIBLE:
            return ["the cluster reports no node pool" for _ in pos]
        return [f"no node pool for tier {ctx.request.tier}" for _ in pos]


def new(args: Mapping[str, Any]) -> TierPool:
    return TierPool()
