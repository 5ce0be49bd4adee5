"""Containers, probes, resources and volumes, validated through PinPod objects."""

from __future__ import annotations

from typing import Any

import pytest

from ._support import causes, only_cause, pod, valid


def spec_with(*containers: dict[str, Any], **fields: Any) -> dict[str, Any]:
    return {"containers": list(containers), **fields}


def main(**fields: Any) -> dict[str, Any]:
    return {"name": "main", "image": "busybox", **fields}


def test_container_defaults() -> None:
    spec = valid("PinPod", spec_with(main(
        ports=[{"containerPort": 80}],
        readinessProbe={"httpGet": {"port": 80}},
        resources={"limits": {"cpu": "1", "memory": "1Gi"}, "requests": {"cpu": "250m"}},
    )))
    c = spec["containers"][0]
    assert c["type"] == "main"
    assert c["ports"] == [{"containerPort": 80, "protocol": "TCP"}]
    assert c["readinessProbe"] == {
        "httpGet": {"port": 80, "path": "/", "scheme": "HTTP"}, "initialDelaySeconds": 0,
        "periodSeconds": 10, "timeoutSeconds": 1, "successThreshold": 1, "failureThreshold": 3}
    # A limit without a request sets the request, as the API server does.
    assert c["resources"]["requests"] == {"cpu": "250m", "memory": "1Gi"}
    assert spec["terminationGracePeriodSeconds"] == 30
    assert spec["restartPolicy"] == "Always"
    assert "volumes" not in spec  # unset collections stay out


def test_sidecar_type_kept() -> None:
    spec = valid("PinPod", spec_with(main(), {"name": "proxy", "image": "envoy",
                                               "type": "sidecar"}))
    assert [c["type"] for c in spec["containers"]] == ["main", "sidecar"]


@pytest.mark.parametrize(("container", "field"), [
    (main(colour="red"), "spec.containers[0].colour"),
    (main(name="Web_1"), "spec.containers[0].name"),
    (main(name="a" * 64), "spec.containers[0].name"),
    (main(image=""), "spec.containers[0].image"),
    (main(image="bad image"), "spec.containers[0].image"),
    (main(command="python3 -m http.server"), "spec.containers[0].command"),
    (main(type="init"), "spec.containers[0].type"),
    (main(ports=[{"containerPort": "80"}]), "spec.containers[0].ports[0].containerPort"),
    (main(ports=[{"containerPort": 70000}]), "spec.containers[0].ports[0].containerPort"),
    (main(ports=[{"containerPort": 80, "name": "HTTP"}]), "spec.containers[0].ports[0].name"),
    (main(ports=[{"containerPort": 80}, {"containerPort": 80}]),
     "spec.containers[0].ports[1].containerPort"),
    (main(env=[{"name": "A=B", "value": "x"}]), "spec.containers[0].env[0].name"),
    (main(env=[{"name": "A", "value": "x", "valueFrom": {"fieldRef": {"fieldPath": "x"}}}]),
     "spec.containers[0].env[0].valueFrom"),
    (main(env=[{"name": "A", "valueFrom": {}}]), "spec.containers[0].env[0].valueFrom"),
    (main(resources={"requests": {"cpu": "-1"}}),
     "spec.containers[0].resources.requests.cpu"),
    (main(resources={"limits": {"memory": "-1Gi"}}),
     "spec.containers[0].resources.limits.memory"),
    (main(resources={"requests": {"cpu": "a lot"}}),
     "spec.containers[0].resources.requests.cpu"),
    (main(resources={"requests": {"nvidia.com/gpu": -1}}),
     "spec.containers[0].resources.requests[nvidia.com/gpu]"),
    (main(resources={"requests": {"cpu": "2"}, "limits": {"cpu": "1"}}),
     "spec.containers[0].resources.limits.cpu"),
    (main(resources={"requests": {"memory": "1Gi"}, "limits": {"memory": "512Mi"}}),
     "spec.containers[0].resources.limits.memory"),
    (main(livenessProbe={}), "spec.containers[0].livenessProbe"),
    (main(livenessProbe={"exec": {"command": ["true"]}, "tcpSocket": {"port": 80}}),
     "spec.containers[0].livenessProbe.tcpSocket"),
    (main(livenessProbe={"exec": {"command": ["true"]}, "successThreshold": 2}),
     "spec.containers[0].livenessProbe.successThreshold"),
    (main(readinessProbe={"exec": {"command": ["true"]}, "periodSeconds": 0}),
     "spec.containers[0].readinessProbe.periodSeconds"),
    (main(readinessProbe={"httpGet": {"port": 0}}),
     "spec.containers[0].readinessProbe.httpGet.port"),
    (main(readinessProbe={"httpGet": {"port": 80, "scheme": "FTP"}}),
     "spec.containers[0].readinessProbe.httpGet.scheme"),
    (main(volumeMounts=[{"name": "nope", "mountPath": "/data"}]),
     "spec.containers[0].volumeMounts[0].name"),
])
def test_bad_container_names_field(container: dict[str, Any], field: str) -> None:
    assert only_cause("PinPod", spec_with(container)).field == field


def test_limits_below_requests_message() -> None:
    cause = only_cause("PinPod", spec_with(main(resources={
        "requests": {"cpu": "500m"}, "limits": {"cpu": "250m"}})))
    assert cause.field == "spec.containers[0].resources.limits.cpu"
    assert "greater than or equal to cpu request" in cause.message


def test_unknown_field_reason() -> None:
    cause = only_cause("PinPod", spec_with(main(imagee="x")))
    assert (cause.field, cause.message) == ("spec.containers[0].imagee", "unknown field")


def test_wrong_type_message() -> None:
    cause = only_cause("PinPod", spec_with(main(args="--verbose")))
    assert cause.field == "spec.containers[0].args"
    assert cause.reason == "FieldValueTypeInvalid"
    assert "array" in cause.message


