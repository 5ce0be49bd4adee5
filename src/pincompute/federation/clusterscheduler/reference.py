"""The cluster-by-cluster baseline: the same plugins, one cluster at a time, nothing cached.

Theory of operation
-------------------
This is what a straightforward port of Karmada's scheduler loop does: for every
decision parse the workload's request afresh, then for every cluster run the
filters in order until one fails, score each feasible cluster plugin by plugin,
and divide.  :class:`ReferenceScheduler` is :class:`~.scheduler.ClusterScheduler`
with those three things undone — no request cache, no static filter or score
cache, and every plugin called on a one-cluster position array with the
cluster's free room computed for that cluster alone — so
``benchmarks/federation.py`` measures what vectorization and caching buy, and
tests hold the two to the same decisions.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from .interface import Context, FilterPlugin
from .resources import fits_replicas
from .scheduler import ClusterScheduler, normalized
from .workload import Request, parse_request


class _ScalarContext(Context):
    """Free room and fitting replicas computed for the positions asked, every time."""

    def free(self, pos: Any) -> np.ndarray:
        return self.table.free(self.request.tier_index, self.rows[pos]) + self.own[pos]

    def caps(self, pos: Any) -> np.ndarray:
        return fits_replicas(self.free(pos), self.unit)


class ReferenceScheduler(ClusterScheduler):
    """The same decisions, cluster by cluster (see the module docstring)."""

    vectorized = False

    def _request(self, obj: Mapping[str, Any]) -> Request:
        return parse_request(obj)

    def _context(self, obj: Mapping[str, Any], request: Request, uid: str) -> Context:
        ctx = super()._context(obj, request, uid)
        return _ScalarContext(ctx.table, ctx.request, ctx.uid, ctx.rows, ctx.current, ctx.own)

    def _filter(self, f: FilterPlugin, ctx: Context) -> np.ndarray:
        return np.array([bool(f.filter(ctx, np.array([p]))[0]) for p in range(len(ctx.rows))],
                        dtype=bool)

    def _explain(self, f: FilterPlugin, ctx: Context, pos: np.ndarray) -> list[str]:
        return [f.explain(ctx, np.array([p]))[0] for p in pos.tolist()]

    def _score(self, ctx: Context, feasible: np.ndarray) -> np.ndarray:
        total = np.zeros(len(feasible), dtype=np.float64)
        for plugin, weight in self.scores:
            raw = np.array([float(plugin.score(ctx, np.array([p]))[0])
                            for p in feasible.tolist()], dtype=np.float64)
            total += weight * normalized(raw, plugin.normalize)
        return total
