"""Profiles: which plugins a scheduler runs, in which order, with which weights and arguments.

Theory of operation
-------------------
A :class:`Profile` is the scheduler's configuration, as a KubeSchedulerConfiguration
profile is: the ``scheduler_name`` it answers to (pods select it with
``spec.schedulerName``), the enabled plugins in order, a weight per score plugin
and per-plugin arguments.  A plugin takes part in every extension point it
implements; order matters for filters (the first failing filter is the one a
node is charged to in the unschedulable message) and for post-filters (gang
release runs before preemption).

:data:`DEFAULT_PLUGINS` is the default profile: everything in-tree except
``MostAllocated`` (bin packing), which replaces ``LeastAllocated`` through
:meth:`Profile.with_plugins` — e.g. for a batch or GPU pool::

    Profile().with_plugins(disable=["LeastAllocated"], enable=["MostAllocated"])
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from pincompute.scheduler.labels import DEFAULT_SCHEDULER_NAME

DEFAULT_PLUGINS: tuple[str, ...] = (
    "PrioritySort",
    "SchedulingGates",
    "NodeUnschedulable",
    "NodeName",
    "TaintToleration",
    "NodeSelector",
    "NodeAffinity",
    "NodeResourcesFit",
    "PodTopologySpread",
    "InterPodAntiAffinity",
    "LeastAllocated",
    "BalancedAllocation",
    "TierPriority",
    "Gang",
    "Preemption",
    "DefaultBinder",
)

DEFAULT_WEIGHTS: Mapping[str, float] = {
    "LeastAllocated": 1,
    "MostAllocated": 1,
    "BalancedAllocation": 1,
    "TaintToleration": 3,
    "NodeAffinity": 2,
    "PodTopologySpread": 2,
    "InterPodAntiAffinity": 2,
}


@dataclass(frozen=True, slots=True)
class Profile:
    scheduler_name: str = DEFAULT_SCHEDULER_NAME
    plugins: tuple[str, ...] = DEFAULT_PLUGINS
    weights: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_WEIGHTS))
    args: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    def weight(self, plugin: str) -> float:
        return float(self.weights.get(plugin, 1))

    def with_plugins(self, *, enable: Iterable[str] = (), disable: Iterable[str] = (),
                     after: str | None = None) -> Profile:
        """A copy with plugins disabled and others enabled (appended, or after ``after``)."""
        drop = set(disable)
        plugins = [p for p in self.plugins if p not in drop]
        add = [p for p in enable if p not in plugins]
        if after is not None and after in plugins:
            i = plugins.index(after) + 1
            plugins[i:i] = add
        else:
            # Score plugins and the like go before the post-filter/bind tail.
            tail = [p for p in plugins if p in ("TierPriority", "Gang", "Preemption",
                                                  "DefaultBinder")]
            head = [p for p in plugins if p not in tail]
            plugins = head + add + tail
        return replace(self, plugins=tuple(plugins))

    def with_args(self, plugin: str, **args: Any) -> Profile:
        merged = {k: dict(v) for k, v in self.args.items()}
        merged.setdefault(plugin, {}).update(args)
        return replace(self, args=merged)

    def with_weights(self, **weights: float) -> Profile:
        return replace(self, weights={**self.weights, **weights})
