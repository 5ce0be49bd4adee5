"""Project, MemberCluster, NodePool, NodeImage, Rotation."""

from __future__ import annotations

from typing import Any

import pytest

from pincompute.kube.errors import Invalid
from pincompute.model import registry

from ._support import causes, make, only_cause, valid

# --- Project ---

def test_project_defaults_and_quota() -> None:
    assert valid("Project", None) == {}
    spec = valid("Project", {"members": [{"user": "ana"}, {"user": "bo", "role": "admin"}],
                             "quota": {"reserved": {"cpu": "64", "memory": "256Gi", "gpu": 8,
                                                    "pods": 100},
                                       "preemptible": {"cpu": 0.5}}})
    assert spec["members"][0] == {"user": "ana", "role": "viewer"}
    assert spec["quota"]["preemptible"] == {"cpu": "0.5"}


@pytest.mark.parametrize(("spec", "field"), [
    ({"members": [{"user": "a", "role": "owner"}]}, "spec.members[0].role"),
    ({"members": [{"user": ""}]}, "spec.members[0].user"),
    ({"members": [{"user": "a"}, {"user": "a", "role": "editor"}]}, "spec.members[1].user"),
    ({"quota": {"reserved": {"cpu": "-1"}}}, "spec.quota.reserved.cpu"),
    ({"quota": {"gold": {"cpu": "1"}}}, "spec.quota.gold"),
    ({"quota": {"ondemand": {"tpu": "1"}}}, "spec.quota.ondemand.tpu"),
])
def test_bad_project_names_field(spec: dict[str, Any], field: str) -> None:
    assert only_cause("Project", spec).field == field


def test_project_name_is_a_namespace_name() -> None:
    assert only_cause("Project", {}, name="team.one").field == "metadata.name"


# --- MemberCluster ---

def test_member_cluster_defaults() -> None:
    spec = valid("MemberCluster", {"zone": "zone-a", "region": "local",
                                   "hardware": [{"name": "nvidia-a100", "count": 8}],
                                   "taints": [{"key": "gpu", "effect": "NoSchedule"}]})
    assert spec["connection"] == {"type": "Embedded"}
    assert spec["healthCheck"] == {"periodSeconds": 10, "timeoutSeconds": 5,
                                   "failureThreshold": 3, "successThreshold": 1}
    assert spec["unschedulable"] is False
    assert spec["hardware"] == [{"name": "nvidia-a100", "type": "gpu", "count": 8}]


def test_kubeconfig_connection() -> None:
    spec = valid("MemberCluster", {"zone": "us-east-1a", "connection": {
        "type": "Kubeconfig", "kubeconfigSecretRef": {"name": "zone-a-1"}}})
    assert spec["connection"]["kubeconfigSecretRef"] == {
        "name": "zone-a-1", "namespace": "pincompute-system", "key": "kubeconfig"}


@pytest.mark.parametrize(("spec", "field"), [
    ({}, "spec.zone"),
    ({"zone": ""}, "spec.zone"),
    ({"zone": "zone a"}, "spec.zone"),
    ({"zone": "a", "connection": {"type": "Kubeconfig"}}, "spec.connection"),
    ({"zone": "a", "connection": {"type": "Kubeconfig", "kubeconfig": "x",
                                  "kubeconfigPath": "/k"}}, "spec.connection.kubeconfig"),
    ({"zone": "a", "connection": {"kubeconfigPath": "/k"}}, "spec.connection.kubeconfigPath"),
    ({"zone": "a", "connection": {"type": "SSH"}}, "spec.connection.type"),
    ({"zone": "a", "capacity": {"cpu": "-4"}}, "spec.capacity.cpu"),
    ({"zone": "a", "taints": [{"key": "x"}]}, "spec.taints[0].effect"),
    ({"zone": "a", "taints": [{"key": "x", "effect": "NoSchedule"},
                              {"key": "x", "effect": "NoSchedule"}]}, "spec.taints[1]"),
    ({"zone": "a", "hardware": [{"name": "A100"}]}, "spec.hardware[0].name"),
    ({"zone": "a", "hardware": [{"name": "a"}, {"name": "a"}]}, "spec.hardware[1].name"),
    ({"zone": "a", "healthCheck": {"periodSeconds": 0}}, "spec.healthCheck.periodSeconds"),
    ({"zone": "a", "costWeight": -1}, "spec.costWeight"),
    ({"zone": "a", "supportedKinds": [""]}, "spec.supportedKinds[0]"),
])
def test_bad_member_cluster_names_field(spec: dict[str, Any], field: str) -> None:
    assert only_cause("MemberCluster", spec).field == field


