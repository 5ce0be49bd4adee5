"""Platform kinds: projects, member clusters, node pools, node images, rotations.

Theory
------
These are written by platform operators (and by ``pincompute up``), not by
application developers, and describe the fleet the workloads run on.

- **Project** (host, cluster-scoped; its name is the namespace it maps to in
  every cluster, so an RFC 1123 label): members with a role each (``viewer``,
  ``editor``, ``admin``; one entry per user) and a quota per tier.  A tier or a
  resource left out of ``quota`` is not limited; ``0`` forbids it.
- **MemberCluster** (host, cluster-scoped): the ``zone`` (required) and
  ``region`` it belongs to, how to reach it (``connection``: ``Embedded`` - an
  in-process store of this region, or ``Kubeconfig`` - from a Secret, a file
  path, or inline), the capacity it declares, taints, the hardware it offers,
  ``unschedulable`` (take no new placements) and how its health is probed.
  Cluster selectors match its ``metadata.labels`` (plus the implied zone,
  region and cluster-name labels; see :mod:`.placement`).
- **NodePool** (member cluster, cluster-scoped): a group of identical nodes of
  one ``tier`` and ``instanceType``, between ``minSize`` and ``maxSize``
  (``desiredSize`` when fixed), running ``nodeImage``, with node labels and
  taints, the ``capacity`` of each node and an idle ``buffer`` to keep
  (placeholder capacity that real workloads displace at once).
- **NodeImage** (host, cluster-scoped): a node image of a ``type`` and
  ``version`` that may inherit from a ``parent`` image: base OS, runtime version,
  labels, taints, settings, daemons and node-agent settings of the child override
  the parent's (the resolved result is in status).
- **Rotation** (host, cluster-scoped): replace the nodes of ``cluster`` (all
  pools, or ``nodePools``) with ``targetImage``, step by step in ``order``, at
  most ``parallelism`` nodes at a time (``maxParallelPerPool``,
  ``maxParallelPerZone``, ``maxUnavailable``), a new node surged before an old
  one drains, honouring each app's disruption budget unless told otherwise;
  ``paused`` stops after the nodes in progress, ``abort`` hands them back.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import AfterValidator, Field, model_validator

from .base import (
    CamelModel,
    DNSLabel,
    DNSSubdomain,
    IntOrPercent,
    Labels,
    LabelSelector,
    LabelValue,
    NonEmptyStr,
    NonNegInt,
    PosInt,
    Quantity,
    SignedQuantity,
    StatusModel,
    WorkloadStatusBase,
    fail,
)
from .placement import DEFAULT_TIER, Taint, Tier
from .wellknown import SYSTEM_NAMESPACE, NodeRuntimeKind

ProjectRole = Literal["viewer", "editor", "admin"]
PROJECT_ROLES: tuple[ProjectRole, ...] = ("viewer", "editor", "admin")


class ResourceAmounts(CamelModel):
    """Amounts of the resources PinCompute accounts for."""

    cpu: Quantity | None = None
    """CPU cores (``500m``, ``64``)."""
    memory: Quantity | None = None
    """Memory bytes (``256Gi``)."""
    gpu: Quantity | None = None
    """GPUs."""
    pods: Quantity | None = None
    """Pods."""


class ResourceFigures(StatusModel):
    """Amounts in a status (may be negative, e.g. over-committed headroom)."""

    cpu: SignedQuantity | None = None
    memory: SignedQuantity | None = None
    gpu: SignedQuantity | None = None
    pods: SignedQuantity | None = None


def _check_taints(taints: list[Taint] | None) -> None:
    seen: set[tuple[str, str]] = set()
    for i, taint in enumerate(taints or ()):
        key = (taint.key, taint.effect)
        if key in seen:
            raise fail(f"Duplicate value: {taint.key}:{taint.effect}", "taints", i,
                       reason="FieldValueDuplicate")
        seen.add(key)


# --- Project -----------------------------------------------------------------------------------

class ProjectMember(CamelModel):
    """A user and their role in the project."""

    user: NonEmptyStr
    """The user's name (as the gateway authenticates it)."""
    role: ProjectRole = "viewer"
    """``viewer`` (read), ``editor`` (read and write workloads) or ``admin`` (also members)."""


