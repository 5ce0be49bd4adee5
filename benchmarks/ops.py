"""Operations automation at scale (issue 13, Performance: ``ops.py``).

An embedded region (:class:`pincompute.region.Region`: a host and one member cluster
of ``--nodes`` sim nodes) runs everything in this process: the PinApp and PinPod
operators, the pod scheduler, the node provisioner, the node-image, rotation and
remediation controllers.  ``--apps`` PinApps of ``--replicas`` replicas each, every
one with a disruption budget (``--budget``: ``maxUnavailable``, default ``10%``, as
users commonly set it; ``1`` moves each app's pods one at a time), are created in
the member and waited for.  Then:

* **Rotation** (``rotation_s``): a Rotation to a new NodeImage with surge and
  ``--parallelism`` nodes at a time, timed from its creation to ``Succeeded``.
  Throughout, a pod informer counts each app's Ready pods after every event: the
  largest number of unavailable pods any app ever had (``max_unavailable``) is
  compared with its budget (``max_unavailable_over_budget`` must be ≤ 0).
* **Baseline** (``baseline_rotation_s``), same run, same cluster: the next image
  rolled node by node without surge (``parallelism: 1``, ``surge: false``), also
  checked against the budgets.
* **Remediation reaction** (``remediation_reaction_s``): a node gets a
  probe-failure annotation; the time until remediation has cordoned it (grace 0,
  so this is the controller's own latency: event, reconcile, safeguards, write).

Run: ``python benchmarks/ops.py [--quick] [--nodes N] [--apps N] [--replicas N]
[--parallelism N]``.  The last line printed is one JSON object with the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import shutil
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import orjson
import psutil

from pincompute.gctuning import tune_gc
from pincompute.kube import objects
from pincompute.kube.protocol import KubeClient
from pincompute.kube.resource import NAMESPACES, NODES, PODS
from pincompute.model.disruption import required_available
from pincompute.model.registry import NODEIMAGES, NODEPOOLS, PINAPPS, ROTATIONS
from pincompute.model.wellknown import APP_UID_LABEL, PROBE_FAILURE_ANNOTATION
from pincompute.region import Region
from pincompute.runtime.manager import Manager

NS = "bench"


class Availability:
    """Ready pods per app, kept from a pod informer; the lowest count each app had."""

    def __init__(self, replicas: int) -> None:
        self.replicas = replicas
        self.ready: Counter[str] = Counter()
        self._pods: dict[str, tuple[str, bool]] = {}
        self.lowest: dict[str, int] = {}
        self.measuring = False
        self.down_since: dict[str, float] = {}
        self.up_since: dict[str, float] = {}
        self.downs: list[float] = []
        """How long an app was below its replicas each time (a pod's move)."""
        self.gaps: list[float] = []
        """How long an app stayed whole before its next pod went (the drain's reaction)."""

    def _set(self, pod: dict[str, Any], *, gone: bool = False) -> None:
        key = f"{objects.namespace_of(pod)}/{objects.name_of(pod)}"
        app = (objects.meta(pod).get("labels") or {}).get(APP_UID_LABEL)
        if app is None:
            return
        ready = not gone and not objects.is_deleting(pod) and objects.condition_true(pod,
                                                                                    "Ready")
        old = self._pods.get(key)
        if old is not None and old[1]:
            self.ready[old[0]] -= 1
        if gone:
            self._pods.pop(key, None)
        else:
            self._pods[key] = (app, ready)
            if ready:
                self.ready[app] += 1
        if self.measuring:
            now = time.monotonic()
            for a in {app, old[0] if old else app}:
                self.lowest[a] = min(self.lowest.get(a, self.replicas), self.ready[a])
                whole = self.ready[a] >= self.replicas
                if not whole and a not in self.down_since:
                    self.down_since[a] = now
                    if a in self.up_since:
                        self.gaps.append(now - self.up_since.pop(a))
                elif whole and a in self.down_since:
                    self.downs.append(now - self.down_since.pop(a))
                    self.up_since[a] = now

    def attach(self, manager: Manager, client: KubeClient) -> None:
        pods = manager.informer(client, PODS, namespace=NS)
        pods.add_event_handler(on_add=self._set, on_update=lambda _o, n: self._set(n),
                               on_delete=lambda p: self._set(p, gone=True))

    def start(self) -> None:
        self.lowest = {app: n for app, n in self.ready.items()}
        self.down_since, self.up_since, self.downs, self.gaps = {}, {}, [], []
        self.measuring = True

    def moves(self) -> dict[str, float]:
        """Median seconds an app was short of a pod per move, and whole between moves."""
        def median(values: list[float]) -> float:
            return round(sorted(values)[len(values) // 2], 3) if values else 0.0
        return {"move_p50_s": median(self.downs), "between_moves_p50_s": median(self.gaps),
                "moves": len(self.downs)}

    def stop(self) -> int:
        """The most unavailable pods any app had."""
        self.measuring = False
        return max((self.replicas - n for n in self.lowest.values()), default=0)


def pinapp(i: int, replicas: int, budget: int | str) -> dict[str, Any]:
    return {"metadata": {"name": f"app-{i:04d}", "namespace": NS}, "spec": {
        "replicas": replicas, "disruptionBudget": {"maxUnavailable": budget},
        "template": {"metadata": {"labels": {"app": f"app-{i:04d}"}}, "spec": {
            "containers": [{"name": "main", "image": "registry.local/app:1",
                            "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}}}],
            "terminationGracePeriodSeconds": 0}}}}


async def until(check: Any, *, timeout: float, poll: float = 0.2) -> float:
    start = time.monotonic()
    while not await check():
        if time.monotonic() - start > timeout:
            raise TimeoutError("timed out")
        await asyncio.sleep(poll)
    return time.monotonic() - start


async def rotate(host: KubeClient, cluster: str, name: str, image: str, *,
                 parallelism: int, surge: bool, timeout: float,
                 sample: int | None = None) -> tuple[float, int]:
    """Seconds the rotation took and the nodes it replaced.  With ``sample``, the rotation
    is aborted once that many nodes are replaced (the caller extrapolates)."""
    await host.create(NODEIMAGES, {"metadata": {"name": image}, "spec": {"version": image}})
    start = time.monotonic()
    await host.create(ROTATIONS, {"metadata": {"name": name}, "spec": {
        "cluster": cluster, "targetImage": image, "parallelism": parallelism,
        "surge": surge}})
    last = [0]
    replaced = [0]

    async def done() -> bool:
        status = (await host.get(ROTATIONS, name)).get("status") or {}
        replaced[0] = status.get("replacedNodes", 0)
        if time.monotonic() - start >= last[0] + 15:  # progress every 15 s
            last[0] = int(time.monotonic() - start)
            print(f"{name}: {replaced[0]} of {status.get('totalNodes')} nodes replaced after "
                  f"{last[0]} s, {len(status.get('inProgress') or ())} in progress; "
                  f"{(status.get('message') or '')[:120]}", file=sys.stderr)
        return status.get("phase") == "Succeeded" or (
            sample is not None and replaced[0] >= sample)

    await until(done, timeout=timeout, poll=0.1 if sample else 0.5)
    elapsed = time.monotonic() - start
    if sample is not None and replaced[0] < int(
            ((await host.get(ROTATIONS, name)).get("status") or {}).get("totalNodes", 0)):
        await host.patch(ROTATIONS, name, {"spec": {"abort": True}})

        async def aborted() -> bool:
            status = (await host.get(ROTATIONS, name)).get("status") or {}
            return status.get("phase") == "Aborted"

        await until(aborted, timeout=600)
    return elapsed, replaced[0]


async def run(*, nodes: int, apps: int, replicas: int, parallelism: int, budget: int | str,
              baseline_sample: int | None) -> dict[str, Any]:
    # The pods an app may have unavailable: what the budget allows (as may_evict counts).
    allowed = replicas - required_available({"maxUnavailable": budget}, replicas)
    data = Path(tempfile.mkdtemp(prefix="opsbench-")) / "region"
    # A long lease: a 120,000-pod process on two busy cores can miss a renewal by seconds,
    # and the manager losing its lease would stop every controller mid-run.
    region = await Region.open(
        data, zones=1, nodes_per_cluster=nodes, runtime="sim", lease_duration=60,
        health_port=None, node_options={"record_events": False},
        controller_options={"rotations": {"poll": 0.2}, "remediation": {
            "grace": 0.0, "cordon_wait": 3600.0, "startup_grace": 120.0, "tick": 0.2}})
    t0 = time.monotonic()
    await region.start(timeout=1800)
    print(f"{nodes} nodes ready in {time.monotonic() - t0:.1f} s", file=sys.stderr)
    bench = Manager(name="bench")
    availability = Availability(replicas)
    member = region.members[0]
    availability.attach(bench, member.client)
    task = asyncio.create_task(bench.run())
    try:
        host, client = region.host.client, member.client
        await region.ensure_project(NS)

        async def namespace() -> bool:
            return any(objects.name_of(n) == NS for n in (await client.list(NAMESPACES)).items)

        await until(namespace, timeout=60)
        await client.patch(NODEPOOLS, "general", {"spec": {"maxSize": nodes + parallelism}})
        t0 = time.monotonic()
        for start in range(0, apps, 50):
            await asyncio.gather(*(client.create(PINAPPS, pinapp(i, replicas, budget),
                                                 namespace=NS)
                                   for i in range(start, min(start + 50, apps))))

        async def all_ready() -> bool:
            return len(availability.ready) == apps and all(
                n >= replicas for n in availability.ready.values())

        await until(all_ready, timeout=3600, poll=0.5)
        apps_ready_s = time.monotonic() - t0
        print(f"{apps} apps x {replicas} replicas ready in {apps_ready_s:.1f} s",
              file=sys.stderr)
        availability.start()
        rotation_s, _ = await rotate(host, member.name, "surge", "gen-2",
                                     parallelism=parallelism, surge=True, timeout=6 * 3600)
        worst = availability.stop()
        moves = availability.moves()
        print(f"rotation with surge: {rotation_s:.1f} s, most unavailable {worst}, {moves}",
              file=sys.stderr)
        await until(all_ready, timeout=600, poll=0.2)
        availability.start()
        measured_s, baseline_nodes = await rotate(
            host, member.name, "node-by-node", "gen-3", parallelism=1, surge=False,
            timeout=12 * 3600, sample=baseline_sample)
        baseline_worst = availability.stop()
        # A sample is extrapolated linearly: node by node, every node costs the same drain.
        baseline_s = measured_s * nodes / max(1, baseline_nodes)
        print(f"baseline node by node: {measured_s:.1f} s for {baseline_nodes} nodes "
              f"({baseline_s:.1f} s for {nodes}), most unavailable {baseline_worst}",
              file=sys.stderr)
        await until(all_ready, timeout=600, poll=0.2)
        reactions = []
        names = sorted(objects.name_of(n) for n in (await client.list(NODES)).items)
        for name in names[:3]:
            start = time.monotonic()
            await client.patch(NODES, name, {"metadata": {"annotations": {
                PROBE_FAILURE_ANNOTATION: "benchmark"}}})

            async def cordoned(name: str = name) -> bool:
                return bool((await client.get(NODES, name))["spec"].get("unschedulable"))

            await until(cordoned, timeout=60, poll=0.005)
            reactions.append(time.monotonic() - start)
        rss = psutil.Process().memory_info().rss >> 20
    finally:
        bench.stop()
        await task
        await region.close()
        shutil.rmtree(data.parent, ignore_errors=True)  # the full case leaves ~1.5 GB
    return {
        "nodes": nodes, "apps": apps, "replicas": replicas, "pods": apps * replicas,
        "parallelism": parallelism, "budget": budget, "budget_max_unavailable": allowed,
        "apps_ready_s": round(apps_ready_s, 2),
        "rotation_s": round(rotation_s, 2), "baseline_rotation_s": round(baseline_s, 2),
        "speedup": round(baseline_s / rotation_s, 2),
        "baseline_measured_nodes": baseline_nodes,
        "baseline_measured_s": round(measured_s, 2),
        "baseline_extrapolated": baseline_nodes < nodes,
        "max_unavailable": worst, "baseline_max_unavailable": baseline_worst, **moves,
        "max_unavailable_over_budget": max(worst, baseline_worst) - allowed,
        "remediation_reaction_s": round(sorted(reactions)[len(reactions) // 2], 4),
        "remediation_reaction_max_s": round(max(reactions), 4),
        "rss_mib": rss, "python": platform.python_version(), "cpus": os.cpu_count(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="12 nodes, 8 apps of 6")
    parser.add_argument("--nodes", type=int)
    parser.add_argument("--apps", type=int)
    parser.add_argument("--replicas", type=int)
    parser.add_argument("--parallelism", type=int)
    parser.add_argument("--budget",
                        help="each app's disruptionBudget.maxUnavailable (a count or a "
                             "percentage; default 10%% from 10 replicas up, else 1)")
    parser.add_argument("--baseline-sample", type=int,
                        help="time the node-by-node baseline on this many nodes and "
                             "extrapolate linearly (default: all nodes; 50 from 1,000 nodes up)")
    args = parser.parse_args()
    nodes = args.nodes or (12 if args.quick else 3000)
    apps = args.apps or (8 if args.quick else 1000)
    replicas = args.replicas or (6 if args.quick else 120)
    parallelism = args.parallelism or max(3, nodes // 10)
    tune_gc()
    raw = args.budget or ("10%" if replicas >= 10 else "1")
    budget: int | str = int(raw) if raw.isdigit() else raw
    sample = args.baseline_sample or (50 if nodes >= 1000 else None)
    figures = asyncio.run(run(nodes=nodes, apps=apps, replicas=replicas,
                              parallelism=parallelism, baseline_sample=sample,
                              budget=budget))
    print(orjson.dumps(figures).decode())


if __name__ == "__main__":
    main()
