"""Tiers and placement: where a workload may run, and how its replicas spread.

Theory
------
Every user workload says *which capacity* it uses (``spec.tier``) and *where* it
may go (``spec.placement``); the federation's cluster scheduler reads the
second, admission and the pod scheduler the first (DESIGN §5-7).

- **Tier**: ``reserved`` (dedicated pool and queue, never preempted by lower
  tiers), ``ondemand`` (shared, first come first served; the default) or
  ``preemptible`` (idle capacity, reclaimed when needed).
- **Filters** (a cluster must pass all): ``zones`` (the cluster's zone is one of
  them), ``clusterSelector`` (a label selector over MemberCluster labels, which
  always include ``topology.kubernetes.io/zone``, ``topology.kubernetes.io/region``
  and ``pincompute.io/cluster``), ``clusterAffinity.clusterNames`` /
  ``exclude``, ``hardware`` (hardware names the cluster must list), and
  ``tolerations`` for the cluster's taints.  Tolerations are also copied onto the
  pods, where they tolerate node (pool) taints.
- **Preferences**: ``clusterAffinity.preferred`` adds a weighted score to
  clusters its selector matches.
- **Spread**: constraints per topology (``zone``, ``region``, ``cluster``,
  ``node``) bounding the replica skew between domains and, for zone/region/
  cluster, how many domains are used (``minGroups``/``maxGroups``).  Without a
  zone constraint replicas are still balanced over zones by the scheduler's
  scoring; ``whenUnsatisfiable: DoNotSchedule`` makes the bound hard.
- **Replica scheduling**: ``Divided`` (the default: replicas are split among
  chosen clusters, by their available capacity - ``Dynamic`` - or by
  ``staticWeights``) or ``Duplicated`` (every chosen cluster runs all replicas).

An empty placement means: any healthy cluster of the region, divided dynamically
and balanced over zones.  The status side (``PlacementDecision`` and
``ClusterStatus``) is what the federation records: which clusters got how many
replicas, and how each shard is doing.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from pincompute.kube.names import qualified_name

from .base import (
    CamelModel,
    DNSSubdomain,
    LabelSelector,
    LabelValue,
    NonEmptyStr,
    PosInt,
    QualifiedName,
    SignedQuantity,
    StatusModel,
    fail,
)
from .wellknown import DEFAULT_TIER, TIERS, Tier

TaintEffect = Literal["NoSchedule", "PreferNoSchedule", "NoExecute"]


class Taint(CamelModel):
    """A taint on a cluster or node: only workloads tolerating it are placed there."""

    key: QualifiedName
    """The taint key."""
    effect: TaintEffect
    """``NoSchedule``, ``PreferNoSchedule`` or ``NoExecute`` (also evicts)."""
    value: str | None = None
    """The taint value."""


class Toleration(CamelModel):
    """Tolerates taints matching key/value/effect (an empty key with Exists tolerates all)."""

    key: str | None = None
    """The taint key to match; empty matches every key (operator must be Exists)."""
    operator: Literal["Equal", "Exists"] = "Equal"
    """``Equal`` compares the value; ``Exists`` matches any value."""
    value: str | None = None
    """The value to compare with (Equal only)."""
    effect: TaintEffect | None = None
    """The effect to match; empty matches every effect."""
    toleration_seconds: int | None = None
    """For NoExecute: how long the workload stays after the taint appears."""

    @model_validator(mode="after")
    def _check(self) -> Toleration:
        if self.key:
            errors = qualified_name(self.key)
            if errors:
                raise fail(f"Invalid value: {self.key!r}: {errors[0]}", "key")
        elif self.operator != "Exists":
            raise fail('Invalid value: "Equal": operator must be Exists when `key` is empty',
                       "operator")
        if self.operator == "Exists" and self.value:
            raise fail("value must be empty when `operator` is 'Exists'", "value",
                       reason="FieldValueForbidden")
        if self.toleration_seconds is not None and self.effect != "NoExecute":
            raise fail("may only be set when effect is NoExecute", "tolerationSeconds",
                       reason="FieldValueForbidden")
        return self


class ClusterPreference(CamelModel):
    """A soft preference: clusters matching ``selector`` score ``weight`` more."""

    weight: int = Field(ge=1, le=100)
    """The preference's weight, 1-100."""
    selector: LabelSelector
    """The clusters preferred."""


