"""Simplified objects: machinery out, everything else in, the input untouched."""

from __future__ import annotations

import copy

from pincompute.api.simplify import simplify


def test_simplify_drops_machinery_only() -> None:
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {
        "name": "p", "namespace": "n", "uid": "u", "resourceVersion": "7",
        "managedFields": [{"manager": "kubectl", "fieldsV1": {"f:spec": {}}}],
        "selfLink": "/api/v1/namespaces/n/pods/p",
        "labels": {"app": "web"},
        "annotations": {"pincompute.io/container-hashes": "main=abc", "team": "a"}},
        "spec": {"containers": [{"name": "main", "image": "x", "volumeMounts": [
            {"name": "kube-api-access-abcde", "mountPath": "/var/run/secrets"},
            {"name": "data", "mountPath": "/data"}]}],
            "volumes": [{"name": "kube-api-access-abcde", "projected": {}},
                        {"name": "data", "emptyDir": {}}]},
        "status": {"phase": "Running", "podIP": "10.0.0.1"}}
    before = copy.deepcopy(pod)
    out = simplify(pod)
    assert pod == before  # shared cache objects are never changed
    assert "managedFields" not in out["metadata"] and "selfLink" not in out["metadata"]
    assert out["metadata"]["annotations"] == {"team": "a"}
    assert out["metadata"]["labels"] == {"app": "web"}
    assert [v["name"] for v in out["spec"]["volumes"]] == ["data"]
    assert [m["name"] for m in out["spec"]["containers"][0]["volumeMounts"]] == ["data"]
    assert out["status"] == pod["status"]


def test_only_machinery_annotations_leave_no_empty_map() -> None:
    obj = {"kind": "PinApp", "metadata": {"name": "a", "annotations": {
        "kubectl.kubernetes.io/last-applied-configuration": "{}"}}, "spec": {}}
    assert "annotations" not in simplify(obj)["metadata"]
    plain = {"kind": "PinApp", "metadata": {"name": "a"}, "spec": {"replicas": 1}}
    assert simplify(plain) == plain
