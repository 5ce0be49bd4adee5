"""An embedded region: what ``pincompute up`` runs in one process.

A region is one host cluster and its member clusters, one or more per zone
(DESIGN §1), each an :class:`~pincompute.kube.backends.embedded.EmbeddedStore`
persisted in its own directory under the data directory, so a member can be
reasoned about — and later moved to a real cluster — on its own.

Which member clusters it has is recorded in the host, as MemberCluster objects
(:mod:`pincompute.regionmembers`): opening a region opens every embedded member
the host records; the shape asked for (``zones`` and ``clusters_per_zone``) only
seeds the first start.  A region grows and shrinks while it runs —
:meth:`Region.add_cluster`, :meth:`Region.remove_cluster` — and a restart resumes
with the clusters it had.

Controllers come from the controller table (:mod:`pincompute.controllers`).  The
region runs one manager, leader-elected on a Lease in the host cluster so a
second ``pincompute up`` on the same data could never act alongside the first,
with the host-side controllers; each member cluster's member- and node-side
controllers run on a *child* manager of its own
(:meth:`~pincompute.runtime.manager.Manager.add_child`), under the region's
lease.  The child is the unit a member comes and goes by: its informers,
controllers and node agents start together when the cluster is added and stop
together when it is removed, while the rest of the region carries on — no
controller or informer has to be taken out of a shared manager one by one.

Each member cluster is a whole cluster: a ``general`` NodePool (created with
``nodes_per_cluster`` nodes, then as the user leaves it; with ``pools="tiers"``
one pool per tier instead, :func:`pool_specs`) whose nodes the node
provisioner runs as node agents of this process (``process`` runtime: real
processes; ``sim``: simulated, for scale), the pod scheduler binding its pods,
and the node lifecycle controller watching the nodes' leases.  A Pod written into a member
cluster is placed on a node and runs.

Adding a member opens its store, installs the kinds, starts its child manager
and node pool, and only then registers its MemberCluster, so the federation's
live cluster set (:mod:`pincompute.federation.clusterset`) connects it at the
first attempt and projects get their namespaces there.  Removing one drains it:
the MemberCluster is tainted ``NoSchedule`` with the condition ``Draining``, the
region waits until its workloads have left (or is told not to wait), deletes its
node pools (the provisioner drains and removes the nodes), stops its child
manager, deregisters it, lets the cluster set let go, and closes the store —
keeping its data directory unless asked to delete it.

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
import secrets
import shutil
from collections.abc import Awaitable, Callable, Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar

import yaml

from pincompute import regionmembers
from pincompute.controllers import (
    CONTROLLER_MANAGER_LEASE,
    NodeOptions,
    add_host_controllers,
    add_member_controllers,
    new_manager,
)
from pincompute.controllers import identity as controller_identity
from pincompute.federation.clusterset import ClusterSet
from pincompute.kube.backends.embedded import EmbeddedStore
from pincompute.kube.errors import AlreadyExists, Forbidden, NotFound
from pincompute.kube.protocol import KubeClient
from pincompute.kube.resource import NAMESPACES, NODES, PODS, Resource
from pincompute.member.provisioner import NodeProvisioner
from pincompute.model import registry
from pincompute.model.wellknown import SYSTEM_NAMESPACE, NodeRuntimeKind
from pincompute.node.agent import NOT_ROOT
from pincompute.node.blockregistry import BlockRegistry
from pincompute.node.network import PROCESS_POOL
from pincompute.regionhealth import RegionHealth
from pincompute.regionmembers import MemberRecord
from pincompute.runtime.logging import get_logger
from pincompute.runtime.manager import Manager

REGION_NAME = "local"
NODES_ROOT = Path("/var/lib/pincompute/nodes")
"""Where nodes of process-runtime regions run as root live (never under a data directory)."""
DEFAULT_PROJECT = "demo"
DEFAULT_NODES_PER_CLUSTER = 2
PoolLayout = Literal["general", "tiers"]

T = TypeVar("T")
_log = get_logger(__name__)


@dataclass(slots=True)
class Cluster:
    name: str
    role: str  # "host" or "member"
    zone: str
    path: Path
    store: EmbeddedStore
    client: KubeClient
    manager: Manager | None = None
    """A member cluster's controllers' manager (a child of the region's); ``None`` for
    the host, whose controllers run on the region's manager itself."""


@dataclass(frozen=True, slots=True)
class NodeSettings:
    """How the region's member clusters get their nodes."""

    runtime: NodeRuntimeKind
    per_cluster: int
    """Nodes of a new member cluster's ``general`` pool."""
    base_dir: Path
    """Node directories go under ``<base_dir>/<cluster>/<node>``."""
    options: Mapping[str, Any]
    """Extra NodeConfig fields for every node."""
    pools: PoolLayout = "general"
    """A new member cluster's node pools (:func:`pool_specs`)."""


class DrainTimeout(TimeoutError):
    """A member cluster did not drain in time; it stays registered and draining."""


@dataclass(slots=True)
class Region:
    data_dir: Path
    host: Cluster
    members: list[Cluster]
    manager: Manager
    lock: DataDirLock
    nodes: NodeSettings
    clusterset: ClusterSet
    """The federation's live member set (host side; follows the MemberClusters)."""
    provisioners: dict[str, NodeProvisioner] = field(default_factory=dict)
    """Per member cluster: its node agents (``provisioners[name].agents(pool)``)."""
    health: RegionHealth | None = None
    """``/healthz``, ``/readyz`` and the StoreReadOnly conditions (see :mod:`.regionhealth`)."""
    shared_uid: str | None = None
    """Why pods run as the region's own uid (``None``: each pod has its own)."""
    controller_options: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    """Entry name → keyword options for the controller table's set-ups (see :meth:`open`)."""
    _embedded: dict[str, KubeClient] = field(default_factory=dict)
    """The cluster set's resolver of embedded connections: member name → client."""
    _membership: asyncio.Lock = field(default_factory=asyncio.Lock)
    """One add or remove at a time (names are chosen from what exists)."""
    _task: asyncio.Task[None] | None = field(default=None)

    @property
    def clusters(self) -> list[Cluster]:
        return [self.host, *self.members]

    @property
    def node_api_token(self) -> str:
        """The bearer token of every node's runtime API (logs, exec)."""
        return str(self.nodes.options["api_token"])

    def member(self, name: str) -> Cluster:
        """The member cluster ``name`` (``LookupError`` if the region has none such)."""
        for member in self.members:
            if member.name == name:
                return member
        raise LookupError(f"the region has no member cluster {name!r}")

    @classmethod
    async def open(cls, data_dir: Path, *, zones: int = 3, clusters_per_zone: int = 1,
                   identity: str | None = None, lease_duration: float = 15.0,
                   runtime: NodeRuntimeKind = "process", nodes_per_cluster: int | None = None,
                   nodes_per_zone: int | None = None,
                   node_options: Mapping[str, Any] | None = None,
                   health_port: int | None = 0, single_user: bool = False,
                   euid: int | None = None, disabled_controllers: Collection[str] = (),
                   controller_options: Mapping[str, Mapping[str, Any]] | None = None,
                   pools: PoolLayout = "general") -> Region:
        """Open (or resume) a region; ``node_options`` are extra NodeConfig fields.

        ``zones`` and ``clusters_per_zone``: the member clusters of a first start
        (``zone-a-1``, ``zone-a-2``, ..., ``zone-b-1``, ...); a region that has
        member clusters resumes with those, whatever these say.
        ``nodes_per_cluster``: the initial size of a new member cluster's
        ``general`` node pool (default 2; ``nodes_per_zone`` is its older name,
        same meaning: nodes per member cluster).  ``health_port``: where
        ``/healthz`` and ``/readyz`` are served on 127.0.0.1 (0: any free port;
        None: not served).  ``single_user``: allow several projects even when pods
        share the region's uid (all of them belong to one user).  ``euid``: the
        user the nodes run as (default: this process's; tests pass another).
        ``disabled_controllers``: host-side entries of the controller table not to run
        (a test that drives that step by hand).  ``controller_options``: entry name →
        keyword options for that entry's set-up, host- and member-side alike (e.g.
        ``{"placement": {"grace": 2.0}, "node-lifecycle": {"config": ...}}``: short
        grace periods in a test).  ``pools``: a new member cluster's node pools,
        ``general`` (one pool) or ``tiers`` (reserved, ondemand with min/max,
        preemptible: :func:`pool_specs`).
        """
        seed = regionmembers.initial(zones=zones, clusters_per_zone=clusters_per_zone)
        per_cluster = _nodes_per_cluster(nodes_per_cluster, nodes_per_zone)
        data_dir = data_dir.expanduser().resolve()
        lock = DataDirLock.acquire(data_dir)
        host: Cluster | None = None
        region: Region | None = None
        try:
            # One process at a time owns a data directory (the lock), so the
            # controller manager's identity can be stable (see controllers.identity).
            identity_ = identity or controller_identity(data_dir=data_dir)
            host = await _open_cluster(regionmembers.HOST, "host", "", data_dir / "host",
                                       registry.HOST_RESOURCES)
            shared_uid = pods_share_uid(runtime=runtime, node_options=node_options or {},
                                        euid=os.geteuid() if euid is None else euid)
            if shared_uid is not None and not single_user:
                guard_single_project(host.store, reason=shared_uid)
            await _ensure(host.client, NAMESPACES, {"metadata": {"name": SYSTEM_NAMESPACE}})
            first_start = not await regionmembers.any_registered(host.client)
            records = seed if first_start else await regionmembers.registered(host.client)
            manager = new_manager("controller-manager", client=host.client,
                                  lease=CONTROLLER_MANAGER_LEASE, identity=identity_,
                                  lease_duration=lease_duration, shutdown_timeout=10.0)
            embedded: dict[str, KubeClient] = {}
            made = add_host_controllers(manager, host=host.client, embedded=embedded.get,
                                        backend="embedded", disabled=disabled_controllers,
                                        options=controller_options)
            clusterset = made["clusterset"]
            assert isinstance(clusterset, ClusterSet)
            health = RegionHealth(host_client=host.client, clusters=[host],
                                  port=health_port) if health_port is not None else None
            # One runtime-API token for every node of the region, so the gateway (in this
            # process) can read logs and exec on any of them; not persisted: nodes and
            # gateway get a new one at each start.
            options = {"api_token": secrets.token_urlsafe(24), **(node_options or {})}
            nodes = NodeSettings(runtime=runtime, per_cluster=per_cluster,
                                 base_dir=node_base_dir(data_dir, runtime=runtime),
                                 options=options, pools=pools)
            region = cls(data_dir=data_dir, host=host, members=[], manager=manager, lock=lock,
                         nodes=nodes, clusterset=clusterset, health=health,
                         shared_uid=shared_uid, _embedded=embedded,
                         controller_options=dict(controller_options or {}))
            for record in records:
                await region._open_member(record, nodes=per_cluster)
                if first_start:
                    await region._register(record)
            return region
        except BaseException:
            for cluster in reversed(region.clusters if region is not None else
                                    [host] if host is not None else []):
                with contextlib.suppress(Exception):
                    await cluster.store.close()
            lock.release()
            raise

    async def start(self, *, timeout: float = 120.0) -> None:
        """Start the controller manager; returns once it runs and every member's node
        pools have their nodes (registered and Ready)."""
        if self.health is not None:
            await self.health.start()
        self._task = asyncio.create_task(self.manager.run(), name="controller-manager")
        await self._while_running(self._provisioned(), timeout=timeout)

    async def _provisioned(self) -> None:
        await self.manager.wait_started()
        for provisioner in list(self.provisioners.values()):
            await provisioner.wait_provisioned()

    async def _while_running(self, waiting: Awaitable[T], *, timeout: float) -> T:
        """Await ``waiting`` within ``timeout`` — or raise what stopped the manager."""
        assert self._task is not None
        task = asyncio.ensure_future(waiting)
        try:
            async with asyncio.timeout(timeout):
                await asyncio.wait((task, self._task), return_when=asyncio.FIRST_COMPLETED)
        finally:
            if not task.done():
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
        if not task.cancelled():
            return task.result()
        if self._task.done():
            self._task.result()
            raise RuntimeError("the region's controller manager stopped")
        raise AssertionError("unreachable")  # pragma: no cover

    @property
    def running(self) -> bool:
        """Whether the region's manager runs (started, not stopped)."""
        return self._task is not None and not self._task.done()

    async def wait(self) -> None:
        """Wait until the manager stops (by :meth:`close` or by losing its lease)."""
        if self._task is not None:
            await asyncio.shield(self._task)

    # -- growing and shrinking ------------------------------------------------------------------

    async def add_cluster(self, zone: str, *, name: str | None = None,
                          nodes: int | None = None, timeout: float = 120.0) -> Cluster:
        """Add a member cluster to ``zone`` (a new zone too), before or while the region runs.

        ``name`` defaults to the lowest free ``<zone>-<n>``; naming a removed
        cluster whose data was kept reopens that data.  ``nodes``: its ``general``
        pool's initial size (default: the region's nodes per cluster).  While the
        region runs, returns once the cluster's controllers run, its nodes are
        Ready and the federation's cluster set has connected it.
        """
        if nodes is not None and nodes < 0:
            raise ValueError("nodes must be >= 0")
        async with self._membership:
            if self._task is not None and self._task.done():
                raise RuntimeError("the region has stopped")
            taken = {c.name for c in self.members} | {
                mc["metadata"]["name"]
                for mc in (await self.host.client.list(registry.MEMBERCLUSTERS)).items}
            if name is None:
                regionmembers.check_name(f"{zone}-1", zone=zone)
                name = regionmembers.next_name(zone, taken=taken, data_dir=self.data_dir)
            regionmembers.check_name(name, zone=zone)
            if name in taken:
                raise ValueError(f"member cluster {name!r} already exists")
            record = MemberRecord(name, zone)
            member = await self._open_member(
                record, nodes=self.nodes.per_cluster if nodes is None else nodes)
            await self._register(record)
            _log.info("member cluster %s added to zone %s", name, zone)
        if self._task is not None:
            await self._while_running(self._member_ready(member), timeout=timeout)
        return member

    async def _member_ready(self, member: Cluster) -> None:
        assert member.manager is not None
        await member.manager.wait_started()
        await self.provisioners[member.name].wait_provisioned()
        await self._clusterset_until(lambda: member.name in self.clusterset)

    async def remove_cluster(self, name: str, *, drain: bool = True, timeout: float = 300.0,
                             delete_data: bool = False) -> None:
        """Drain a member cluster and take it out of the region, while the region runs.

        It is tainted ``NoSchedule`` (condition ``Draining``) at once.  With
        ``drain`` the removal waits up to ``timeout`` seconds for its workloads to
        leave, raising :class:`DrainTimeout` — the cluster stays, draining — if they
        have not; ``drain=False`` does not wait (their pods go with the nodes).
        Then its node pools are deleted and their nodes drained and removed, its
        controllers stopped, its MemberCluster deregistered and its store closed.
        Its data directory is kept unless ``delete_data``.
        """
        async with self._membership:
            member = self.member(name)
            if not self.running:
                raise RuntimeError("the region must run to drain a member cluster")
            assert member.manager is not None
            await self._drain(member, wait=drain, timeout=timeout)
            await self._remove_nodes(member, timeout=timeout)
            await self.manager.remove_child(member.manager)
            await self.provisioners.pop(name).close()
            if self.nodes.runtime == "process" and not self.nodes.options.get("pod_pool"):
                await asyncio.to_thread(BlockRegistry().release, self.data_dir, name)
            await self._deregister(member, timeout=timeout)
            if delete_data:
                await asyncio.to_thread(shutil.rmtree, member.path, ignore_errors=True)
                await asyncio.to_thread(shutil.rmtree, self.nodes.base_dir / name,
                                        ignore_errors=True)
            _log.info("member cluster %s removed (data %s)", name,
                      "deleted" if delete_data else f"kept in {member.path}")

    async def _drain(self, member: Cluster, *, wait: bool, timeout: float) -> None:
        """Taint the member ``Draining``; with ``wait``, until its workloads have left."""
        child = member.manager
        assert child is not None
        workloads = regionmembers.Leftovers({
            **{child.informer(member.client, r): regionmembers.counts_all
               for r in regionmembers.MEMBER_WORKLOADS},
            child.informer(member.client, PODS): regionmembers.is_workload_pod})
        try:
            await self._while_running(workloads.wait_synced(), timeout=timeout)
            waiting = f"; waiting for {workloads.describe()} to leave" \
                if wait and workloads else ""
            await regionmembers.mark_draining(
                self.host.client, member.name,
                message=f"being removed from the region: no new placements{waiting}")
            _log.info("member cluster %s: draining%s", member.name, waiting)
            if wait:
                await self._while_running(workloads.wait_empty(), timeout=timeout)
        except TimeoutError:
            raise DrainTimeout(
                f"member cluster {member.name}: {workloads.describe()} still there after "
                f"{timeout:g}s; it stays draining — remove it with drain=False to take its "
                "nodes away regardless") from None
        finally:
            workloads.close()

    async def _deregister(self, member: Cluster, *, timeout: float) -> None:
        """Delete the MemberCluster; once the cluster set has let go, close the store."""
        name = member.name
        with contextlib.suppress(NotFound):
            await self.host.client.delete(registry.MEMBERCLUSTERS, name)
        # The cluster set stops the member's informers before its store closes.
        await self._while_running(self._clusterset_until(
            lambda: name not in self.clusterset and self.clusterset.state(name) is None),
            timeout=timeout)
        self._embedded.pop(name, None)
        if self.health is not None:
            self.health.discard(name)
        self.members.remove(member)
        await member.store.close()

    async def _remove_nodes(self, member: Cluster, *, timeout: float) -> None:
        """Delete every node pool; wait until the provisioner has drained and removed them
        and their nodes."""
        child = member.manager
        assert child is not None
        left = regionmembers.Leftovers({
            child.informer(member.client, registry.NODEPOOLS): regionmembers.counts_all,
            child.informer(member.client, NODES): regionmembers.counts_all})
        try:
            for pool in (await member.client.list(registry.NODEPOOLS)).items:
                with contextlib.suppress(NotFound):
                    await member.client.delete(registry.NODEPOOLS, pool["metadata"]["name"])
            await self._while_running(left.wait_empty(), timeout=timeout)
        except TimeoutError:
            raise DrainTimeout(f"member cluster {member.name}: its nodes were not drained "
                               f"within {timeout:g}s ({left.describe()} left); it stays "
                               "draining") from None
        finally:
            left.close()

    async def _clusterset_until(self, done: Callable[[], bool]) -> None:
        """Until ``done()`` holds, looked at whenever the cluster set changes."""
        changed = asyncio.Event()
        sub = self.clusterset.subscribe(on_added=lambda _h: changed.set(),
                                        on_removed=lambda _h: changed.set(),
                                        on_state=lambda _n: changed.set())
        try:
            while not done():
                changed.clear()
                await changed.wait()
        finally:
            sub.remove()

    async def _open_member(self, record: MemberRecord, *, nodes: int) -> Cluster:
        """Open a member's store and build its child manager (started with the region's)."""
        path = regionmembers.store_path(self.data_dir, record.name)
        member = await _open_cluster(record.name, "member", record.zone, path,
                                     registry.MEMBER_RESOURCES)
        try:
            await _ensure(member.client, NAMESPACES, {"metadata": {"name": SYSTEM_NAMESPACE}})
            # The data directory's free space is guarded by every node's disk reserve.
            config = {"guarded_dirs": (self.data_dir,), **self.nodes.options}
            if self.nodes.runtime == "process" and not config.get("pod_pool"):
                # Loopback addresses are the machine's: each member cluster's pods get a
                # block no other cluster of any region on this machine has.
                config["pod_pool"] = await asyncio.to_thread(
                    BlockRegistry().claim, self.data_dir, record.name, pool=PROCESS_POOL)
            child = Manager(name=f"{self.manager.name}-{record.name}",
                            metrics=self.manager.metrics,
                            shutdown_timeout=self.manager.shutdown_timeout)
            options = NodeOptions(runtime=self.nodes.runtime,
                                  base_dir=self.nodes.base_dir / record.name,
                                  initial_size=nodes, config=config)
            # shared_manager: the clusters' controllers share one metrics registry.
            made = add_member_controllers(child, client=member.client, cluster=record.name,
                                          zone=record.zone, backend="embedded",
                                          shared_manager=True, nodes=options,
                                          options=self.controller_options)
            for pool in pool_specs(self.nodes.pools, runtime=self.nodes.runtime, size=nodes):
                await _ensure(member.client, registry.NODEPOOLS, pool)
            provisioner = made[f"node-provisioner-{record.name}"]
            assert isinstance(provisioner, NodeProvisioner)
            self.manager.add_child(child)
        except BaseException:
            await member.store.close()
            raise
        member.manager = child
        self._embedded[record.name] = member.client
        self.members.append(member)
        self.members.sort(key=lambda c: regionmembers.sort_key(c.name))
        self.provisioners[record.name] = provisioner
        if self.health is not None:
            self.health.add(member)
        return member

    async def _register(self, record: MemberRecord) -> None:
        await _ensure(self.host.client, registry.MEMBERCLUSTERS, regionmembers.membercluster(
            record, region=REGION_NAME,
            path=regionmembers.store_path(self.data_dir, record.name)))

    # -- projects and objects -------------------------------------------------------------------

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


def _nodes_per_cluster(nodes_per_cluster: int | None, nodes_per_zone: int | None) -> int:
    if nodes_per_cluster is not None and nodes_per_zone is not None:
        raise ValueError("give nodes_per_cluster or its older name nodes_per_zone, not both")
    n = next((v for v in (nodes_per_cluster, nodes_per_zone) if v is not None),
             DEFAULT_NODES_PER_CLUSTER)
    if n < 0:
        raise ValueError("nodes_per_cluster must be >= 0")
    return n


def pool_specs(layout: PoolLayout, *, runtime: str, size: int) -> list[dict[str, Any]]:
    """A new member cluster's NodePools (created on first start, then as the user left them).

    ``general``: one ``ondemand`` pool of ``size`` nodes.  ``tiers`` (what ``pincompute
    up`` runs): a pool per capacity tier, so every tier has somewhere to run — ``ondemand``
    starting at ``size`` nodes and allowed to grow to twice that (min/max), ``reserved``
    and ``preemptible`` one node each (none when ``size`` is 0).  The provisioner makes
    their nodes.
    """
    def pool(name: str, tier: str, *, min_size: int, max_size: int,
             desired: int | None) -> dict[str, Any]:
        spec: dict[str, Any] = {
            "instanceType": "embedded.standard-4", "runtime": runtime, "tier": tier,
            "capacity": {"cpu": "4", "memory": "8Gi", "pods": "110"},
            "minSize": min_size, "maxSize": max(max_size, 1)}
        if desired is not None:
            spec["desiredSize"] = desired
        return {"metadata": {"name": name}, "spec": spec}

    if layout == "general":
        # minSize: the pool autoscaler (pincompute.ops) never shrinks a pool below what was
        # asked for; lower it to let idle nodes go.
        return [pool("general", "ondemand", min_size=size, max_size=size, desired=size)]
    extra = 1 if size else 0
    return [pool("ondemand", "ondemand", min_size=size, max_size=2 * size, desired=None),
            pool("reserved", "reserved", min_size=extra, max_size=1, desired=extra),
            pool("preemptible", "preemptible", min_size=extra, max_size=1, desired=extra)]


async def _ensure(client: KubeClient, resource: Resource, obj: dict[str, Any]) -> None:
    with contextlib.suppress(AlreadyExists):
        await client.create(resource, obj)


def load_documents(path: Path) -> list[dict[str, Any]]:
    """The YAML documents of a file (``---``-separated), skipping empty ones."""
    with path.open() as f:
        return [d for d in yaml.safe_load_all(f) if d]
