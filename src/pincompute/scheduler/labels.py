"""The names the scheduler reads on pods and nodes, and what tiers mean for priority.

Theory of operation
-------------------
The scheduler is driven entirely by fields and labels on API objects (DESIGN §2):
nothing tells it about workloads except the pods themselves.  This module is the
one place those names are spelled, so plugins, the member operators that create
pods and the tests agree on them.

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
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

DEFAULT_SCHEDULER_NAME: Final = "pincompute"
COMPONENT: Final = "pincompute-scheduler"

TIER_LABEL: Final = "pincompute.io/tier"
RESERVED: Final = "reserved"
ONDEMAND: Final = "ondemand"
PREEMPTIBLE: Final = "preemptible"
DEFAULT_TIER: Final = ONDEMAND
TIERS: Final = (RESERVED, ONDEMAND, PREEMPTIBLE)

# Wide gaps leave room for finer priorities inside a tier (spec.priority) without
# ever crossing into the next tier.
TIER_PRIORITY: Final[Mapping[str, int]] = {
    RESERVED: 1_000_000,
    ONDEMAND: 10_000,
    PREEMPTIBLE: 0,
}

POD_GROUP_LABEL: Final = "pincompute.io/pod-group"
POD_GROUP_MIN_MEMBER: Final = "pincompute.io/pod-group-min-member"
POD_GROUP_TIMEOUT: Final = "pincompute.io/pod-group-timeout-seconds"

ZONE_LABEL: Final = "topology.kubernetes.io/zone"
HOSTNAME_LABEL: Final = "kubernetes.io/hostname"

GPU_RESOURCE: Final = "nvidia.com/gpu"

# The taint a cordoned node implicitly carries (NodeUnschedulable honours a toleration of it).
UNSCHEDULABLE_TAINT: Final = "node.kubernetes.io/unschedulable"

# Pod condition and event vocabulary, as kube-scheduler writes them.
POD_SCHEDULED: Final = "PodScheduled"
REASON_UNSCHEDULABLE: Final = "Unschedulable"
REASON_SCHEDULER_ERROR: Final = "SchedulerError"
DISRUPTION_TARGET: Final = "DisruptionTarget"
REASON_PREEMPTED: Final = "PreemptionByScheduler"


def tier_of(labels: Mapping[str, str] | None) -> str:
    """The pod's tier (unknown values count as the default tier)."""
    tier = (labels or {}).get(TIER_LABEL, DEFAULT_TIER)
    return tier if tier in TIER_PRIORITY else DEFAULT_TIER


def tier_rank(tier: str) -> int:
    """0 for the tier preempted first (preemptible), increasing towards reserved."""
    return {PREEMPTIBLE: 0, ONDEMAND: 1, RESERVED: 2}.get(tier, 1)
