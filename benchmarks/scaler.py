"""PinScaler evaluation cycle and reaction time (issue 12, Performance: ``scaler.py``).

**Cycle** (``cycle_s``): ``--scalers`` PinScalers (CPU utilization), each on its
own PinApp of 3 replicas, in one host store; three member stores hold the node
usage records of ``--nodes`` nodes (the apps' pods spread over them), as the
node agents write them.  The PinScaler controller runs as the region runs it
(cluster set, informers, :class:`~pincompute.scaler.usageindex.UsageIndex`);
after its first pass, every node record is rewritten with new usage (so every
scaler's status changes) and one cycle — every scaler evaluated once, its
status written — is timed.  That is ``cycle_s``.

**Baseline** (``baseline_cycle_s``), same run, same stores, same writes: one
query per scaler, no batching — before evaluating each scaler, the usage
records are listed from every member and summed for its app (what a scaler
without the shared index would do).

**Reaction** (``react_s``): an embedded region of sim nodes (three zones), a
PinApp of 2 replicas whose pods declare a CPU step (20m, then 200m from their
``--step``-th second; request 100m, target 50%), a PinScaler (interval 1 s,
node usage reports every 1 s).  Timed from the step (app creation + ``--step``,
an upper bound on when the first pod's load rose, so the figure is conservative)
until the host PinApp shows the new replicas ready.

Run: ``python benchmarks/scaler.py [--quick] [--scalers N] [--nodes N]``.  The
last line printed is one JSON object with the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from pincompute.federation.clusterset import add_cluster_set
from pincompute.gctuning import tune_gc
from pincompute.kube.backends.embedded import EmbeddedStore
from pincompute.kube.protocol import KubeClient
from pincompute.kube.resource import CONFIGMAPS, NAMESPACES
from pincompute.model import registry
from pincompute.model.registry import MEMBERCLUSTERS, PINAPPS, PINSCALERS
from pincompute.model.usage import (
    USAGE_NAMESPACE,
    USAGE_SELECTOR,
    NodeUsage,
    PodUsage,
    configmap_name,
    from_configmap,
)
from pincompute.region import Region
from pincompute.runtime.manager import Manager
from pincompute.runtime.reconciler import Request
from pincompute.scaler import add_scaler_controller
from pincompute.scaler.usageindex import UsageIndex

NS = "bench"
MEMBERS = ("zone-a-1", "zone-b-1", "zone-c-1")
PODS_PER_APP = 3


def app(name: str) -> dict[str, Any]:
    return {"apiVersion": "pincompute.io/v1alpha1", "kind": "PinApp",
            "metadata": {"name": name, "namespace": NS},
            "spec": {"replicas": PODS_PER_APP, "template": {"spec": {"containers": [
                {"name": "main", "image": "web:1",
                 "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}}}]}}}}


def scaler(name: str) -> dict[str, Any]:
    return {"apiVersion": "pincompute.io/v1alpha1", "kind": "PinScaler",
            "metadata": {"name": name, "namespace": NS},
            "spec": {"scaleTargetRef": {"name": name}, "minReplicas": 1,
                     "maxReplicas": PODS_PER_APP, "cooldownSeconds": 0,
                     "metrics": [{"type": "Resource", "resource": {
                         "name": "cpu", "targetAverageUtilization": 50}}]}}


def records(apps: int, nodes: int, *, cpu: int) -> dict[str, list[NodeUsage]]:
    """Node records per member: pod j of app i on node (3i + j) mod nodes."""
    pods: dict[int, list[PodUsage]] = {n: [] for n in range(nodes)}
    for i in range(apps):
        for j in range(PODS_PER_APP):
            pods[(PODS_PER_APP * i + j) % nodes].append(PodUsage(
                namespace=NS, name=f"app-{i}-{j}", app=f"app-{i}", app_kind="pinapp",
                ready=True, running=True, cpu_request=100, memory_request=64 << 20,
                cpu=cpu + i % 7, memory=32 << 20, containers={"main": (cpu, 32 << 20)}))
    out: dict[str, list[NodeUsage]] = {m: [] for m in MEMBERS}
    for n, items in pods.items():
        member = MEMBERS[n % len(MEMBERS)]
        out[member].append(NodeUsage(node=f"{member}-node-{n}", time=time.time(),
                                     cpu=sum(p.cpu or 0 for p in items), pods=tuple(items)))
    return out


async def write_records(members: dict[str, KubeClient], recs: dict[str, list[NodeUsage]],
                        *, create: bool) -> None:
    for name, usages in recs.items():
        client = members[name]
        for usage in usages:
            obj = usage.configmap()
            if create:
                await client.create(CONFIGMAPS, obj, namespace=USAGE_NAMESPACE)
            else:
                current = await client.get(CONFIGMAPS, configmap_name(usage.node),
                                           namespace=USAGE_NAMESPACE)
                current["data"] = obj["data"]
                await client.update(CONFIGMAPS, current)


async def listed_index(members: dict[str, KubeClient]) -> UsageIndex:
    """The baseline's read: list every member's records, fold them (per scaler)."""
    index = UsageIndex()
    for name, client in members.items():
        for cm in (await client.list(CONFIGMAPS, namespace=USAGE_NAMESPACE,
                                     label_selector=USAGE_SELECTOR)).items:
            usage = from_configmap(cm)
            if usage is not None:
                index.set_node(name, usage)
    return index


async def until(done: Callable[[], bool]) -> None:
    while True:
        if done():
            return
        await asyncio.sleep(0.01)


async def wait_idle(manager: Manager) -> None:
    for controller in manager.controllers:
        await controller.wait_idle()


async def cycle(scalers: int, nodes: int) -> dict[str, float]:
    stores = []
    host_store = await EmbeddedStore.open(path=None)
    registry.install(host_store, resources=registry.HOST_RESOURCES)
    stores.append(host_store)
    host = host_store.client()
    members: dict[str, KubeClient] = {}
    for name in MEMBERS:
        store = await EmbeddedStore.open(path=None)
        registry.install(store, resources=registry.MEMBER_RESOURCES)
        stores.append(store)
        members[name] = store.client()
    for client in (host, *members.values()):
        for ns in (NS, USAGE_NAMESPACE):
            await client.create(NAMESPACES, {"metadata": {"name": ns}})
    for i in range(scalers):
        await host.create(PINAPPS, app(f"app-{i}"))
    await write_records(members, records(scalers, nodes, cpu=40), create=True)
    manager = Manager(name="bench", shutdown_timeout=5.0)
    clusters = add_cluster_set(manager, host=host, embedded=members.get)
    # a long interval: after the first pass only the timed cycles evaluate
    reconciler = add_scaler_controller(manager, host=host, members=clusters, interval=3600.0)
    for name in MEMBERS:
        await host.create(MEMBERCLUSTERS, {"metadata": {"name": name}, "spec": {
            "zone": name.rsplit("-", 1)[0], "connection": {"type": "Embedded"}}})
    task = asyncio.create_task(manager.run())
    await manager.wait_started()
    await clusters.wait_synced()
    for i in range(scalers):
        await host.create(PINSCALERS, scaler(f"app-{i}"))
    await until(lambda: len(reconciler.histories) >= scalers)
    await wait_idle(manager)
    requests = [Request(NS, f"app-{i}") for i in range(scalers)]
    figures: dict[str, float] = {}
    try:
        for round_, cpu in enumerate((45, 50, 55)):
            await write_records(members, records(scalers, nodes, cpu=cpu), create=False)
            expected = (round_ + 2) * nodes
            await until(lambda: reconciler.index.updates >= expected)  # noqa: B023
            await asyncio.sleep(0.2)  # the scalers' informer has the statuses of the last round
            if round_ % 2 == 0:
                started = time.perf_counter()
                for r in requests:
                    await reconciler.reconcile(r)
                figures.setdefault("cycle_s", time.perf_counter() - started)
            else:
                shared = reconciler.index
                started = time.perf_counter()
                for r in requests:
                    reconciler.index = await listed_index(members)
                    await reconciler.reconcile(r)
                figures["baseline_cycle_s"] = time.perf_counter() - started
                reconciler.index = shared
    finally:
        manager.stop()
        await task
        for store in stores:
            await store.close()
    return figures


async def react(step: float) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        region = await Region.open(Path(tmp) / "region", zones=3, nodes_per_cluster=2,
                                   runtime="sim", lease_duration=5, health_port=None,
                                   node_options={"usage_interval": 1.0},
                                   controller_options={"pinscalers": {"interval": 1.0}})
        await region.start()
        try:
            await region.ensure_project(NS)
            host = region.host.client
            obj = app("web")
            obj["spec"]["replicas"] = 2
            obj["spec"]["template"]["metadata"] = {"annotations": {
                "sim.pincompute.io/cpu-profile": f"0=20m,{step}=20m,{step + 0.01}=200m"}}
            created = time.time()
            await host.create(PINAPPS, obj)
            target = scaler("web")
            target["spec"]["maxReplicas"] = 8
            target["spec"]["behavior"] = {"scaleUp": {"policies": [
                {"type": "Pods", "value": 10, "periodSeconds": 1}]}}
            await host.create(PINSCALERS, target)
            while True:
                current = await host.get(PINAPPS, "web", namespace=NS)
                if int((current.get("status") or {}).get("readyReplicas") or 0) >= 8:
                    break
                await asyncio.sleep(0.05)
            return {"react_s": time.time() - (created + step)}
        finally:
            await region.close()


async def run(*, scalers: int, nodes: int, step: float) -> dict[str, Any]:
    figures: dict[str, Any] = {"scalers": scalers, "nodes": nodes}
    figures.update(await cycle(scalers, nodes))
    figures.update(await react(step))
    figures["speedup"] = figures["baseline_cycle_s"] / figures["cycle_s"]
    figures = {k: round(v, 4) if isinstance(v, float) else v for k, v in figures.items()}
    figures.update(python=platform.python_version(), cpus=os.cpu_count(),
                   loadavg=[round(x, 2) for x in os.getloadavg()])
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="100 scalers, 30 nodes")
    parser.add_argument("--scalers", type=int)
    parser.add_argument("--nodes", type=int)
    parser.add_argument("--step", type=float, default=3.0,
                        help="seconds after start when the pods' load rises")
    args = parser.parse_args()
    scalers = args.scalers or (100 if args.quick else 1000)
    nodes = args.nodes or (30 if args.quick else 300)
    tune_gc()
    figures = asyncio.run(run(scalers=scalers, nodes=nodes, step=args.step))
    print(orjson.dumps(figures).decode())


if __name__ == "__main__":
    main()
