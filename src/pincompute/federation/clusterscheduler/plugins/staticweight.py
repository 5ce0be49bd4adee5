"""StaticWeight: replicas divided by the placement's ``staticWeights``.

Each entry gives ``weight`` parts to the clusters it names or selects (a cluster
matching several entries takes the largest); clusters matching none get
nothing — unless no feasible cluster matches any entry, when all share equally,
as in Karmada.  Shares are capped by the replicas that fit and the excess goes
to the others by weight (:func:`~..division.proportional`).  Not sticky: the
split always follows the weights as they are now.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from pincompute.federation.clusterscheduler.division import proportional
from pincompute.federation.clusterscheduler.interface import Context
from pincompute.kube.selectors import selector_from_dict

NAME = "StaticWeight"


def weights(ctx: Context, pos: np.ndarray) -> np.ndarray:
    entries = (ctx.request.replica_scheduling.get("staticWeights") or ())
    out = np.zeros(len(pos), dtype=np.int64)
    for entry in entries:
        names = set(entry.get("clusterNames") or ())
        selector = entry.get("selector")
        parsed = selector_from_dict(selector) if selector is not None else None
        w = int(entry.get("weight", 1))
        for k, i in enumerate(pos):
            f = ctx.facts(int(i))
            if f.name in names or (parsed is not None and parsed.matches(f.labels)):
                out[k] = max(out[k], w)
    if not out.any():
        out[:] = 1
    return out


class StaticWeight:
    name = NAME
    sticky = False  # changed weights must move replicas; only infeasible clusters' do anyway

    def divide(self, ctx: Context, replicas: int, pos: np.ndarray, caps: np.ndarray,
               rank: np.ndarray) -> np.ndarray:
        return proportional(replicas, weights(ctx, pos), caps, rank)


def new(args: Mapping[str, Any]) -> StaticWeight:
    return StaticWeight()
