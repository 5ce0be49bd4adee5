"""Tier and placement, as every workload carries them."""

from __future__ import annotations

from typing import Any

import pytest

from ._support import TEMPLATE, only_cause, valid


def app(**spec: Any) -> dict[str, Any]:
    return {"template": TEMPLATE, **spec}


@pytest.mark.parametrize("kind", ["PinPod", "PinApp", "PinJob", "PinCronJob", "PinTrainingJob"])
def test_every_workload_defaults_tier_and_placement(kind: str) -> None:
    spec = {
        "PinPod": {"containers": [{"name": "main", "image": "x"}]},
        "PinApp": app(),
        "PinJob": app(),
        "PinCronJob": {"schedule": "@hourly", "jobTemplate": {"spec": app()}},
        "PinTrainingJob": {"framework": "pytorch", "roles": {"worker": app()}},
    }[kind]
    out = valid(kind, spec)
    assert out["tier"] == "ondemand"
    assert out["placement"] == {}


def test_full_placement_round_trips() -> None:
    placement = {
        "zones": ["zone-a", "zone-b"],
        "clusterSelector": {"matchLabels": {"env": "prod"}},
        "clusterAffinity": {"clusterNames": ["zone-a-1"], "exclude": ["zone-b-2"],
                            "preferred": [{"weight": 10, "selector": {"matchLabels": {"a": "b"}}}]},
        "tolerations": [{"key": "gpu", "operator": "Exists", "effect": "NoSchedule"}],
        "spread": [{"topology": "zone", "maxSkew": 1, "minGroups": 2}],
        "hardware": ["nvidia-a100"],
        "replicaScheduling": {"type": "Divided", "weighting": "Static", "staticWeights": [
            {"weight": 2, "clusterNames": ["zone-a-1"]}]},
    }
    out = valid("PinApp", app(tier="reserved", placement=placement))
    assert out["tier"] == "reserved"
    assert out["placement"]["spread"][0]["whenUnsatisfiable"] == "ScheduleAnyway"
    assert out["placement"]["tolerations"][0] == {"key": "gpu", "operator": "Exists",
                                                  "effect": "NoSchedule"}


@pytest.mark.parametrize(("spec", "field"), [
    ({"tier": "gold"}, "spec.tier"),
    ({"tier": None}, "spec.tier"),
    ({"placement": {"zones": "zone-a"}}, "spec.placement.zones"),
    ({"placement": {"zones": ["zone-a", "zone-a"]}}, "spec.placement.zones[1]"),
    ({"placement": {"zones": ["bad zone"]}}, "spec.placement.zones[0]"),
    ({"placement": {"region": "x"}}, "spec.placement.region"),
    ({"placement": {"clusterSelector": {"matchExpressions": [{"key": "a", "operator": "In"}]}}},
     "spec.placement.clusterSelector.matchExpressions[0]"),
    ({"placement": {"clusterSelector": {"matchLabels": {"bad key": "x"}}}},
     "spec.placement.clusterSelector.matchLabels"),
    ({"placement": {"clusterAffinity": {"preferred": [{"weight": 0, "selector": {}}]}}},
     "spec.placement.clusterAffinity.preferred[0].weight"),
    ({"placement": {"clusterAffinity": {"clusterNames": ["Zone_A"]}}},
     "spec.placement.clusterAffinity.clusterNames[0]"),
    ({"placement": {"tolerations": [{"key": "a", "operator": "Exists", "value": "b"}]}},
     "spec.placement.tolerations[0].value"),
    ({"placement": {"tolerations": [{"value": "b"}]}}, "spec.placement.tolerations[0].operator"),
    ({"placement": {"tolerations": [{"key": "a", "effect": "NoEat"}]}},
     "spec.placement.tolerations[0].effect"),
    ({"placement": {"tolerations": [{"key": "a", "tolerationSeconds": 5}]}},
     "spec.placement.tolerations[0].tolerationSeconds"),
    ({"placement": {"spread": [{"topology": "rack"}]}}, "spec.placement.spread[0].topology"),
    ({"placement": {"spread": [{"topology": "zone", "maxSkew": 0}]}},
     "spec.placement.spread[0].maxSkew"),
    ({"placement": {"spread": [{"topology": "zone"}, {"topology": "zone"}]}},
     "spec.placement.spread[1].topology"),
    ({"placement": {"spread": [{"topology": "node", "minGroups": 2}]}},
     "spec.placement.spread[0].minGroups"),
    ({"placement": {"spread": [{"topology": "zone", "minGroups": 3, "maxGroups": 2}]}},
     "spec.placement.spread[0].maxGroups"),
    ({"placement": {"replicaScheduling": {"weighting": "Static"}}},
     "spec.placement.replicaScheduling.staticWeights"),
    ({"placement": {"replicaScheduling": {"staticWeights": [
        {"weight": 1, "clusterNames": ["a"]}]}}},
     "spec.placement.replicaScheduling.staticWeights"),
    ({"placement": {"replicaScheduling": {"weighting": "Static", "staticWeights": [
        {"weight": 1}]}}}, "spec.placement.replicaScheduling.staticWeights[0]"),
])
def test_bad_placement_names_field(spec: dict[str, Any], field: str) -> None:
    assert only_cause("PinApp", app(**spec)).field == field


def test_unsupported_tier_message() -> None:
    cause = only_cause("PinApp", app(tier="gold"))
    assert cause.reason == "FieldValueNotSupported"
    assert cause.message == ('Unsupported value: "gold": supported values: "reserved", '
                             '"ondemand", "preemptible"')
