"""PinApp: a long-running service of N identical PinPods, rolled out like a Deployment.

Theory
------
A PinApp is what a Kubernetes user knows as a Deployment, federated: ``replicas``
copies of ``template`` (whose ``restartPolicy`` must be ``Always``), the pod
selector implicit (the operators label what they create with the app's uid), a
rollout ``strategy`` and the workload's ``tier`` and ``placement``.

- ``strategy.type: RollingUpdate`` replaces pods gradually within ``maxSurge``
  extra and ``maxUnavailable`` missing pods (counts or percentages of replicas;
  both 25% by default, not both zero); ``Recreate`` stops all old pods first.
- ``strategy.zoneRollout`` (on by default) rolls a new template out one zone at a
  time: the federation updates the shards of one zone, waits until they are
  healthy plus ``soakSeconds``, then moves on, in ``order`` if given (zones not
  listed follow, alphabetically).
- ``paused`` freezes the rollout where it is (scaling still works); ``stopped``
  scales every shard to zero while keeping ``replicas`` for ``start``.
- ``disruptionBudget`` bounds voluntary disruptions (drains, rotations,
  rebalancing): at least ``minAvailable`` or at most ``maxUnavailable`` pods.

Status counts replicas as a Deployment does, per cluster and in total, with the
current zone rollout and a ``selector`` string for the scale subresource.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from .base import (
    CamelModel,
    IntOrPercent,
    LabelValue,
    NonNegInt,
    PosInt,
    StatusModel,
    WorkloadStatusBase,
    fail,
)
from .containers import PodTemplate
from .placement import DEFAULT_TIER, FederatedStatusMixin, Placement, Tier


class RollingUpdate(CamelModel):
    """Bounds of a rolling update (counts or percentages of ``replicas``)."""

    max_surge: IntOrPercent = "25%"
    """Pods that may exist above ``replicas`` during the update."""
    max_unavailable: IntOrPercent = "25%"
    """Pods that may be missing below ``replicas`` during the update."""

    @model_validator(mode="after")
    def _check(self) -> RollingUpdate:
        if _is_zero(self.max_surge) and _is_zero(self.max_unavailable):
            raise fail("may not be 0 when `maxSurge` is 0", "maxUnavailable")
        return self


class ZoneRollout(CamelModel):
    """Roll out one zone at a time."""

    enabled: bool = True
    """Update zone by zone (otherwise every cluster at once)."""
    order: list[LabelValue] | None = None
    """Zones in the order to update them (others follow, alphabetically)."""
    soak_seconds: NonNegInt = 0
    """Seconds to wait after a zone is healthy before the next one starts."""


class AppStrategy(CamelModel):
    """How a new template replaces the old pods."""

    type: Literal["RollingUpdate", "Recreate"] = "RollingUpdate"
    """``RollingUpdate`` (gradual) or ``Recreate`` (stop all, then start all)."""
    rolling_update: RollingUpdate | None = None
    """Bounds for RollingUpdate (filled with the defaults when absent)."""
    zone_rollout: ZoneRollout = Field(default_factory=ZoneRollout)
    """Zone-by-zone rollout across the app's clusters."""

    @model_validator(mode="after")
    def _check(self) -> AppStrategy:
        if self.type == "RollingUpdate":
            if self.rolling_update is None:
                self.rolling_update = RollingUpdate()
        elif self.rolling_update is not None:
            raise fail("may not be specified when strategy `type` is 'Recreate'",
                       "rollingUpdate", reason="FieldValueForbidden")
        return self


class DisruptionBudget(CamelModel):
    """The most voluntary disruption the app tolerates (exactly one bound)."""

    min_available: IntOrPercent | None = None
    """Pods that must stay available."""
    max_unavailable: IntOrPercent | None = None
    """Pods that may be unavailable."""

    @model_validator(mode="after")
    def _check(self) -> DisruptionBudget:
        if (self.min_available is None) == (self.max_unavailable is None):
            raise fail("must specify exactly one of minAvailable, maxUnavailable",
                       reason="FieldValueRequired" if self.min_available is None
                       else "FieldValueForbidden")
        return self


