"""Pod networking: the node's address block, pod addresses by mode, host ports.

Theory of operation
-------------------
Every node claims one block of the cluster's pod address pool (its
``spec.podCIDR``).  Claims are Lease objects named after the block
(``pod-cidr-127-64-3-0-24``) in ``kube-node-lease``, held by the node and owned
by its Node object (so deleting the node frees the block through garbage
collection).  Creating an object is atomic, so two nodes racing for one block
cannot both get it: the loser sees AlreadyExists and probes the next block.
Probing starts at a hash of the node's name, so thousands of nodes starting at
once rarely collide and a restarted agent finds its own claim first.

The block's first address is the node's own (``InternalIP``); pods get the others.
In the process runtime addresses come from ``127.64.0.0/10``: every 127.x.y.z
address is a loopback address on Linux, so each pod has an address of its own
and two replicas can bind the same port.  Those addresses are the machine's, so
the pool a cluster's nodes claim from is itself a block of the machine's
registry (:mod:`.blockregistry`), and each pod can bind only its own address
(:mod:`.bindguard`).  The sim runtime uses ``10.0.0.0/8`` (addresses nobody binds).

Network modes (``spec.networkMode``, DESIGN §8):

``routable``
    an address from the node's block, visible to the whole cluster.
``bridge``
    a node-local address from the same block; other nodes reach the pod only
    through its ``hostPort``\\ s, which the agent forwards from the node's address
    (:class:`PortForwarder`).  A host port already taken on the node rejects the pod.
``dedicated``
    an address on a dedicated interface, of which a node has only a few
    (``dedicated_interfaces``; advertised as the extended resource
    ``pincompute.io/dedicated-interface`` so the scheduler counts them).
``host``
    the node's own address; only for system (platform) pods, identified by
    namespace, because a tenant on the host network could reach every other
    pod's loopback listeners.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from pincompute.kube.errors import AlreadyExists, NotFound
from pincompute.kube.protocol import KubeClient
from pincompute.kube.resource import LEASES
from pincompute.kube.wellknown import KUBE_SYSTEM_NAMESPACE, NODE_LEASE_NAMESPACE
from pincompute.model.wellknown import DEDICATED_INTERFACE_RESOURCE as DEDICATED_RESOURCE
from pincompute.model.wellknown import POD_CIDR_LABEL as CIDR_LABEL
from pincompute.model.wellknown import SYSTEM_NAMESPACE

PROCESS_POOL = "127.64.0.0/10"
SIM_POOL = "10.0.0.0/8"
MODES = ("routable", "bridge", "dedicated", "host")


class NetworkError(RuntimeError):
    """A pod cannot get the network it asks for (reported as the pod's failure reason)."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def claim_name(block: ipaddress.IPv4Network) -> str:
    return f"pod-cidr-{str(block.network_address).replace('.', '-')}-{block.prefixlen}"


async def claim_pod_cidr(client: KubeClient, node: dict[str, Any], *, pool: str,
                         prefix: int = 24, max_tries: int = 4096) -> str:
    """Claim a free block of ``pool`` for ``node`` (a Node object with a uid); returns the CIDR."""
    network = ipaddress.IPv4Network(pool)
    if prefix < network.prefixlen:
        raise ValueError(f"prefix /{prefix} is larger than the pool {pool}")
    count = 2 ** (prefix - network.prefixlen)
    name = node["metadata"]["name"]
    start = int.from_bytes(hashlib.blake2b(name.encode(), digest_size=8).digest()) % count
    base = int(network.network_address)
    size = 2 ** (32 - prefix)
    for i in range(min(count, max_tries)):
        index = (start + i) % count
        block = ipaddress.IPv4Network((base + index * size, prefix))
        if _contains_localhost(block):
            continue  # 127.0.0.1 belongs to everything on the machine
        lease = {
            "apiVersion": LEASES.api_version, "kind": LEASES.kind,
            "metadata": {"name": claim_name(block), "namespace": NODE_LEASE_NAMESPACE,
                         "labels": {CIDR_LABEL: "true"},
                         "ownerReferences": [{"apiVersion": "v1", "kind": "Node",
                                              "name": name, "uid": node["metadata"]["uid"]}]},
            "spec": {"holderIdentity": name},
        }
        try:
            await client.create(LEASES, lease, namespace=NODE_LEASE_NAMESPACE)
            return str(block)
        except AlreadyExists:
            try:
                current = await client.get(LEASES, claim_name(block),
                                           namespace=NODE_LEASE_NAMESPACE)
            except NotFound:
                continue
            if (current.get("spec") or {}).get("holderIdentity") == name:
                return str(block)  # ours from an earlier run
    raise NetworkError("PodCIDRExhausted", f"no free /{prefix} block left in {pool}")


def _contains_localhost(block: ipaddress.IPv4Network) -> bool:
    return ipaddress.IPv4Address("127.0.0.1") in block


@dataclass(slots=True)
class AddressBlock:
    """The node's block: the node's address, and pod addresses handed out by pod uid."""

    cidr: ipaddress.IPv4Network
    _by_pod: dict[str, str] = field(default_factory=dict)
    _free: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        hosts = [str(a) for a in self.cidr.hosts()]
        if len(hosts) < 2:
            raise ValueError(f"{self.cidr} is too small for a node")
        self._free = hosts[1:][::-1]  # pop() hands out the lowest first

    @property
    def node_ip(self) -> str:
        return str(next(iter(self.cidr.hosts())))

    def allocate(self, pod_uid: str) -> str:
        if pod_uid in self._by_pod:
            return self._by_pod[pod_uid]
        if not self._free:
            raise NetworkError("OutOfAddresses", f"no free pod address left in {self.cidr}")
        ip = self._free.pop()
        self._by_pod[pod_uid] = ip
        return ip

    def release(self, pod_uid: str) -> None:
        ip = self._by_pod.pop(pod_uid, None)
        if ip is not None:
            self._free.append(ip)

    def reserve(self, pod_uid: str, ip: str) -> bool:
        """Give a restarted agent's pod back the address it had (if still free)."""
        if ip in self._free:
            self._free.remove(ip)
            self._by_pod[pod_uid] = ip
            return True
        return self._by_pod.get(pod_uid) == ip

    def in_use(self) -> int:
        return len(self._by_pod)


@dataclass(frozen=True, slots=True)
class PodNetwork:
    mode: str
    ip: str
    host_ports: tuple[tuple[int, int, str], ...] = ()
    """(hostPort, containerPort, protocol) forwarded from the node's address."""


class Networking:
    """Assigns pods their network by mode and keeps the node's per-mode limits."""

    def __init__(self, block: AddressBlock, *, dedicated_interfaces: int = 2,
                 system_namespaces: Iterable[str] = (SYSTEM_NAMESPACE,
                                                       KUBE_SYSTEM_NAMESPACE)) -> None:
        self.block = block
        self.dedicated_interfaces = dedicated_interfaces
        self.system_namespaces = frozenset(system_namespaces)
        self._dedicated: set[str] = set()
        self._host_ports: dict[tuple[int, str], str] = {}

    @property
    def node_ip(self) -> str:
        return self.block.node_ip

    def setup(self, pod: dict[str, Any], *, ip: str | None = None) -> PodNetwork:
        md = pod["metadata"]
        uid = md["uid"]
        spec = pod.get("spec") or {}
        mode = spec.get("networkMode") or ("host" if spec.get("hostNetwork") else "routable")
        if mode not in MODES:
            raise NetworkError("UnsupportedNetworkMode", f"network mode {mode!r} is not one of "
                               f"{', '.join(MODES)}")
        if mode == "host":
            if md.get("namespace") not in self.system_namespaces:
                raise NetworkError("HostNetworkForbidden",
                                   "host networking is reserved to system pods (namespaces "
                                   f"{', '.join(sorted(self.system_namespaces))})")
            return PodNetwork("host", self.node_ip)
        if mode == "dedicated" and uid not in self._dedicated:
            if len(self._dedicated) >= self.dedicated_interfaces:
                raise NetworkError("OutOfDedicatedInterfaces",
                                   f"all {self.dedicated_interfaces} dedicated interfaces of "
                                   "the node are in use")
            self._dedicated.add(uid)
        ports: list[tuple[int, int, str]] = []
        if mode == "bridge":
            for c in spec.get("containers") or ():
                for p in c.get("ports") or ():
                    if p.get("hostPort"):
                        ports.append((int(p["hostPort"]), int(p["containerPort"]),
                                      p.get("protocol") or "TCP"))
            for host_port, _, proto in ports:
                owner = self._host_ports.get((host_port, proto))
                if owner is not None and owner != uid:
                    self._dedicated.discard(uid)
                    raise NetworkError("HostPortConflict",
                                       f"host port {host_port}/{proto} is already in use")
            for host_port, _, proto in ports:
                self._host_ports[(host_port, proto)] = uid
        if ip is None or not self.block.reserve(uid, ip):
            ip = self.block.allocate(uid)
        return PodNetwork(mode, ip, tuple(ports))

    def teardown(self, pod_uid: str) -> None:
        self.block.release(pod_uid)
        self._dedicated.discard(pod_uid)
        for key in [k for k, v in self._host_ports.items() if v == pod_uid]:
            del self._host_ports[key]

    def dedicated_in_use(self) -> int:
        return len(self._dedicated)


class PortForwarder:
    """Forwards TCP host ports on the node's address to a pod's address (bridge mode)."""

    def __init__(self) -> None:
        self._servers: dict[str, list[asyncio.Server]] = {}

    async def open(self, pod_uid: str, *, host_ip: str, pod_ip: str,
                   ports: Iterable[tuple[int, int, str]]) -> None:
        servers = self._servers.setdefault(pod_uid, [])
        for host_port, container_port, proto in ports:
            if proto != "TCP":
                continue  # UDP/SCTP forwarding is not implemented; the port is recorded only

            async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                             port: int = container_port) -> None:
                await _splice(reader, writer, pod_ip, port)

            servers.append(await asyncio.start_server(handle, host_ip, host_port))

    async def close(self, pod_uid: str) -> None:
        for server in self._servers.pop(pod_uid, []):
            server.close()
            with contextlib.suppress(Exception):
                await server.wait_closed()

    async def close_all(self) -> None:
        for uid in list(self._servers):
            await self.close(uid)


async def _splice(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                  host: str, port: int) -> None:
    try:
        up_reader, up_writer = await asyncio.open_connection(host, port)
    except OSError:
        writer.close()
        return

    async def pump(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
        try:
            while data := await src.read(65536):
                dst.write(data)
                await dst.drain()
        except (OSError, asyncio.IncompleteReadError):
            pass  # either side closed: the forwarded connection is over
        finally:
            with contextlib.suppress(OSError):
                dst.close()

    await asyncio.gather(pump(reader, up_writer), pump(up_reader, writer))


__all__ = [
    "CIDR_LABEL", "DEDICATED_RESOURCE", "MODES", "NODE_LEASE_NAMESPACE", "PROCESS_POOL",
    "SIM_POOL", "AddressBlock", "NetworkError", "Networking", "PodNetwork", "PortForwarder",
    "claim_name", "claim_pod_cidr",
]
