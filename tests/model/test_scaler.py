"""PinScaler: HPA-like defaults, metric shapes, schedules."""

from __future__ import annotations

from typing import Any

import pytest

from ._support import only_cause, valid


def scaler(**spec: Any) -> dict[str, Any]:
    return {"scaleTargetRef": {"name": "web"}, "maxReplicas": 10, **spec}


def test_scaler_defaults() -> None:
    spec = valid("PinScaler", scaler())
    assert spec["scaleTargetRef"] == {"name": "web", "kind": "PinApp",
                                      "apiVersion": "pincompute.io/v1alpha1"}
    assert spec["minReplicas"] == 1
    assert spec["metrics"] == [{"type": "Resource", "resource": {
        "name": "cpu", "targetAverageUtilization": 80}}]
    assert spec["behavior"]["scaleUp"] == {"stabilizationWindowSeconds": 0, "selectPolicy": "Max",
                                           "policies": [
        {"type": "Percent", "value": 100, "periodSeconds": 15},
        {"type": "Pods", "value": 4, "periodSeconds": 15}]}
    assert spec["behavior"]["scaleDown"]["stabilizationWindowSeconds"] == 300
    assert spec["cooldownSeconds"] == 60
    assert spec["tolerance"] == 0.1


def test_custom_metrics_behavior_and_schedules() -> None:
    spec = valid("PinScaler", scaler(
        minReplicas=2,
        metrics=[{"type": "Resource", "resource": {"name": "memory", "targetAverageValue": "1Gi"}},
                 {"type": "Prometheus", "prometheus": {
                     "query": 'sum(rate(http_requests_total{app="web"}[1m]))',
                     "targetValue": "100"}}],
        behavior={"scaleDown": {"selectPolicy": "Disabled"}},
        schedules=[{"name": "business-hours", "start": "0 8 * * 1-5", "end": "0 18 * * 1-5",
                    "timeZone": "America/New_York", "desiredReplicas": 6}],
        tolerance=0))
    assert spec["metrics"][1]["prometheus"]["targetType"] == "AverageValue"
    assert spec["behavior"]["scaleDown"] == {"stabilizationWindowSeconds": 300,
                                             "selectPolicy": "Disabled", "policies": [
        {"type": "Percent", "value": 100, "periodSeconds": 15}]}
    assert spec["schedules"][0]["desiredReplicas"] == 6


def test_schedules_alone_get_no_default_metric() -> None:
    spec = valid("PinScaler", scaler(schedules=[
        {"start": "0 8 * * *", "end": "0 20 * * *", "desiredReplicas": 3}]))
    assert "metrics" not in spec
    assert spec["schedules"][0]["timeZone"] == "UTC"


@pytest.mark.parametrize(("spec", "field"), [
    ({"maxReplicas": 3}, "spec.scaleTargetRef"),
    ({"scaleTargetRef": {"name": "web"}}, "spec.maxReplicas"),
    (scaler(scaleTargetRef={"name": "web", "kind": "Deployment"}), "spec.scaleTargetRef.kind"),
    (scaler(scaleTargetRef={"name": "Web!"}), "spec.scaleTargetRef.name"),
    (scaler(minReplicas=-1), "spec.minReplicas"),
    (scaler(maxReplicas=0), "spec.maxReplicas"),
    (scaler(minReplicas=11), "spec.maxReplicas"),
    (scaler(metrics=[{"type": "Resource"}]), "spec.metrics[0].resource"),
    (scaler(metrics=[{"type": "Prometheus", "resource": {
        "name": "cpu", "targetAverageUtilization": 50}}]), "spec.metrics[0].prometheus"),
    (scaler(metrics=[{"type": "Resource", "resource": {
        "name": "cpu", "targetAverageUtilization": 50}, "prometheus": {
        "query": "up", "targetValue": 1}}]), "spec.metrics[0].prometheus"),
    (scaler(metrics=[{"type": "External"}]), "spec.metrics[0].type"),
    (scaler(metrics=[{"type": "Resource", "resource": {"name": "gpu",
                                                       "targetAverageUtilization": 50}}]),
     "spec.metrics[0].resource.name"),
    (scaler(metrics=[{"type": "Resource", "resource": {"name": "cpu"}}]),
     "spec.metrics[0].resource"),
    (scaler(metrics=[{"type": "Resource", "resource": {"name": "cpu",
                                                       "targetAverageUtilization": 0}}]),
     "spec.metrics[0].resource.targetAverageUtilization"),
    (scaler(metrics=[{"type": "Resource", "resource": {"name": "memory",
                                                       "targetAverageValue": "-1Gi"}}]),
     "spec.metrics[0].resource.targetAverageValue"),
    (scaler(metrics=[{"type": "Prometheus", "prometheus": {"query": "up", "targetValue": 0}}]),
     "spec.metrics[0].prometheus.targetValue"),
    (scaler(metrics=[{"type": "Prometheus", "prometheus": {"query": "", "targetValue": 1}}]),
     "spec.metrics[0].prometheus.query"),
    (scaler(metrics=[{"type": "Pods"}]), "spec.metrics[0].pods"),
    (scaler(metrics=[{"type": "Pods", "pods": {"metric": "rps", "targetAverageValue": "0"}}]),
     "spec.metrics[0].pods.targetAverageValue"),
    (scaler(metrics=[{"type": "Pods", "pods": {"metric": "not a name",
                                               "targetAverageValue": "1"}}]),
     "spec.metrics[0].pods.metric"),
    (scaler(metrics=[{"type": "Pods", "pods": {"metric": "rps", "targetAverageValue": "1"},
                      "resource": {"name": "cpu", "targetAverageUtilization": 50}}]),
     "spec.metrics[0].resource"),
    (scaler(behavior={"scaleUp": {"policies": [{"type": "Pods", "value": 0,
                                                "periodSeconds": 15}]}}),
     "spec.behavior.scaleUp.policies[0].value"),
    (scaler(behavior={"scaleUp": {"policies": [{"type": "Pods", "value": 1,
                                                "periodSeconds": 4000}]}}),
     "spec.behavior.scaleUp.policies[0].periodSeconds"),
    (scaler(behavior={"scaleDown": {"stabilizationWindowSeconds": -1}}),
     "spec.behavior.scaleDown.stabilizationWindowSeconds"),
    (scaler(cooldownSeconds=-1), "spec.cooldownSeconds"),
    (scaler(tolerance=2), "spec.tolerance"),
    (scaler(schedules=[{"start": "99 * * * *", "end": "0 1 * * *", "desiredReplicas": 1}]),
     "spec.schedules[0].start"),
    (scaler(schedules=[{"start": "0 * * * *", "end": "0 1 * * *", "desiredReplicas": 1,
                        "timeZone": "Moon/Base"}]), "spec.schedules[0].timeZone"),
    (scaler(schedules=[{"start": "0 * * * *", "end": "0 1 * * *", "desiredReplicas": 11}]),
     "spec.schedules[0].desiredReplicas"),
    (scaler(schedules=[{"start": "0 * * * *", "end": "0 1 * * *"}]),
     "spec.schedules[0].desiredReplicas"),
    (scaler(tier="reserved"), "spec.tier"),
])
def test_bad_scaler_names_field(spec: dict[str, Any], field: str) -> None:
    assert only_cause("PinScaler", spec).field == field
