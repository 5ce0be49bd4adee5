"""A member cluster's resource summary, kept as running totals by informer handlers.

Theory of operation
-------------------
The health controller reports, per member cluster and per tier, what the
cluster scheduler reads (``status.tiers`` of the MemberCluster, see
:class:`~pincompute.model.platform.TierCapacity`): the allocatable capacity of
the tier's ready, schedulable nodes, what pods bound to them request
(``allocated``), what pods not yet bound request (``allocating``: placed by the
federation, not yet by the member's pod scheduler), and the largest node.

Summing every pod at each status write would be O(pods) per write; instead
:class:`ClusterSummary` remembers each node's and pod's contribution and moves
the totals by the difference at each informer event — O(1) per event.  The
largest node is the maximum over the distinct node shapes of a tier (a fleet
has a handful), counted in a multiset.

A node's tier is its ``pincompute.io/tier`` label.  A cluster none of whose
nodes carries it (a plain Kubernetes cluster) has no per-tier summary: its
cluster-wide figures stand for every tier.  A pod counts against the tier of
the node it is bound to, and while unbound against its own tier label (default
``ondemand``).  Pods that have finished count for nothing.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pincompute.kube import objects
from pincompute.kube.wellknown import GPU_RESOURCE
from pincompute.model.wellknown import DEFAULT_TIER, TIER_LABEL, TIERS

from .admission.demand import ZERO, DemandError, Vector, add, amount, figures, pod_demand, sub

EMPTY: Mapping[str, Any] = {}
_TERMINAL = ("Succeeded", "Failed")


@dataclass(frozen=True, slots=True)
class _Node:
    tier: str | None
    labelled: bool
    ready: bool
    counted: Vector
    """Allocatable counted in the totals (nothing for a node not ready or cordoned)."""


@dataclass(frozen=True, slots=True)
class _Pod:
    tier: str
    bound: bool
    counted: Vector


@dataclass(slots=True)
class ClusterSummary:
    """Running totals of one member's nodes and pods (see the module docstring)."""

    nodes: dict[str, _Node] = field(default_factory=dict)
    pods: dict[str, _Pod] = field(default_factory=dict)
    ready: int = 0
    labelled: int = 0
    allocatable: dict[str, Vector] = field(default_factory=lambda: dict.fromkeys(TIERS, ZERO))
    allocated: dict[str, Vector] = field(default_factory=lambda: dict.fromkeys(TIERS, ZERO))
    allocating: dict[str, Vector] = field(default_factory=lambda: dict.fromkeys(TIERS, ZERO))
    shapes: dict[str, Counter[Vector]] = field(
        default_factory=lambda: {t: Counter() for t in TIERS})
    pools: Counter[str] = field(default_factory=Counter)
    """Nodes per tier (a tier with none has no pool here)."""

    # -- nodes --

    def node(self, node: Mapping[str, Any]) -> None:
        name = objects.name_of(node)
        self._drop_node(name)
        labels = objects.meta(node).get("labels") or EMPTY
        tier_label = labels.get(TIER_LABEL)
        tier = tier_label if tier_label in TIERS else DEFAULT_TIER
        ready = _ready(node)
        try:
            alloc = _allocatable((node.get("status") or EMPTY).get("allocatable") or EMPTY)
        except DemandError:
            alloc = ZERO
        counted = alloc if ready and not (node.get("spec") or EMPTY).get("unschedulable") \
            else ZERO
        row = _Node(tier, tier_label is not None, ready, counted)
        self.nodes[name] = row
        self.ready += ready
        self.labelled += row.labelled
        self.pools[tier] += 1
        self.allocatable[tier] = add(self.allocatable[tier], counted)
        if counted != ZERO:
            self.shapes[tier][counted] += 1

    def node_gone(self, node: Mapping[str, Any]) -> None:
        self._drop_node(objects.name_of(node))

    def _drop_node(self, name: str) -> None:
        row = self.nodes.pop(name, None)
        if row is None or row.tier is None:
            return
        self.ready -= row.ready
        self.labelled -= row.labelled
        self.pools[row.tier] -= 1
        self.allocatable[row.tier] = sub(self.allocatable[row.tier], row.counted)
        if row.counted != ZERO:
            shapes = self.shapes[row.tier]
            shapes[row.counted] -= 1
            if shapes[row.counted] <= 0:
                del shapes[row.counted]

    # -- pods --

    def pod(self, pod: Mapping[str, Any]) -> None:
        key = objects.key_of(pod)
        self._drop_pod(key)
        status = pod.get("status") or EMPTY
        if status.get("phase") in _TERMINAL:
            return
        spec = pod.get("spec") or EMPTY
        try:
            req = pod_demand(spec)
        except DemandError:
            return
        node_name = spec.get("nodeName")
        node = self.nodes.get(node_name) if node_name else None
        labels = objects.meta(pod).get("labels") or EMPTY
        tier = node.tier if node is not None and node.tier else labels.get(TIER_LABEL)
        if tier not in TIERS:
            tier = DEFAULT_TIER
        row = _Pod(tier, bool(node_name), req)
        self.pods[key] = row
        totals = self.allocated if row.bound else self.allocating
        totals[tier] = add(totals[tier], req)

    def pod_gone(self, pod: Mapping[str, Any]) -> None:
        self._drop_pod(objects.key_of(pod))

    def _drop_pod(self, key: str) -> None:
        row = self.pods.pop(key, None)
        if row is None:
            return
        totals = self.allocated if row.bound else self.allocating
        totals[row.tier] = sub(totals[row.tier], row.counted)

    # -- the figures --

    def status(self) -> dict[str, Any]:
        """The MemberCluster status fields of the summary."""
        total = {name: ZERO for name in ("allocatable", "allocated", "allocating")}
        tiers: dict[str, Any] = {}
        for t in TIERS:
            total["allocatable"] = add(total["allocatable"], self.allocatable[t])
            total["allocated"] = add(total["allocated"], self.allocated[t])
            total["allocating"] = add(total["allocating"], self.allocating[t])
            if self.pools[t] > 0:
                largest = ZERO
                for shape in self.shapes[t]:
                    largest = _vmax(largest, shape)
                tiers[t] = {"allocatable": figures(self.allocatable[t]),
                            "allocated": figures(self.allocated[t]),
                            "allocating": figures(self.allocating[t]),
                            "largestNode": figures(largest)}
        out: dict[str, Any] = {
            "nodes": {"total": len(self.nodes), "ready": self.ready},
            "allocatable": figures(total["allocatable"]),
            "allocated": figures(total["allocated"]),
            "allocating": figures(total["allocating"]),
            "available": figures(sub(total["allocatable"], total["allocated"])),
            # Per tier only where the nodes say their tier (see the module docstring).
            "tiers": tiers if self.labelled > 0 else None,
        }
        return out

    @property
    def ready_ratio(self) -> float | None:
        return self.ready / len(self.nodes) if self.nodes else None


def _vmax(a: Vector, b: Vector) -> Vector:
    return max(a[0], b[0]), max(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3])


def _ready(node: Mapping[str, Any]) -> bool:
    for cond in (node.get("status") or EMPTY).get("conditions") or ():
        if cond.get("type") == "Ready":
            return bool(cond.get("status") == "True")
    return False


def _allocatable(res: Mapping[str, Any]) -> Vector:
    def get(dim: int, name: str) -> int:
        value = res.get(name)
        return amount(dim, value, f"status.allocatable.{name}") if value is not None else 0

    return get(0, "cpu"), get(1, "memory"), get(2, GPU_RESOURCE), get(3, "pods")


__all__ = ["ClusterSummary"]
