"""Core Pod validation: names and paths a node turns into paths on the machine."""

from __future__ import annotations

from typing import Any

import pytest

from pincompute.kube.errors import Invalid
from pincompute.kube.podvalidation import path_errors, validate_pod


def pod(*, containers: list[dict[str, Any]] | None = None,
        volumes: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {"containers": containers or [{"name": "main", "image": "x"}]}
    if volumes is not None:
        spec["volumes"] = volumes
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": spec}


def fields(obj: dict[str, Any]) -> list[str]:
    with pytest.raises(Invalid) as info:
        validate_pod(obj, None)
    assert info.value.code == 422
    return [c.field for c in info.value.causes]


def test_path_errors():
    assert path_errors("/data", absolute=True) == []
    assert path_errors("a/b", absolute=False) == []
    assert "must not contain '..'" in path_errors("/../../../../etc/x", absolute=True)
    assert "must be an absolute path" in path_errors("data", absolute=True)
    assert "must be a relative path" in path_errors("/x", absolute=False)
    assert path_errors("/", absolute=True) == ["must not be the container's root"]
    assert path_errors("/./", absolute=True) == ["must not be the container's root"]
    assert path_errors("/a\0", absolute=True) == ["must not contain a NUL character"]
    assert path_errors(3, absolute=True) == ["must be a string"]


def test_a_plain_pod_is_valid_and_unchanged():
    obj = pod(containers=[{"name": "main", "image": "x", "workingDir": "/w",
                           "volumeMounts": [{"name": "data", "mountPath": "/data",
                                             "subPath": "a/b"}]}],
              volumes=[{"name": "data", "emptyDir": {}}])
    assert validate_pod(obj, None) is None


def test_escaping_mount_path_is_invalid_naming_the_field():
    obj = pod(containers=[{"name": "main", "image": "x",
                           "volumeMounts": [{"name": "v", "mountPath": "/../../../../etc/x"}]}],
              volumes=[{"name": "v", "emptyDir": {}}])
    assert fields(obj) == ["spec.containers[0].volumeMounts[0].mountPath"]


@pytest.mark.parametrize(("container", "field"), [
    ({"name": "../../etc", "image": "x"}, "spec.containers[0].name"),
    ({"name": "a/b", "image": "x"}, "spec.containers[0].name"),
    ({"image": "x"}, "spec.containers[0].name"),
    ({"name": "main", "workingDir": "/../../root"}, "spec.containers[0].workingDir"),
    ({"name": "main", "volumeMounts": [{"name": "v", "mountPath": "/d", "subPath": "../x"}]},
     "spec.containers[0].volumeMounts[0].subPath"),
    ({"name": "main", "volumeMounts": [{"name": "v", "mountPath": "/"}]},
     "spec.containers[0].volumeMounts[0].mountPath"),
    ({"name": "main", "volumeMounts": [{"name": "nope", "mountPath": "/d"}]},
     "spec.containers[0].volumeMounts[0].name"),
    ({"name": "main", "volumeMounts": "x"}, "spec.containers[0].volumeMounts"),
])
def test_hostile_containers(container: dict[str, Any], field: str):
    assert fields(pod(containers=[container], volumes=[{"name": "v", "emptyDir": {}}])) == [
        field]


@pytest.mark.parametrize(("volume", "field"), [
    ({"name": "../x", "emptyDir": {}}, "spec.volumes[0].name"),
    ({"name": "..", "emptyDir": {}}, "spec.volumes[0].name"),
    ({"name": "v", "configMap": {"name": "c", "items": [{"key": "k", "path": "../../x"}]}},
     "spec.volumes[0].configMap.items[0].path"),
    ({"name": "v", "secret": {"secretName": "s", "items": [{"key": "k", "path": "/etc/x"}]}},
     "spec.volumes[0].secret.items[0].path"),
    ("x", "spec.volumes[0]"),
])
def test_hostile_volumes(volume: Any, field: str):
    assert fields(pod(volumes=[volume])) == [field]


def test_duplicate_names():
    assert fields(pod(containers=[{"name": "a"}, {"name": "a"}])) == ["spec.containers[1].name"]
    assert fields(pod(containers=[{"name": "a"}], volumes=[
        {"name": "v", "emptyDir": {}}, {"name": "v", "emptyDir": {}}])) == ["spec.volumes[1].name"]


def test_an_unchanged_spec_is_not_checked_again():
    bad = pod(containers=[{"name": "../x"}])
    assert validate_pod(bad, bad) is None


@pytest.mark.parametrize("spec", [
    [], "x", {"containers": {}}, {"containers": [1]}, {"containers": [{"name": ["a"]}]},
    {"containers": [{"name": "a", "workingDir": 5, "volumeMounts": [
        {"name": ["v"], "mountPath": None, "subPath": 3}]}]},
    {"volumes": [{"name": "v", "secret": {"items": "x"}}, {"name": "w", "configMap": {
        "items": [1, {"path": None}]}}]},
])
def test_garbage_is_invalid_never_an_unexpected_error(spec: Any):
    obj = {"metadata": ["not", "an", "object"], "spec": spec}
    with pytest.raises(Invalid):
        validate_pod(obj, None)
