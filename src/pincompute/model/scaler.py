"""PinScaler: the autoscaler of a PinApp, by metrics and by schedule.

Theory
------
Like a HorizontalPodAutoscaler (v2) with the two things Pinterest's adds:
custom Prometheus metrics and schedules.

- ``scaleTargetRef`` names the PinApp (same project) whose ``spec.replicas`` the
  scaler writes, between ``minReplicas`` and ``maxReplicas``.
- ``metrics``: each proposes a replica count; the largest wins.  ``Resource``
  metrics target the average ``cpu``/``memory`` utilization (percent of requests)
  or average value per pod; ``Prometheus`` metrics run ``query`` and compare the
  result with ``targetValue`` (``AverageValue``: per pod; ``Value``: in total);
  ``Pods`` metrics are the app's own samples, pushed to or scraped by the node-local
  metrics endpoint of each pod's node (DESIGN §8), averaged over the pods and
  compared with ``targetAverageValue`` (a counter is read as its rate per second).
  With neither metrics nor schedules, the scaler targets 80% CPU (HPA's default),
  and that default is filled in.
- ``behavior`` shapes how fast it moves: per direction a stabilization window
  (the largest/smallest recommendation in the window is used), rate policies
  (``Pods`` or ``Percent`` per ``periodSeconds``, the one allowing the most
  change wins unless ``selectPolicy: Min``; ``Disabled`` stops that direction).
  Absent parts are filled with HPA's defaults: up - no window, +100% or +4 pods
  per 15 s; down - a 300 s window, -100% per 15 s.
- ``cooldownSeconds`` is the least time between two scaling actions
  (Pinterest's cooldown; default 60).  ``tolerance`` ignores ratios within
  ±10% of the target.
- ``schedules``: while a window is open (from a ``start`` cron time until the
  next ``end`` cron time, in ``timeZone``), the app keeps at least
  ``desiredReplicas`` (still capped by ``maxReplicas``).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, StringConstraints, model_validator

from .base import (
    CamelModel,
    DNSLabel,
    DNSSubdomain,
    NonEmptyStr,
    NonNegInt,
    PosInt,
    Quantity,
    SignedQuantity,
    StatusModel,
    WorkloadStatusBase,
    fail,
    quantity_value,
)
from .cron import CronSchedule, TimeZone


class ScaleTargetRef(CamelModel):
    """The scaled object: a PinApp of the same project."""

    name: DNSSubdomain
    """The PinApp's name."""
    kind: Literal["PinApp"] = "PinApp"
    """The kind scaled (only PinApp)."""
    api_version: Literal["pincompute.io/v1alpha1"] = "pincompute.io/v1alpha1"
    """The kind's API version."""


class ResourceMetric(CamelModel):
    """Average CPU or memory use of the app's pods (exactly one target)."""

    name: Literal["cpu", "memory"]
    """The resource."""
    target_average_utilization: int | None = Field(default=None, ge=1, le=1000)
    """Target use as a percent of the pods' requests."""
    target_average_value: Quantity | None = None
    """Target use per pod as a quantity (``500m``, ``1Gi``)."""

    @model_validator(mode="after")
    def _check(self) -> ResourceMetric:
        if (self.target_average_utilization is None) == (self.target_average_value is None):
            raise fail("must specify exactly one of targetAverageUtilization, "
                       "targetAverageValue",
                       reason="FieldValueRequired" if self.target_average_value is None
                       else "FieldValueForbidden")
        return self


class PrometheusMetric(CamelModel):
    """A custom metric: a PromQL query and the value it should have."""

    query: NonEmptyStr
    """The PromQL query; its result must be a single number."""
    target_value: Quantity
    """The target (> 0)."""
    target_type: Literal["AverageValue", "Value"] = "AverageValue"
    """``AverageValue``: the result divided by the replicas; ``Value``: the result itself."""
    server_address: str | None = None
    """The Prometheus server (default: the platform's)."""

    @model_validator(mode="after")
    def _check(self) -> PrometheusMetric:
        if quantity_value(self.target_value) <= 0:
            raise fail(f"Invalid value: {self.target_value!r}: must be greater than 0",
                       "targetValue")
        return self


