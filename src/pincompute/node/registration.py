"""Node registration and heartbeat: the Node object and its Lease.

Theory of operation
-------------------
A node agent makes itself known as the kubelet does:

* **Registration** creates the Node object with everything the schedulers
  filter on — labels (zone, node pool, instance type, tier, node image,
  runtime), taints, and ``status.capacity``/``allocatable`` (cpu, memory, pods,
  GPUs, dedicated network interfaces; allocatable is capacity minus what is
  reserved for the system).  If the Node already exists (the agent restarted),
  its labels, capacity and addresses are brought up to date, while its taints
  and ``spec.unschedulable`` are left alone: after registration they belong to
  the control plane (cordon, the node lifecycle controller).
* **Heartbeat**: a Lease named after the node in ``kube-node-lease``, renewed
  every ``renew_interval`` (a quarter of the lease duration).  A Lease renewal is
  a tiny write, unlike a full node status, which is why Kubernetes moved node
  heartbeats to Leases: at thousands of nodes heartbeats dominate the API's load
  (KWOK's lesson, ANCHORS).  An agent that stops renewing — crashed, stopped,
  partitioned — lets the Lease expire; the node lifecycle controller
  (:mod:`.nodelifecyclecontroller`) notices and acts.  The agent never marks itself dead.
"""

from __future__ import annotations

import asyncio
import contextlib
import platform
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pincompute.kube.errors import AlreadyExists, ApiError, Conflict, NotFound
from pincompute.kube.objects import now_micro
from pincompute.kube.protocol import KubeClient
from pincompute.kube.quantity import (
    QuantityError,
    cpu_millis,
    format_bytes,
    format_cpu,
    to_int,
)
from pincompute.kube.resource import LEASES, NAMESPACES, NODES
from pincompute.kube.wellknown import (
    GPU_RESOURCE,
    HOSTNAME_LABEL,
    INSTANCE_TYPE_LABEL,
    ZONE_LABEL,
)
from pincompute.model.wellknown import NODE_IMAGE_LABEL as IMAGE_LABEL
from pincompute.model.wellknown import NODE_POOL_LABEL as POOL_LABEL
from pincompute.model.wellknown import NODE_RUNTIME_LABEL as RUNTIME_LABEL
from pincompute.model.wellknown import RUNTIME_API_ANNOTATION, TIER_LABEL
from pincompute.runtime.logging import get_logger

from .network import DEDICATED_RESOURCE, NODE_LEASE_NAMESPACE

_log = get_logger(__name__)

AGENT_VERSION = "pincompute-node/0.1.0"


@dataclass(frozen=True, kw_only=True)
class NodeIdentity:
    """What a node is: its name, where it belongs, what it offers."""

    name: str
    zone: str = ""
    node_pool: str = ""
    instance_type: str = "embedded"
    tier: str = "ondemand"
    node_image: str = ""
    labels: Mapping[str, str] = field(default_factory=dict)
    taints: Sequence[Mapping[str, Any]] = ()
    cpu: str = "4"
    memory: str = "8Gi"
    pods: int = 110
    gpus: int = 0
    dedicated_interfaces: int = 2
    reserved: Mapping[str, str] = field(default_factory=dict)
    """System-reserved amounts (``cpu``, ``memory``) kept out of allocatable."""

    @classmethod
    def from_node_pool(cls, pool: Mapping[str, Any], name: str, *, zone: str = "",
                       **overrides: Any) -> NodeIdentity:
        """A node of a NodePool object (its instance type, capacity, tier, image, labels,
        taints), as the embedded region creates them."""
        spec = pool.get("spec") or {}
        capacity = spec.get("capacity") or {}
        options: dict[str, Any] = {
            "name": name, "zone": zone, "node_pool": (pool.get("metadata") or {}).get("name", ""),
            "instance_type": spec.get("instanceType", "embedded"),
            "tier": spec.get("tier", "ondemand"), "node_image": spec.get("nodeImage") or "",
            "labels": dict(spec.get("labels") or {}),
            "taints": [dict(t) for t in spec.get("taints") or ()],
        }
        if capacity.get("cpu") is not None:
            options["cpu"] = str(capacity["cpu"])
        if capacity.get("memory") is not None:
            options["memory"] = str(capacity["memory"])
        if capacity.get("gpu") is not None:
            options["gpus"] = to_int(capacity["gpu"])
        if capacity.get("pods") is not None:
            options["pods"] = to_int(capacity["pods"])
        options.update(overrides)
        return cls(**options)

    def all_labels(self, *, runtime: str) -> dict[str, str]:
        labels = {HOSTNAME_LABEL: self.name, "kubernetes.io/os": "linux",
                  "kubernetes.io/arch": _arch(), INSTANCE_TYPE_LABEL: self.instance_type,
                  TIER_LABEL: self.tier, RUNTIME_LABEL: runtime}
        if self.zone:
            labels[ZONE_LABEL] = self.zone
        if self.node_pool:
            labels[POOL_LABEL] = self.node_pool
        if self.node_image:
            labels[IMAGE_LABEL] = self.node_image
        labels.update(self.labels)
        return labels

    def capacity(self) -> dict[str, str]:
        cap = {"cpu": self.cpu, "memory": self.memory, "pods": str(self.pods),
               DEDICATED_RESOURCE: str(self.dedicated_interfaces)}
        if self.gpus:
            cap[GPU_RESOURCE] = str(self.gpus)
        return cap

    def allocatable(self) -> dict[str, str]:
        alloc = self.capacity()
        try:
            if "cpu" in self.reserved:
                alloc["cpu"] = format_cpu(max(0, cpu_millis(self.cpu)
                                              - cpu_millis(self.reserved["cpu"])))
            if "memory" in self.reserved:
                alloc["memory"] = format_bytes(max(0, to_int(self.memory)
                                                   - to_int(self.reserved["memory"])))
        except QuantityError as exc:
            raise ValueError(f"bad reserved resources: {exc}") from exc
        return alloc


