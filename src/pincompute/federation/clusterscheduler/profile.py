"""Profiles: which cluster scheduler plugins run, with which weights and arguments.

Theory of operation
-------------------
A :class:`Profile` is the cluster scheduler's configuration: the filters in
order (the first to reject a cluster is the reason recorded for it), the score
plugins with a weight each, the divider used for each replica scheduling mode
of a placement (``Duplicated``; ``Divided`` with ``Static`` or ``Dynamic``
weighting) and per-plugin arguments.

The default divides dynamically in proportion to each cluster's available
replicas and scores for spreading (least allocated, balanced).  The
*bin-packing* profile (:meth:`Profile.binpacking`) scores fuller and preferred
clusters higher and fills them first, overflowing to the next only when one is
full (the "fill preferred clusters first" that Karmada's users ask for,
karmada#7014)::

    ClusterScheduler(table, profile=Profile.binpacking())

With ``Locality`` enabled (the default) a workload keeps the replicas it
already has where they are, as far as its placement allows: only the change
in replicas, or the replicas of clusters no longer feasible, move.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

DEFAULT_FILTERS: tuple[str, ...] = (
    "APIEnablement",
    "ClusterHealthy",
    "ClusterAffinity",
    "TaintToleration",
    "TierPool",
    "Hardware",
    "ResourcesFit",
)

DEFAULT_SCORES: Mapping[str, float] = {
    "Locality": 3,
    "ClusterAffinity": 2,
    "TaintToleration": 1,
    "LeastAllocated": 1,
    "BalancedAllocation": 1,
    "ZoneSpread": 1,
    "Cost": 1,
}

DEFAULT_DIVIDERS: Mapping[str, str] = {
    "Duplicated": "Duplicated",
    "Static": "StaticWeight",
    "Dynamic": "DynamicWeight",
}


@dataclass(frozen=True, slots=True)
class Profile:
    filters: tuple[str, ...] = DEFAULT_FILTERS
    scores: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_SCORES))
    dividers: Mapping[str, str] = field(default_factory=lambda: dict(DEFAULT_DIVIDERS))
    args: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    @property
    def sticky(self) -> bool:
        """Keep replicas where they run (the Locality plugin is enabled)."""
        return "Locality" in self.scores

    def with_filters(self, *, enable: Iterable[str] = (), disable: Iterable[str] = ()
                     ) -> Profile:
        drop = set(disable)
        kept = [f for f in self.filters if f not in drop]
        kept += [f for f in enable if f not in kept]
        return replace(self, filters=tuple(kept))

    def with_scores(self, **weights: float) -> Profile:
        """A copy with these score weights; a weight of 0 disables the plugin."""
        merged = {**self.scores, **weights}
        return replace(self, scores={k: v for k, v in merged.items() if v})

    def with_dividers(self, **dividers: str) -> Profile:
        return replace(self, dividers={**self.dividers, **dividers})

    def with_args(self, plugin: str, **args: Any) -> Profile:
        merged = {k: dict(v) for k, v in self.args.items()}
        merged.setdefault(plugin, {}).update(args)
        return replace(self, args=merged)

    @classmethod
    def binpacking(cls) -> Profile:
        """Fill preferred and fuller clusters first (see the module docstring)."""
        return (cls().with_scores(LeastAllocated=0, BalancedAllocation=0, ZoneSpread=0,
                                  BinPacking=2, ClusterAffinity=3)
                .with_dividers(Dynamic="Aggregated"))
