"""What each kind is charged: all its pods at once."""

from __future__ import annotations

import pytest

from pincompute.federation.admission.demand import DemandError, workload_demand

from .workloads import app, pod_spec, training

GI = 2**30


def test_an_app_is_replicas_times_its_pod_and_nothing_when_stopped() -> None:
    obj = app("a", replicas=3, cpu="500m", memory="2Gi")
    assert workload_demand(obj) == (1500, 6 * GI, 0, 3)
    obj["spec"]["stopped"] = True
    assert workload_demand(obj) == (0, 0, 0, 0)


def test_a_training_job_is_every_role_at_once() -> None:
    assert workload_demand(training("t", workers=3, cpu="2")) == (8000, 4 * GI, 0, 4)


def test_jobs_cron_jobs_and_groups() -> None:
    job = {"kind": "PinJob", "spec": {"parallelism": 4, "completions": 2,
                                      "template": {"spec": pod_spec("1", gpu=1)}}}
    assert workload_demand(job) == (2000, 2 * GI, 2, 2)
    job["spec"]["groups"] = [{"name": "a", "replicas": 2},
                             {"name": "b", "replicas": 1,
                              "template": {"spec": pod_spec("3", "1Gi")}}]
    assert workload_demand(job) == (5000, 3 * GI, 2, 3)
    cron = {"kind": "PinCronJob", "spec": {"jobTemplate": {"spec": {
        "parallelism": 2, "template": {"spec": pod_spec("1")}}}}}
    assert workload_demand(cron) == (2000, 2 * GI, 0, 2)


def test_limits_stand_in_for_missing_requests_and_sidecars_count() -> None:
    pod = {"kind": "PinPod", "spec": {"containers": [
        {"name": "main", "image": "i", "resources": {"limits": {"cpu": "2", "memory": "1Gi"}}},
        {"name": "side", "type": "sidecar", "image": "i",
         "resources": {"requests": {"cpu": "100m"}}}]}}
    assert workload_demand(pod) == (2100, GI, 0, 1)


def test_unreadable_requests_say_where() -> None:
    obj = app("a", cpu="lots")
    with pytest.raises(DemandError, match=r"spec.template.spec.containers\[0\]"):
        workload_demand(obj)