def _arch() -> str:
    machine = platform.machine().lower()
    return {"x86_64": "amd64", "aarch64": "arm64"}.get(machine, machine or "amd64")


def node_object(identity: NodeIdentity, *, runtime: str, node_ip: str | None = None,
                pod_cidr: str | None = None, api_endpoint: str | None = None,
                api_port: int = 0) -> dict[str, Any]:
    """The Node as this agent registers it (conditions come from :mod:`.health`)."""
    md: dict[str, Any] = {"name": identity.name,
                          "labels": identity.all_labels(runtime=runtime)}
    if api_endpoint:
        md["annotations"] = {RUNTIME_API_ANNOTATION: api_endpoint}
    spec: dict[str, Any] = {}
    if identity.taints:
        spec["taints"] = [dict(t) for t in identity.taints]
    if pod_cidr:
        spec["podCIDR"] = pod_cidr
        spec["podCIDRs"] = [pod_cidr]
    addresses = [{"type": "Hostname", "address": identity.name}]
    if node_ip:
        addresses.insert(0, {"type": "InternalIP", "address": node_ip})
    status = {
        "capacity": identity.capacity(),
        "allocatable": identity.allocatable(),
        "addresses": addresses,
        "nodeInfo": {"kubeletVersion": AGENT_VERSION,
                     "containerRuntimeVersion": f"{runtime}://{AGENT_VERSION}",
                     "operatingSystem": "linux", "architecture": _arch()},
        "daemonEndpoints": {"kubeletEndpoint": {"Port": api_port}},
        "conditions": [],
    }
    return {"apiVersion": "v1", "kind": "Node", "metadata": md, "spec": spec, "status": status}


async def ensure_namespace(client: KubeClient, name: str) -> None:
    with contextlib.suppress(AlreadyExists):
        await client.create(NAMESPACES, {"apiVersion": "v1", "kind": "Namespace",
                                         "metadata": {"name": name}})


async def register(client: KubeClient, desired: Mapping[str, Any]) -> dict[str, Any]:
    """Create the Node, or bring an existing one's labels, annotations and status up to date."""
    try:
        return await client.create(NODES, desired)
    except AlreadyExists:
        pass  # a node registered before: bring it up to date below
    for _ in range(10):
        current = await client.get(NODES, desired["metadata"]["name"])
        md = current["metadata"]
        md["labels"] = {**(md.get("labels") or {}), **desired["metadata"]["labels"]}
        if desired["metadata"].get("annotations"):
            md["annotations"] = {**(md.get("annotations") or {}),
                                 **desired["metadata"]["annotations"]}
        spec = current.setdefault("spec", {})
        for key in ("podCIDR", "podCIDRs"):
            if key in desired.get("spec", {}):
                spec[key] = desired["spec"][key]
        try:
            current = await client.update(NODES, current)
        except Conflict:
            continue
        status = {**(current.get("status") or {}),
                  **{k: v for k, v in desired["status"].items() if k != "conditions"}}
        current["status"] = status
        try:
            return await client.update_status(NODES, current)
        except Conflict:
            continue
    raise ApiError(f"could not update node {desired['metadata']['name']} (conflicts)")


class Heartbeat:
    """Renews the node's Lease until stopped."""

    def __init__(self, client: KubeClient, node: str, *, lease_duration: float = 40.0,
                 renew_interval: float | None = None) -> None:
        self.client = client
        self.node = node
        self.lease_duration = lease_duration
        self.renew_interval = renew_interval or lease_duration / 4
        self.renewals = 0
        self.failures = 0
        self._owner: dict[str, Any] | None = None

    def set_owner(self, node: Mapping[str, Any]) -> None:
        """Own the Lease by the Node, so deleting the node deletes its Lease."""
        self._owner = {"apiVersion": "v1", "kind": "Node", "name": node["metadata"]["name"],
                       "uid": node["metadata"]["uid"]}

    async def renew(self) -> bool:
        stamp = now_micro()
        spec = {"holderIdentity": self.node,
                "leaseDurationSeconds": max(1, round(self.lease_duration)),
                "renewTime": stamp}
        try:
            try:
                lease = await self.client.get(LEASES, self.node,
                                              namespace=NODE_LEASE_NAMESPACE)
            except NotFound:
                md: dict[str, Any] = {"name": self.node, "namespace": NODE_LEASE_NAMESPACE}
                if self._owner is not None:
                    md["ownerReferences"] = [self._owner]
                await self.client.create(LEASES, {
                    "apiVersion": LEASES.api_version, "kind": LEASES.kind, "metadata": md,
                    "spec": {**spec, "acquireTime": stamp}}, namespace=NODE_LEASE_NAMESPACE)
            else:
                lease["spec"] = {**(lease.get("spec") or {}), **spec}
                await self.client.update(LEASES, lease)
        except (ApiError, OSError) as exc:
            self.failures += 1
            _log.warning("node %s: lease renewal failed: %s", self.node, exc)
            return False
        self.renewals += 1
        return True

    async def run(self) -> None:
        while True:
            await self.renew()
            await asyncio.sleep(self.renew_interval)


__all__ = [
    "AGENT_VERSION", "GPU_RESOURCE", "HOSTNAME_LABEL", "IMAGE_LABEL", "INSTANCE_TYPE_LABEL",
    "POOL_LABEL", "RUNTIME_API_ANNOTATION", "RUNTIME_LABEL", "TIER_LABEL", "ZONE_LABEL",
    "Heartbeat", "NodeIdentity", "ensure_namespace", "node_object", "register",
]
