"""Prometheus metrics of the controller runtime.

Theory of operation
-------------------
A :class:`RuntimeMetrics` owns one :class:`prometheus_client.CollectorRegistry`
and the metric families every part of the runtime reports into: work queues,
controllers, informers and leader election.  A manager creates one (or is given
one) and hands it down, so every controller it runs reports into the same
registry, and the gateway's ``/metrics`` can expose it with
:func:`prometheus_client.generate_latest`.

The registry is per instance, never the process-global ``REGISTRY``: two managers
in one process (an embedded region runs several) or two tests in one session must
not collide on metric names.  A caller that wants the global registry passes it.

Every series is labelled by the controller name (a work queue is named after the
controller that owns it); informer series are labelled by resource.  Parts of the
runtime take ``metrics=None`` to mean "report nothing", which keeps hot paths free
of metric calls in benchmarks that do not want them.

Families (names as Prometheus sees them, before an optional ``namespace_`` prefix):

========================================  =========  ======================================
``workqueue_depth``                       gauge      keys waiting to be processed
``workqueue_adds_total``                  counter    keys newly queued (duplicates excluded)
``workqueue_retries_total``               counter    rate-limited re-adds (failures, requeue)
``workqueue_queue_duration_seconds``      histogram  time a key waited before a worker took it
``workqueue_work_duration_seconds``       histogram  time a worker held a key
``reconcile_total{result}``               counter    reconciles by result: success, error,
                                                     requeue, requeue_after
``reconcile_errors_total``                counter    reconciles that raised
``reconcile_duration_seconds``            histogram  reconcile latency
``controller_active_workers``             gauge      workers inside a reconcile now
``controller_max_concurrent_reconciles``  gauge      configured workers
``informer_events_total{resource,type}``  counter    watch events applied to the cache
``informer_relists_total{resource}``      counter    full lists (first list and after Gone)
``leader_election_is_leader{lease}``      gauge      1 while this process holds the lease
========================================  =========  ======================================
"""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

# Reconciles range from sub-millisecond cache-only passes to multi-second ones that
# talk to slow APIs; the buckets span that range roughly evenly on a log scale.
RECONCILE_BUCKETS: tuple[float, ...] = (
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
    30.0, 60.0,
)
# Queue waits include deliberate back-off delays, so they reach further.
QUEUE_BUCKETS: tuple[float, ...] = (
    0.0001, 0.001, 0.01, 0.1, 1.0, 10.0, 100.0, 1000.0,
)

RESULT_SUCCESS = "success"
RESULT_ERROR = "error"
RESULT_REQUEUE = "requeue"
RESULT_REQUEUE_AFTER = "requeue_after"


@dataclass(frozen=True, slots=True)
class QueueMetrics:
    """The work-queue series of one queue, bound to its label (avoids label lookups per call)."""

    depth: Gauge
    adds: Counter
    retries: Counter
    queue_duration: Histogram
    work_duration: Histogram


class RuntimeMetrics:
    """The runtime's metric families in one registry."""

    def __init__(self, *, registry: CollectorRegistry | None = None,
                 namespace: str = "") -> None:
        self.registry = registry if registry is not None else CollectorRegistry(auto_describe=True)
        ns = namespace
        reg = self.registry
        self.workqueue_depth = Gauge(
            "workqueue_depth", "Keys waiting in the work queue.", ["controller"],
            namespace=ns, registry=reg)
        self.workqueue_adds = Counter(
            "workqueue_adds_total", "Keys newly added to the work queue.", ["controller"],
            namespace=ns, registry=reg)
        self.workqueue_retries = Counter(
            "workqueue_retries_total", "Rate-limited re-adds to the work queue.", ["controller"],
            namespace=ns, registry=reg)
        self.workqueue_queue_duration = Histogram(
            "workqueue_queue_duration_seconds", "Seconds a key waited before processing.",
            ["controller"], buckets=QUEUE_BUCKETS, namespace=ns, registry=reg)
        self.workqueue_work_duration = Histogram(
            "workqueue_work_duration_seconds", "Seconds a worker held a key.",
            ["controller"], buckets=RECONCILE_BUCKETS, namespace=ns, registry=reg)
        self.reconcile_total = Counter(
            "reconcile_total", "Reconciles by result.", ["controller", "result"],
            namespace=ns, registry=reg)
        self.reconcile_errors = Counter(
            "reconcile_errors_total", "Reconciles that raised.", ["controller"],
            namespace=ns, registry=reg)
        self.reconcile_duration = Histogram(
            "reconcile_duration_seconds", "Reconcile latency in seconds.", ["controller"],
            buckets=RECONCILE_BUCKETS, namespace=ns, registry=reg)
        self.active_workers = Gauge(
            "controller_active_workers", "Workers inside a reconcile.", ["controller"],
            namespace=ns, registry=reg)
        self.max_concurrent_reconciles = Gauge(
            "controller_max_concurrent_reconciles", "Configured workers.", ["controller"],
            namespace=ns, registry=reg)
        self.informer_events = Counter(
            "informer_events_total", "Watch events applied to informer caches.",
            ["resource", "type"], namespace=ns, registry=reg)
        self.informer_relists = Counter(
            "informer_relists_total", "Full lists made by informers.", ["resource"],
            namespace=ns, registry=reg)
        self.leader_election_is_leader = Gauge(
            "leader_election_is_leader", "1 while this process holds the lease.", ["lease"],
            namespace=ns, registry=reg)
        self._namespace = ns

    def queue(self, controller: str) -> QueueMetrics:
        """The work-queue series of ``controller``'s queue."""
        return QueueMetrics(
            depth=self.workqueue_depth.labels(controller),
            adds=self.workqueue_adds.labels(controller),
            retries=self.workqueue_retries.labels(controller),
            queue_duration=self.workqueue_queue_duration.labels(controller),
            work_duration=self.workqueue_work_duration.labels(controller),
        )

    def sample(self, name: str, labels: dict[str, str] | None = None) -> float | None:
        """One sample's current value (``None`` if absent), for tests and health checks.

        ``name`` is the exposition name without the namespace prefix, e.g.
        ``"workqueue_adds_total"`` or ``"reconcile_duration_seconds_count"``.
        """
        full = f"{self._namespace}_{name}" if self._namespace else name
        return self.registry.get_sample_value(full, labels or {})
