"""The kinds table: every fact about each PinCompute kind, in one entry per kind.

Theory
------
A kind is known by many parts: the store's validator (name rule, immutable
fields, the spec and status models), the kind lookup (plural, short names), the
generated CRD (scope, description, printer columns, selectable fields, the scale
subresource), the installer (which clusters store it).  Each of those reads the
kind's :class:`KindInfo` here instead of keeping its own dict keyed by kind
name, so a new kind is one entry in :data:`KIND_TABLE` (plus, if code refers to
it by constant, one line in :mod:`.registry` naming its Resource).

The table's order is the order kinds are listed, installed and rendered in
(workloads first, then platform kinds).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel

from pincompute.kube.errors import Cause
from pincompute.kube.resource import Resource

from .app import PinAppSpec, PinAppStatus
from .base import GROUP, VERSION
from .cron import PinCronJobSpec, PinCronJobStatus
from .infra import PinDaemonSpec, PinDaemonStatus, PinSidecarSpec, PinSidecarStatus
from .jobs import PinJobSpec, PinJobStatus
from .platform import (
    MemberClusterSpec,
    MemberClusterStatus,
    NodeImageSpec,
    NodeImageStatus,
    NodePoolSpec,
    NodePoolStatus,
    ProjectSpec,
    ProjectStatus,
    RotationSpec,
    RotationStatus,
)
from .pod import PinPodSpec, PinPodStatus
from .scaler import PinScalerSpec, PinScalerStatus
from .training import PinTrainingJobSpec, PinTrainingJobStatus

RegionRole = Literal["host", "member"]
Audience = Literal["workload", "platform"]
ExtraCheck = Callable[[Mapping[str, Any], BaseModel], list[Cause]]
"""A kind's check beyond its spec model: ``(object, validated spec) -> causes``."""

LABEL_NAME = 63
"""The longest RFC 1123 label: for names that become namespaces, label values or prefixes."""


@dataclass(frozen=True, slots=True)
class PrinterColumn:
    """A column of ``kubectl get`` (a CRD's ``additionalPrinterColumns`` entry)."""

    name: str
    type: str
    json_path: str
    priority: int = 0
    description: str = ""

    def to_crd(self) -> dict[str, Any]:
        col: dict[str, Any] = {"name": self.name, "type": self.type, "jsonPath": self.json_path}
        if self.priority:
            col["priority"] = self.priority
        if self.description:
            col["description"] = self.description
        return col


@dataclass(frozen=True, slots=True)
class ScaleSubresource:
    """Where a kind keeps its replica counts, for the ``scale`` subresource."""

    spec_replicas_path: str
    status_replicas_path: str
    label_selector_path: str

    def to_crd(self) -> dict[str, str]:
        return {"specReplicasPath": self.spec_replicas_path,
                "statusReplicasPath": self.status_replicas_path,
                "labelSelectorPath": self.label_selector_path}