class ProjectQuota(CamelModel):
    """The most a project may request per tier (left out: not limited)."""

    reserved: ResourceAmounts | None = None
    """Reserved capacity."""
    ondemand: ResourceAmounts | None = None
    """On-demand capacity."""
    preemptible: ResourceAmounts | None = None
    """Preemptible capacity."""


class ProjectSpec(CamelModel):
    """A tenant: members and quotas."""

    display_name: str | None = None
    """A human-friendly name."""
    description: str | None = None
    """What the project is for."""
    members: list[ProjectMember] | None = None
    """Who may use the project, with which role (one entry per user)."""
    quota: ProjectQuota | None = None
    """Quota per tier."""

    @model_validator(mode="after")
    def _check(self) -> ProjectSpec:
        users: set[str] = set()
        for i, member in enumerate(self.members or ()):
            if member.user in users:
                raise fail(f'Duplicate value: "{member.user}"', "members", i, "user",
                           reason="FieldValueDuplicate")
            users.add(member.user)
        return self


class ProjectNamespace(StatusModel):
    """The project's namespace in one cluster."""

    cluster: str
    """The cluster (``host`` or a member cluster's name)."""
    phase: str
    """``Active``, ``Terminating``, or ``Conflict`` (the name is taken by a foreign namespace)."""


class ProjectStatus(WorkloadStatusBase):
    """The project's namespace state and its usage per tier."""

    phase: str | None = None
    """``Active`` or ``Terminating``."""
    namespaces: list[ProjectNamespace] | None = None
    """The project's namespace in each cluster of the region."""
    usage: dict[str, ResourceFigures] | None = None
    """Requested resources of admitted workloads, by tier."""
    queued: dict[str, int] | None = None
    """Workloads waiting for quota, by tier."""


# --- MemberCluster -------------------------------------------------------------------------------

class SecretKeyRef(CamelModel):
    """A key of a Secret on the host cluster."""

    name: DNSSubdomain
    """The Secret's name."""
    namespace: DNSLabel = SYSTEM_NAMESPACE
    """The Secret's namespace: must be ``pincompute-system``, the only namespace whose
    Secrets the federation may read (another is refused with ``SecretNamespaceRefused``)."""
    key: NonEmptyStr = "kubeconfig"
    """The key holding the kubeconfig."""


class ClusterConnection(CamelModel):
    """How the federation reaches a member cluster."""

    type: Literal["Embedded", "Kubeconfig"] = "Embedded"
    """``Embedded``: an in-process store of this region; ``Kubeconfig``: a Kubernetes API."""
    kubeconfig_secret_ref: SecretKeyRef | None = None
    """A kubeconfig in a Secret (Kubeconfig)."""
    kubeconfig_path: NonEmptyStr | None = None
    """A kubeconfig file on the controller's host (Kubeconfig)."""
    kubeconfig: NonEmptyStr | None = None
    """An inline kubeconfig document (Kubeconfig; prefer the Secret)."""
    context: str | None = None
    """The kubeconfig context (default: its current context)."""

    @model_validator(mode="after")
    def _check(self) -> ClusterConnection:
        sources = [name for name, value in (("kubeconfigSecretRef", self.kubeconfig_secret_ref),
                                            ("kubeconfigPath", self.kubeconfig_path),
                                            ("kubeconfig", self.kubeconfig)) if value is not None]
        if self.type == "Kubeconfig":
            if not sources:
                raise fail("type Kubeconfig needs one of kubeconfigSecretRef, kubeconfigPath, "
                           "kubeconfig", reason="FieldValueRequired")
            if len(sources) > 1:
                raise fail(f"may not specify more than one kubeconfig source: "
                           f"{', '.join(sources)}", sources[1], reason="FieldValueForbidden")
        else:
            for name in sources + (["context"] if self.context else []):
                raise fail("may only be set when type is Kubeconfig", name,
                           reason="FieldValueForbidden")
        return self


class HardwareSpec(CamelModel):
    """Hardware a cluster offers, by name (placements select on it)."""

    name: DNSLabel
    """The hardware's name, e.g. ``nvidia-a100``."""
    type: Literal["gpu", "cpu", "accelerator", "storage", "network"] = "gpu"
    """What kind of hardware it is."""
    count: NonNegInt | None = None
    """How many units the cluster has."""
    attributes: dict[str, str] | None = None
    """Free-form details (memory, interconnect, ...)."""


