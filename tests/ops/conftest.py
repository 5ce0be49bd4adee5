"""A member cluster wired from the controller table (sim nodes), for the ops tests."""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from pincompute.controllers import NodeOptions, add_member_controllers
from pincompute.kube.backends.embedded import EmbeddedStore
from pincompute.kube.protocol import KubeClient
from pincompute.kube.resource import EVENTS, NAMESPACES, NODES, PODS
from pincompute.member.provisioner import NodeProvisioner
from pincompute.model import registry
from pincompute.model.registry import NODEPOOLS, PINAPPS
from pincompute.model.wellknown import APP_UID_LABEL, NODE_POOL_LABEL
from pincompute.node import BackoffPolicy
from pincompute.runtime.manager import Manager
from tests.waiting import eventually

CLUSTER = "zone-a-1"
FAST_NODES = {"backoff": BackoffPolicy(initial=0.2, maximum=1.0), "probe_scale": 0.2,
              "shutdown_grace": 2.0, "status_interval": 0.2, "record_events": False}


class Member:
    """An embedded member cluster running the whole member table on sim nodes."""

    def __init__(self, store: EmbeddedStore, manager: Manager, made: dict[str, object],
                 task: asyncio.Task[None]) -> None:
        self.store = store
        self.client: KubeClient = store.client()
        self.manager = manager
        self.made = made
        self.task = task

    def controller(self, name: str) -> Any:
        return self.made[name]

    async def stop(self) -> None:
        self.manager.stop()
        await self.task
        provisioner = self.made["node-provisioner"]
        assert isinstance(provisioner, NodeProvisioner)
        await provisioner.close()

    def sample(self, name: str, **labels: str) -> float:
        return self.manager.metrics.registry.get_sample_value(name, labels) or 0.0

    # -- reads --

    async def pool_nodes(self, pool: str = "general") -> list[dict[str, Any]]:
        return (await self.client.list(NODES, label_selector=f"{NODE_POOL_LABEL}={pool}")).items

    async def ready_nodes(self, pool: str = "general") -> list[dict[str, Any]]:
        return [n for n in await self.pool_nodes(pool) if ready(n)
                and not (n.get("spec") or {}).get("unschedulable")]

    async def events(self, reason: str) -> list[dict[str, Any]]:
        return [e for e in (await self.client.list(EVENTS)).items if e["reason"] == reason]

    async def wait_event(self, reason: str, *, timeout: float = 15.0,
                         about: str | None = None) -> dict[str, Any]:
        async def check() -> dict[str, Any] | None:
            for e in await self.events(reason):
                if about is None or e["involvedObject"]["name"] == about:
                    return e
            return None

        found: dict[str, Any] = await eventually(check, timeout=timeout,
                                                 what=f"a {reason} event")
        return found

    async def available(self, app: str, namespace: str = "default") -> int:
        obj = await self.client.get(PINAPPS, app, namespace=namespace)
        pods = await self.client.list(PODS, namespace=namespace,
                                      label_selector=f"{APP_UID_LABEL}={obj['metadata']['uid']}")
        return sum(1 for p in pods.items if pod_ready(p))


def ready(obj: dict[str, Any]) -> bool:
    return any(c.get("type") == "Ready" and c.get("status") == "True"
               for c in (obj.get("status") or {}).get("conditions") or ())


def pod_ready(pod: dict[str, Any]) -> bool:
    return not pod["metadata"].get("deletionTimestamp") and ready(pod)


def pool(name: str = "general", *, size: int, **spec: Any) -> dict[str, Any]:
    return {"metadata": {"name": name}, "spec": {
        "instanceType": "embedded.standard-4", "runtime": "sim",
        "capacity": {"cpu": "4", "memory": "8Gi", "pods": "110"},
        "minSize": 0, "maxSize": 40, "desiredSize": size, **spec}}


def pinapp(name: str, *, replicas: int, budget: dict[str, Any] | None = None,
           namespace: str = "default", cpu: str = "100m") -> dict[str, Any]:
    spec: dict[str, Any] = {"replicas": replicas, "template": {
        "metadata": {"labels": {"app": name}},
        "spec": {"containers": [{"name": "main", "image": f"{name}:1",
                                 "resources": {"requests": {"cpu": cpu, "memory": "64Mi"}}}],
                 "terminationGracePeriodSeconds": 1}}}
    if budget is not None:
        spec["disruptionBudget"] = budget
    return {"metadata": {"name": name, "namespace": namespace}, "spec": spec}


@pytest.fixture
def node_dir() -> Iterator[Path]:
    root = Path(tempfile.mkdtemp(prefix="pincompute-ops-"))
    os.chmod(root, 0o711)
    try:
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)


MemberFactory = Callable[..., Any]


@pytest.fixture
async def member_cluster(node_dir: Path) -> AsyncIterator[MemberFactory]:
    """``await member_cluster(options={...})``: a running member cluster."""
    started: list[Member] = []

    async def make(*, options: dict[str, dict[str, Any]] | None = None) -> Member:
        store = await EmbeddedStore.open(path=None)
        registry.install(store, resources=registry.MEMBER_RESOURCES)
        client = store.client()
        for ns in ("default", "pincompute-system"):
            await client.create(NAMESPACES, {"metadata": {"name": ns}})
        manager = Manager(name="member", shutdown_timeout=5.0)
        made = add_member_controllers(
            manager, client=client, cluster=CLUSTER, zone="zone-a", backend="embedded",
            nodes=NodeOptions(runtime="sim", base_dir=node_dir, config=FAST_NODES),
            options={"pinpods": {"failover_grace": 1.0}, **(options or {})})
        task = asyncio.create_task(manager.run())
        await manager.wait_started()
        member = Member(store, manager, made, task)
        started.append(member)
        return member

    try:
        yield make
    finally:
        for member in started:
            await member.stop()
            await member.store.close()


async def settle_pool(member: Member, *, size: int, name: str = "general",
                      timeout: float = 20.0, **spec: Any) -> None:
    await member.client.create(NODEPOOLS, pool(name, size=size, **spec))

    async def check() -> bool:
        return len(await member.ready_nodes(name)) == size

    await eventually(check, timeout=timeout, what=f"{size} ready nodes in {name}")


async def settle_app(member: Member, name: str, replicas: int, *, timeout: float = 20.0,
                     **kw: Any) -> None:
    await member.client.create(PINAPPS, pinapp(name, replicas=replicas, **kw),
                               namespace="default")

    async def check() -> bool:
        return await member.available(name) == replicas

    await eventually(check, timeout=timeout, what=f"{replicas} available pods of {name}")
