"""PinTrainingJob: roles per framework, gang defaults, restart policies."""

from __future__ import annotations

from typing import Any

import pytest

from ._support import TEMPLATE, causes, make, only_cause, pod, valid


def role(replicas: int = 1, **fields: Any) -> dict[str, Any]:
    return {"replicas": replicas, "template": TEMPLATE, **fields}


def test_pytorch_defaults() -> None:
    spec = valid("PinTrainingJob", {"framework": "pytorch",
                                    "roles": {"master": role(), "worker": role(3)}})
    assert spec["port"] == 23456
    assert spec["gang"] == {"enabled": True, "minMember": 4, "timeoutSeconds": 300}
    assert spec["backoffLimit"] == 3
    assert spec["successPolicy"] == "Chief"
    for name in ("master", "worker"):
        assert spec["roles"][name]["restartPolicy"] == "OnFailure"
        assert spec["roles"][name]["template"]["spec"]["restartPolicy"] == "OnFailure"


def test_tensorflow_roles_and_exit_code_policy() -> None:
    spec = valid("PinTrainingJob", {"framework": "tensorflow", "roles": {
        "chief": role(), "worker": role(4, restartPolicy="ExitCode", retryableExitCodes=[3]),
        "ps": role(2), "evaluator": role()}, "gang": {"minMember": 5},
        "successPolicy": "AllWorkers"})
    assert spec["roles"]["worker"]["retryableExitCodes"] == [3]
    assert spec["successPolicy"] == "AllWorkers"
    assert spec["port"] == 2222
    assert spec["gang"]["minMember"] == 5
    assert spec["roles"]["worker"]["template"]["spec"]["restartPolicy"] == "Never"


@pytest.mark.parametrize(("spec", "field"), [
    ({"framework": "jax", "roles": {"worker": role()}}, "spec.framework"),
    ({"roles": {"worker": role()}}, "spec.framework"),
    ({"framework": "pytorch"}, "spec.roles"),
    ({"framework": "pytorch", "roles": {"ps": role()}}, "spec.roles.ps"),
    ({"framework": "pytorch", "roles": {"chief": role()}}, "spec.roles.chief"),
    ({"framework": "pytorch", "roles": {"launcher": role()}}, "spec.roles.launcher"),
    ({"framework": "pytorch", "roles": {"master": role(2)}}, "spec.roles.master.replicas"),
    ({"framework": "pytorch", "roles": {"worker": role(0)}}, "spec.roles"),
    ({"framework": "pytorch", "roles": {"worker": role(-1)}}, "spec.roles.worker.replicas"),
    ({"framework": "pytorch", "roles": {"worker": role(restartPolicy="Maybe")}},
     "spec.roles.worker.restartPolicy"),
    ({"framework": "tensorflow", "roles": {"chief": role(), "master": role()}},
     "spec.roles.master"),
    ({"framework": "tensorflow", "roles": {"evaluator": role(2)}},
     "spec.roles.evaluator.replicas"),
    ({"framework": "pytorch", "roles": {"worker": role(2)}, "gang": {"minMember": 3}},
     "spec.gang.minMember"),
    ({"framework": "pytorch", "roles": {"worker": role()}, "gang": {"timeoutSeconds": 0}},
     "spec.gang.timeoutSeconds"),
    ({"framework": "pytorch", "roles": {"worker": role()}, "port": 70000}, "spec.port"),
    ({"framework": "pytorch", "roles": {"worker": role()}, "successPolicy": "Any"},
     "spec.successPolicy"),
    ({"framework": "pytorch", "roles": {"worker": role(retryableExitCodes=[0])}},
     "spec.roles.worker.retryableExitCodes[0]"),
    ({"framework": "pytorch", "roles": {"worker": {
        "template": {"spec": {**pod(), "restartPolicy": "Always"}}}}},
     "spec.roles.worker.template.spec.restartPolicy"),
])
def test_bad_training_job_names_field(spec: dict[str, Any], field: str) -> None:
    assert only_cause("PinTrainingJob", spec).field == field


def test_framework_is_immutable() -> None:
    old = make("PinTrainingJob", valid("PinTrainingJob", {
        "framework": "pytorch", "roles": {"worker": role()}}))
    found = causes("PinTrainingJob", {"framework": "tensorflow", "roles": {"worker": role()}},
                   old=old)
    assert set(found) == {"spec.framework"}
