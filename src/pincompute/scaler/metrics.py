"""The scaler's Prometheus metrics (in the manager's registry: the platform's ``/metrics``).

Per scaler: the replicas it sees and wants and each metric's value and target
(gauges, labelled ``namespace``/``scaler``, removed when the scaler goes);
together: evaluations and their duration, scalings by direction, metric source
failures by type.  The registry is the manager's own (never the process-global
one), so two regions in one process do not collide.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

NS = "pincompute_scaler"


class ScalerMetrics:
    def __init__(self, *, registry: CollectorRegistry | None = None) -> None:
        reg = registry if registry is not None else CollectorRegistry(auto_describe=True)
        self.registry = reg
        self.current = Gauge("current_replicas", "Replicas of the scaled PinApp.",
                             ["namespace", "scaler"], namespace=NS, registry=reg)
        self.desired = Gauge("desired_replicas", "Replicas the scaler wants.",
                             ["namespace", "scaler"], namespace=NS, registry=reg)
        self.metric_value = Gauge("metric_value", "A metric's current value.",
                                  ["namespace", "scaler", "metric"], namespace=NS,
                                  registry=reg)
        self.metric_target = Gauge("metric_target", "A metric's target.",
                                   ["namespace", "scaler", "metric"], namespace=NS,
                                   registry=reg)
        self.scalings = Counter("scalings", "Changes of a PinApp's replicas by a scaler.",
                                ["direction"], namespace=NS, registry=reg)
        self.failures = Counter("metric_failures", "Metric readings that failed.", ["type"],
                                namespace=NS, registry=reg)
        self.evaluation = Histogram("evaluation_seconds", "Time to evaluate one scaler.",
                                    namespace=NS, registry=reg,
                                    buckets=(1e-5, 1e-4, 1e-3, 1e-2, 0.1, 1.0))

    def forget(self, namespace: str, scaler: str, metrics: list[str]) -> None:
        for gauge in (self.current, self.desired):
            try:
                gauge.remove(namespace, scaler)
            except KeyError:
                pass
        for name in metrics:
            for gauge in (self.metric_value, self.metric_target):
                try:
                    gauge.remove(namespace, scaler, name)
                except KeyError:
                    pass


__all__ = ["ScalerMetrics"]