class PodsMetric(CamelModel):
    """A custom metric the app's pods report through their node's metrics endpoint."""

    metric: Annotated[str, StringConstraints(pattern=r"^[a-zA-Z_:][a-zA-Z0-9_:]*$",
                                             max_length=200)]
    """The sample's name (Prometheus naming); a counter is read as its rate per second."""
    target_average_value: Quantity
    """The target per pod (> 0)."""

    @model_validator(mode="after")
    def _check(self) -> PodsMetric:
        if quantity_value(self.target_average_value) <= 0:
            raise fail(f"Invalid value: {self.target_average_value!r}: must be greater than 0",
                       "targetAverageValue")
        return self


_MEMBERS = {"Resource": "resource", "Prometheus": "prometheus", "Pods": "pods"}


class Metric(CamelModel):
    """One scaling signal: its ``type`` names the member that describes it."""

    type: Literal["Resource", "Prometheus", "Pods"]
    """``Resource`` (cpu/memory), ``Prometheus`` (custom query) or ``Pods`` (the app's own
    samples through the node-local metrics endpoint)."""
    resource: ResourceMetric | None = None
    """For type Resource."""
    prometheus: PrometheusMetric | None = None
    """For type Prometheus."""
    pods: PodsMetric | None = None
    """For type Pods."""

    @model_validator(mode="after")
    def _check(self) -> Metric:
        wanted = _MEMBERS[self.type]
        if getattr(self, wanted) is None:
            raise fail(f"required when type is {self.type}", wanted, reason="FieldValueRequired")
        for other in _MEMBERS.values():
            if other != wanted and getattr(self, other) is not None:
                raise fail(f"may not be set when type is {self.type}", other,
                           reason="FieldValueForbidden")
        return self


class ScalingPolicy(CamelModel):
    """At most ``value`` pods (or percent) of change per ``periodSeconds``."""

    type: Literal["Pods", "Percent"]
    """Count pods or percent of the current replicas."""
    value: PosInt
    """The amount."""
    period_seconds: int = Field(ge=1, le=1800)
    """The window the amount applies to."""


class ScalingRules(CamelModel):
    """How one direction (up or down) is damped and rate-limited."""

    stabilization_window_seconds: int | None = Field(default=None, ge=0, le=3600)
    """Recommendations considered (filled: 0 up, 300 down)."""
    select_policy: Literal["Max", "Min", "Disabled"] = "Max"
    """Which policy wins: the one allowing the most change, the least, or none at all."""
    policies: list[ScalingPolicy] | None = None
    """Rate limits (filled with HPA's defaults)."""


DEFAULT_SCALE_UP: dict[str, Any] = {
    "stabilizationWindowSeconds": 0, "selectPolicy": "Max", "policies": [
        {"type": "Percent", "value": 100, "periodSeconds": 15},
        {"type": "Pods", "value": 4, "periodSeconds": 15}]}
DEFAULT_SCALE_DOWN: dict[str, Any] = {
    "stabilizationWindowSeconds": 300, "selectPolicy": "Max", "policies": [
        {"type": "Percent", "value": 100, "periodSeconds": 15}]}


class Behavior(CamelModel):
    """Scaling rules per direction; absent parts get HPA's defaults."""

    scale_up: ScalingRules | None = None
    """Rules for scaling up."""
    scale_down: ScalingRules | None = None
    """Rules for scaling down."""

    @model_validator(mode="after")
    def _defaults(self) -> Behavior:
        for field, default in (("scale_up", DEFAULT_SCALE_UP),
                               ("scale_down", DEFAULT_SCALE_DOWN)):
            rules: ScalingRules | None = getattr(self, field)
            if rules is None:
                setattr(self, field, ScalingRules.model_validate(default))
                continue
            if rules.stabilization_window_seconds is None:
                rules.stabilization_window_seconds = default["stabilizationWindowSeconds"]
            if rules.policies is None:
                rules.policies = [ScalingPolicy.model_validate(p) for p in default["policies"]]
        return self


