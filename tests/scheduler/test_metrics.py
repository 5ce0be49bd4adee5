from __future__ import annotations

from prometheus_client import CollectorRegistry

from pincompute.scheduler.metrics import SchedulerMetrics


def test_families_and_queue_depth_on_scrape() -> None:
    reg = CollectorRegistry()
    m = SchedulerMetrics(registry=reg)
    depth = {"active": 3, "unschedulable": 1}
    m.watch_queue(lambda: depth)
    m.scheduled.inc()
    m.attempt_seconds.observe(0.0001)
    assert reg.get_sample_value("scheduler_schedule_attempts_total", {"result": "scheduled"}) == 1
    assert reg.get_sample_value("scheduler_pending_pods", {"queue": "active"}) == 3
    depth["active"] = 0
    assert reg.get_sample_value("scheduler_pending_pods", {"queue": "active"}) == 0
    assert reg.get_sample_value("scheduler_scheduling_attempt_seconds_count") == 1
