"""The in-tree plugins, one module each, and the registry that names them.

Theory of operation
-------------------
Every module here holds one plugin and a ``new(args, handle)`` factory; the
registry below maps the plugin's name to that factory.  A profile enables
plugins by these names (:mod:`pincompute.scheduler.framework.profile`).

=====================  ===============================================================
plugin                 extension points
=====================  ===============================================================
PrioritySort           QueueSort
SchedulingGates        PreEnqueue
NodeUnschedulable      Filter
NodeName               Filter
TaintToleration        Filter, Score
NodeSelector           Filter
NodeAffinity           Filter, Score
NodeResourcesFit       Filter
PodTopologySpread      Filter, Score
InterPodAntiAffinity   Filter, Score
LeastAllocated         Score
MostAllocated          Score (bin packing; not in the default profile)
BalancedAllocation     Score
TierPriority           PreemptionPolicy
Gang                   PreFilter, PostFilter, Permit, Reserve/Unreserve
Preemption             PostFilter
DefaultBinder          Bind
=====================  ===============================================================
"""

from __future__ import annotations

from pincompute.scheduler.framework.registry import Registry

from . import (
    balancedallocation,
    defaultbinder,
    gang,
    interpodantiaffinity,
    leastallocated,
    mostallocated,
    nodeaffinity,
    nodename,
    noderesourcesfit,
    nodeselector,
    nodeunschedulable,
    podtopologyspread,
    preemption,
    prioritysort,
    schedulinggates,
    tainttoleration,
    tierpriority,
)

_MODULES = (prioritysort, schedulinggates, nodeunschedulable, nodename, tainttoleration,
            nodeselector, nodeaffinity, noderesourcesfit, podtopologyspread,
            interpodantiaffinity, leastallocated, mostallocated, balancedallocation,
            tierpriority, gang, preemption, defaultbinder)


def in_tree() -> Registry:
    """A registry of every in-tree plugin."""
    return Registry({m.NAME: m.new for m in _MODULES})


__all__ = ["in_tree"]
