"""PinPod: one pod with main and sidecar containers, placed like any workload.

Theory
------
A PinPod is a pod spec (:class:`.containers.PodSpec`) plus the two things every
user workload carries, ``tier`` and ``placement``.  Its operator keeps exactly
one pod running for it: when a node fails, it creates the pod again elsewhere
(persistent volumes follow), and a change to one container's image, command or
env updates that container alone (per-container update) instead of replacing
the pod.  ``restartPolicy`` defaults to ``Always``.

Status is the pod's, seen from above: phase, where it runs (cluster, zone,
node, pod IP), and per-container state.
"""

from __future__ import annotations

from pydantic import Field, model_validator

from .base import StatusModel, WorkloadStatusBase
from .containers import PodSpec
from .placement import DEFAULT_TIER, FederatedStatusMixin, Placement, Tier


class PinPodSpec(PodSpec):
    """A pod spec with a tier and a placement."""

    tier: Tier = DEFAULT_TIER
    """The capacity tier: ``reserved``, ``ondemand`` (default) or ``preemptible``."""
    placement: Placement = Field(default_factory=Placement)
    """Where the pod may run."""

    @model_validator(mode="after")
    def _defaults(self) -> PinPodSpec:
        self.default_restart_policy("Always", allowed=("Always", "OnFailure", "Never"),
                                    where=())
        return self


class ContainerStatus(StatusModel):
    """One container's state as the node agent reports it."""

    name: str
    """The container's name."""
    type: str | None = None
    """``main`` or ``sidecar``."""
    ready: bool | None = None
    """Whether its readiness probe passes (or it runs, without a probe)."""
    started: bool | None = None
    """Whether it has started (and passed its startup probe)."""
    restart_count: int | None = None
    """How many times it was restarted."""
    image: str | None = None
    """The image it runs."""
    state: str | None = None
    """``waiting``, ``running`` or ``terminated``."""
    exit_code: int | None = None
    """The last exit code, once terminated."""
    reason: str | None = None
    """Why it is waiting or terminated."""


class PinPodStatus(WorkloadStatusBase, FederatedStatusMixin):
    """Where the pod runs and how it is doing."""

    phase: str | None = None
    """``Pending``, ``Running``, ``Succeeded``, ``Failed`` or ``Unknown``."""
    cluster: str | None = None
    """The member cluster running the pod."""
    zone: str | None = None
    """The cluster's zone."""
    node_name: str | None = None
    """The node running the pod."""
    pod_name: str | None = None
    """The name of the Pod object in the member cluster."""
    pod_ip: str | None = Field(default=None, alias="podIP")
    """The pod's address."""
    start_time: str | None = None
    """When the pod started (RFC 3339)."""
    container_statuses: list[ContainerStatus] | None = None
    """Per-container state."""
    failovers: int | None = None
    """How many times the pod was recreated on another node."""
    message: str | None = None
    """Why the pod is in this phase."""
    reason: str | None = None
    """A CamelCase reason for the phase."""


__all__ = ["ContainerStatus", "PinPodSpec", "PinPodStatus"]
