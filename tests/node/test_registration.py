"""Node registration, Lease heartbeat and node conditions."""

from __future__ import annotations

from pincompute.kube.objects import condition_true
from pincompute.kube.resource import LEASES, NODES, PODS
from pincompute.kube.wellknown import (
    GPU_RESOURCE,
    INSTANCE_TYPE_LABEL,
    NODE_LEASE_NAMESPACE,
    ZONE_LABEL,
)
from pincompute.model.wellknown import NODE_IMAGE_LABEL as IMAGE_LABEL
from pincompute.model.wellknown import NODE_POOL_LABEL as POOL_LABEL
from pincompute.model.wellknown import TIER_LABEL
from pincompute.node.registration import (
    READINESS_GATE,
    NodeIdentity,
    has_readiness_gate,
    node_object,
)

from .conftest import eventually


def test_identity_labels_capacity_allocatable():
    ident = NodeIdentity(name="n1", zone="zone-a", node_pool="gpu", instance_type="p3.2xlarge",
                         tier="reserved", node_image="ml-v3", cpu="8", memory="32Gi", gpus=2,
                         reserved={"cpu": "500m", "memory": "1Gi"}, labels={"extra": "x"})
    labels = ident.all_labels(runtime="sim")
    assert labels[ZONE_LABEL] == "zone-a" and labels[POOL_LABEL] == "gpu"
    assert labels[INSTANCE_TYPE_LABEL] == "p3.2xlarge" and labels[TIER_LABEL] == "reserved"
    assert labels[IMAGE_LABEL] == "ml-v3" and labels["extra"] == "x"
    assert ident.capacity()[GPU_RESOURCE] == "2"
    assert ident.allocatable()["cpu"] == "7500m"
    assert ident.allocatable()["memory"] == "31Gi"


async def test_agent_registers_node_lease_and_ready_condition(cluster, make_agent):
    taint = {"key": "dedicated", "value": "ml", "effect": "NoSchedule"}
    agent = await make_agent("n1", zone="zone-a", node_pool="general", taints=[taint],
                             node_image="general-v1", runtime="sim")
    node = await cluster.get(NODES, "n1")
    assert node["metadata"]["labels"][ZONE_LABEL] == "zone-a"
    assert node["spec"]["taints"] == [taint]
    assert node["spec"]["podCIDR"] == agent.pod_cidr
    assert node["status"]["capacity"]["pods"] == "110"
    assert node["status"]["addresses"][0] == {"type": "InternalIP",
                                              "address": agent.networking.node_ip}
    conds = {c["type"]: c for c in node["status"]["conditions"]}
    assert conds["Ready"]["status"] == "True"
    lease = await cluster.get(LEASES, "n1", namespace=NODE_LEASE_NAMESPACE)
    assert lease["spec"]["holderIdentity"] == "n1"
    assert lease["metadata"]["ownerReferences"][0]["uid"] == node["metadata"]["uid"]
    before = lease["spec"]["renewTime"]
    assert await agent.heartbeat.renew()
    lease = await cluster.get(LEASES, "n1", namespace=NODE_LEASE_NAMESPACE)
    assert lease["spec"]["renewTime"] > before


async def test_reregistration_keeps_control_plane_taints_and_the_pod_cidr(cluster, make_agent):
    agent = await make_agent("n1", runtime="sim")
    cidr = agent.pod_cidr
    await agent.stop()
    node = await cluster.get(NODES, "n1")
    node["spec"]["taints"] = [{"key": "node.kubernetes.io/unreachable", "effect": "NoExecute"}]
    node["spec"]["unschedulable"] = True
    await cluster.update(NODES, node)
    again = await make_agent("n1", runtime="sim", cpu="16")
    node = await cluster.get(NODES, "n1")
    assert again.pod_cidr == cidr
    assert node["spec"]["taints"][0]["key"] == "node.kubernetes.io/unreachable"
    assert node["spec"]["unschedulable"] is True
    assert node["status"]["capacity"]["cpu"] == "16"


async def test_a_failing_runtime_makes_the_node_not_ready(cluster, make_agent):
    agent = await make_agent("n1", runtime="sim")

    async def broken() -> str:
        return "cannot fork"

    agent.runtime.health = broken
    assert await agent.update_conditions()
    conds = {c["type"]: c for c in (await cluster.get(NODES, "n1"))["status"]["conditions"]}
    assert (conds["Ready"]["status"], conds["Ready"]["reason"]) == ("False", "RuntimeUnhealthy")
    assert conds["RuntimeUnhealthy"]["status"] == "True"
    assert not await agent.update_conditions()  # nothing changed: no write


def test_identity_from_a_node_pool():
    pool = {"metadata": {"name": "gpu", "annotations": {"sim.pincompute.io/start-delay": "2"}},
            "spec": {"instanceType": "p3.2xlarge", "tier": "reserved", "nodeImage": "ml-v3",
                     "capacity": {"cpu": "8", "memory": "61Gi", "gpu": 1},
                     "labels": {"accelerator": "v100"},
                     "taints": [{"key": "gpu", "effect": "NoSchedule"}],
                     "minSize": 1, "maxSize": 4}}
    ident = NodeIdentity.from_node_pool(pool, "gpu-1", zone="zone-b")
    assert (ident.node_pool, ident.instance_type, ident.tier, ident.node_image) == (
        "gpu", "p3.2xlarge", "reserved", "ml-v3")
    assert (ident.cpu, ident.memory, ident.gpus) == ("8", "61Gi", 1)
    assert ident.all_labels(runtime="sim")["accelerator"] == "v100"
    assert ident.taints == [{"key": "gpu", "effect": "NoSchedule"}]
    from pincompute.node.simruntime import pool_defaults
    assert pool_defaults(pool) == {"start-delay": "2"}


def test_identity_read_back_from_a_registered_node():
    ident = NodeIdentity(name="n1", zone="zone-a", node_pool="gpu", instance_type="p3.2xlarge",
                         tier="reserved", node_image="ml-v3", cpu="8", memory="32Gi", gpus=2,
                         pods=50, dedicated_interfaces=3, labels={"extra": "x"},
                         taints=[{"key": "gpu", "effect": "NoSchedule"}],
                         reserved={"cpu": "500m", "memory": "1Gi"})
    node = node_object(ident, runtime="sim")
    assert has_readiness_gate(node)
    back = NodeIdentity.from_node(node)
    assert back.all_labels(runtime="sim") == ident.all_labels(runtime="sim")
    assert (back.capacity(), back.allocatable()) == (ident.capacity(), ident.allocatable())
    assert back.taints == [{"key": "gpu", "effect": "NoSchedule"}]  # the gate is not identity


async def test_a_new_node_keeps_its_readiness_gate_until_its_health_probes_pass(
        cluster, make_agent):
    agent = await make_agent("n1", runtime="sim", status_interval=0.1,
                             required_daemons=("pincompute-system/probe",))
    node = await cluster.get(NODES, "n1")
    assert node["spec"]["taints"] == [dict(READINESS_GATE)]
    assert not condition_true(node, "Ready")
    await cluster.create(PODS, {"metadata": {"name": "probe-1"}, "spec": {
        "nodeName": "n1", "tolerations": [{"operator": "Exists"}],
        "containers": [{"name": "d", "image": "daemon"}]}}, namespace="pincompute-system")

    async def lifted() -> bool:
        node = await cluster.get(NODES, "n1")
        return condition_true(node, "Ready") and not node["spec"].get("taints")

    await eventually(lifted)
    assert agent.report.ready
