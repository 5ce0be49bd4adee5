"""PinDaemon and PinSidecar: how platform agents reach every node and every pod.

Theory
------
Shared infrastructure runs in one of two shapes (DESIGN §8): an agent that all
pods of a node can share runs once per node (**PinDaemon**, like a DaemonSet);
an agent that needs the pod's own identity runs inside each pod (**PinSidecar**,
injected).  Both are platform objects (cluster-scoped, written by operators).

- A PinDaemon runs ``template`` on every node matching ``nodeSelector`` whose
  taints it tolerates, in every member cluster matching ``clusterSelector``; its
  pods live in ``namespace`` (default ``pincompute-system``) and are replaced
  ``RollingUpdate`` (``maxUnavailable`` nodes at a time) or ``OnDelete``.
- A PinSidecar adds ``containers`` (always of type ``sidecar``: the type is set
  to it whatever was written, since a CRD default of ``main`` could not be told
  apart from a user's choice)
  and ``volumes`` to every pod matching ``selector`` in namespaces matching
  ``namespaceSelector``, when the pod is created.  Sidecars from several
  PinSidecars start in ascending ``order`` (then by name).  ``resources`` apply to
  injected containers that set none.  A new version reaches running pods per
  ``updateStrategy``: ``InPlace`` restarts only the sidecar container
  (per-container update), ``Recreate`` replaces the pods, ``OnDelete`` waits for
  pods to be replaced anyway; ``maxUnavailable`` bounds pods in update at once.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from .base import (
    CamelModel,
    DNSLabel,
    IntOrPercent,
    Labels,
    LabelSelector,
    StatusModel,
    WorkloadStatusBase,
    fail,
)
from .containers import Container, PodTemplate, ResourceRequirements, Volume
from .placement import ExcludedCluster, PlacementDecision, Toleration
from .wellknown import SYSTEM_NAMESPACE


class DaemonUpdateStrategy(CamelModel):
    """How a new template replaces the daemon's pods."""

    type: Literal["RollingUpdate", "OnDelete"] = "RollingUpdate"
    """``RollingUpdate`` node by node, or ``OnDelete`` (only when a pod is deleted)."""
    max_unavailable: IntOrPercent = 1
    """Nodes whose daemon pod may be down at once during a RollingUpdate."""


class PinDaemonSpec(CamelModel):
    """One pod per matching node."""

    template: PodTemplate
    """The pod run on each node (``restartPolicy`` Always)."""
    namespace: DNSLabel = SYSTEM_NAMESPACE
    """The namespace the pods run in, in each member cluster."""
    node_selector: Labels | None = None
    """Only nodes with these labels."""
    tolerations: list[Toleration] | None = None
    """Node taints tolerated."""
    cluster_selector: LabelSelector | None = None
    """Only member clusters whose labels match (default: all)."""
    update_strategy: DaemonUpdateStrategy = Field(default_factory=DaemonUpdateStrategy)
    """How updates roll out."""

    @model_validator(mode="after")
    def _check(self) -> PinDaemonSpec:
        self.template.spec.default_restart_policy("Always", allowed=("Always",),
                                                  where=("template", "spec"))
        return self


class DaemonClusterStatus(StatusModel):
    cluster: str
    desired_number_scheduled: int | None = None
    number_ready: int | None = None


class PinDaemonStatus(WorkloadStatusBase):
    """Pods of the daemon, in total over all member clusters (as a DaemonSet reports)."""

    desired_number_scheduled: int | None = None
    """Nodes that should run the daemon."""
    current_number_scheduled: int | None = None
    """Nodes running it."""
    number_ready: int | None = None
    """Nodes where it is ready."""
    number_available: int | None = None
    """Nodes where it is available."""
    updated_number_scheduled: int | None = None
    """Nodes running the current template."""
    number_misscheduled: int | None = None
    """Nodes running it that should not."""
    clusters: list[DaemonClusterStatus] | None = None
    """Per member cluster."""
    placements: list[PlacementDecision] | None = None
    """The member clusters the cluster scheduler chose (every matching healthy one)."""
    excluded_clusters: list[ExcludedCluster] | None = None
    """The clusters the last decision excluded, each with its reason."""


class SidecarUpdateStrategy(CamelModel):
    """How a new sidecar version reaches pods that already have the old one."""

    type: Literal["InPlace", "Recreate", "OnDelete"] = "InPlace"
    """``InPlace`` (restart the sidecar container), ``Recreate`` (replace the pods) or
    ``OnDelete`` (only new pods)."""
    max_unavailable: IntOrPercent = "10%"
    """Pods being updated at once, out of the matching pods."""


class PinSidecarSpec(CamelModel):
    """Containers injected into matching pods."""

    selector: LabelSelector
    """The pods to inject into (by pod labels)."""
    containers: list[Container] = Field(min_length=1)
    """The sidecar containers to add (their ``type`` is set to ``sidecar``)."""
    namespace_selector: LabelSelector | None = None
    """Only pods in namespaces (projects) whose labels match (default: all)."""
    volumes: list[Volume] | None = None
    """Volumes the injected containers mount, added to the pod."""
    order: int = 0
    """Start order among injected sidecars (ascending)."""
    resources: ResourceRequirements | None = None
    """Resources of injected containers that set none."""
    update_strategy: SidecarUpdateStrategy = Field(default_factory=SidecarUpdateStrategy)
    """How new versions reach running pods."""

    @model_validator(mode="after")
    def _check(self) -> PinSidecarSpec:
        names: set[str] = set()
        volumes = {v.name for v in self.volumes or ()}
        for i, c in enumerate(self.containers):
            c.type = "sidecar"  # always: see the module docstring
            if c.name in names:
                raise fail(f"Duplicate value: {c.name!r}", "containers", i, "name",
                           reason="FieldValueDuplicate")
            names.add(c.name)
            if c.resources is None and self.resources is not None:
                c.resources = self.resources.model_copy(deep=True)
            for j, mount in enumerate(c.volume_mounts or ()):
                if mount.name not in volumes:
                    raise fail(f"Not found: {mount.name!r}: no volume of that name in spec "
                               "volumes", "containers", i, "volumeMounts", j, "name",
                               reason="FieldValueNotFound")
        seen: set[str] = set()
        for i, v in enumerate(self.volumes or ()):
            if v.name in seen:
                raise fail(f"Duplicate value: {v.name!r}", "volumes", i, "name",
                           reason="FieldValueDuplicate")
            seen.add(v.name)
        return self


class PinSidecarStatus(WorkloadStatusBase):
    """How far injection and updates have reached."""

    matched_pods: int | None = None
    """Pods the selector matches."""
    injected_pods: int | None = None
    """Pods carrying the sidecars."""
    updated_pods: int | None = None
    """Pods carrying the current version."""
    ready_pods: int | None = None
    """Pods whose injected sidecars are ready."""


__all__ = [
    "DaemonUpdateStrategy", "PinDaemonSpec", "PinDaemonStatus", "PinSidecarSpec",
    "PinSidecarStatus", "SidecarUpdateStrategy",
]
