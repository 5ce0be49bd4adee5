"""The gateway's Prometheus series, served at ``/metrics``.

Each app has its own registry (several gateways may live in one test process): request
latency by method, route template and code; requests in flight; requests refused by a rate
limit, by budget; open watch streams.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class ApiMetrics:
    """The gateway's Prometheus series (in their own registry: one per app)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self.latency = Histogram(
            "pincompute_api_request_duration_seconds", "Request latency by route template",
            ["method", "route", "code"], registry=self.registry,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10))
        self.in_flight = Gauge("pincompute_api_requests_in_flight",
                               "Requests being served", registry=self.registry)
        self.rate_limited = Counter("pincompute_api_rate_limited_total",
                                    "Requests refused by a rate limit, by budget",
                                    ["budget"], registry=self.registry)
        self.watches = Gauge("pincompute_api_watches", "Open watch streams",
                             registry=self.registry)
