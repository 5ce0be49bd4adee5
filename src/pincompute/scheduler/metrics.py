"""Prometheus metrics of the pod scheduler.

Theory of operation
-------------------
The scheduler reports into a :class:`prometheus_client.CollectorRegistry` it is
given (a manager's, so ``/metrics`` shows everything) or one of its own.  The
families mirror kube-scheduler's, so dashboards read the same way:

=========================================  =========  ================================
``scheduler_schedule_attempts_total``      counter    attempts by result: scheduled,
                                                      unschedulable, error, waiting
``scheduler_scheduling_attempt_seconds``   histogram  one decision (the synchronous
                                                      cycle, not the binding)
``scheduler_bindings_total``               counter    bindings written
``scheduler_binding_errors_total``         counter    bindings the API refused
``scheduler_preemption_victims_total``     counter    pods evicted by preemption
``scheduler_pending_pods{queue}``          gauge      active, backoff, unschedulable,
                                                      gated
``scheduler_equivalence_cache_total``      counter    class cache hits and misses
                                                      (``result``)
=========================================  =========  ================================
"""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

DECISION_BUCKETS: tuple[float, ...] = (
    0.00001, 0.00003, 0.0001, 0.0003, 0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0,
)


class SchedulerMetrics:
    def __init__(self, *, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        reg = self.registry
        self.attempts = Counter("scheduler_schedule_attempts_total",
                                "Scheduling attempts by result.", ["result"], registry=reg)
        self.attempt_seconds = Histogram("scheduler_scheduling_attempt_seconds",
                                         "Seconds one scheduling decision took.",
                                         buckets=DECISION_BUCKETS, registry=reg)
        self.bindings = Counter("scheduler_bindings_total", "Bindings written.", registry=reg)
        self.binding_errors = Counter("scheduler_binding_errors_total",
                                      "Bindings the API refused.", registry=reg)
        self.victims = Counter("scheduler_preemption_victims_total",
                               "Pods evicted by preemption.", registry=reg)
        self.pending = Gauge("scheduler_pending_pods", "Pending pods by queue.", ["queue"],
                             registry=reg)
        self.cache = Counter("scheduler_equivalence_cache_total",
                             "Equivalence-class cache lookups.", ["result"], registry=reg)
        self.scheduled = self.attempts.labels("scheduled")
        self.unschedulable = self.attempts.labels("unschedulable")
        self.errors = self.attempts.labels("error")
        self.waiting = self.attempts.labels("waiting")

    def watch_queue(self, counts: Callable[[], dict[str, int]]) -> None:
        """Report the queue's depths when scraped (no per-decision gauge updates)."""
        def depth(name: str) -> Callable[[], float]:
            return lambda: counts().get(name, 0)

        for name in ("active", "backoff", "unschedulable", "gated"):
            self.pending.labels(name).set_function(depth(name))
