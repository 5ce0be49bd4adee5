from __future__ import annotations

import pytest

from pincompute.scheduler.resources import (
    PodSpecError,
    cpu_quantity,
    pod_requests,
    unit_quantity,
)


def test_requests_sum_containers_and_sidecars_and_take_larger_init() -> None:
    spec = {
        "containers": [{"resources": {"requests": {"cpu": "100m", "memory": "64Mi"}}},
                       {"resources": {"requests": {"cpu": "0.2", "memory": "1Gi"}}}],
        "initContainers": [
            {"restartPolicy": "Always", "resources": {"requests": {"cpu": "50m"}}},
            {"resources": {"requests": {"cpu": "2", "memory": "100Mi"}}},
        ],
        "overhead": {"cpu": "10m"},
    }
    cpu, mem, gpu = pod_requests(spec)
    # containers 300m + sidecar 50m = 350m; the init container needs 2 + the sidecar before it.
    assert cpu == 2050 + 10
    assert mem == 64 * 2**20 + 2**30
    assert gpu == 0


def test_limits_stand_in_for_missing_requests() -> None:
    spec = {"containers": [{"resources": {"limits": {"cpu": "1", "nvidia.com/gpu": "2"}}}]}
    assert pod_requests(spec) == (1000, 0, 2)


def test_quantities_parse_to_integers_and_name_the_field_when_bad() -> None:
    assert cpu_quantity("250m", "cpu") == 250
    assert cpu_quantity(2, "cpu") == 2000
    assert unit_quantity("1Ki", "memory") == 1024
    with pytest.raises(PodSpecError, match=r"spec\.containers\[0\]\.resources\.requests\.cpu"):
        pod_requests({"containers": [{"resources": {"requests": {"cpu": "lots"}}}]})
