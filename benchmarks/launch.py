"""Launch latency of a federated PinApp (issue 10, Performance: ``launch.py``).

An embedded region (:class:`pincompute.region.Region`: one host, three zones with
one member cluster each, ``sim`` nodes) runs the whole pipeline in this process:
quota admission, the cluster scheduler's placement, propagation of shards, the
member operators (PinApp -> PinPods -> Pods), the pod scheduler, the sim node
agents and status aggregation back to the host.

First ``--background`` PinApps of one replica each are created on the host and
waited for (every one ``readyReplicas == 1``).  Then ``--launches`` times, one
after the other (sequential, no concurrency): a 10-replica PinApp is created on
the host, timed until done, then deleted (and its deletion waited for, so the
background stays at exactly ``--background`` workloads).

**Launch latency** (``p50_s``, ``p99_s``): from just before the host ``create``
call to the moment the host's watch delivers the PinApp with
``status.readyReplicas == 10`` — the aggregated status a user of the host sees.
The benchmark also records, from watches on the host and on every member (so
each time is when this process learnt of the write), the time of every hop:

``admitted``      host PinApp condition ``Admitted`` True (quota admission)
``placed``        host ``status.placements`` non-empty (cluster scheduler)
``shards``        the last of the member PinApps (shards) created
``pinpods``       the 10th PinPod created (member PinApp operators)
``pods``          the 10th Pod created (member PinPod operators)
``bound``         the 10th Pod with ``spec.nodeName`` (pod scheduler)
``running``       the 10th Pod with ``status.phase == Running`` across the
                  members (sim node agents) — ``pods_running_p99_s``
``aggregated``    host ``readyReplicas == 10`` — ``p99_s``

**Baseline**, in the same run and interleaved with the launches (one after
each): the same 10 pods created directly in one member cluster as plain Pods
(``schedulerName: pincompute``), timed from before the first create until the
watch shows all 10 ``Running`` — what a user of one cluster without federation
would see.

Run: ``python benchmarks/launch.py [--quick] [--launches N] [--background N]``.
The last line printed is one JSON object with the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from pincompute.gctuning import tune_gc
from pincompute.kube.errors import NotFound
from pincompute.kube.protocol import ADDED, DELETED, KubeClient
from pincompute.kube.resource import PODS, Resource
from pincompute.model.registry import PINAPPS, PINPODS
from pincompute.region import Region

NAMESPACE = "demo"
REPLICAS = 10
APP_LABEL = "pincompute.io/app"
HOPS = ("admitted", "placed", "shards", "pinpods", "pods", "bound", "running", "aggregated")
CONTAINER = {"name": "main", "image": "registry.local/bench/app:1",
             "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}}}


def pinapp(name: str, replicas: int) -> dict[str, Any]:
    return {"apiVersion": "pincompute.io/v1alpha1", "kind": "PinApp",
            "metadata": {"name": name, "namespace": NAMESPACE, "labels": {"bench": "launch"}},
            "spec": {"replicas": replicas, "tier": "ondemand",
                     "template": {"metadata": {"labels": {"app": name}},
                                  "spec": {"containers": [CONTAINER]}}}}


def plain_pod(name: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": NAMESPACE, "labels": {APP_LABEL: name[:-3]}},
            "spec": {"schedulerName": "pincompute", "restartPolicy": "Always",
                     "containers": [CONTAINER]}}


class Tracker:
    """One launch's hop times (seconds after its submission), fed by the watches."""

    def __init__(self, t0: float) -> None:
        self.t0 = t0
        self.times: dict[str, float] = {}
        self.shards: set[str] = set()
        self.pinpods: set[str] = set()
        self.pods: set[str] = set()
        self.bound: set[str] = set()
        self.running: set[str] = set()
        self.expected_shards = 3
        self.done = asyncio.Event()
        self.gone = asyncio.Event()

    def mark(self, hop: str) -> None:
        if hop not in self.times:
            self.times[hop] = time.monotonic() - self.t0
            if hop == "aggregated":
                self.done.set()

    def count(self, seen: set[str], key: str, hop: str, want: int) -> None:
        seen.add(key)
        if len(seen) >= want:
            self.mark(hop)