@dataclass(frozen=True, kw_only=True, slots=True)
class KindInfo:
    """Everything PinCompute knows about one kind."""

    kind: str
    plural: str
    short_names: tuple[str, ...]
    spec: type[BaseModel]
    status: type[BaseModel]
    description: str
    """The CRD's description of the kind."""
    audience: Audience
    """``workload`` (application developers submit it, per project) or ``platform``."""
    stored_on: frozenset[RegionRole]
    """The clusters of a region that store it."""
    namespaced: bool = False
    name_max_length: int | None = None
    """Names must be RFC 1123 labels of at most this many characters (``None``: the
    store's generic subdomain rule)."""
    immutable: tuple[str, ...] = ()
    """Spec fields (JSON names) that may not change after creation."""
    selectable_fields: tuple[str, ...] = ()
    """Field paths usable in field selectors (besides the name and namespace)."""
    printer_columns: tuple[PrinterColumn, ...] = ()
    """Columns of ``kubectl get`` (an Age column is always added last)."""
    scale: ScaleSubresource | None = None
    extra_check: ExtraCheck | None = None
    resource: Resource = field(init=False)
    """The kind's API descriptor, made from the fields above."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "resource", Resource(
            GROUP, VERSION, self.plural, self.kind, namespaced=self.namespaced,
            status_subresource=True, short_names=self.short_names,
            selectable_fields=self.selectable_fields))


def _image_not_own_parent(obj: Mapping[str, Any], spec: BaseModel) -> list[Cause]:
    md = obj.get("metadata")
    name = md.get("name") if isinstance(md, Mapping) else None  # hostile input: any shape
    if name and getattr(spec, "parent", None) == name:
        return [Cause("spec.parent", f"Invalid value: {name!r}: an image cannot be its own "
                      "parent")]
    return []


_col = PrinterColumn
_TIER = ("spec.tier",)
_TIER_COLUMN = _col("Tier", "string", ".spec.tier")
_EVERYWHERE: frozenset[RegionRole] = frozenset({"host", "member"})
_HOST: frozenset[RegionRole] = frozenset({"host"})
_MEMBER: frozenset[RegionRole] = frozenset({"member"})

KIND_TABLE: tuple[KindInfo, ...] = (
    # --- user workloads (namespaced: a project is a namespace) ---
    KindInfo(
        kind="PinPod", plural="pinpods", short_names=("ppod",),
        spec=PinPodSpec, status=PinPodStatus, audience="workload", stored_on=_EVERYWHERE,
        namespaced=True, name_max_length=LABEL_NAME, selectable_fields=_TIER,
        description="One pod with main and sidecar containers, placed on a member cluster; "
                    "per-container update, persistent data, failover to another node.",
        printer_columns=(
            _TIER_COLUMN,
            _col("Phase", "string", ".status.phase"),
            _col("Cluster", "string", ".status.cluster"),
            _col("Node", "string", ".status.nodeName", priority=1),
            _col("IP", "string", ".status.podIP", priority=1),
        )),
    KindInfo(
        kind="PinApp", plural="pinapps", short_names=("app",),
        spec=PinAppSpec, status=PinAppStatus, audience="workload", stored_on=_EVERYWHERE,
        namespaced=True, name_max_length=LABEL_NAME, selectable_fields=_TIER,
        description="A long-running service of N PinPod replicas: rolling updates zone by "
                    "zone, zonal balance, pause/stop/restart.",
        printer_columns=(
            _TIER_COLUMN,
            _col("Replicas", "integer", ".spec.replicas", description="Desired replicas"),
            _col("Ready", "integer", ".status.readyReplicas"),
            _col("Updated", "integer", ".status.updatedReplicas"),
            _col("Available", "integer", ".status.availableReplicas"),
            _col("Phase", "string", ".status.phase", priority=1),
        ),
        scale=ScaleSubresource(".spec.replicas", ".status.replicas", ".status.selector")),
    KindInfo(
        kind="PinScaler", plural="pinscalers", short_names=("scaler",),
        spec=PinScalerSpec, status=PinScalerStatus, audience="workload",
        stored_on=_EVERYWHERE, namespaced=True,
        description="An autoscaler for a PinApp: CPU, memory and Prometheus metrics with "
                    "targets, cooldown, min/max replicas, schedules.",
        printer_columns=(
            _col("Target", "string", ".spec.scaleTargetRef.name"),
            _col("Min", "integer", ".spec.minReplicas"),
            _col("Max", "integer", ".spec.maxReplicas"),
            _col("Replicas", "integer", ".status.currentReplicas"),
            _col("Desired", "integer", ".status.desiredReplicas", priority=1),
        )),
    KindInfo(
        kind="PinJob", plural="pinjobs", short_names=("job",),
        spec=PinJobSpec, status=PinJobStatus, audience="workload", stored_on=_EVERYWHERE,
        namespaced=True, name_max_length=LABEL_NAME, selectable_fields=_TIER,
        immutable=("completionMode",),
        description="A run-to-finish parallel job: parallelism, completions, indexes, backoff "
                    "limit, success and failure policies.",
        printer_columns=(
            _TIER_COLUMN,
            _col("Completions", "integer", ".spec.completions"),
            _col("Succeeded", "integer", ".status.succeeded"),
            _col("Active", "integer", ".status.active", priority=1),
            _col("Phase", "string", ".status.phase"),
        )),
    KindInfo(
        kind="PinTrainingJob", plural="pintrainingjobs", short_names=("tjob", "training"),
        spec=PinTrainingJobSpec, status=PinTrainingJobStatus, audience="workload",
        stored_on=_EVERYWHERE, namespaced=True, name_max_length=LABEL_NAME,
        selectable_fields=_TIER, immutable=("framework",),
        description="Distributed training (PyTorch, TensorFlow): roles, gang scheduling, "
                    "rendezvous environment, restart policy.",
        printer_columns=(
            _col("Framework", "string", ".spec.framework"),
            _TIER_COLUMN,
            _col("Phase", "string", ".status.phase"),
            _col("Restarts", "integer", ".status.restarts", priority=1),
        )),
    KindInfo(
        kind="PinCronJob", plural="pincronjobs", short_names=("cron",),
        spec=PinCronJobSpec, status=PinCronJobStatus, audience="workload",
        stored_on=_EVERYWHERE, namespaced=True, selectable_fields=_TIER,
        # A cron job's runs are named ``<name>-<11 digits>``: its name must leave room.
        name_max_length=52,
        description="A PinJob on a cron schedule: time zone, concurrency policy, starting "
                    "deadline, history limits.",
        printer_columns=(
            _col("Schedule", "string", ".spec.schedule"),
            _col("TimeZone", "string", ".spec.timeZone"),
            _col("Suspend", "boolean", ".spec.suspend"),
            _col("Last Schedule", "date", ".status.lastScheduleTime"),
        )),
    # --- platform (cluster-scoped) ---
    KindInfo(
        kind="PinDaemon", plural="pindaemons", short_names=("daemon",),
        spec=PinDaemonSpec, status=PinDaemonStatus, audience="platform",
        stored_on=_EVERYWHERE, name_max_length=LABEL_NAME,
        description="One pod per matching node, for shared infrastructure agents.",
        printer_columns=(
            _col("Desired", "integer", ".status.desiredNumberScheduled"),
            _col("Ready", "integer", ".status.numberReady"),
            _col("Updated", "integer", ".status.updatedNumberScheduled"),
            _col("Namespace", "string", ".spec.namespace", priority=1),
        )),
    KindInfo(
        kind="PinSidecar", plural="pinsidecars", short_names=("sidecar",),
        spec=PinSidecarSpec, status=PinSidecarStatus, audience="platform",
        stored_on=_EVERYWHERE, name_max_length=LABEL_NAME,
        description="Sidecar containers injected into matching pods (ordering, resources, "
                    "updates).",
        printer_columns=(
            _col("Order", "integer", ".spec.order"),
            _col("Matched", "integer", ".status.matchedPods"),
            _col("Injected", "integer", ".status.injectedPods"),
            _col("Updated", "integer", ".status.updatedPods", priority=1),
        )),
    KindInfo(
        kind="Project", plural="projects", short_names=("proj",),
        spec=ProjectSpec, status=ProjectStatus, audience="platform", stored_on=_HOST,
        name_max_length=LABEL_NAME,
        description="A tenant: members with roles, and quota per tier (reserved, ondemand, "
                    "preemptible). Maps to a namespace in every cluster.",
        printer_columns=(
            _col("Display Name", "string", ".spec.displayName"),
            _col("Phase", "string", ".status.phase"),
        )),
    KindInfo(
        kind="MemberCluster", plural="memberclusters", short_names=("cluster", "mc"),
        spec=MemberClusterSpec, status=MemberClusterStatus, audience="platform",
        stored_on=_HOST, name_max_length=LABEL_NAME, selectable_fields=("spec.zone",),
        immutable=("zone", "region"),
        description="A member cluster of the region: zone, connection, capacity, taints, "
                    "hardware, health.",
        printer_columns=(
            _col("Zone", "string", ".spec.zone"),
            _col("Region", "string", ".spec.region"),
            _col("Health", "string", ".status.health"),
            _col("Nodes", "integer", ".status.nodes.total"),
            _col("Connection", "string", ".spec.connection.type", priority=1),
        )),
    KindInfo(
        kind="NodeImage", plural="nodeimages", short_names=("image", "ni"),
        spec=NodeImageSpec, status=NodeImageStatus, audience="platform", stored_on=_HOST,
        immutable=("type", "parent"), extra_check=_image_not_own_parent,
        description="A node image: type (general, ml, custom), version, and the parent it "
                    "inherits from.",
        printer_columns=(
            _col("Type", "string", ".spec.type"),
            _col("Version", "string", ".spec.version"),
            _col("Parent", "string", ".spec.parent"),
            _col("Phase", "string", ".status.phase", priority=1),
        )),
    KindInfo(
        kind="Rotation", plural="rotations", short_names=("rot",),
        spec=RotationSpec, status=RotationStatus, audience="platform", stored_on=_HOST,
        selectable_fields=("spec.cluster",), immutable=("cluster", "targetImage"),
        description="A cluster rotation: replace a cluster's nodes with a target node image, "
                    "in order, within parallelism and disruption rules.",
        printer_columns=(
            _col("Cluster", "string", ".spec.cluster"),
            _col("Image", "string", ".spec.targetImage"),
            _col("Phase", "string", ".status.phase"),
            _col("Replaced", "integer", ".status.replacedNodes"),
            _col("Total", "integer", ".status.totalNodes"),
        )),
    # --- member-cluster platform objects (cluster-scoped in each member cluster) ---
    KindInfo(
        kind="NodePool", plural="nodepools", short_names=("pool", "np"),
        spec=NodePoolSpec, status=NodePoolStatus, audience="platform", stored_on=_MEMBER,
        name_max_length=LABEL_NAME, selectable_fields=_TIER, immutable=("tier",),
        description="A pool of identical nodes in a member cluster: tier, instance type, size "
                    "bounds, node image, labels and taints.",
        printer_columns=(
            _TIER_COLUMN,
            _col("Instance Type", "string", ".spec.instanceType"),
            _col("Min", "integer", ".spec.minSize"),
            _col("Max", "integer", ".spec.maxSize"),
            _col("Nodes", "integer", ".status.currentSize"),
            _col("Ready", "integer", ".status.readyNodes"),
            _col("Image", "string", ".spec.nodeImage", priority=1),
        )),
)
"""Every PinCompute kind, one entry each."""

__all__ = [
    "KIND_TABLE",
    "LABEL_NAME",
    "Audience",
    "ExtraCheck",
    "KindInfo",
    "PrinterColumn",
    "RegionRole",
    "ScaleSubresource",
]
