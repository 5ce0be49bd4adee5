"""An embedded region: what ``pincompute up`` runs in one process.

A region is one host cluster and one member cluster per zone (DESIGN §1), each
an :class:`~pincompute.kube.backends.embedded.EmbeddedStore` persisted in its own
directory under the data directory, so a member can be reasoned about — and
later moved to a real cluster — on its own.  The region also runs one
controller manager over them, built from the controller table
(:mod:`pincompute.controllers`: host-side controllers once, member- and
node-side ones per member cluster), leader-elected on a Lease in the host
cluster so a second ``pincompute up`` on the same data could never act
alongside the first.

Each member cluster is a whole cluster: a ``general`` NodePool (created with
``nodes_per_zone`` nodes, then as the user leaves it) whose nodes the node
provisioner runs as node agents of this process (``process`` runtime: real
processes; ``sim``: simulated, for scale), the pod scheduler binding its pods,
and the node lifecycle controller watching the nodes' leases.  A Pod written into a member
cluster is placed on a node and runs.

Opening a region that already has data resumes it: stores reopen at their last
acknowledged write and controllers converge from there.

A region whose pods would run as the agent's own uid (``process`` runtime
without root, or isolation turned off) cannot keep tenants apart: any pod could
read the stores and stop the region.  It says so (:attr:`Region.shared_uid`,
each node's ``IsolationDegraded`` condition) and serves *one* project: the host
store refuses to create a second (``Forbidden``, whoever asks — ``up``, an
applied file, a client of the store) unless the region was opened with
``single_user=True``, the operator's statement that every project is theirs.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import hashlib
import os
import string
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from pincompute.controllers import (
    CONTROLLER_MANAGER_LEASE,
    NodeOptions,
    add_host_controllers,
    add_member_controllers,
    new_manager,
)
from pincompute.controllers import identity as controller_identity
from pincompute.kube.backends.embedded import EmbeddedStore
from pincompute.kube.errors import AlreadyExists, Forbidden, NotFound
from pincompute.kube.protocol import KubeClient
from pincompute.kube.resource import NAMESPACES, Resource
from pincompute.kube.wellknown import ZONE_LABEL
from pincompute.member.provisioner import NodeProvisioner
from pincompute.model import registry
from pincompute.model.wellknown import DATA_PATH_ANNOTATION, SYSTEM_NAMESPACE, NodeRuntimeKind
from pincompute.node.agent import NOT_ROOT
from pincompute.node.blockregistry import BlockRegistry
from pincompute.node.network import PROCESS_POOL
from pincompute.regionhealth import RegionHealth
from pincompute.runtime.manager import Manager

REGION_NAME = "local"
NODES_ROOT = Path("/var/lib/pincompute/nodes")
"""Where nodes of process-runtime regions run as root live (never under a data directory)."""
DEFAULT_PROJECT = "demo"


@dataclass(slots=True)
class Cluster:
    name: str
    role: str  # "host" or "member"
    zone: str
    path: Path
    store: EmbeddedStore
    client: KubeClient


@dataclass(slots=True)
class Region:
    data_dir: Path
    host: Cluster
    members: list[Cluster]
    manager: Manager
    lock: DataDirLock
    provisioners: dict[str, NodeProvisioner] = field(default_factory=dict)
    """Per member cluster: its node agents (``provisioners[name].agents(pool)``)."""
    health: RegionHealth | None = None
    """``/healthz``, ``/readyz`` and the StoreReadOnly conditions (see :mod:`.regionhealth`)."""
    shared_uid: str | None = None
    """Why pods run as the region's own uid (``None``: each pod has its own)."""
    _task: asyncio.Task[None] | None = field(default=None)

    @property
    def clusters(self) -> list[Cluster]:
        return [self.host, *self.members]

    @classmethod
    async def open(cls, data_dir: Path, *, zones: int = 3, identity: str | None = None,
                   lease_duration: float = 15.0, runtime: NodeRuntimeKind = "process",
                   nodes_per_zone: int = 2, node_options: Mapping[str, Any] | None = None,
                   health_port: int | None = 0, single_user: bool = False,
                   euid: int | None = None) -> Region:
        """Open (or resume) a region; ``node_options`` are extra NodeConfig fields.

        ``health_port``: where ``/healthz`` and ``/readyz`` are served on 127.0.0.1
        (0: any free port; None: not served).  ``single_user``: allow several
        projects even when pods share the region's uid (all of them belong to one
        user).  ``euid``: the user the nodes run as (default: this process's; tests
        pass another).
        """
        if not 1 <= zones <= 26:
            raise ValueError("zones must be between 1 and 26")
        if nodes_per_zone < 0:
            raise ValueError("nodes_per_zone must be >= 0")
        data_dir = data_dir.expanduser().resolve()
        lock = DataDirLock.acquire(data_dir)
        # One process at a time owns a data directory (the lock), so the
        # controller manager's identity can be stable (see controllers.identity).
        identity_ = identity or controller_identity(data_dir=data_dir)
        host = await _open_cluster("host", "host", "", data_dir / "host", registry.HOST_RESOURCES)
        shared_uid = pods_share_uid(runtime=runtime, node_options=node_options or {},
                                    euid=os.geteuid() if euid is None else euid)
        if shared_uid is not None and not single_user:
            guard_single_project(host.store, reason=shared_uid)
        members = []
        for letter in string.ascii_lowercase[:zones]:
            zone = f"zone-{letter}"
            name = f"{zone}-1"
            members.append(await _open_cluster(name, "member", zone,
                                               data_dir / "members" / name,
                                               registry.MEMBER_RESOURCES))
        for cluster in (host, *members):
            await _ensure(cluster.client, NAMESPACES, {"metadata": {"name": SYSTEM_NAMESPACE}})
        for member in members:
            await _ensure(host.client, registry.MEMBERCLUSTERS, {
                "metadata": {"name": member.name,
                             "labels": {ZONE_LABEL: member.zone},
                             "annotations": {DATA_PATH_ANNOTATION: str(member.path)}},
                "spec": {"zone": member.zone, "region": REGION_NAME,
                         "connection": {"type": "Embedded"}},
            })
        manager = new_manager("controller-manager", client=host.client,
                              lease=CONTROLLER_MANAGER_LEASE, identity=identity_,
                              lease_duration=lease_duration, shutdown_timeout=10.0)
        embedded = {m.name: m.client for m in members}
        add_host_controllers(manager, host=host.client, embedded=embedded.get,
                             backend="embedded")
        provisioners: dict[str, NodeProvisioner] = {}
        node_base = node_base_dir(data_dir, runtime=runtime)
        for member in members:
            # The data directory's free space is guarded by every node's disk reserve.
            config = {"guarded_dirs": (data_dir,), **(node_options or {})}
            if runtime == "process" and not config.get("pod_pool"):
                # Loopback addresses are the machine's: each member cluster's pods get a
                # block no other cluster of any region on this machine has.
                config["pod_pool"] = await asyncio.to_thread(
                    BlockRegistry().claim, data_dir, member.name, pool=PROCESS_POOL)
            nodes = NodeOptions(runtime=runtime, base_dir=node_base / member.name,
                                initial_size=nodes_per_zone, config=config)
            made = add_member_controllers(manager, client=member.client, cluster=member.name,
                                          zone=member.zone, backend="embedded",
                                          shared_manager=True, nodes=nodes)
            await _ensure_pool(member.client, runtime=runtime, size=nodes.initial_size)
            provisioner = made[f"node-provisioner-{member.name}"]
            assert isinstance(provisioner, NodeProvisioner)
            provisioners[member.name] = provisioner
        health = RegionHealth(host_client=host.client, clusters=[host, *members],
                              port=health_port) if health_port is not None else None
        return cls(data_dir=data_dir, host=host, members=members, manager=manager, lock=lock,
                   provisioners=provisioners, health=health, shared_uid=shared_uid)

    async def start(self, *, timeout: float = 120.0) -> None:
        """Start the controller manager; returns once it runs and every member's node
        pools have their nodes (registered and Ready)."""
        if self.health is not None:
            await self.health.start()
        self._task = asyncio.create_task(self.manager.run(), name="controller-manager")
        started = asyncio.ensure_future(self._provisioned(timeout))
        await asyncio.wait((started, self._task), return_when=asyncio.FIRST_COMPLETED)
        started.cancel()
        if self._task.done():
            self._task.result()
        started.result()

    async def _provisioned(self, timeout: float) -> None:
        async with asyncio.timeout(timeout):
            await self.manager.wait_started()
            for provisioner in self.provisioners.values():
                await provisioner.wait_provisioned()

    async def wait(self) -> None:
        """Wait until the manager stops (by :meth:`close` or by losing its lease)."""
        if self._task is not None:
            await asyncio.shield(self._task)

    async def ensure_project(self, name: str = DEFAULT_PROJECT, *,
                             timeout: float = 30.0) -> None:
        """Create a project (if missing) and wait until its namespace exists in the host."""
        await _ensure(self.host.client, registry.PROJECTS, {"metadata": {"name": name},
                                                            "spec": {}})
        async with asyncio.timeout(timeout):
            while True:
                try:
                    await self.host.client.get(NAMESPACES, name)
                    return
                except NotFound:
                    await asyncio.sleep(0.05)

    async def apply(self, documents: list[dict[str, Any]], *,
                    namespace: str = DEFAULT_PROJECT) -> list[str]:
        """Create or update objects in the host cluster; returns ``kind/name`` per object.

        Namespaced objects without a namespace go to the project ``namespace``.
        """
        done = []
        for doc in documents:
            resource = registry.lookup(doc.get("kind", ""))
            md = doc.get("metadata") or {}
            ns = (md.get("namespace") or namespace) if resource.namespaced else None
            try:
                current = await self.host.client.get(resource, md.get("name", ""),
                                                     namespace=ns)
            except NotFound:
                await self.host.client.create(resource, doc, namespace=ns)
            else:
                merged = {**doc, "metadata": {**md, "resourceVersion":
                                              current["metadata"]["resourceVersion"]}}
                if ns is not None:
                    merged["metadata"]["namespace"] = ns
                await self.host.client.update(resource, merged)
            done.append(f"{resource.kind.lower()}/{md.get('name')}")
        return done

    async def close(self) -> None:
        self.manager.stop()
        if self._task is not None:
            with contextlib.suppress(Exception):  # shutting down regardless; it was logged
                await self._task
        for provisioner in self.provisioners.values():
            await provisioner.close()
        if self.health is not None:
            await self.health.stop()
        for cluster in reversed(self.clusters):
            await cluster.store.close()
        self.lock.release()


