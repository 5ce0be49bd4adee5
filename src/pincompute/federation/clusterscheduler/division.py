"""The arithmetic of replica division: proportional shares under caps, and moving little.

Theory of operation
-------------------
Every divider reduces to :func:`proportional`: hand ``total`` replicas out in
proportion to integer ``weights``, no position above its ``cap``.  Shares are
floored and the replicas left over go one each to the largest remainders, ties
to the better ``rank`` (the lower) — Hamilton's largest-remainder method, as
Karmada's dispenser does.  A position that would exceed its cap gets its cap
and leaves; the rest is shared again among the others (water-filling), so
the result is the proportional split *restricted to what fits*.  Weights 0 get
nothing; if the positive weights cannot hold ``total``, the result sums to less
and the caller says so.

* equal weights → :func:`balanced` (spread as evenly as the caps allow);
* weights = caps → dynamic division by available replicas;
* :func:`fill` hands out in rank order, each up to its cap (bin packing).

:func:`sticky` keeps a workload where it runs: from the ``current`` split, only
the difference to the ``ideal`` moves — a scale-up adds to the positions
furthest below their ideal share, a scale-down takes from those furthest
above, a replica on a position that is gone (cap 0) moves — so a re-decision
with nothing changed moves nothing, however the clusters' free room changed.
"""

from __future__ import annotations

import numpy as np

from .resources import MAX_REPLICAS


def proportional(total: int, weights: np.ndarray, caps: np.ndarray, rank: np.ndarray
                 ) -> np.ndarray:
    """``total`` split by ``weights`` under ``caps`` (see the module docstring)."""
    n = len(weights)
    alloc = np.zeros(n, dtype=np.int64)
    caps = np.minimum(caps.astype(np.int64), MAX_REPLICAS)
    w = np.minimum(np.where(caps > 0, weights, 0).astype(np.int64), MAX_REPLICAS)
    active = w > 0
    remaining = int(total)
    while remaining > 0 and active.any():
        wa = np.where(active, w, 0)
        wsum = int(wa.sum())
        share = (remaining * wa) // wsum
        room = caps - alloc
        full = active & (share >= room)
        if full.any():
            # These reach their cap: give it, take them out, share the rest again.
            alloc[full] += room[full]
            remaining -= int(room[full].sum())
            active &= ~full
            continue
        alloc += share
        left = remaining - int(share.sum())
        if left:
            rem = (remaining * wa) % wsum
            cand = np.flatnonzero(active)
            order = cand[np.lexsort((rank[cand], -rem[cand]))]
            alloc[order[:left]] += 1
        remaining = 0
    return alloc


def balanced(total: int, caps: np.ndarray, rank: np.ndarray) -> np.ndarray:
    """``total`` as evenly as the caps allow."""
    return proportional(total, np.ones(len(caps), dtype=np.int64), caps, rank)


def fill(total: int, caps: np.ndarray, rank: np.ndarray) -> np.ndarray:
    """``total`` in rank order, each position up to its cap."""
    alloc = np.zeros(len(caps), dtype=np.int64)
    remaining = int(total)
    for i in np.argsort(rank, kind="stable"):
        if remaining <= 0:
            break
        take = min(int(caps[i]), remaining)
        alloc[i] = take
        remaining -= take
    return alloc


def sticky(ideal: np.ndarray, current: np.ndarray, caps: np.ndarray, rank: np.ndarray
           ) -> np.ndarray:
    """Move from ``current`` toward ``ideal`` by as few replicas as the total allows."""
    kept = np.minimum(current, caps)
    delta = int(ideal.sum()) - int(kept.sum())
    if delta > 0:
        deficit = np.maximum(ideal - kept, 0)
        return kept + proportional(delta, deficit, deficit, rank)
    if delta < 0:
        surplus = np.maximum(kept - ideal, 0)
        # Take from the worst-ranked first when remainders tie.
        return kept - proportional(-delta, surplus, surplus, -rank)
    return kept


def skew(counts: np.ndarray) -> int:
    """The largest difference between two domains' replicas."""
    return int(counts.max() - counts.min()) if len(counts) else 0