class ClusterAffinity(CamelModel):
    """Clusters by name (required), excluded, or preferred by label."""

    cluster_names: list[DNSSubdomain] | None = None
    """Only these clusters (when set)."""
    exclude: list[DNSSubdomain] | None = None
    """Never these clusters."""
    preferred: list[ClusterPreference] | None = None
    """Weighted preferences among the clusters that pass the filters."""


class SpreadConstraint(CamelModel):
    """How replicas spread over a topology's domains."""

    topology: Literal["zone", "region", "cluster", "node"]
    """The domain: a zone, a region, a member cluster, or a node."""
    max_skew: PosInt = 1
    """The largest allowed difference in replicas between two domains."""
    min_groups: PosInt | None = None
    """Use at least this many domains (not for ``node``)."""
    max_groups: PosInt | None = None
    """Use at most this many domains (not for ``node``)."""
    when_unsatisfiable: Literal["ScheduleAnyway", "DoNotSchedule"] = "ScheduleAnyway"
    """Whether the constraint is a preference or a hard rule."""

    @model_validator(mode="after")
    def _check(self) -> SpreadConstraint:
        if self.topology == "node" and (self.min_groups or self.max_groups):
            field = "minGroups" if self.min_groups else "maxGroups"
            raise fail("may not be set for topology node", field, reason="FieldValueForbidden")
        if self.min_groups and self.max_groups and self.max_groups < self.min_groups:
            raise fail(f"Invalid value: {self.max_groups}: must be greater than or equal to "
                       f"minGroups ({self.min_groups})", "maxGroups")
        return self


class StaticClusterWeight(CamelModel):
    """A static share: clusters named or selected get ``weight`` parts of the replicas."""

    weight: PosInt
    """The clusters' share, relative to the other entries."""
    cluster_names: list[DNSSubdomain] | None = None
    """The clusters, by name."""
    selector: LabelSelector | None = None
    """The clusters, by labels."""

    @model_validator(mode="after")
    def _check(self) -> StaticClusterWeight:
        if not self.cluster_names and self.selector is None:
            raise fail("must name clusters (clusterNames) or select them (selector)",
                       reason="FieldValueRequired")
        return self


class ReplicaScheduling(CamelModel):
    """How replicas are divided among the chosen clusters."""

    type: Literal["Divided", "Duplicated"] = "Divided"
    """``Divided``: the replicas are split; ``Duplicated``: each cluster runs all of them."""
    weighting: Literal["Dynamic", "Static"] = "Dynamic"
    """``Dynamic``: by each cluster's available replicas; ``Static``: by ``staticWeights``."""
    static_weights: list[StaticClusterWeight] | None = None
    """The weights for Static."""
    allow_split: bool | None = None
    """Jobs, pods and gangs: whether their pods may be divided among clusters (absent: no,
    they go to one cluster).  Services (PinApp) are always divisible."""

    @model_validator(mode="after")
    def _check(self) -> ReplicaScheduling:
        if self.weighting == "Static" and not self.static_weights:
            raise fail("required when weighting is Static", "staticWeights",
                       reason="FieldValueRequired")
        if self.weighting != "Static" and self.static_weights:
            raise fail("may only be set when weighting is Static", "staticWeights",
                       reason="FieldValueForbidden")
        return self


class Placement(CamelModel):
    """Where a workload may run and how its replicas spread (see the module docstring)."""

    zones: list[LabelValue] | None = None
    """Only clusters in these zones (default: every zone)."""
    cluster_selector: LabelSelector | None = None
    """Only clusters whose labels match."""
    cluster_affinity: ClusterAffinity | None = None
    """Clusters by name, excluded, or preferred."""
    tolerations: list[Toleration] | None = None
    """Taints tolerated, on clusters and (copied to the pods) on nodes."""
    spread: list[SpreadConstraint] | None = None
    """Spread constraints, at most one per topology."""
    hardware: list[NonEmptyStr] | None = None
    """Hardware names (MemberCluster ``spec.hardware[].name``) a cluster must offer."""
    replica_scheduling: ReplicaScheduling | None = None
    """How replicas are divided (default: Divided, Dynamic)."""

    @model_validator(mode="after")
    def _check(self) -> Placement:
        _unique(self.zones, "zones")
        topologies: set[str] = set()
        for i, constraint in enumerate(self.spread or ()):
            if constraint.topology in topologies:
                raise fail(f'Duplicate value: "{constraint.topology}"', "spread", i, "topology",
                           reason="FieldValueDuplicate")
            topologies.add(constraint.topology)
        return self


