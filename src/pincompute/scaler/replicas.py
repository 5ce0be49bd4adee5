"""Replicas one metric proposes: Kubernetes HPA's replica calculator, on aggregates.

Theory of operation
-------------------
Every metric proposes ``ceil(current * value / target)`` replicas; the scaler
takes the largest proposal (:mod:`.decision` applies windows, policies, cooldown
and bounds after that).  This module is that first step, pure arithmetic on
numbers the scaler already aggregated, with the same conservative treatment of
incomplete data as Kubernetes' ``replica_calculator.go``:

**Per-pod metrics** (:func:`pod_metric_replicas`: CPU and memory, utilization of
requests or average value, and the node-local custom metrics) are computed from
pods in three groups:

* *sampled* pods: ready (for CPU; any running pod for the others) and with a
  sample; ``ratio = Σ usage / Σ target`` over them (the target of a pod is its
  request * utilization %, or the target average value);
* *missing* pods: running without a sample yet;
* *unready* pods: not ready (CPU only), or not running yet (pending, every metric).

With neither missing nor unready pods the answer is ``current`` when
``|1 - ratio| ≤ tolerance``, else ``ceil(ratio * sampled)``.  Otherwise, as the
HPA does: on a scale-down (ratio < 1) a missing pod counts as using 100 % of its
request (``missing_usage``), on a scale-up as using nothing; unready pods count
as using nothing, and only on a scale-up; the ratio is computed again over the
larger set, and if the new ratio is within tolerance or points the other way
(the assumptions reversed the direction), or the new count would move against
the direction, the answer is ``current``.  So missing data can only damp a
change, never cause one.

**Whole-app metrics** (:func:`value_replicas`: a Prometheus query's result):
``Value`` targets give ``ceil(ratio * ready)`` with ``ratio = value / target``;
``AverageValue`` targets give ``ceil(value / target)``, with the tolerance
checked on ``value / (target * current)``.

A metric that cannot be computed raises :class:`MetricUnavailable`; the scaler
then holds the current size for that metric (see :mod:`.decision`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass


class MetricUnavailable(Exception):
    """A metric has no value to compute a proposal from (the message says why)."""


@dataclass(frozen=True, slots=True)
class PodGroups:
    """One metric's samples over an app's pods, already summed."""

    sampled: int
    """Pods counted: with a sample (and ready, for CPU)."""
    usage: float
    """Σ usage over the sampled pods (millicores, bytes, or the custom metric)."""
    target: float
    """Σ target over the sampled pods (request * utilization, or the average target)."""
    per_pod_target: float
    """The target of one pod (for missing and unready pods)."""
    missing_usage: float
    """What a missing pod is assumed to use on a scale-down (100 % of its request)."""
    missing: int = 0
    """Running pods without a sample."""
    unready: int = 0
    """Pods not ready (CPU) or not running yet."""


def within(ratio: float, tolerance: float) -> bool:
    return abs(1.0 - ratio) <= tolerance


def pod_metric_replicas(current: int, groups: PodGroups, *, tolerance: float) -> int:
    """The replicas a per-pod metric proposes (HPA's ``GetResourceReplicas``)."""
    if groups.sampled <= 0 or groups.target <= 0:
        raise MetricUnavailable("no ready pod has reported this metric yet")
    ratio = groups.usage / groups.target
    rebalance_unready = groups.unready > 0 and ratio > 1.0
    if not rebalance_unready and groups.missing == 0:
        if within(ratio, tolerance):
            return current
        return math.ceil(ratio * groups.sampled)
    count, usage, target = groups.sampled, groups.usage, groups.target
    if groups.missing and ratio != 1.0:
        count += groups.missing
        target += groups.missing * groups.per_pod_target
        if ratio < 1.0:
            usage += groups.missing * groups.missing_usage
    if rebalance_unready:
        count += groups.unready
        target += groups.unready * groups.per_pod_target
    new_ratio = usage / target
    if within(new_ratio, tolerance) or (ratio < 1.0 < new_ratio) or (ratio > 1.0 > new_ratio):
        return current
    proposal = math.ceil(new_ratio * count)
    if (new_ratio < 1.0 and proposal > current) or (new_ratio > 1.0 and proposal < current):
        return current
    return proposal


def value_replicas(current: int, value: float, target: float, *, average: bool, ready: int,
                   tolerance: float) -> int:
    """The replicas a whole-app value proposes (HPA's object/external metrics).

    ``average``: the target is per replica (``AverageValue``); else the value
    itself is compared with the target (``Value``), scaled by the ``ready`` pods.
    """
    if not math.isfinite(value):
        raise MetricUnavailable(f"the metric's value is {value}")
    if target <= 0:
        raise MetricUnavailable("the target must be greater than 0")
    if average:
        if current > 0 and within(value / (target * current), tolerance):
            return current
        return math.ceil(value / target)
    ratio = value / target
    if current == 0:
        return math.ceil(ratio)
    if within(ratio, tolerance):
        return current
    return math.ceil(ratio * max(ready, 1))


__all__ = ["MetricUnavailable", "PodGroups", "pod_metric_replicas", "value_replicas", "within"]
