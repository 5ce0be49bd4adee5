"""The per-metric replica calculator, as a table (HPA's rules on aggregates)."""

from __future__ import annotations

import pytest

from pincompute.scaler.replicas import (
    MetricUnavailable,
    PodGroups,
    pod_metric_replicas,
    value_replicas,
)


def cpu(sampled: int, used_m: float, *, request_m: float = 100, util: float = 50,
        missing: int = 0, unready: int = 0) -> PodGroups:
    per_pod_target = request_m * util / 100
    return PodGroups(sampled=sampled, usage=used_m, target=sampled * per_pod_target,
                     per_pod_target=per_pod_target, missing_usage=request_m,
                     missing=missing, unready=unready)


@pytest.mark.parametrize(("current", "groups", "expected", "why"), [
    (3, cpu(3, 150), 3, "exactly on target"),
    (3, cpu(3, 160), 3, "+6.7%: within the 10% tolerance"),
    (3, cpu(3, 300), 6, "twice the target: twice the pods"),
    (3, cpu(3, 50), 1, "a third of the target: a third of the pods (rounded up)"),
    (4, cpu(4, 221), 5, "just over the tolerance: rounded up"),
    # missing pods: assumed 0 on a scale-up, 100% of the request on a scale-down
    (4, cpu(2, 200, missing=2), 4, "scale-up damped: (200+0)/(4*50)=1.0 -> hold"),
    (4, cpu(2, 300, missing=2), 6, "scale-up with missing: 300/200 -> ceil(1.5*4)"),
    (4, cpu(2, 20, missing=2), 4, "scale-down reversed by missing at 100%: hold"),
    (8, cpu(4, 20, missing=1), 3, "scale-down with one missing at 100%: 120/250*5"),
    # unready pods: ignored on a scale-down, counted as 0 on a scale-up
    (4, cpu(2, 300, unready=2), 6, "scale-up: unready as 0 -> 300/200*4"),
    (4, cpu(2, 110, unready=2), 4, "scale-up reversed by unready at 0: hold"),
    (4, cpu(2, 20, unready=2), 1, "scale-down: unready ignored -> ceil(0.2*2)"),
])
def test_pod_metric_replicas(current: int, groups: PodGroups, expected: int, why: str) -> None:
    assert pod_metric_replicas(current, groups, tolerance=0.1) == expected, why


def test_no_sample_at_all_is_unavailable() -> None:
    with pytest.raises(MetricUnavailable):
        pod_metric_replicas(3, cpu(0, 0, missing=3), tolerance=0.1)


def test_tolerance_is_configurable() -> None:
    assert pod_metric_replicas(3, cpu(3, 160), tolerance=0.0) == 4
    assert pod_metric_replicas(3, cpu(3, 250), tolerance=0.7) == 3


@pytest.mark.parametrize(("current", "value", "target", "average", "ready", "expected"), [
    (2, 100.0, 50.0, True, 2, 2),      # 100 per 2 replicas = 50 each: on target
    (2, 300.0, 50.0, True, 2, 6),      # 300 / 50 per replica
    (4, 30.0, 50.0, True, 4, 1),       # scale down to ceil(0.6)
    (3, 105.0, 100.0, False, 3, 3),    # Value target within tolerance
    (3, 200.0, 100.0, False, 3, 6),    # Value: ratio 2 * ready 3
    (0, 200.0, 100.0, False, 0, 2),    # from zero: ceil(ratio)
])
def test_value_replicas(current: int, value: float, target: float, average: bool, ready: int,
                        expected: int) -> None:
    assert value_replicas(current, value, target, average=average, ready=ready,
                          tolerance=0.1) == expected


def test_a_nan_value_is_unavailable() -> None:
    with pytest.raises(MetricUnavailable):
        value_replicas(2, float("nan"), 1.0, average=True, ready=2, tolerance=0.1)
