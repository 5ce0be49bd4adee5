"""Shared arithmetic of the allocation scores (LeastAllocated, BalancedAllocation,
BinPacking): the free fraction of each resource after one more replica."""

from __future__ import annotations

import numpy as np

from pincompute.federation.clusterscheduler.interface import Context
from pincompute.federation.clusterscheduler.resources import CPU, MEMORY, UNLIMITED


def free_fractions(ctx: Context, pos: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(fraction free after one replica, counted)`` per position and resource; a resource
    counts when the cluster reports it and the workload asks for it (cpu and memory
    always).  Computed once per decision for the positions scored."""
    got = ctx.data.get("fractions")
    if got is not None and got[0] is pos:
        return got[1], got[2]
    cap = ctx.table.capacity(ctx.request.tier_index, ctx.rows[pos]).astype(np.float64)
    per = ctx.request.per_replica
    free = ctx.free(pos) - per
    asked = per > 0
    asked[CPU] = asked[MEMORY] = True
    counted = (cap > 0) & (cap < UNLIMITED) & asked
    frac = np.clip(free / np.where(counted, cap, 1.0), 0.0, 1.0)
    ctx.data["fractions"] = (pos, frac, counted)
    return frac, counted