class HealthCheck(CamelModel):
    """How the federation probes a member cluster."""

    period_seconds: PosInt = 10
    """Seconds between probes."""
    timeout_seconds: PosInt = 5
    """Seconds after which a probe fails."""
    failure_threshold: PosInt = 3
    """Consecutive failures before the cluster is unhealthy (and its share moves)."""
    success_threshold: PosInt = 1
    """Consecutive successes before it is healthy again."""


class MemberClusterSpec(CamelModel):
    """A member cluster of the region."""

    zone: LabelValue = Field(min_length=1)
    """The zone (failure domain) the cluster is in."""
    region: LabelValue | None = None
    """The region."""
    connection: ClusterConnection = Field(default_factory=ClusterConnection)
    """How to reach the cluster's API."""
    capacity: ResourceAmounts | None = None
    """Capacity the cluster declares (observed figures are in status)."""
    taints: list[Taint] | None = None
    """Only workloads tolerating these are placed here."""
    hardware: list[HardwareSpec] | None = None
    """Hardware the cluster offers."""
    unschedulable: bool = False
    """Take no new placements (existing shards stay)."""
    health_check: HealthCheck = Field(default_factory=HealthCheck)
    """Health probing."""
    supported_kinds: list[NonEmptyStr] | None = None
    """Workload kinds the cluster runs, e.g. ``[PinApp, PinJob]`` (absent: every kind).
    The cluster scheduler's APIEnablement filter reads it."""
    cost_weight: Annotated[float, Field(ge=0)] | None = None
    """The relative cost of running here, compared between clusters (absent: 1); the
    cluster scheduler's Cost score prefers cheaper clusters."""

    @model_validator(mode="after")
    def _check(self) -> MemberClusterSpec:
        _check_taints(self.taints)
        names: set[str] = set()
        for i, hw in enumerate(self.hardware or ()):
            if hw.name in names:
                raise fail(f'Duplicate value: "{hw.name}"', "hardware", i, "name",
                           reason="FieldValueDuplicate")
            names.add(hw.name)
        return self


class TierCapacity(StatusModel):
    """The resource summary of one tier's pools in a member cluster (all its node pools of
    that tier together).  The cluster scheduler estimates how many replicas fit from
    ``allocatable - allocated - allocating``."""

    allocatable: ResourceFigures | None = None
    """Allocatable capacity of the tier's nodes (a resource left out: not limited)."""
    allocated: ResourceFigures | None = None
    """Requested by pods bound to those nodes."""
    allocating: ResourceFigures | None = None
    """Requested by pods of the tier not yet bound (pending in the member)."""
    largest_node: ResourceFigures | None = None
    """The allocatable of the tier's largest node, per resource: a pod asking for more fits
    nowhere in the tier (absent: not checked)."""


class NodeCounts(StatusModel):
    total: int | None = None
    ready: int | None = None


class MemberClusterStatus(WorkloadStatusBase):
    """What the federation last observed of the cluster."""

    health: str | None = None
    """``Healthy``, ``Degraded``, ``Unhealthy`` or ``Unknown``."""
    kubernetes_version: str | None = None
    """The API server's version (Kubeconfig clusters)."""
    last_probe_time: str | None = None
    """When the cluster was last probed (RFC 3339)."""
    nodes: NodeCounts | None = None
    """Node counts."""
    capacity: ResourceFigures | None = None
    """Total node capacity."""
    allocatable: ResourceFigures | None = None
    """Allocatable capacity."""
    allocated: ResourceFigures | None = None
    """Requested by scheduled pods."""
    available: ResourceFigures | None = None
    """Allocatable minus allocated."""
    allocating: ResourceFigures | None = None
    """Requested by pods not yet bound (pending in the member)."""
    tiers: dict[Tier, TierCapacity] | None = None
    """The resource summary per tier (``reserved``, ``ondemand``, ``preemptible``): a tier
    listed has a pool here.  Absent: the cluster's pools are not known by tier, and the
    cluster-wide figures above (else ``spec.capacity``) stand for every tier."""


