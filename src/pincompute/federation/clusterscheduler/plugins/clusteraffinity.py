"""ClusterAffinity: the placement's zones, cluster selector and cluster names (filter), and
its weighted preferences (score).

A cluster passes when its zone is one of ``placement.zones`` (if given), its
labels (with the implied zone, region and cluster-name labels) match
``clusterSelector``, it is named in ``clusterAffinity.clusterNames`` (if given)
and not in ``exclude``.  The score adds the weight of every
``clusterAffinity.preferred`` term whose selector matches.  Both depend on the
spec side only (cached by the scheduler).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from pincompute.federation.clusterscheduler.interface import Context, Normalize
from pincompute.kube.selectors import selector_from_dict

NAME = "ClusterAffinity"


def _rule(ctx: Context, pos: int) -> str:
    """Why the cluster at ``pos`` fails the placement, or ""."""
    p = ctx.request.placement
    f = ctx.facts(pos)
    zones = p.get("zones")
    if zones and f.zone not in zones:
        return f"zone {f.zone} is not one of the placement's zones ({', '.join(zones)})"
    affinity: Mapping[str, Any] = p.get("clusterAffinity") or {}
    names = affinity.get("clusterNames")
    if names and f.name not in names:
        return "not named in clusterAffinity.clusterNames"
    if f.name in (affinity.get("exclude") or ()):
        return "excluded by clusterAffinity.exclude"
    selector = p.get("clusterSelector")
    if selector and not selector_from_dict(selector).matches(f.labels):
        return "labels do not match the placement's clusterSelector"
    return ""


class ClusterAffinity:
    name = NAME
    static = True
    normalize: Normalize = "max"

    def filter(self, ctx: Context, pos: np.ndarray) -> np.ndarray:
        p = ctx.request.placement
        if not (p.get("zones") or p.get("clusterSelector") or p.get("clusterAffinity")):
            return np.ones(len(pos), dtype=bool)
        return np.array([not _rule(ctx, int(i)) for i in pos], dtype=bool)

    def explain(self, ctx: Context, pos: np.ndarray) -> list[str]:
        return [_rule(ctx, int(i)) for i in pos]

    def score(self, ctx: Context, pos: np.ndarray) -> np.ndarray:
        preferred = (ctx.request.placement.get("clusterAffinity") or {}).get("preferred")
        out = np.zeros(len(pos), dtype=np.float64)
        for term in preferred or ():
            selector = selector_from_dict(term.get("selector"))
            out += np.array([selector.matches(ctx.facts(int(i)).labels) for i in pos],
                            dtype=np.float64) * float(term.get("weight", 1))
        return out


def new(args: Mapping[str, Any]) -> ClusterAffinity:
    return ClusterAffinity()
