"""Prometheus metrics of the operations controllers.

Theory of operation
-------------------
One :class:`OpsMetrics` per registry (:func:`ops_metrics`): an embedded region runs
one remediation controller per member cluster in one manager, so the families
are made once per registry and every series carries the ``cluster`` label.

==================================================  =========  ==============================
``pincompute_remediation_actions_total``            counter    actions taken, by ``action``
                                                               (cordon, drain, replace,
                                                               recover, give-up)
``pincompute_remediation_refusals_total``           counter    actions not taken, by
                                                               ``reason`` (BreakerOpen,
                                                               RateLimited, BudgetExceeded,
                                                               NoPool)
``pincompute_remediation_unhealthy_nodes``          gauge      nodes showing a signal now
``pincompute_remediation_breaker_state``            gauge      per ``scope``: 0 Closed,
                                                               1 Open, 2 CoolingDown
``pincompute_remediation_reaction_seconds``         histogram  first signal → first action
``pincompute_remediation_gave_up_nodes``            gauge      nodes left to a person
``pincompute_rotation_nodes_replaced_total``        counter    nodes a Rotation replaced
``pincompute_rotation_blocked_evictions_total``     counter    evictions a budget refused
``pincompute_autoscaler_nodes_total``               counter    nodes added or removed by the
                                                               pool autoscaler, by ``pool``
                                                               and ``direction`` (up, down)
``pincompute_autoscaler_unschedulable_pods``        gauge      pods waiting for capacity
==================================================  =========  ==============================
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from .breaker import BreakerState

BREAKER_VALUES = {BreakerState.CLOSED: 0, BreakerState.OPEN: 1, BreakerState.COOLING: 2}


@dataclass(frozen=True, slots=True)
class OpsMetrics:
    actions: Counter
    refusals: Counter
    unhealthy: Gauge
    breaker: Gauge
    reaction: Histogram
    gave_up: Gauge
    rotation_replaced: Counter
    rotation_blocked: Counter
    scaled: Counter
    unschedulable: Gauge


_by_registry: weakref.WeakKeyDictionary[CollectorRegistry, OpsMetrics] = \
    weakref.WeakKeyDictionary()


def ops_metrics(registry: CollectorRegistry) -> OpsMetrics:
    """The ops families in ``registry`` (made on first use)."""
    metrics = _by_registry.get(registry)
    if metrics is None:
        metrics = OpsMetrics(
            actions=Counter("pincompute_remediation_actions_total",
                            "Remediation actions taken", ["cluster", "action"],
                            registry=registry),
            refusals=Counter("pincompute_remediation_refusals_total",
                             "Remediation actions refused by a safeguard",
                             ["cluster", "reason"], registry=registry),
            unhealthy=Gauge("pincompute_remediation_unhealthy_nodes",
                            "Nodes showing an unhealthy signal", ["cluster"],
                            registry=registry),
            breaker=Gauge("pincompute_remediation_breaker_state",
                          "Circuit breaker per scope: 0 Closed, 1 Open, 2 CoolingDown",
                          ["cluster", "scope"], registry=registry),
            reaction=Histogram("pincompute_remediation_reaction_seconds",
                               "Seconds from a node's first unhealthy signal to the first "
                               "action", ["cluster"], registry=registry,
                               buckets=(0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600)),
            gave_up=Gauge("pincompute_remediation_gave_up_nodes",
                          "Nodes remediation gave up on (left to a person)", ["cluster"],
                          registry=registry),
            rotation_replaced=Counter("pincompute_rotation_nodes_replaced_total",
                                      "Nodes replaced by rotations", ["cluster", "rotation"],
                                      registry=registry),
            rotation_blocked=Counter("pincompute_rotation_blocked_evictions_total",
                                     "Evictions a disruption budget refused during a rotation",
                                     ["cluster", "rotation"], registry=registry),
            scaled=Counter("pincompute_autoscaler_nodes_total",
                           "Nodes the pool autoscaler added (up) or removed (down)",
                           ["cluster", "pool", "direction"], registry=registry),
            unschedulable=Gauge("pincompute_autoscaler_unschedulable_pods",
                                "Pods waiting for capacity", ["cluster"], registry=registry))
        _by_registry[registry] = metrics
    return metrics


__all__ = ["BREAKER_VALUES", "OpsMetrics", "ops_metrics"]
