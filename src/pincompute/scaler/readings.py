"""One scaler's metric readings: each metric's value, target and proposed replicas.

Theory of operation
-------------------
:func:`read_metrics` turns a scaler's ``metrics`` into :class:`Reading` s, one
per metric, from two sources: the :class:`~.usageindex.AppUsage` sums of the
scaled app (``Resource`` and ``Pods`` metrics, no I/O) and the
:class:`~.prometheus.PrometheusSource` (``Prometheus`` metrics).  Pods the app
should have but no node reports yet (``status.replicas`` minus the pods
reported) count as not running: unready, for every metric, as pending pods are
in the HPA.  A pod's request for missing and unready pods is the average of the
reporting pods', else the app template's.

A reading whose source fails carries the error and proposes nothing; the
scaler then holds the current size for that metric (:func:`combine`): others
may still scale up, never down, and with every metric failing nothing moves.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pincompute.kube.quantity import QuantityError, cpu_millis, to_int
from pincompute.model.base import quantity_value
from pincompute.model.scaler import Metric

from .prometheus import PrometheusSource
from .replicas import MetricUnavailable, PodGroups, pod_metric_replicas, value_replicas
from .usageindex import AppUsage


@dataclass(frozen=True, slots=True)
class Reading:
    type: str
    name: str
    target: str
    current: str | None = None
    value: float | None = None
    """The current value as a number (for the scaler's /metrics)."""
    proposal: int | None = None
    error: str | None = None

    def status(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": self.type, "name": self.name, "target": self.target}
        if self.current is not None:
            out["current"] = self.current
        if self.proposal is not None:
            out["desiredReplicas"] = self.proposal
        if self.error is not None:
            out["error"] = self.error
        return out


@dataclass(frozen=True, slots=True)
class AppState:
    """What the readings need of the scaled app."""

    current: int
    """``spec.replicas``."""
    pods: int
    """Pods it has now (``status.replicas``, else ``spec.replicas``)."""
    ready: int
    cpu_request: int
    """Millicores one pod requests (from the template)."""
    memory_request: int


def app_state(app: Mapping[str, Any]) -> AppState:
    spec = app.get("spec") or {}
    status = app.get("status") or {}
    current = int(spec.get("replicas", 1) or 0)
    cpu = mem = 0
    for c in ((spec.get("template") or {}).get("spec") or {}).get("containers") or ():
        res = c.get("resources") or {}
        req = {**(res.get("limits") or {}), **(res.get("requests") or {})}
        try:
            cpu += cpu_millis(req["cpu"]) if "cpu" in req else 0
            mem += to_int(req["memory"]) if "memory" in req else 0
        except QuantityError:
            continue
    pods = status.get("replicas")
    return AppState(current=current, pods=int(pods) if pods is not None else current,
                    ready=int(status.get("readyReplicas") or 0), cpu_request=cpu,
                    memory_request=mem)


def quantity(value: float, *, milli: bool = False) -> str:
    """A number as a Kubernetes quantity string (``"730m"``, ``"12"``)."""
    if milli:
        return f"{round(value)}m"
    if value == int(value) and abs(value) < 1e15:
        return str(int(value))
    return f"{round(value * 1000)}m"


def _resource(metric: Metric, usage: AppUsage | None, app: AppState, pending: int,
              tolerance: float) -> Reading:
    r = metric.resource
    assert r is not None
    cpu = r.name == "cpu"
    util = r.target_average_utilization
    target_text = str(util) if util is not None else str(r.target_average_value)
    name = r.name
    if usage is None:
        raise MetricUnavailable(f"no node reports {name} use of the app's pods yet")
    if cpu:
        sampled, used, requested = usage.cpu_ready, usage.cpu_used, usage.cpu_requested
        missing, unready = usage.cpu_missing, usage.cpu_unready + pending
        per_pod_request = requested / sampled if sampled and requested else app.cpu_request
    else:
        sampled, used, requested = usage.mem_sampled, usage.mem_used, usage.mem_requested
        missing, unready = usage.mem_missing, pending
        per_pod_request = requested / sampled if sampled and requested else app.memory_request
    if sampled <= 0:
        raise MetricUnavailable(f"no ready pod has reported its {name} use yet")
    if util is not None:
        if requested <= 0:
            raise MetricUnavailable(f"missing request for {name}: utilization needs one")
        groups = PodGroups(sampled=sampled, usage=used, target=requested * util / 100,
                           per_pod_target=per_pod_request * util / 100,
                           missing_usage=per_pod_request, missing=missing, unready=unready)
        value = used * 100 / requested
        current = str(round(value))
    else:
        assert r.target_average_value is not None
        per_pod = float(quantity_value(r.target_average_value)) * (1000 if cpu else 1)
        groups = PodGroups(sampled=sampled, usage=used, target=sampled * per_pod,
                           per_pod_target=per_pod, missing_usage=per_pod, missing=missing,
                           unready=unready)
        value = used / sampled / (1000 if cpu else 1)
        current = quantity(used / sampled, milli=True) if cpu else quantity(round(value))
    proposal = pod_metric_replicas(app.current, groups, tolerance=tolerance)
    return Reading("Resource", name, target_text, current, value, proposal)


def _pods(metric: Metric, usage: AppUsage | None, app: AppState, pending: int,
          tolerance: float) -> Reading:
    p = metric.pods
    assert p is not None
    have = usage.custom.get(p.metric) if usage is not None else None
    if usage is None or not have or have[0] <= 0:
        raise MetricUnavailable(f"no pod of the app reports {p.metric!r} to its node yet")
    target = float(quantity_value(p.target_average_value))
    n, total = int(have[0]), float(have[1])
    groups = PodGroups(sampled=n, usage=total, target=n * target, per_pod_target=target,
                       missing_usage=target, missing=usage.custom_missing(p.metric),
                       unready=pending)
    proposal = pod_metric_replicas(app.current, groups, tolerance=tolerance)
    return Reading("Pods", p.metric, str(p.target_average_value), quantity(total / n),
                   total / n, proposal)


async def _prometheus(metric: Metric, app: AppState, source: PrometheusSource,
                      tolerance: float) -> Reading:
    q = metric.prometheus
    assert q is not None
    value = await source.query(q.query, server=q.server_address)
    target = float(quantity_value(q.target_value))
    average = q.target_type == "AverageValue"
    proposal = value_replicas(app.current, value, target, average=average,
                              ready=app.ready or app.current, tolerance=tolerance)
    shown = value / app.current if average and app.current else value
    return Reading("Prometheus", q.query, str(q.target_value), quantity(shown), value, proposal)


def _describe(metric: Metric) -> tuple[str, str]:
    if metric.resource is not None:
        r = metric.resource
        return r.name, (str(r.target_average_utilization)
                        if r.target_average_utilization is not None
                        else str(r.target_average_value))
    if metric.pods is not None:
        return metric.pods.metric, str(metric.pods.target_average_value)
    assert metric.prometheus is not None
    return metric.prometheus.query, str(metric.prometheus.target_value)


async def read_metrics(metrics: Sequence[Metric], *, usage: AppUsage | None, app: AppState,
                       source: PrometheusSource, tolerance: float) -> list[Reading]:
    """Every metric's reading (errors included, never raised)."""
    pending = max(0, app.pods - (usage.reported if usage is not None else 0))
    out = []
    for metric in metrics:
        try:
            if metric.type == "Resource":
                out.append(_resource(metric, usage, app, pending, tolerance))
            elif metric.type == "Pods":
                out.append(_pods(metric, usage, app, pending, tolerance))
            else:
                out.append(await _prometheus(metric, app, source, tolerance))
        except MetricUnavailable as exc:
            name, target = _describe(metric)
            out.append(Reading(metric.type, name, target, error=str(exc)))
    return out


def combine(readings: Sequence[Reading], current: int) -> tuple[int | None, bool]:
    """The largest proposal, a failed metric counting as ``current``; and whether every
    metric failed.  (None, False) without metrics."""
    if not readings:
        return None, False
    proposals = [r.proposal if r.proposal is not None else current for r in readings]
    all_failed = all(r.error is not None for r in readings)
    best = max(proposals)
    return (best if math.isfinite(best) else current), all_failed


__all__ = ["AppState", "Reading", "app_state", "combine", "quantity", "read_metrics"]
