"""PinPod: a pod spec with tier and placement, and its status."""

from __future__ import annotations

import pytest

from pincompute.kube.errors import Invalid
from pincompute.model import registry

from ._support import make, only_cause, pod, valid


def test_pinpod_defaults() -> None:
    spec = valid("PinPod", pod())
    assert spec == {
        "containers": [{"name": "main", "image": "busybox", "type": "main"}],
        "restartPolicy": "Always", "terminationGracePeriodSeconds": 30,
        "networkMode": "routable", "tier": "ondemand", "placement": {}, "stopped": False,
    }


@pytest.mark.parametrize("policy", ["Always", "OnFailure", "Never"])
def test_pinpod_restart_policies(policy: str) -> None:
    assert valid("PinPod", {**pod(), "restartPolicy": policy})["restartPolicy"] == policy


def test_status_known_fields_typed_unknown_allowed() -> None:
    status = {"phase": "Running", "podIP": "10.0.0.7", "nodeName": "n1",
              "containerStatuses": [{"name": "main", "ready": True, "restartCount": 0}],
              "somethingNew": {"x": 1}}
    obj = make("PinPod", pod(), status=status)
    out = registry.validate(obj)
    assert out["status"] == status  # stored as written


def test_status_wrong_type_names_field() -> None:
    obj = make("PinPod", pod(), status={"containerStatuses": [{"name": "m", "ready": "yes"}]})
    with pytest.raises(Invalid) as info:
        registry.validate(obj)
    assert [c.field for c in info.value.causes] == ["status.containerStatuses[0].ready"]


def test_pod_name_must_be_a_label() -> None:
    cause = only_cause("PinPod", pod(), name="web.v1")
    assert cause.field == "metadata.name"