class PinAppSpec(CamelModel):
    """A replicated, long-running service."""

    replicas: NonNegInt = 1
    """How many pods, in total over all clusters."""
    template: PodTemplate
    """The pod every replica runs (``restartPolicy`` Always)."""
    strategy: AppStrategy = Field(default_factory=AppStrategy)
    """How updates roll out."""
    min_ready_seconds: NonNegInt = 0
    """Seconds a new pod must be ready before it counts as available."""
    revision_history_limit: NonNegInt = 10
    """Old revisions kept for rollback."""
    progress_deadline_seconds: PosInt = 600
    """Seconds without rollout progress before the app is marked as failing."""
    paused: bool = False
    """Freeze the rollout."""
    stopped: bool = False
    """Run no pods, keeping ``replicas`` for when the app is started again."""
    disruption_budget: DisruptionBudget | None = None
    """Bounds on voluntary disruptions."""
    tier: Tier = DEFAULT_TIER
    """The capacity tier: ``reserved``, ``ondemand`` (default) or ``preemptible``."""
    placement: Placement = Field(default_factory=Placement)
    """Where the replicas may run and how they spread."""

    @model_validator(mode="after")
    def _check(self) -> PinAppSpec:
        self.template.spec.default_restart_policy("Always", allowed=("Always",),
                                                  where=("template", "spec"))
        return self


class ZoneRolloutStatus(StatusModel):
    """Where a zone-by-zone rollout stands."""

    revision: str | None = None
    """The revision being rolled out."""
    current_zone: str | None = None
    """The zone being updated."""
    completed_zones: list[str] | None = None
    """Zones already updated and healthy."""
    pending_zones: list[str] | None = None
    """Zones still to update."""
    phase: str | None = None
    """``Progressing``, ``Soaking``, ``Paused``, ``Complete`` or ``Failed``."""


class AppRevision(StatusModel):
    """One revision of the app's template, kept for rollback (``revisionHistoryLimit``)."""

    revision: str
    """The template's hash (the ``pincompute.io/revision`` label of its PinPods)."""
    number: int | None = None
    """The revision's sequence number (1 for the first template, like a Deployment's)."""
    time: str | None = None
    """When it was first rolled out (RFC 3339)."""
    template: PodTemplate | None = None
    """The template, written back into the spec by a rollback."""


class PinAppStatus(WorkloadStatusBase, FederatedStatusMixin):
    """Replica counts as a Deployment reports them, in total over all clusters."""

    replicas: int | None = None
    """Pods that exist."""
    ready_replicas: int | None = None
    """Pods that are ready."""
    available_replicas: int | None = None
    """Pods ready for at least minReadySeconds."""
    updated_replicas: int | None = None
    """Pods running the current template."""
    unavailable_replicas: int | None = None
    """Pods missing to reach ``replicas``."""
    selector: str | None = None
    """The label selector of the app's pods, as a string (scale subresource)."""
    current_revision: str | None = None
    """The revision most pods run."""
    update_revision: str | None = None
    """The revision of the current template."""
    rollout: ZoneRolloutStatus | None = None
    """The zone-by-zone rollout in progress."""
    phase: str | None = None
    """``Pending``, ``Running``, ``Progressing``, ``Paused``, ``Stopped`` or ``Failed``."""
    revisions: list[AppRevision] | None = None
    """The revisions kept for rollback, oldest first (the update revision last)."""
    last_progress_time: str | None = None
    """When the rollout last made progress (the progress deadline counts from it)."""


def _is_zero(value: int | str) -> bool:
    return value == 0 or value == "0%"


__all__ = [
    "AppRevision", "AppStrategy", "DisruptionBudget", "PinAppSpec", "PinAppStatus", "RollingUpdate",
    "ZoneRollout", "ZoneRolloutStatus",
]