def test_member_cluster_scheduling_fields_and_tier_summary() -> None:
    spec = valid("MemberCluster", {"zone": "a", "costWeight": 1.5,
                                   "supportedKinds": ["PinApp", "PinJob"]})
    assert (spec["costWeight"], spec["supportedKinds"]) == (1.5, ["PinApp", "PinJob"])
    tiers = {"ondemand": {"allocatable": {"cpu": "64", "memory": "256Gi", "pods": 1000},
                          "allocated": {"cpu": "12"}, "allocating": {"cpu": "500m"},
                          "largestNode": {"cpu": "16"}}}
    obj = registry.validate(make("MemberCluster", {"zone": "a"},
                                 status={"tiers": tiers, "allocating": {"cpu": "1"}}))
    assert obj["status"]["tiers"] == tiers
    with pytest.raises(Invalid) as info:
        registry.validate(make("MemberCluster", {"zone": "a"},
                               status={"tiers": {"gold": {}}}))
    assert info.value.causes[0].field.startswith("status.tiers")


def test_member_cluster_zone_is_immutable() -> None:
    old = make("MemberCluster", valid("MemberCluster", {"zone": "zone-a"}))
    assert set(causes("MemberCluster", {"zone": "zone-b"}, old=old)) == {"spec.zone"}


# --- NodePool ---

def pool(**spec: Any) -> dict[str, Any]:
    return {"instanceType": "sim.large", "maxSize": 10,
            "capacity": {"cpu": "8", "memory": "32Gi", "pods": 110}, **spec}


def test_node_pool_defaults() -> None:
    spec = valid("NodePool", pool(labels={"pincompute.io/pool": "general"},
                                  buffer={"cpu": "2"}, nodeImage="general-2024-06"))
    assert (spec["tier"], spec["minSize"]) == ("ondemand", 0)
    assert "desiredSize" not in spec
    # One tenant must not stop a node: a pids cap and a memory limit by default.
    assert (spec["podPidsLimit"], spec["defaultMemoryLimit"]) == (1024, "1Gi")


@pytest.mark.parametrize(("spec", "field"), [
    (pool(minSize=5, maxSize=4), "spec.maxSize"),
    (pool(minSize=2, desiredSize=1), "spec.desiredSize"),
    (pool(desiredSize=11), "spec.desiredSize"),
    (pool(capacity={"memory": "1Gi"}), "spec.capacity.cpu"),
    (pool(capacity={"cpu": "-1", "memory": "1Gi"}), "spec.capacity.cpu"),
    (pool(tier="spot"), "spec.tier"),
    (pool(labels={"a/b/c": "x"}), "spec.labels[a/b/c]"),
    (pool(runtime="docker"), "spec.runtime"),
    (pool(nodeImage="Ubuntu 22"), "spec.nodeImage"),
    (pool(podPidsLimit=-1), "spec.podPidsLimit"),
    (pool(defaultMemoryLimit="lots"), "spec.defaultMemoryLimit"),
    ({"maxSize": 1, "capacity": {"cpu": 1, "memory": 1}}, "spec.instanceType"),
])
def test_bad_node_pool_names_field(spec: dict[str, Any], field: str) -> None:
    assert only_cause("NodePool", spec).field == field


# --- NodeImage ---

def test_node_image_defaults() -> None:
    spec = valid("NodeImage", {"version": "2024.06.1", "parent": "base",
                               "settings": {"kernel": "6.1"}})
    assert spec["type"] == "general"


@pytest.mark.parametrize(("spec", "field"), [
    ({}, "spec.version"),
    ({"version": "v 1"}, "spec.version"),
    ({"version": "1", "type": "windows"}, "spec.type"),
    ({"version": "1", "parent": "demo"}, "spec.parent"),
    ({"version": "1", "labels": {"": "x"}}, "spec.labels[]"),
])
def test_bad_node_image_names_field(spec: dict[str, Any], field: str) -> None:
    assert only_cause("NodeImage", spec).field == field


# --- Rotation ---

def test_rotation_defaults() -> None:
    spec = valid("Rotation", {"cluster": "zone-a-1", "targetImage": "general-2024-07",
                              "order": [{"nodePool": "general"},
                                        {"nodeSelector": {"matchLabels": {"gpu": "true"}}}]})
    assert (spec["parallelism"], spec["paused"], spec["respectDisruptionBudgets"],
            spec["drainTimeoutSeconds"]) == (1, False, True, 600)


@pytest.mark.parametrize(("spec", "field"), [
    ({"targetImage": "x"}, "spec.cluster"),
    ({"cluster": "c", "targetImage": "x", "parallelism": 0}, "spec.parallelism"),
    ({"cluster": "c", "targetImage": "x", "order": [{}]}, "spec.order[0]"),
    ({"cluster": "c", "targetImage": "x", "order": [{"nodePool": "a", "nodeSelector": {}}]},
     "spec.order[0]"),
    ({"cluster": "c", "targetImage": "x", "maxUnavailable": "200%"}, "spec.maxUnavailable"),
])
def test_bad_rotation_names_field(spec: dict[str, Any], field: str) -> None:
    assert only_cause("Rotation", spec).field == field
