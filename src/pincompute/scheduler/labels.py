"""The names the scheduler reads on pods and nodes, and what tiers mean for priority.

Theory of operation
-------------------
The scheduler is driven entirely by fields and labels on API objects (DESIGN §2):
nothing tells it about workloads except the pods themselves.  This module
gathers the names it reads, so plugins and the tests agree on them.

* **Tier** — label ``pincompute.io/tier`` (``reserved`` | ``ondemand`` |
  ``preemptible``; ``ondemand`` when absent, as the workload default in DESIGN §4).
  A pod's *priority* is ``spec.priority`` when set (what a priority admission step
  or a member operator writes) and otherwise derived from its tier through
  :data:`TIER_PRIORITY`.  Priority orders the queue and decides who may preempt
  whom; the tier additionally guards preemption (see the TierPriority plugin).
* **Pod group (gang)** — label ``pincompute.io/pod-group`` names the group
  (a label, so operators and users can select the group's pods); annotation
  ``pincompute.io/pod-group-min-member`` is the number of members that must be
  placeable together (an annotation, because it is a parameter rather than an
  identity; a label of the same name is accepted too).  Optional annotation
  ``pincompute.io/pod-group-timeout-seconds`` overrides how long reserved members
  wait for the rest.  Groups are namespaced: ``ns/group``.
* **Well-known topology labels** — ``topology.kubernetes.io/zone`` and
  ``kubernetes.io/hostname``, as Kubernetes spells them.

The names are spelled in :mod:`pincompute.kube.wellknown` (Kubernetes') and
:mod:`pincompute.model.wellknown` (PinCompute's), which the operators creating
pods read too; this module re-exports them under the scheduler's short names.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from pincompute.kube.wellknown import (
    DISRUPTION_TARGET,
    GPU_RESOURCE,
    HOSTNAME_LABEL,
    POD_SCHEDULED,
    REASON_PREEMPTED,
    REASON_SCHEDULER_ERROR,
    REASON_UNSCHEDULABLE,
    UNSCHEDULABLE_TAINT,
    ZONE_LABEL,
)
from pincompute.model.wellknown import (
    DEFAULT_TIER,
    ONDEMAND,
    POD_GROUP_LABEL,
    PREEMPTIBLE,
    RESERVED,
    TIER_LABEL,
    TIERS,
)
from pincompute.model.wellknown import POD_GROUP_MIN_MEMBER_ANNOTATION as POD_GROUP_MIN_MEMBER
from pincompute.model.wellknown import POD_GROUP_TIMEOUT_ANNOTATION as POD_GROUP_TIMEOUT
from pincompute.model.wellknown import SCHEDULER_NAME as DEFAULT_SCHEDULER_NAME

COMPONENT: Final = "pincompute-scheduler"

# Wide gaps leave room for finer priorities inside a tier (spec.priority) without
# ever crossing into the next tier.
TIER_PRIORITY: Final[Mapping[str, int]] = {
    RESERVED: 1_000_000,
    ONDEMAND: 10_000,
    PREEMPTIBLE: 0,
}


def tier_of(labels: Mapping[str, str] | None) -> str:
    """The pod's tier (unknown values count as the default tier)."""
    tier = (labels or {}).get(TIER_LABEL, DEFAULT_TIER)
    return tier if tier in TIER_PRIORITY else DEFAULT_TIER


def tier_rank(tier: str) -> int:
    """0 for the tier preempted first (preemptible), increasing towards reserved."""
    return {PREEMPTIBLE: 0, ONDEMAND: 1, RESERVED: 2}.get(tier, 1)


__all__ = [
    "COMPONENT", "DEFAULT_SCHEDULER_NAME", "DEFAULT_TIER", "DISRUPTION_TARGET", "GPU_RESOURCE",
    "HOSTNAME_LABEL", "ONDEMAND", "POD_GROUP_LABEL", "POD_GROUP_MIN_MEMBER",
    "POD_GROUP_TIMEOUT", "POD_SCHEDULED", "PREEMPTIBLE", "REASON_PREEMPTED",
    "REASON_SCHEDULER_ERROR", "REASON_UNSCHEDULABLE", "RESERVED", "TIERS", "TIER_LABEL",
    "TIER_PRIORITY", "UNSCHEDULABLE_TAINT", "ZONE_LABEL", "tier_of", "tier_rank",
]