# --- NodePool ----------------------------------------------------------------------------------

DEFAULT_POD_PIDS_LIMIT = 1024
"""A pod's processes and threads unless its NodePool says otherwise."""
DEFAULT_MEMORY_LIMIT = "1Gi"
"""The memory limit of a container declaring none, unless its NodePool says otherwise."""

class NodePoolSpec(CamelModel):
    """A group of identical nodes in one member cluster."""

    instance_type: NonEmptyStr
    """The machine type (embedded: a name; real clusters: the provider's)."""
    capacity: ResourceAmounts
    """What each node offers (cpu and memory required)."""
    max_size: NonNegInt
    """The most nodes the pool may have."""
    min_size: NonNegInt = 0
    """The fewest nodes the pool keeps."""
    desired_size: NonNegInt | None = None
    """A fixed size within min..max (absent: sized by demand)."""
    tier: Tier = DEFAULT_TIER
    """The tier whose pods the pool runs."""
    node_image: DNSSubdomain | None = None
    """The NodeImage its nodes run."""
    labels: Labels | None = None
    """Labels put on every node."""
    taints: list[Taint] | None = None
    """Taints put on every node."""
    buffer: ResourceAmounts | None = None
    """Idle headroom kept ready (placeholder capacity real workloads displace)."""
    runtime: NodeRuntimeKind | None = None
    """Embedded clusters: the node agent's runtime (default: the region's)."""
    pod_pids_limit: NonNegInt = DEFAULT_POD_PIDS_LIMIT
    """The most processes and threads one pod may have at once (0: no limit), as the
    kubelet's ``podPidsLimit``: a fork bomb stops there instead of exhausting the machine."""
    default_memory_limit: Quantity = DEFAULT_MEMORY_LIMIT
    """The memory limit of a container that declares none (``0``: none), as a
    LimitRange default: a runaway container is OOM-killed instead of the node."""

    @model_validator(mode="after")
    def _check(self) -> NodePoolSpec:
        if self.max_size < self.min_size:
            raise fail(f"Invalid value: {self.max_size}: must be greater than or equal to "
                       f"minSize ({self.min_size})", "maxSize")
        if self.desired_size is not None and not (
                self.min_size <= self.desired_size <= self.max_size):
            raise fail(f"Invalid value: {self.desired_size}: must be between minSize "
                       f"({self.min_size}) and maxSize ({self.max_size})", "desiredSize")
        for field in ("cpu", "memory"):
            if getattr(self.capacity, field) is None:
                raise fail("Required value", "capacity", field, reason="FieldValueRequired")
        _check_taints(self.taints)
        return self


def pool_size(size: int, *, min_size: int, max_size: int) -> int:
    """``size`` within a pool's ``minSize..maxSize`` (a ``maxSize`` below ``minSize``, which
    validation refuses, counts as ``minSize``): the size the node provisioner keeps."""
    return min(max(size, min_size), max(min_size, max_size))


class NodePoolStatus(WorkloadStatusBase):
    """The pool's nodes as last counted."""

    current_size: int | None = None
    """Nodes in the pool."""
    ready_nodes: int | None = None
    """Nodes ready."""
    desired_size: int | None = None
    """Nodes the autoscaler wants."""
    node_image: str | None = None
    """The image most nodes run."""
    updated_nodes: int | None = None
    """Nodes running the pool's node image."""


# --- NodeImage ---------------------------------------------------------------------------------

_VERSION_RE = re.compile(r"^[0-9A-Za-z][0-9A-Za-z.+_-]{0,127}$")


def _check_version(value: str) -> str:
    if not _VERSION_RE.match(value):
        raise fail(f"Invalid value: {value!r}: must start with an alphanumeric character and "
                   "contain only alphanumerics, '.', '+', '_' and '-' (at most 128)")
    return value


Version = Annotated[str, AfterValidator(_check_version)]