def pods_share_uid(*, runtime: str, node_options: Mapping[str, Any], euid: int) -> str | None:
    """Why the region's pods would run as its own uid, or ``None`` if each gets its own."""
    if runtime != "process":
        return None  # simulated pods run nothing
    if node_options.get("isolation") == "off":
        return "isolation is off: pods run as the region's uid and can read its stores"
    if euid != 0:
        return NOT_ROOT
    return None


def guard_single_project(store: EmbeddedStore, *, reason: str) -> None:
    """Make ``store`` (a host store) refuse a second Project: its pods would share a uid."""
    base = registry.validator_for(registry.PROJECTS)

    def validate(obj: dict[str, Any], old: dict[str, Any] | None) -> dict[str, Any] | None:
        if old is None:
            name = (obj.get("metadata") or {}).get("name", "")
            items = store.list(registry.PROJECTS, namespace=None, label_selector=None,
                               field_selector=None, limit=1, continue_token=None)[0]
            others = [p["metadata"]["name"] for p in items if p["metadata"]["name"] != name]
            if others:
                raise Forbidden(
                    f'projects "{name}" is forbidden: this region serves one user, since '
                    f"{reason}; it already has project {others[0]!r}. Run it as root for "
                    "several tenants, or start it with --single-user if every project is "
                    "yours", kind="Project", name=name)
        return base(obj, old)

    store.register(registry.PROJECTS, validator=validate)