def test_every_problem_reported_at_once() -> None:
    found = causes("PinPod", spec_with(main(name="BAD", image="",
                                            resources={"requests": {"cpu": "-1"}})))
    assert set(found) == {"spec.containers[0].name", "spec.containers[0].image",
                          "spec.containers[0].resources.requests.cpu"}


def test_pod_level_rules() -> None:
    assert only_cause("PinPod", {"containers": []}).field == "spec.containers"
    assert only_cause("PinPod", {}).field == "spec.containers"
    assert only_cause("PinPod", spec_with(main(), main())).field == "spec.containers[1].name"
    cause = only_cause("PinPod", spec_with({"name": "s", "image": "x", "type": "sidecar"}))
    assert cause.field == "spec.containers"
    assert "main" in cause.message
    assert only_cause("PinPod", {**pod(), "terminationGracePeriodSeconds": -1}).field == \
        "spec.terminationGracePeriodSeconds"
    assert only_cause("PinPod", {**pod(), "networkMode": "overlay"}).field == "spec.networkMode"
    assert only_cause("PinPod", {**pod(), "nodeSelector": {"a": "b c"}}).field == \
        "spec.nodeSelector.a"


def test_volumes() -> None:
    spec = valid("PinPod", spec_with(
        main(volumeMounts=[{"name": "data", "mountPath": "/data"},
                           {"name": "logs", "mountPath": "/logs", "subPath": "app"}]),
        volumes=[{"name": "data", "persistent": {"size": "10Gi"}},
                 {"name": "logs", "logging": {}},
                 {"name": "scratch", "emptyDir": {"medium": "Memory", "sizeLimit": "64Mi"}},
                 {"name": "team", "shared": {"share": "datasets", "readOnly": True}},
                 {"name": "conf", "configMap": {"name": "app-config"}},
                 {"name": "creds", "secret": {"secretName": "tokens"}}]))
    assert spec["volumes"][1] == {"name": "logs", "logging": {}}
    assert spec["containers"][0]["volumeMounts"][0]["readOnly"] is False


@pytest.mark.parametrize(("volumes", "mounts", "field"), [
    ([{"name": "v"}], [], "spec.volumes[0]"),
    ([{"name": "v", "emptyDir": {}, "logging": {}}], [], "spec.volumes[0].logging"),
    ([{"name": "v", "persistent": {}}], [], "spec.volumes[0].persistent.size"),
    ([{"name": "v", "persistent": {"size": "-1Gi"}}], [], "spec.volumes[0].persistent.size"),
    ([{"name": "v", "emptyDir": {}}, {"name": "v", "emptyDir": {}}], [], "spec.volumes[1].name"),
    ([{"name": "V", "emptyDir": {}}], [], "spec.volumes[0].name"),
    ([{"name": "v", "emptyDir": {}}], [{"name": "v", "mountPath": "data"}],
     "spec.containers[0].volumeMounts[0].mountPath"),
    ([{"name": "v", "emptyDir": {}}], [{"name": "v", "mountPath": "/d", "subPath": "../x"}],
     "spec.containers[0].volumeMounts[0].subPath"),
    ([{"name": "v", "emptyDir": {}}], [{"name": "v", "mountPath": "/d"},
                                       {"name": "v", "mountPath": "/d"}],
     "spec.containers[0].volumeMounts[1].mountPath"),
    # Paths the node turns into paths on the machine never climb out (issue 8).
    ([{"name": "v", "emptyDir": {}}], [{"name": "v", "mountPath": "/../../../../etc/x"}],
     "spec.containers[0].volumeMounts[0].mountPath"),
    ([{"name": "v", "emptyDir": {}}], [{"name": "v", "mountPath": "/a/../../b"}],
     "spec.containers[0].volumeMounts[0].mountPath"),
    ([{"name": "v", "emptyDir": {}}], [{"name": "v", "mountPath": "/"}],
     "spec.containers[0].volumeMounts[0].mountPath"),
    ([{"name": "v", "emptyDir": {}}], [{"name": "v", "mountPath": "/d\0x"}],
     "spec.containers[0].volumeMounts[0].mountPath"),
    ([{"name": "v", "emptyDir": {}}], [{"name": "v", "mountPath": "/d", "subPath": "/etc"}],
     "spec.containers[0].volumeMounts[0].subPath"),
    ([{"name": "v", "emptyDir": {}}], [{"name": "v", "mountPath": "/d"},
                                       {"name": "v", "mountPath": "/d/"}],
     "spec.containers[0].volumeMounts[1].mountPath"),
    ([{"name": "v", "configMap": {"name": "c", "items": [{"key": "k", "path": "../../x"}]}}],
     [], "spec.volumes[0].configMap.items[0].path"),
    ([{"name": "v", "secret": {"secretName": "s", "items": [{"key": "k", "path": "/etc/x"}]}}],
     [], "spec.volumes[0].secret.items[0].path"),
])
def test_bad_volumes(volumes: list[dict[str, Any]], mounts: list[dict[str, Any]],
                     field: str) -> None:
    spec = spec_with(main(volumeMounts=mounts), volumes=volumes)
    assert only_cause("PinPod", spec).field == field


@pytest.mark.parametrize("working_dir", ["/../../etc", "../x", "/w/../../x"])
def test_working_dir_never_climbs_out(working_dir: str) -> None:
    cause = only_cause("PinPod", spec_with(main(workingDir=working_dir)))
    assert cause.field == "spec.containers[0].workingDir"
    assert "'..'" in cause.message


def test_working_dir_may_be_any_path_inside() -> None:
    assert valid("PinPod", spec_with(main(workingDir="/work/a/./b")))
