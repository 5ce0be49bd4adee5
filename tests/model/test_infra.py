"""PinDaemon and PinSidecar."""

from __future__ import annotations

from typing import Any

import pytest

from ._support import TEMPLATE, only_cause, pod, valid


def daemon(**spec: Any) -> dict[str, Any]:
    return {"template": TEMPLATE, **spec}


def sidecar(**spec: Any) -> dict[str, Any]:
    return {"selector": {"matchLabels": {"mesh": "on"}},
            "containers": [{"name": "proxy", "image": "envoy:1.30"}], **spec}


def test_daemon_defaults() -> None:
    spec = valid("PinDaemon", daemon(nodeSelector={"pincompute.io/pool": "general"},
                                     tolerations=[{"operator": "Exists"}]))
    assert spec["namespace"] == "pincompute-system"
    assert spec["updateStrategy"] == {"type": "RollingUpdate", "maxUnavailable": 1}
    assert spec["template"]["spec"]["restartPolicy"] == "Always"


@pytest.mark.parametrize(("spec", "field"), [
    ({}, "spec.template"),
    (daemon(namespace="Kube System"), "spec.namespace"),
    (daemon(nodeSelector={"a": 1}), "spec.nodeSelector.a"),
    (daemon(tolerations=[{"key": "x", "operator": "Maybe"}]), "spec.tolerations[0].operator"),
    (daemon(clusterSelector={"matchExpressions": [{"key": "z", "operator": "NotIn"}]}),
     "spec.clusterSelector.matchExpressions[0]"),
    (daemon(updateStrategy={"type": "Surge"}), "spec.updateStrategy.type"),
    (daemon(updateStrategy={"maxUnavailable": -1}), "spec.updateStrategy.maxUnavailable"),
    (daemon(tier="reserved"), "spec.tier"),
    ({"template": {"spec": {**pod(), "restartPolicy": "OnFailure"}}},
     "spec.template.spec.restartPolicy"),
])
def test_bad_daemon_names_field(spec: dict[str, Any], field: str) -> None:
    assert only_cause("PinDaemon", spec).field == field


def test_sidecar_defaults_type_and_resources() -> None:
    spec = valid("PinSidecar", sidecar(
        containers=[{"name": "proxy", "image": "envoy:1.30", "type": "main",
                     "volumeMounts": [{"name": "certs", "mountPath": "/certs"}]},
                    {"name": "agent", "image": "agent:2",
                     "resources": {"requests": {"cpu": "5m"}}}],
        volumes=[{"name": "certs", "secret": {"secretName": "mesh-certs"}}],
        resources={"requests": {"cpu": "50m", "memory": "32Mi"}}, order=-1))
    assert [c["type"] for c in spec["containers"]] == ["sidecar", "sidecar"]
    assert spec["containers"][0]["resources"] == {"requests": {"cpu": "50m", "memory": "32Mi"}}
    assert spec["containers"][1]["resources"] == {"requests": {"cpu": "5m"}}
    assert spec["updateStrategy"] == {"type": "InPlace", "maxUnavailable": "10%"}
    assert spec["order"] == -1


@pytest.mark.parametrize(("spec", "field"), [
    ({"containers": [{"name": "p", "image": "x"}]}, "spec.selector"),
    (sidecar(containers=[]), "spec.containers"),
    (sidecar(selector={"matchExpressions": [{"key": "mesh", "operator": "Exists",
                                             "values": ["x"]}]}),
     "spec.selector.matchExpressions[0]"),
    (sidecar(selector={"matchLabels": {"mesh": "o n"}}), "spec.selector.matchLabels"),
    (sidecar(namespaceSelector={"matchLabels": {"bad key": "1"}}),
     "spec.namespaceSelector.matchLabels"),
    (sidecar(containers=[{"name": "p", "image": "x"}, {"name": "p", "image": "y"}]),
     "spec.containers[1].name"),
    (sidecar(containers=[{"name": "p", "image": "x", "volumeMounts": [
        {"name": "v", "mountPath": "/v"}]}]), "spec.containers[0].volumeMounts[0].name"),
    (sidecar(resources={"limits": {"cpu": "-1"}}), "spec.resources.limits.cpu"),
    (sidecar(order="first"), "spec.order"),
    (sidecar(updateStrategy={"type": "Rolling"}), "spec.updateStrategy.type"),
])
def test_bad_sidecar_names_field(spec: dict[str, Any], field: str) -> None:
    assert only_cause("PinSidecar", spec).field == field
