"""One member cluster at the original's size (DESIGN §11, rows "one cluster's size" and
"mutating pod operations").

Starts 3,000 sim nodes (``pincompute.node.fleet``: real node agents — registration,
Lease heartbeats, conditions, pod workers, the container state machine — over the
``sim`` runtime) against one embedded store in this process, then creates 120,000
pods bound to them (40 per node, each a main container and a sidecar, as a PinApp
replica with a proxy would be), and measures:

* how long until every pod is Running and Ready (store writes, watch fan-out, the
  agents' sync and status writes, all on one event loop);
* the process's resident memory with everything present (target: below 4 GiB);
* sustained mutating pod operations with the 120k pods present: for a fixed time,
  clients replace pods (delete one, create its successor) at the target rate
  (1,000 operations/s = 60,000/min; the original's figure was 1,000/min) while
  the agents stop and start them, and how far behind the cluster is when the
  churn ends (pods not yet Ready) and how long it takes to catch up (every new
  pod Ready, every deleted pod gone) — sustained means it does not fall behind;
* the baseline, in the same run: the start-up of a tenth of the case (300 nodes,
  12,000 pods) with every agent watching its own pods through a field-selector
  watch — as that many separate kubelets would — against the fleet's single
  shared watch on the same case.

Memory is also given per node (what the process grew by while the nodes
registered) and per pod (what it grew by while the pods were created and ran).
With ``--schedule`` the pods are placed by the pod scheduler, and the run also
measures, each in a fresh process on the tenth-size case, this tree and *the
layout before issue 14* (``--layout-ref``, default the last commit before it: the
scheduler cached whole pods and every history event kept its parsed object): the
baseline of the memory work.  With ``--peer``, the same figures for a real
control plane (kube-apiserver + etcd + kwok, :mod:`scale_peer`) holding a tenth
of the pods, measured and extrapolated linearly to the full case.

Run: ``python benchmarks/cluster_scale.py [--quick] [--schedule] [--peer] [--nodes N]
[--pods N]``.  The last line printed is one JSON object with the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import io
import os
import platform
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson
import psutil

from pincompute.gctuning import tune_gc
from pincompute.kube.backends.embedded import EmbeddedStore
from pincompute.kube.errors import Gone, NotFound
from pincompute.kube.protocol import KubeClient
from pincompute.kube.resource import NAMESPACES, PODS
from pincompute.node import NodeAgent, NodeConfig, NodeIdentity
from pincompute.node.backoff import CRASH_LOOP
from pincompute.node.fleet import NodeFleet
from pincompute.scheduler import Scheduler

NAMESPACE_COUNT = 100


def pod(i: int, node: str | None, *, generation: int = 0) -> dict[str, Any]:
    """A replica bound to ``node``, or (None) left to the pod scheduler."""
    app = f"app-{i % 500}"
    return {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {
            "name": f"{app}-{i:07d}-{generation}", "namespace": f"ns-{i % NAMESPACE_COUNT}",
            "labels": {"app": app, "pincompute.io/tier": "ondemand",
                       "topology.kubernetes.io/zone": "zone-a"},
            "annotations": {"pincompute.io/owner": "team-search"},
        },
        "spec": {
            **({"nodeName": node} if node else {"schedulerName": "pincompute"}),
            "restartPolicy": "Always",
            "containers": [
                {"name": "main", "image": "registry.local/search/api:1.42.0",
                 "command": ["python3", "-m", "api"], "args": ["--port", "8080"],
                 "env": [{"name": "ZONE", "value": "zone-a"}],
                 "ports": [{"name": "http", "containerPort": 8080}],
                 "resources": {"requests": {"cpu": "50m", "memory": "64Mi"},
                               "limits": {"cpu": "1", "memory": "1Gi"}},
                 "readinessProbe": {"httpGet": {"path": "/healthz", "port": 8080},
                                    "periodSeconds": 5}},
                {"name": "envoy", "type": "sidecar", "image": "registry.local/infra/envoy:1.30",
                 "resources": {"requests": {"cpu": "10m", "memory": "32Mi"}}},
            ],
            "terminationGracePeriodSeconds": 30,
        },
    }


def rss_mib() -> float:
    return psutil.Process().memory_info().rss / 2**20


class ReadyCounter:
    """Counts Ready pods from a watch (no cache: the figure must not pay for one)."""

    def __init__(self, client: KubeClient) -> None:
        self.client = client
        self.ready: set[str] = set()
        self.present: set[str] = set()
        self._task: asyncio.Task[None] | None = None
        self.changed = asyncio.Event()
        self.relists = 0

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    def _apply(self, kind: str, obj: dict[str, Any]) -> None:
        md = obj["metadata"]
        key = f"{md['namespace']}/{md['name']}"
        if kind == "DELETED":
            self.ready.discard(key)
            self.present.discard(key)
            return
        self.present.add(key)
        conds = (obj.get("status") or {}).get("conditions") or ()
        if any(c.get("type") == "Ready" and c.get("status") == "True" for c in conds):
            self.ready.add(key)
        else:
            self.ready.discard(key)

    async def _relist(self) -> str:
        # A method of its own so the list goes when it has been counted: held in _run's
        # frame, a relist's 120,000 decoded pods stayed alive until the next relist and
        # counted against the cluster's memory.
        listed = await self.client.list(PODS)
        self.ready.clear()
        self.present.clear()
        for obj in listed.items:
            self._apply("ADDED", obj)
        self.changed.set()
        self.relists += 1
        return listed.resource_version

    async def _run(self) -> None:
        rv = ""
        while True:
            if not rv:
                # (Re)list: at start, and when the watch fell further behind than the
                # store's history (Gone).
                rv = await self._relist()
            try:
                async for ev in self.client.watch(PODS, resource_version=rv):
                    rv = ev.resource_version or rv
                    if ev.type != "BOOKMARK":
                        self._apply(ev.type, ev.object)
                        self.changed.set()
            except Gone:
                rv = ""

    async def wait(self, predicate: Any, timeout: float) -> bool:
        try:
            async with asyncio.timeout(timeout):
                while not predicate():
                    self.changed.clear()
                    await self.changed.wait()
        except TimeoutError:
            return False
        return True

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass


async def create_pods(client: KubeClient, count: int, nodes: list[str] | None, *,
                      writers: int) -> None:
    # Specs are built as they are sent: holding 120k request bodies would count
    # against the cluster's memory figure.
    indexes = iter(range(count))

    async def writer() -> None:
        for i in indexes:
            obj = pod(i, nodes[i % len(nodes)] if nodes else None)
            await client.create(PODS, obj, namespace=obj["metadata"]["namespace"])

    await asyncio.gather(*(writer() for _ in range(writers)))


async def churn(client: KubeClient, nodes: list[str], generations: list[int], *,
                seconds: float, rate: float | None, writers: int) -> int:
    """Replace pods (delete one, create its successor) for ``seconds``, at ``rate`` ops/s
    (``None``: as fast as ``writers`` serial clients go); returns the operations done."""
    ops = 0
    cursor = 0
    t0 = time.perf_counter()
    deadline = t0 + seconds

    async def writer() -> None:
        nonlocal ops, cursor
        while True:
            k = cursor
            cursor += 1
            if rate is not None:
                due = t0 + 2 * k / rate  # two operations per replacement
                if due >= deadline:
                    return
                if due > time.perf_counter():
                    await asyncio.sleep(due - time.perf_counter())
            elif time.perf_counter() >= deadline:
                return
            i = k % len(generations)
            old = pod(i, nodes[i % len(nodes)], generation=generations[i])
            md = old["metadata"]
            with contextlib.suppress(NotFound):
                await client.delete(PODS, md["name"], namespace=md["namespace"])
            generations[i] += 1
            new = pod(i, nodes[i % len(nodes)], generation=generations[i])
            await client.create(PODS, new, namespace=new["metadata"]["namespace"])
            ops += 2

    await asyncio.gather(*(writer() for _ in range(writers)))
    return ops


def node_configs(count: int) -> list[NodeConfig]:
    # Kubernetes' default lease (40 s, renewed every 10 s), status period and back-off.
    return [NodeConfig(identity=NodeIdentity(name=f"sim-{i:05d}", zone="zone-a",
                                             node_pool="general", cpu="32", memory="128Gi",
                                             pods=110),
                       runtime="sim", record_events=False, backoff=CRASH_LOOP)
            for i in range(count)]


async def open_cluster() -> tuple[EmbeddedStore, KubeClient]:
    store = await EmbeddedStore.open(path=None)
    client = store.client()
    for n in range(NAMESPACE_COUNT):
        await client.create(NAMESPACES, {"metadata": {"name": f"ns-{n}"}})
    return store, client


async def ready_time(nodes_n: int, pods_n: int, *, shared: bool, writers: int) -> float:
    """Seconds from the first create until every pod is Ready, on a fresh cluster."""
    store, client = await open_cluster()
    configs = node_configs(nodes_n)
    names = [c.name for c in configs]
    fleet = NodeFleet(client, configs) if shared else None
    agents = [] if shared else [NodeAgent(client, c) for c in configs]
    if fleet is not None:
        await fleet.start(concurrency=128)
    else:
        limit = asyncio.Semaphore(128)

        async def start(agent: NodeAgent) -> None:
            async with limit:
                await agent.start()

        await asyncio.gather(*(start(a) for a in agents))
    counter = ReadyCounter(client)
    await counter.start()
    t0 = time.perf_counter()
    await create_pods(client, pods_n, names, writers=writers)
    await counter.wait(lambda: len(counter.ready) >= pods_n, timeout=900)
    elapsed = time.perf_counter() - t0
    await counter.stop()
    if fleet is not None:
        await fleet.stop()
    for agent in agents:
        await agent.stop()
    await store.close()
    return elapsed


ROOT = Path(__file__).resolve().parents[1]
#: The last commit before issue 14's memory work: the layout the baseline measures.
LAYOUT_REF = "0556769"


def tenth_case_rss(ref: str | None) -> dict[str, Any]:
    """The tenth-size --schedule case in a fresh process: this tree (``ref`` None), or the
    tree of commit ``ref`` (extracted with ``git archive``); its JSON figures."""
    with tempfile.TemporaryDirectory(prefix="layout-") as tmp:
        root = ROOT
        if ref is not None:
            archive = subprocess.run(["git", "-C", str(ROOT), "archive", ref, "src",
                                      "benchmarks"], capture_output=True, check=True).stdout
            with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
                tar.extractall(tmp, filter="data")
            root = Path(tmp)
        argv = [sys.executable, str(root / "benchmarks" / "cluster_scale.py"), "--quick",
                "--schedule", "--churn-seconds", "5"]
        if ref is None:
            argv.append("--no-layout-baseline")
        done = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=1800,
                              env={**os.environ, "PYTHONPATH": str(root / "src")})
        if done.returncode != 0:
            raise RuntimeError(f"tenth-size case ({ref or 'this tree'}) failed:\n"
                               f"{done.stderr[-3000:]}")
        result: dict[str, Any] = orjson.loads(done.stdout.strip().splitlines()[-1])
        return result


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="a small case for smoke tests")
    parser.add_argument("--nodes", type=int)
    parser.add_argument("--pods", type=int)
    parser.add_argument("--churn-seconds", type=float)
    parser.add_argument("--writers", type=int, default=256)
    parser.add_argument("--schedule", action="store_true",
                        help="create the pods unbound and let the pod scheduler place them")
    parser.add_argument("--no-layout-baseline", action="store_true",
                        help="with --schedule: skip the tenth-size runs of both layouts")
    parser.add_argument("--layout-ref", default=LAYOUT_REF,
                        help="the commit whose layout the baseline measures")
    parser.add_argument("--peer", action="store_true",
                        help="also measure kube-apiserver + etcd + kwok with a tenth of the pods")
    parser.add_argument("--rate", type=float, default=1000.0,
                        help="mutating operations per second during the churn (default "
                             "1000 = the 60,000/min target)")
    args = parser.parse_args()
    nodes_n = args.nodes or (300 if args.quick else 3000)
    pods_n = args.pods or (12_000 if args.quick else 120_000)
    churn_s = args.churn_seconds or (5.0 if args.quick else 30.0)
    tune_gc()
    rss0 = rss_mib()

    store, client = await open_cluster()
    configs = node_configs(nodes_n)
    names = [c.name for c in configs]
    fleet = NodeFleet(client, configs)
    t0 = time.perf_counter()
    await fleet.start(concurrency=128)
    nodes_s = time.perf_counter() - t0
    gc.collect()
    rss_nodes = rss_mib()
    print(f"{nodes_n} nodes registered and Ready in {nodes_s:.1f}s, rss {rss_nodes:.0f} MiB",
          file=sys.stderr)

    counter = ReadyCounter(client)
    await counter.start()
    scheduling: asyncio.Task[None] | None = None
    if args.schedule:
        scheduler = Scheduler(client, record_scheduled_events=False)
        scheduling = asyncio.create_task(scheduler.run())
    t0 = time.perf_counter()
    await create_pods(client, pods_n, None if args.schedule else names, writers=args.writers)
    created_s = time.perf_counter() - t0
    ok = await counter.wait(lambda: len(counter.ready) >= pods_n, timeout=900)
    running_s = time.perf_counter() - t0
    if scheduling is not None:
        scheduling.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await scheduling
    gc.collect()
    rss_full = rss_mib()
    print(f"{pods_n} pods created in {created_s:.1f}s, all Ready after {running_s:.1f}s "
          f"({'ok' if ok else 'TIMED OUT'}), rss {rss_full:.0f} MiB", file=sys.stderr)

    # Sustained churn at the target rate with everything present: do the agents keep up?
    generations = [0] * pods_n
    t0 = time.perf_counter()
    ops = await churn(client, names, generations, seconds=churn_s, rate=args.rate,
                      writers=args.writers)
    churn_elapsed = time.perf_counter() - t0
    ops_per_min = ops / churn_elapsed * 60
    lag_ops = pods_n - len(counter.ready)
    caught_up = await counter.wait(
        lambda: len(counter.ready) >= pods_n and len(counter.present) == pods_n, timeout=300)
    catch_up_s = time.perf_counter() - t0 - churn_elapsed
    caught = f"in {catch_up_s:.1f}s" if caught_up else "NO"
    print(f"churn: {ops} mutating ops in {churn_elapsed:.1f}s = {ops_per_min:,.0f}/min; "
          f"{lag_ops} pods not Ready at the end, caught up {caught}", file=sys.stderr)

    gc.collect()
    rss_end = rss_mib()

    await counter.stop()
    t0 = time.perf_counter()
    await fleet.stop()
    stop_s = time.perf_counter() - t0
    await store.close()
    gc.collect()

    # Baseline: the same start-up on a tenth of the case, with every agent watching its
    # own pods (one field-selector watch per node, as separate kubelets would) against
    # the fleet's one shared watch.
    small_nodes, small_pods = max(1, nodes_n // 10), max(1, pods_n // 10)
    base_s = await ready_time(small_nodes, small_pods, shared=False, writers=args.writers)
    small_s = await ready_time(small_nodes, small_pods, shared=True, writers=args.writers)
    print(f"{small_nodes} nodes / {small_pods} pods, all Ready: per-node watches "
          f"{base_s:.1f}s, shared watch {small_s:.1f}s", file=sys.stderr)

    per_node = (rss_nodes - rss0) * 2**20 / nodes_n
    per_pod = (rss_full - rss_nodes) * 2**20 / pods_n
    per_pod_churn = (rss_end - rss_nodes) * 2**20 / pods_n
    print(f"memory: {per_node / 1024:,.1f} KiB per node, {per_pod / 1024:,.1f} KiB per pod "
          f"({per_pod_churn / 1024:,.1f} after churn)", file=sys.stderr)
    extra: dict[str, Any] = {}
    if args.schedule and not args.no_layout_baseline:
        now = tenth_case_rss(None)
        before = tenth_case_rss(args.layout_ref)
        extra.update({
            "layout_case": [now["nodes"], now["pods"]], "layout_ref": args.layout_ref,
            "layout_rss_mib": now["rss_mib"], "layout_bytes_per_pod": now["bytes_per_pod"],
            "layout_rss_mib_after_churn": now["rss_mib_after_churn"],
            "baseline_layout_rss_mib": before["rss_mib"],
            "baseline_layout_rss_mib_after_churn": before["rss_mib_after_churn"]})
        print(f"tenth-size case ({now['nodes']} nodes, {now['pods']} pods, scheduled), fresh "
              f"processes: this layout {now['rss_mib']} MiB ({now['rss_mib_after_churn']} after "
              f"churn), the layout of {args.layout_ref} {before['rss_mib']} MiB "
              f"({before['rss_mib_after_churn']} after churn)", file=sys.stderr)
    if args.peer:
        from scale_peer import measure_peer

        extra.update(await measure_peer(nodes=small_nodes, pods=small_pods, pod=pod,
                                  namespaces=NAMESPACE_COUNT, full_nodes=nodes_n,
                                  full_pods=pods_n))
        extra["rss_ratio_to_peer"] = round(rss_end / extra["peer_rss_mib_extrapolated"], 2)

    print(orjson.dumps({
        "nodes": nodes_n, "pods": pods_n, "scheduled_by_scheduler": args.schedule,
        "bytes_per_node": round(per_node), "bytes_per_pod": round(per_pod),
        "bytes_per_pod_after_churn": round(per_pod_churn), **extra,
        "nodes_ready_s": round(nodes_s, 2),
        "pods_create_s": round(created_s, 2),
        "pods_all_ready_s": round(running_s, 2), "all_ready": ok,
        "rss_mib": round(rss_full), "rss_mib_after_churn": round(rss_end),
        "rss_mib_at_start": round(rss0),
        "mutating_ops_per_min": round(ops_per_min), "churn_caught_up": caught_up,
        "churn_not_ready_at_end": lag_ops,
        "churn_catch_up_s": round(catch_up_s, 2),
        "ready_counter_relists": counter.relists,
        "small_case": [small_nodes, small_pods],
        "baseline_per_node_watches_ready_s": round(base_s, 2),
        "shared_watch_ready_s": round(small_s, 2),
        "fleet_stop_s": round(stop_s, 2),
        "python": platform.python_version(), "cpus": os.cpu_count(),
    }).decode())


if __name__ == "__main__":
    asyncio.run(main())