class NodeAgentSettings(CamelModel):
    """The node agent's configuration an image fixes (embedded clusters; a child image
    overrides its parent's field by field)."""

    status_interval_seconds: Annotated[float, Field(gt=0)] | None = None
    """Seconds between health-probe passes (conditions written when they change)."""
    memory_available_bytes: NonNegInt | None = None
    """Below this much available memory the node reports MemoryPressure."""
    disk_free_ratio: Annotated[float, Field(ge=0, le=1)] | None = None
    """Below this share of free disk the node reports DiskPressure."""
    overload_ratio: Annotated[float, Field(gt=0)] | None = None
    """Above this share of CPU in use the node reports Overloaded."""
    probe_scale: Annotated[float, Field(gt=0)] | None = None
    """A factor on every pod probe's period and delays (slow images: > 1)."""


class NodeImageSpec(CamelModel):
    """A node image, possibly derived from a parent image."""

    version: Version
    """The image's version, e.g. ``2024.06.1``."""
    type: Literal["general", "gpu", "memory", "ml", "custom"] = "general"
    """``general``, ``gpu`` (GPU drivers), ``memory`` (large-memory tuning), ``ml`` (the ML
    stack) or ``custom``."""
    parent: DNSSubdomain | None = None
    """The NodeImage this one inherits from."""
    image: str | None = None
    """The artifact (an AMI id, an image reference; embedded clusters: informational)."""
    description: str | None = None
    """What the image is for."""
    base_os: str | None = Field(default=None, alias="baseOS")
    """The operating system it is built on, e.g. ``ubuntu-24.04`` (overrides the parent's)."""
    runtime_version: str | None = None
    """The container runtime's version (overrides the parent's)."""
    labels: Labels | None = None
    """Labels its nodes get (override the parent's)."""
    taints: list[Taint] | None = None
    """Taints its nodes get (override the parent's, by key and effect)."""
    settings: dict[str, str] | None = None
    """Node settings (override the parent's, by key)."""
    daemons: list[NonEmptyStr] | None = None
    """Pre-installed daemons, as ``namespace/name-prefix`` of their pods: the node is not
    Ready until they run (added to the parent's)."""
    agent: NodeAgentSettings | None = None
    """The node agent's configuration (overrides the parent's, field by field)."""

    @model_validator(mode="after")
    def _check(self) -> NodeImageSpec:
        _check_taints(self.taints)
        for i, daemon in enumerate(self.daemons or ()):
            if "/" not in daemon:
                raise fail(f"Invalid value: {daemon!r}: must be namespace/name-prefix",
                           "daemons", i)
        return self


class ResolvedImage(StatusModel):
    """An image with everything it inherits folded in."""

    name: str | None = None
    type: str | None = None
    version: str | None = None
    image: str | None = None
    base_os: str | None = Field(default=None, alias="baseOS")
    runtime_version: str | None = None
    labels: dict[str, str] | None = None
    taints: list[dict[str, str]] | None = None
    settings: dict[str, str] | None = None
    daemons: list[str] | None = None
    agent: dict[str, float] | None = None


class NodeImageStatus(WorkloadStatusBase):
    """The image after inheritance."""

    phase: str | None = None
    """``Ready``, or ``Invalid`` (missing parent, cycle)."""
    message: str | None = None
    """Why it is Invalid."""
    ancestors: list[str] | None = None
    """Parent, grandparent, ... ."""
    resolved: ResolvedImage | None = None
    """Everything after inheritance."""
    pools: int | None = None
    """NodePools (in all member clusters) that name this image."""


# --- Rotation ----------------------------------------------------------------------------------

class RotationStep(CamelModel):
    """One step of a rotation: a node pool, or nodes selected by label."""

    node_pool: DNSSubdomain | None = None
    """Nodes of this pool."""
    node_selector: LabelSelector | None = None
    """Nodes matching these labels."""

    @model_validator(mode="after")
    def _check(self) -> RotationStep:
        if (self.node_pool is None) == (self.node_selector is None):
            raise fail("must specify exactly one of nodePool, nodeSelector",
                       reason="FieldValueRequired" if self.node_pool is None
                       else "FieldValueForbidden")
        return self


