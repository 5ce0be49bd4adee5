"""ResourcesFit: the cluster has room for the workload in its tier.

The estimate is Karmada's general estimator over our figures: the replicas that
fit are ``(allocatable - allocated - allocating - reserved) // request`` in the
tightest dimension (cpu, memory, GPUs, pods — a replica is one pod), for the
workload's tier (:meth:`~..clustertable.ClusterTable.free`), counting as free
the room the workload itself already holds there.  A cluster must fit:

* ``Divided``: at least one replica (the divider gives it no more than fit);
* ``Duplicated``: all the replicas;
* ``Whole`` (jobs, pods, gangs): the whole workload at once (a training job's
  roles summed).

And one replica must fit the tier's largest node, when the cluster reports it
(a 16-core pod fits nowhere in a pool of 8-core nodes, whatever the total).
PinDaemons carry no replica count and are not checked.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from pincompute.federation.clusterscheduler.interface import Context, Normalize
from pincompute.federation.clusterscheduler.resources import DIMS, describe

NAME = "ResourcesFit"


def _need(ctx: Context) -> int:
    r = ctx.request
    if not r.counted or r.replicas == 0:
        return 0
    return r.replicas if r.mode == "Duplicated" else 1


class ResourcesFit:
    name = NAME
    static = False
    normalize: Normalize = None

    def filter(self, ctx: Context, pos: np.ndarray) -> np.ndarray:
        need = _need(ctx)
        if need == 0:
            return np.ones(len(pos), dtype=bool)
        ok = ctx.caps(pos) >= need
        largest = ctx.table.largest_node(ctx.request.tier_index, ctx.rows[pos])
        per = ctx.request.per_replica
        ok &= ((largest == 0) | (largest >= per)).all(axis=1)
        return ok

    def explain(self, ctx: Context, pos: np.ndarray) -> list[str]:
        r = ctx.request
        need = _need(ctx)
        unit = ctx.unit
        free = ctx.free(pos)
        caps = ctx.caps(pos)
        largest = ctx.table.largest_node(r.tier_index, ctx.rows[pos])
        out = []
        for k in range(len(pos)):
            too_big = [DIMS[d] for d in range(len(DIMS))
                       if 0 < largest[k, d] < r.per_replica[d]]
            if too_big:
                out.append(f"a replica ({describe(r.per_replica)}) is larger than the largest "
                           f"node of tier {r.tier} ({', '.join(too_big)})")
                continue
            short = [DIMS[d] for d in range(len(DIMS)) if free[k, d] < unit[d] * need]
            what = "the whole workload" if r.mode == "Whole" else (
                f"{need} replica{'s' if need > 1 else ''}")
            out.append(f"insufficient {', '.join(short) or 'room'} in tier {r.tier} for "
                       f"{what} ({int(caps[k])} fit)")
        return out


def new(args: Mapping[str, Any]) -> ResourcesFit:
    return ResourcesFit()