class Watches:
    """Watches on the host and every member, dispatching events to the live trackers."""

    def __init__(self, region: Region) -> None:
        self.region = region
        self.trackers: dict[str, Tracker] = {}
        self.tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        host = self.region.host.client
        self._watch(host, PINAPPS, self._host_app)
        for member in self.region.members:
            client = member.client
            self._watch(client, PINAPPS, functools.partial(self._shard, member.name))
            self._watch(client, PINPODS, self._pinpod)
            self._watch(client, PODS, functools.partial(self._pod, member.name))
        await asyncio.sleep(0.2)  # every watch established before the first launch

    def _watch(self, client: KubeClient, resource: Resource,
               handle: Callable[[str, dict[str, Any]], None]) -> None:
        async def run() -> None:
            rv = (await client.list(resource, namespace=NAMESPACE, limit=1)).resource_version
            while True:
                async for event in client.watch(resource, namespace=NAMESPACE,
                                                resource_version=rv, allow_bookmarks=False):
                    rv = event.resource_version or rv
                    handle(event.type, event.object)
        self.tasks.append(asyncio.create_task(run()))

    def _host_app(self, kind: str, obj: dict[str, Any]) -> None:
        tracker = self.trackers.get(obj["metadata"]["name"])
        if tracker is None:
            return
        if kind == DELETED:
            tracker.gone.set()
            return
        status = obj.get("status") or {}
        if any(c.get("type") == "Admitted" and c.get("status") == "True"
               for c in status.get("conditions") or ()):
            tracker.mark("admitted")
        if status.get("placements"):
            tracker.expected_shards = sum(1 for p in status["placements"] if p.get("replicas"))
            tracker.mark("placed")
        if status.get("readyReplicas") == REPLICAS:
            tracker.mark("aggregated")

    def _shard(self, cluster: str, kind: str, obj: dict[str, Any]) -> None:
        tracker = self.trackers.get(obj["metadata"]["name"])
        if tracker is not None and kind == ADDED:
            tracker.count(tracker.shards, cluster, "shards", tracker.expected_shards)

    def _pinpod(self, kind: str, obj: dict[str, Any]) -> None:
        md = obj["metadata"]
        tracker = self.trackers.get((md.get("labels") or {}).get(APP_LABEL, ""))
        if tracker is not None and kind == ADDED:
            tracker.count(tracker.pinpods, md["name"], "pinpods", REPLICAS)

    def _pod(self, cluster: str, kind: str, obj: dict[str, Any]) -> None:
        md = obj["metadata"]
        tracker = self.trackers.get((md.get("labels") or {}).get(APP_LABEL, ""))
        if tracker is None or kind == DELETED:
            return
        key = f"{cluster}/{md['name']}"
        tracker.count(tracker.pods, key, "pods", REPLICAS)
        if (obj.get("spec") or {}).get("nodeName"):
            tracker.count(tracker.bound, key, "bound", REPLICAS)
        if (obj.get("status") or {}).get("phase") == "Running":
            tracker.count(tracker.running, key, "running", REPLICAS)
            if tracker.times.get("placed") is None and md["name"].startswith("base-"):
                # a baseline run: no host object, done when all pods run
                if len(tracker.running) >= REPLICAS:
                    tracker.mark("aggregated")

    async def stop(self) -> None:
        for task in self.tasks:
            task.cancel()
        for task in self.tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task


async def wait_background(client: KubeClient, count: int, *, timeout: float) -> float:
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        items = (await client.list(PINAPPS, namespace=NAMESPACE,
                                   label_selector="bench=launch")).items
        if sum(1 for o in items if (o.get("status") or {}).get("readyReplicas") == 1) >= count:
            return time.monotonic() - t0
        await asyncio.sleep(0.5)
    raise TimeoutError(f"background workloads not ready after {timeout} s")


async def launch(watches: Watches, host: KubeClient, name: str, *, timeout: float) -> Tracker:
    tracker = Tracker(time.monotonic())
    watches.trackers[name] = tracker
    await host.create(PINAPPS, pinapp(name, REPLICAS), namespace=NAMESPACE)
    await asyncio.wait_for(tracker.done.wait(), timeout)
    await host.delete(PINAPPS, name, namespace=NAMESPACE)
    await asyncio.wait_for(tracker.gone.wait(), timeout)
    del watches.trackers[name]
    return tracker


