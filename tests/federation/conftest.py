"""An embedded federation for the federation tests: a host, member stores, a running manager.

The cluster set finds members through MemberCluster objects of type ``Embedded``,
resolved by name in :attr:`Federation.clients` — which a test may grow with
:meth:`Federation.open_member` to register a cluster while the federation runs.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest
import yaml

from pincompute.federation.clusterset import ClusterSet, add_cluster_set
from pincompute.federation.connectionstatus import add_connection_status_controller
from pincompute.federation.projects import add_project_controller
from pincompute.kube.backends.embedded import EmbeddedStore
from pincompute.kube.protocol import KubeClient
from pincompute.model import registry
from pincompute.model.registry import MEMBERCLUSTERS
from pincompute.runtime.controller import Controller
from pincompute.runtime.manager import Manager

STARTING_MEMBERS = ("zone-a-1", "zone-b-1")
SYSTEM = "pincompute-system"


def kubeconfig(server: str = "https://127.0.0.1:6443", *, token: str = "t0ken") -> str:
    return yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "main",
        "clusters": [{"name": "c", "cluster": {"server": server,
                                               "insecure-skip-tls-verify": True}}],
        "users": [{"name": "u", "user": {"token": token}}],
        "contexts": [{"name": "main", "context": {"cluster": "c", "user": "u"}}]})


@dataclass
class Federation:
    host: KubeClient
    clients: dict[str, KubeClient]
    """Every embedded member cluster by name, registered or not (the resolver's map)."""
    clusters: ClusterSet
    manager: Manager
    projects: Controller
    stores: list[EmbeddedStore] = field(default_factory=list)

    @property
    def members(self) -> dict[str, KubeClient]:
        return {name: self.clients[name] for name in STARTING_MEMBERS}

    async def open_member(self, name: str) -> KubeClient:
        """A new embedded cluster the resolver knows (not yet registered)."""
        store = await EmbeddedStore.open(path=None)
        registry.install(store, resources=registry.MEMBER_RESOURCES)
        self.stores.append(store)
        self.clients[name] = store.client()
        return self.clients[name]

    async def register(self, name: str, *, zone: str = "zone-z",
                       connection: dict | None = None) -> None:
        await self.host.create(MEMBERCLUSTERS, {
            "metadata": {"name": name},
            "spec": {"zone": zone, "connection": connection or {"type": "Embedded"}}})

    def reconcile_errors(self, controller: str = "projects") -> float:
        return self.manager.metrics.sample("reconcile_errors_total",
                                           {"controller": controller}) or 0.0


@pytest.fixture
async def federation() -> AsyncIterator[Federation]:
    host_store = await EmbeddedStore.open(path=None)
    registry.install(host_store, resources=registry.HOST_RESOURCES)
    host = host_store.client()
    manager = Manager(name="test", shutdown_timeout=5.0)
    clients: dict[str, KubeClient] = {}
    clusters = add_cluster_set(manager, host=host, embedded=clients.get, connect_timeout=5.0,
                               retry_base=0.05, retry_max=0.5)
    add_connection_status_controller(manager, host=host, clusters=clusters)
    projects = add_project_controller(manager, host=host, clusters=clusters)
    fed = Federation(host=host, clients=clients, clusters=clusters, manager=manager,
                     projects=projects, stores=[host_store])
    for name in STARTING_MEMBERS:
        await fed.open_member(name)
        await fed.register(name, zone=name.rsplit("-", 1)[0])
    task = asyncio.create_task(manager.run())
    await manager.wait_started()
    await clusters.wait_synced()
    yield fed
    manager.stop()
    await task
    for store in fed.stores:
        await store.close()