class ScheduleWindow(CamelModel):
    """Keep at least ``desiredReplicas`` from each ``start`` time until the next ``end``."""

    start: CronSchedule
    """When the window opens (cron)."""
    end: CronSchedule
    """When it closes (cron)."""
    desired_replicas: NonNegInt
    """Replicas kept at least while the window is open."""
    time_zone: TimeZone = "UTC"
    """The time zone of ``start`` and ``end``."""
    name: DNSLabel | None = None
    """A name shown in the status."""


class PinScalerSpec(CamelModel):
    """An autoscaler for one PinApp."""

    scale_target_ref: ScaleTargetRef
    """The PinApp scaled."""
    max_replicas: PosInt
    """The most replicas the scaler sets."""
    min_replicas: NonNegInt = 1
    """The fewest replicas the scaler sets."""
    metrics: list[Metric] | None = None
    """Scaling signals (default: 80% average CPU utilization, without schedules)."""
    behavior: Behavior = Field(default_factory=Behavior)
    """Damping and rate limits."""
    cooldown_seconds: NonNegInt = 60
    """The least time between two scaling actions."""
    tolerance: float = Field(default=0.1, ge=0, le=1)
    """Ratios of current to target within this distance of 1 cause no scaling."""
    schedules: list[ScheduleWindow] | None = None
    """Time windows with a replica floor."""

    @model_validator(mode="after")
    def _check(self) -> PinScalerSpec:
        if self.max_replicas < self.min_replicas:
            raise fail(f"Invalid value: {self.max_replicas}: must be greater than or equal to "
                       f"minReplicas ({self.min_replicas})", "maxReplicas")
        names: set[str] = set()
        for i, window in enumerate(self.schedules or ()):
            if window.desired_replicas > self.max_replicas:
                raise fail(f"Invalid value: {window.desired_replicas}: must be less than or "
                           f"equal to maxReplicas ({self.max_replicas})", "schedules", i,
                           "desiredReplicas")
            if window.name is not None:
                if window.name in names:
                    raise fail(f'Duplicate value: "{window.name}"', "schedules", i, "name",
                               reason="FieldValueDuplicate")
                names.add(window.name)
        if self.metrics is None and not self.schedules:
            self.metrics = [Metric(type="Resource", resource=ResourceMetric(
                name="cpu", target_average_utilization=80))]
        return self


class MetricValue(StatusModel):
    """A metric's last reading."""

    type: str | None = None
    """``Resource``, ``Prometheus`` or ``Pods``."""
    name: str | None = None
    """``cpu``, ``memory``, the query or the pods' metric."""
    current: SignedQuantity | None = None
    """The current value (utilization percent or quantity, e.g. ``"730m"``)."""
    target: SignedQuantity | None = None
    """The target."""
    desired_replicas: int | None = None
    """The replicas this metric proposes."""
    error: str | None = None
    """Why the metric has no value now (its source failed): it holds the current size."""


class PinScalerStatus(WorkloadStatusBase):
    """What the scaler saw and did last."""

    current_replicas: int | None = None
    """The target's replicas when last read."""
    desired_replicas: int | None = None
    """The replicas the scaler wants."""
    last_scale_time: str | None = None
    """When it last changed the target's replicas (RFC 3339)."""
    last_scale_reason: str | None = None
    """Why it last changed them (``metrics above target: 2 -> 4``)."""
    current_metrics: list[MetricValue] | None = None
    """The last reading of each metric."""
    active_schedules: list[str] | None = None
    """The schedule windows open now (names or indexes)."""


__all__ = [
    "DEFAULT_SCALE_DOWN", "DEFAULT_SCALE_UP", "Behavior", "Metric", "MetricValue",
    "PinScalerSpec", "PinScalerStatus", "PodsMetric", "PrometheusMetric", "ResourceMetric",
    "ScaleTargetRef", "ScalingPolicy", "ScalingRules", "ScheduleWindow",
]
