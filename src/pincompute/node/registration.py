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
* **Readiness gate.**  A new Node is created with the taint
  ``node.kubernetes.io/not-ready:NoSchedule`` (:data:`READINESS_GATE`), as the
  kubelet registers: between registration and the first passing health
  evaluation the node has no ``Ready`` condition, and schedulers do not read
  conditions — they read taints.  The agent lifts the taint itself once it has
  posted ``Ready=True`` (:mod:`.agent`), so no pod that does not tolerate it is
  bound to a node before its health probes pass.
* **Re-adoption.**  :meth:`NodeIdentity.from_node` reads back the identity a
  registered Node carries, so an agent restarted for an existing Node (the node
  provisioner after a restart) keeps what the node was created with.
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
from pincompute.kube.wellknown import NOT_READY_TAINT as NOT_READY
from pincompute.model.wellknown import NODE_IMAGE_LABEL as IMAGE_LABEL
from pincompute.model.wellknown import NODE_POOL_LABEL as POOL_LABEL
from pincompute.model.wellknown import NODE_RUNTIME_LABEL as RUNTIME_LABEL
from pincompute.model.wellknown import RUNTIME_API_ANNOTATION, TIER_LABEL
from pincompute.runtime.logging import get_logger

from .network import DEDICATED_RESOURCE, NODE_LEASE_NAMESPACE

_log = get_logger(__name__)

AGENT_VERSION = "pincompute-node/0.1.0"
READINESS_GATE: Mapping[str, str] = {"key": NOT_READY, "effect": "NoSchedule"}
"""The taint a node joins with; lifted once its health probes pass."""
_DERIVED_LABELS = frozenset({HOSTNAME_LABEL, "kubernetes.io/os", "kubernetes.io/arch",
                             INSTANCE_TYPE_LABEL, TIER_LABEL, RUNTIME_LABEL, ZONE_LABEL,
                             POOL_LABEL, IMAGE_LABEL})
"""Labels :meth:`NodeIdentity.all_labels` derives from the identity's fields."""


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

    @classmethod
    def from_node(cls, node: Mapping[str, Any]) -> NodeIdentity:
        """The identity a registered Node carries (labels, taints, capacity, reserved)."""
        md = node.get("metadata") or {}
        labels = md.get("labels") or {}
        status = node.get("status") or {}
        capacity = status.get("capacity") or {}
        allocatable = status.get("allocatable") or {}
        options: dict[str, Any] = {
            "name": md["name"], "zone": labels.get(ZONE_LABEL, ""),
            "node_pool": labels.get(POOL_LABEL, ""),
            "instance_type": labels.get(INSTANCE_TYPE_LABEL, "embedded"),
            "tier": labels.get(TIER_LABEL, "ondemand"),
            "node_image": labels.get(IMAGE_LABEL, ""),
            "labels": {k: v for k, v in labels.items() if k not in _DERIVED_LABELS},
            "taints": [dict(t) for t in (node.get("spec") or {}).get("taints") or ()
                       if not _is_gate(t)],
        }
        for key, option, convert in (("cpu", "cpu", str), ("memory", "memory", str),
                                     ("pods", "pods", to_int), (GPU_RESOURCE, "gpus", to_int),
                                     (DEDICATED_RESOURCE, "dedicated_interfaces", to_int)):
            if capacity.get(key) is not None:
                options[option] = convert(capacity[key])
        reserved = {}
        with contextlib.suppress(KeyError, QuantityError):
            if cpu_millis(capacity["cpu"]) > cpu_millis(allocatable["cpu"]):
                reserved["cpu"] = format_cpu(cpu_millis(capacity["cpu"])
                                             - cpu_millis(allocatable["cpu"]))
        with contextlib.suppress(KeyError, QuantityError):
            if to_int(capacity["memory"]) > to_int(allocatable["memory"]):
                reserved["memory"] = format_bytes(to_int(capacity["memory"])
                                                  - to_int(allocatable["memory"]))
        options["reserved"] = reserved
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
                api_port: int = 0, conditions: Sequence[Mapping[str, Any]] = ()
                ) -> dict[str, Any]:
    """The Node as this agent registers it (``conditions`` come from :mod:`.health`)."""
    md: dict[str, Any] = {"name": identity.name,
                          "labels": identity.all_labels(runtime=runtime)}
    if api_endpoint:
        md["annotations"] = {RUNTIME_API_ANNOTATION: api_endpoint}
    # The readiness gate: kept by re-registration (taints are the control plane's
    # then), lifted by the agent once the node is Ready.
    spec: dict[str, Any] = {"taints": [dict(t) for t in identity.taints]
                            + [dict(READINESS_GATE)]}
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
        "conditions": [dict(c) for c in conditions],
    }
    return {"apiVersion": "v1", "kind": "Node", "metadata": md, "spec": spec, "status": status}


async def ensure_namespace(client: KubeClient, name: str) -> None:
    with contextlib.suppress(AlreadyExists):
        await client.create(NAMESPACES, {"apiVersion": "v1", "kind": "Namespace",
                                         "metadata": {"name": name}})


async def register(client: KubeClient, desired: Mapping[str, Any]) -> dict[str, Any]:
    """Create the Node, or bring an existing one's labels, annotations and status up to date
    (its conditions too when ``desired`` has some)."""
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
                  **{k: v for k, v in desired["status"].items() if k != "conditions" or v}}
        current["status"] = status
        try:
            return await client.update_status(NODES, current)
        except Conflict:
            continue
    raise ApiError(f"could not update node {desired['metadata']['name']} (conflicts)")


def registered_runtime(node: Mapping[str, Any]) -> str | None:
    """The runtime (``process`` or ``sim``) a registered Node's agent ran."""
    return ((node.get("metadata") or {}).get("labels") or {}).get(RUNTIME_LABEL)


def has_readiness_gate(node: Mapping[str, Any]) -> bool:
    """Whether the node still carries the taint it joined with (:data:`READINESS_GATE`)."""
    return any(_is_gate(t) for t in (node.get("spec") or {}).get("taints") or ())


def _is_gate(taint: Mapping[str, Any]) -> bool:
    return taint.get("key") == NOT_READY and taint.get("effect") == "NoSchedule"


async def lift_readiness_gate(client: KubeClient, name: str, *,
                              node: Mapping[str, Any] | None = None, tries: int = 5) -> bool:
    """Remove :data:`READINESS_GATE` from the node (other taints stay); whether it did.

    ``node`` is the Node as last read, if at hand (saves a read).  A merge patch
    replaces the whole taint list, so it carries the resourceVersion it was
    computed from: a taint someone added meanwhile is never dropped.
    """
    for _ in range(tries):
        if node is None:
            try:
                node = await client.get(NODES, name)
            except NotFound:
                return False
        taints = (node.get("spec") or {}).get("taints") or []
        kept = [t for t in taints if not _is_gate(t)]
        if len(kept) == len(taints):
            return False
        try:
            await client.patch(NODES, name, {
                "metadata": {"resourceVersion": node["metadata"]["resourceVersion"]},
                "spec": {"taints": kept or None}})
        except Conflict:
            node = None
            continue
        except NotFound:
            return False
        return True
    return False


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
    "POOL_LABEL", "READINESS_GATE", "RUNTIME_API_ANNOTATION", "RUNTIME_LABEL", "TIER_LABEL",
    "ZONE_LABEL", "Heartbeat", "NodeIdentity", "ensure_namespace", "has_readiness_gate",
    "lift_readiness_gate", "node_object", "register", "registered_runtime",
]