def _unique(values: list[str] | None, field: str) -> None:
    seen: set[str] = set()
    for i, value in enumerate(values or ()):
        if value in seen:
            raise fail(f'Duplicate value: "{value}"', field, i, reason="FieldValueDuplicate")
        seen.add(value)


# --- status ------------------------------------------------------------------------------------

AdmissionState = Literal["Queued", "Admitted", "Preempted"]


class AdmissionStatus(StatusModel):
    """Where a workload stands in its project's admission (quota) queue for its tier."""

    state: AdmissionState
    """``Queued`` (waiting for quota), ``Admitted`` (charged) or ``Preempted`` (a
    preemptible workload being reclaimed: its shards go; it queues again after a back-off)."""
    queue: str | None = None
    """The queue: ``<project>/<tier>``."""
    position: int | None = None
    """Queued: 1 is the head of the queue (as of the last status write)."""
    reason: str | None = None
    """Why it waits, e.g. ``cpu: requested 4, used 10 of 12 (ondemand)``."""
    hint: str | None = None
    """What would let it run."""
    charged: dict[str, SignedQuantity] | None = None
    """What it is charged (admitted) or would be (queued): cpu, memory, gpu, pods."""
    charged_tier: str | None = None
    """The tier whose quota it is charged to (a borrowing preemptible workload: the
    lender's)."""
    preemptions: int | None = None
    """How many times it was reclaimed."""
    not_before: str | None = None
    """Preempted: it is not admitted again before this time (RFC 3339)."""


class PlacementDecision(StatusModel):
    """One cluster chosen by the cluster scheduler and the replicas it got."""

    cluster: str
    """The member cluster's name."""
    zone: str | None = None
    """Its zone."""
    replicas: int | None = None
    """The replicas assigned to it (absent for kinds without replicas)."""


class ClusterStatus(StatusModel):
    """How a workload's shard in one member cluster is doing (aggregated by the federation)."""

    cluster: str
    """The member cluster's name."""
    zone: str | None = None
    """Its zone."""
    replicas: int | None = None
    """Pods (or replicas) of the shard."""
    ready_replicas: int | None = None
    """Ready pods of the shard."""
    phase: str | None = None
    """The shard's phase, for run-to-finish kinds."""
    message: str | None = None
    """What is wrong, if anything."""


class ExcludedCluster(StatusModel):
    """A member cluster the cluster scheduler excluded, and why: a filter rejected it, a
    spread limit held it off, or the workload could not be placed at all."""

    cluster: str
    """The member cluster's name."""
    plugin: str | None = None
    """The filter that excluded it (absent: it was feasible)."""
    reason: str
    """Why, e.g. ``untolerated taint gpu=true:NoSchedule``."""


class FederatedStatusMixin(StatusModel):
    """Status fields the federation writes on every workload on the host cluster."""

    tier: Tier | None = None
    """The tier the workload was admitted to."""
    admission: AdmissionStatus | None = None
    """Its place in its project's quota queue (the federation's admission)."""
    placements: list[PlacementDecision] | None = None
    """The cluster scheduler's decision."""
    excluded_clusters: list[ExcludedCluster] | None = None
    """The clusters the last decision excluded, each with its reason (feasible clusters
    that were merely not needed are not listed)."""
    clusters: list[ClusterStatus] | None = None
    """Per-cluster status of the shards."""


__all__ = [
    "DEFAULT_TIER", "TIERS", "AdmissionState", "AdmissionStatus", "ClusterAffinity",
    "ClusterPreference", "ClusterStatus", "ExcludedCluster",
    "FederatedStatusMixin", "Placement", "PlacementDecision", "ReplicaScheduling",
    "SpreadConstraint", "StaticClusterWeight", "Taint", "TaintEffect", "Tier",
    "Toleration",
]