class DataDirInUse(RuntimeError):
    """Another process holds the data directory's lock."""


@dataclass(slots=True)
class DataDirLock:
    """An exclusive lock on a data directory (``flock``; released if the process dies)."""

    fd: int

    @classmethod
    def acquire(cls, data_dir: Path) -> DataDirLock:
        # The data directory holds the stores, and they hold every Secret: nobody but the
        # region's own user may even pass through it (an older one may have been 0755).
        data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(data_dir, 0o700)
        path = data_dir / "LOCK"
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 64).decode(errors="replace").strip() or "another process"
            os.close(fd)
            raise DataDirInUse(f"{data_dir} is in use by {holder}; stop it first or pass "
                               "another --data-dir") from None
        os.ftruncate(fd, 0)
        os.write(fd, f"pid {os.getpid()}\n".encode())
        return cls(fd)

    def release(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


async def _open_cluster(name: str, role: str, zone: str, path: Path,
                        kinds: tuple[Resource, ...]) -> Cluster:
    store = await EmbeddedStore.open(path=path)
    registry.install(store, resources=kinds)
    return Cluster(name=name, role=role, zone=zone, path=path, store=store,
                   client=store.client())


def node_base_dir(data_dir: Path, *, runtime: str) -> Path:
    """Where the region's nodes keep their pods' sandboxes, logs and volumes.

    With the process runtime as root, every pod runs as its own unprivileged uid
    and must be able to pass through each parent of its sandbox — so the nodes
    never live under the data directory, which holds the stores (every Secret)
    and is mode 0700.  They live beside it, in ``<data dir>-nodes``, when every
    parent lets other users pass; otherwise (a data directory under root's 0700
    home) under ``/var/lib/pincompute/nodes/<digest of the data directory>``.
    Simulated pods, and pods that share the agent's uid anyway, keep them in
    the data directory.
    """
    if runtime != "process" or os.geteuid() != 0:
        return data_dir / "nodes"
    if all(p.stat().st_mode & 0o001 for p in data_dir.parents if p.exists()):
        return data_dir.with_name(f"{data_dir.name}-nodes")
    digest = hashlib.sha256(str(data_dir).encode()).hexdigest()[:16]
    return NODES_ROOT / digest


async def _ensure_pool(client: KubeClient, *, runtime: str, size: int) -> dict[str, Any]:
    """The member's ``general`` NodePool (created on first start, then as the user left it);
    the node provisioner makes its nodes."""
    await _ensure(client, registry.NODEPOOLS, {
        "metadata": {"name": "general"},
        "spec": {"instanceType": "embedded.standard-4", "runtime": runtime,
                 "capacity": {"cpu": "4", "memory": "8Gi", "pods": "110"},
                 "minSize": 0, "maxSize": max(size, 1), "desiredSize": size},
    })
    return await client.get(registry.NODEPOOLS, "general")


async def _ensure(client: KubeClient, resource: Resource, obj: dict[str, Any]) -> None:
    with contextlib.suppress(AlreadyExists):
        await client.create(resource, obj)


def load_documents(path: Path) -> list[dict[str, Any]]:
    """The YAML documents of a file (``---``-separated), skipping empty ones."""
    with path.open() as f:
        return [d for d in yaml.safe_load_all(f) if d]