class RotationSpec(CamelModel):
    """Replace a cluster's nodes with a new node image."""

    cluster: DNSSubdomain | None = None
    """The MemberCluster rotated (or ``stages``)."""
    stages: list[LabelValue] | None = None
    """Release stages in order (MemberCluster label ``pincompute.io/release-stage``): the
    clusters of each stage are rotated (one child Rotation each) and the next stage starts
    only after the canary has been green on them for ``soakSeconds``; a red canary holds
    the rotation."""
    soak_seconds: NonNegInt = 600
    """How long the canary must stay green on a finished stage before the next starts."""
    target_image: DNSSubdomain
    """The NodeImage the nodes should run."""
    node_pools: list[DNSSubdomain] | None = None
    """Only these pools (default: all)."""
    order: list[RotationStep] | None = None
    """Steps in order; nodes no step names come last."""
    parallelism: PosInt = 1
    """Nodes replaced at once in the cluster."""
    max_parallel_per_pool: PosInt | None = None
    """Nodes replaced at once in one pool (default: ``parallelism``)."""
    max_parallel_per_zone: PosInt | None = None
    """Nodes replaced at once in one zone (default: ``parallelism``)."""
    max_unavailable: IntOrPercent | None = None
    """Nodes of the cluster allowed to be unavailable at once (default: parallelism)."""
    surge: bool = True
    """Start a new node before draining an old one (the capacity never dips)."""
    paused: bool = False
    """Stop after the nodes in progress."""
    abort: bool = False
    """Stop now: nodes not yet drained are handed back (uncordoned), surges undone."""
    respect_disruption_budgets: bool = True
    """Wait rather than break an app's disruption budget while draining."""
    drain_timeout_seconds: PosInt = 600
    """Seconds after which a drain still held by budgets is reported as stuck."""

    @model_validator(mode="after")
    def _check(self) -> RotationSpec:
        if self.cluster is None and self.stages is None:
            raise fail("Required value: one of cluster, stages", "cluster",
                       reason="FieldValueRequired")
        if self.cluster is not None and self.stages is not None:
            raise fail("Forbidden: may not be set together with cluster", "stages",
                       reason="FieldValueForbidden")
        if self.stages is not None and not self.stages:
            raise fail("Required value: at least one stage", "stages",
                       reason="FieldValueRequired")
        return self


class RotationPoolProgress(StatusModel):
    pool: str
    done: int = 0
    total: int = 0


class RotationClusterProgress(StatusModel):
    cluster: str
    stage: str | None = None
    phase: str | None = None
    replaced: int = 0
    total: int = 0


class RotationStatus(WorkloadStatusBase):
    """Progress of the rotation."""

    phase: str | None = None
    """``Pending``, ``Running``, ``Paused``, ``Succeeded``, ``Aborted`` or ``Failed``."""
    total_nodes: int | None = None
    """Nodes to replace."""
    replaced_nodes: int | None = None
    """Nodes replaced."""
    pools: list[RotationPoolProgress] | None = None
    """Done / total per pool."""
    in_progress: list[str] | None = None
    """Nodes being replaced now."""
    blocked_by: list[str] | None = None
    """Apps (``namespace/name``) whose disruption budgets hold a drain now."""
    failed_nodes: list[str] | None = None
    """Nodes that could not be replaced."""
    current_step: int | None = None
    """The index of the step in progress."""
    stage: str | None = None
    """Staged rotations: the release stage in progress (or soaking)."""
    clusters: list[RotationClusterProgress] | None = None
    """Staged rotations: each cluster's child rotation."""
    start_time: str | None = None
    """When the rotation started (RFC 3339)."""
    completion_time: str | None = None
    """When it finished."""
    message: str | None = None
    """What it is waiting for, or why it failed."""


__all__ = [
    "DEFAULT_MEMORY_LIMIT", "DEFAULT_POD_PIDS_LIMIT", "PROJECT_ROLES", "ClusterConnection",
    "HardwareSpec", "HealthCheck", "MemberClusterSpec", "MemberClusterStatus",
    "NodeAgentSettings", "NodeImageSpec", "NodeImageStatus", "NodePoolSpec", "NodePoolStatus",
    "ProjectMember", "ProjectQuota", "ProjectRole", "ProjectSpec", "ProjectStatus",
    "ResourceAmounts", "ResourceFigures", "RotationClusterProgress", "RotationPoolProgress",
    "RotationSpec", "RotationStatus", "RotationStep", "SecretKeyRef", "TierCapacity",
    "pool_size",
]
