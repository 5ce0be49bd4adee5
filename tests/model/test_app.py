"""PinApp: Deployment-like defaults, rollout strategy, and the example manifest."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from pincompute.model import registry

from ._support import TEMPLATE, causes, only_cause, pod, valid

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "pinapp.yaml"


def app(**spec: Any) -> dict[str, Any]:
    return {"template": TEMPLATE, **spec}


def test_pinapp_defaults() -> None:
    spec = valid("PinApp", app())
    assert spec["replicas"] == 1
    assert spec["strategy"] == {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"},
        "zoneRollout": {"enabled": True, "soakSeconds": 0},
    }
    assert spec["template"]["spec"]["restartPolicy"] == "Always"
    assert (spec["minReadySeconds"], spec["revisionHistoryLimit"],
            spec["progressDeadlineSeconds"]) == (0, 10, 600)
    assert spec["paused"] is False and spec["stopped"] is False
    assert spec["tier"] == "ondemand"


def test_recreate_has_no_rolling_update() -> None:
    spec = valid("PinApp", app(strategy={"type": "Recreate"}))
    assert "rollingUpdate" not in spec["strategy"]


def test_zone_rollout_options() -> None:
    spec = valid("PinApp", app(strategy={"zoneRollout": {"order": ["zone-b", "zone-a"],
                                                         "soakSeconds": 60}}))
    assert spec["strategy"]["zoneRollout"] == {"enabled": True, "order": ["zone-b", "zone-a"],
                                               "soakSeconds": 60}


@pytest.mark.parametrize(("spec", "field"), [
    ({"replicas": -1}, "spec.replicas"),
    ({"replicas": "3"}, "spec.replicas"),
    ({"replicas": 2.5}, "spec.replicas"),
    ({"paused": "yes"}, "spec.paused"),
    ({"selector": {"matchLabels": {"a": "b"}}}, "spec.selector"),
    ({"strategy": {"type": "BlueGreen"}}, "spec.strategy.type"),
    ({"strategy": {"type": "Recreate", "rollingUpdate": {}}}, "spec.strategy.rollingUpdate"),
    ({"strategy": {"rollingUpdate": {"maxSurge": 0, "maxUnavailable": "0%"}}},
     "spec.strategy.rollingUpdate.maxUnavailable"),
    ({"strategy": {"rollingUpdate": {"maxSurge": "150%"}}},
     "spec.strategy.rollingUpdate.maxSurge"),
    ({"strategy": {"zoneRollout": {"soakSeconds": -5}}},
     "spec.strategy.zoneRollout.soakSeconds"),
    ({"disruptionBudget": {}}, "spec.disruptionBudget"),
    ({"disruptionBudget": {"minAvailable": 1, "maxUnavailable": 1}}, "spec.disruptionBudget"),
    ({"progressDeadlineSeconds": 0}, "spec.progressDeadlineSeconds"),
])
def test_bad_app_names_field(spec: dict[str, Any], field: str) -> None:
    assert only_cause("PinApp", app(**spec)).field == field


def test_template_required_and_restart_policy_always() -> None:
    assert only_cause("PinApp", {"replicas": 2}).field == "spec.template"
    cause = only_cause("PinApp", {"template": {"spec": {**pod(), "restartPolicy": "Never"}}})
    assert cause.field == "spec.template.spec.restartPolicy"
    assert cause.reason == "FieldValueNotSupported"


def test_template_errors_have_full_paths() -> None:
    template = {"metadata": {"labels": {"app": "web"}, "name": "x"},
                "spec": pod(resources={"requests": {"cpu": "-100m"}})}
    assert set(causes("PinApp", {"template": template})) == {
        "spec.template.metadata.name",
        "spec.template.spec.containers[0].resources.requests.cpu",
    }


def test_example_pinapp_validates() -> None:
    obj = yaml.safe_load(EXAMPLE.read_text())
    assert obj["kind"] == "PinApp"
    out = registry.validate(obj)
    spec = out["spec"]
    assert spec["replicas"] == 3
    containers = spec["template"]["spec"]["containers"]
    assert [c["type"] for c in containers] == ["main", "sidecar"]
    assert containers[0]["command"][:2] == ["sh", "-c"]
    assert "http.server 8080 --bind \"$PINCOMPUTE_POD_IP\"" in containers[0]["command"][2]
    assert "readinessProbe" in containers[0]
    assert spec["placement"]["spread"][0]["topology"] == "zone"