async def baseline(watches: Watches, member: KubeClient, name: str, *,
                   timeout: float) -> float:
    tracker = Tracker(time.monotonic())
    watches.trackers[name] = tracker
    await asyncio.gather(*(member.create(PODS, plain_pod(f"{name}-{i:02d}"), namespace=NAMESPACE)
                           for i in range(REPLICAS)))
    await asyncio.wait_for(tracker.done.wait(), timeout)
    elapsed = tracker.times["aggregated"]
    for i in range(REPLICAS):
        with contextlib.suppress(NotFound):
            await member.delete(PODS, f"{name}-{i:02d}", namespace=NAMESPACE)
    del watches.trackers[name]
    return elapsed


def quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def run(*, launches: int, background: int, nodes_per_cluster: int) -> dict[str, Any]:
    data = Path(tempfile.mkdtemp(prefix="launchbench-")) / "region"
    region = await Region.open(data, zones=3, nodes_per_cluster=nodes_per_cluster, runtime="sim",
                               lease_duration=5, health_port=None)
    await region.start()
    watches = Watches(region)
    try:
        await region.ensure_project(NAMESPACE)
        host = region.host.client
        t0 = time.monotonic()
        for start in range(0, background, 50):
            await asyncio.gather(*(host.create(PINAPPS, pinapp(f"bg-{i:05d}", 1),
                                               namespace=NAMESPACE)
                                   for i in range(start, min(start + 50, background))))
        ready_s = await wait_background(host, background, timeout=600)
        print(f"{background} background PinApps created and ready in "
              f"{time.monotonic() - t0:.1f} s (ready wait {ready_s:.1f} s)", file=sys.stderr)
        await watches.start()
        member = region.members[0].client
        hops: dict[str, list[float]] = {hop: [] for hop in HOPS}
        base: list[float] = []
        for i in range(launches):
            tracker = await launch(watches, host, f"launch-{i:04d}", timeout=60)
            for hop in HOPS:
                hops[hop].append(tracker.times.get(hop, float("nan")))
            base.append(await baseline(watches, member, f"base-{i:04d}", timeout=60))
            if (i + 1) % 50 == 0:
                print(f"{i + 1} launches, p99 so far {quantile(hops['aggregated'], 0.99):.3f} s",
                      file=sys.stderr)
    finally:
        await watches.stop()
        await region.close()
    agg = hops["aggregated"]
    per_hop = {hop: {"p50_s": round(quantile(v, 0.5), 4), "p99_s": round(quantile(v, 0.99), 4)}
               for hop, v in hops.items()}
    prev: list[float] = [0.0] * launches
    increments: dict[str, float] = {}
    for hop in HOPS:
        increments[hop] = round(statistics.median(b - a for a, b in zip(prev, hops[hop],
                                                                        strict=True)), 4)
        prev = hops[hop]
    return {
        "launches": launches, "replicas": REPLICAS, "background_workloads": background,
        "concurrency": 1, "zones": 3, "nodes": 3 * nodes_per_cluster,
        "definition": "host create -> host status.readyReplicas == 10 (aggregated)",
        "p50_s": round(quantile(agg, 0.5), 4), "p99_s": round(quantile(agg, 0.99), 4),
        "max_s": round(max(agg), 4),
        "pods_running_p50_s": per_hop["running"]["p50_s"],
        "pods_running_p99_s": per_hop["running"]["p99_s"],
        "baseline_p50_s": round(quantile(base, 0.5), 4),
        "baseline_p99_s": round(quantile(base, 0.99), 4),
        "hops": per_hop, "hop_increment_p50_s": increments,
        "python": platform.python_version(), "cpus": os.cpu_count(),
        "loadavg": [round(x, 2) for x in os.getloadavg()],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="20 launches, 50 background")
    parser.add_argument("--launches", type=int)
    parser.add_argument("--background", type=int)
    parser.add_argument("--nodes-per-cluster", type=int)
    args = parser.parse_args()
    launches = args.launches or (20 if args.quick else 200)
    background = args.background if args.background is not None else (
        50 if args.quick else 1000)
    # 110 pods per sim node (the general pool's capacity): room for the background,
    # a launch and a baseline run in every member, with headroom.
    nodes = args.nodes_per_cluster or max(2, -(-(background // 3 + 2 * REPLICAS) // 80))
    tune_gc()
    figures = asyncio.run(run(launches=launches, background=background, nodes_per_cluster=nodes))
    print(orjson.dumps(figures).decode())


if __name__ == "__main__":
    main()
