"""PinPod: one pod with main and sidecar containers, placed like any workload.

Theory
------
A PinPod is a pod spec (:class:`.containers.PodSpec`) plus the two things every
user workload carries, ``tier`` and ``placement``.  Its operator keeps exactly
one pod running for it: when a node fails, it creates the pod again elsewhere
(persistent volumes follow), and a change to one container's image, command or
env updates that container alone (per-container update) instead of replacing
the pod.  ``restartPolicy`` defaults to ``Always``.

Operations are spec changes, so the API drives them idempotently: ``stopped``
keeps the spec with no pod (``false`` starts it again); a new token in
``restarts`` restarts that one container (the token reaches the container as
``PINCOMPUTE_RESTART_TOKEN``, so the node agent sees a changed container spec
and restarts it alone; on real clusters, where a live pod's env cannot change,
the pod is recreated instead).

Status is the pod's, seen from above: phase, where it runs (cluster, zone,
node, pod IP), and per-container state; how the last change was applied
(``lastUpdate``: in place or recreated, and why) and each failover
(``failoverHistory``, the latest :data:`FAILOVER_HISTORY` kept; ``failovers``
counts them all).
"""

from __future__ import annotations

from pydantic import Field, model_validator

from .base import NonEmptyStr, StatusModel, WorkloadStatusBase, fail
from .containers import PodSpec
from .placement import DEFAULT_TIER, FederatedStatusMixin, Placement, Tier


class PinPodSpec(PodSpec):
    """A pod spec with a tier and a placement."""

    tier: Tier = DEFAULT_TIER
    """The capacity tier: ``reserved``, ``ondemand`` (default) or ``preemptible``."""
    placement: Placement = Field(default_factory=Placement)
    """Where the pod may run."""
    stopped: bool = False
    """Stop the PinPod: its pod is deleted, the spec and persistent volumes are kept;
    ``false`` starts it again."""
    restarts: dict[str, NonEmptyStr] | None = None
    """Container name → a restart token: a new token restarts that container alone (the API
    writes a fresh token, e.g. the time of the request; writing the same token is a no-op)."""

    @model_validator(mode="after")
    def _defaults(self) -> PinPodSpec:
        self.default_restart_policy("Always", allowed=("Always", "OnFailure", "Never"),
                                    where=())
        names = {c.name for c in self.containers}
        for name in self.restarts or {}:
            if name not in names:
                raise fail(f"Not found: {name!r}: no container of that name", "restarts",
                           name, reason="FieldValueNotFound")
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


FAILOVER_HISTORY = 10
"""How many failovers ``status.failoverHistory`` keeps."""


class Failover(StatusModel):
    """One failover: the pod left ``fromNode`` and came back on ``toNode``."""

    time: str | None = None
    """When the pod was recreated (RFC 3339)."""
    from_node: str | None = None
    """The node the pod ran on."""
    to_node: str | None = None
    """The node it runs on now (empty until the new pod is placed)."""
    reason: str | None = None
    """Why: ``NodeGone``, ``NodeNotReady``, ``NodeDrained``, ``PodDeleted``, ``PodFailed``."""
    message: str | None = None
    """More about why."""


class PodUpdate(StatusModel):
    """How a change of the spec was applied to the pod."""

    type: str | None = None
    """``UpdatedInPlace`` or ``Recreated``."""
    containers: list[str] | None = None
    """The containers that changed."""
    message: str | None = None
    """Why it was done that way."""
    time: str | None = None
    """When (RFC 3339)."""
    generation: int | None = None
    """The PinPod generation it applied."""


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
    failover_history: list[Failover] | None = None
    """The latest failovers, oldest first (at most ten: ``FAILOVER_HISTORY``)."""
    pending_failover: Failover | None = None
    """A failover under way: why the old pod is being removed (recorded before it goes)."""
    pod_uid: str | None = Field(default=None, alias="podUID")
    """The uid of the pod the operator runs; a pod gone while this is set failed over
    (the operator clears it before removing a pod on purpose)."""
    last_update: PodUpdate | None = None
    """How the last change of the spec reached the pod."""
    message: str | None = None
    """Why the pod is in this phase."""
    reason: str | None = None
    """A CamelCase reason for the phase."""


__all__ = ["FAILOVER_HISTORY", "ContainerStatus", "Failover", "PinPodSpec", "PinPodStatus",
           "PodUpdate"]
