"""Pod scheduler benchmark (DESIGN §11, row "pod scheduling").

The case is kube-scheduler's scheduler_perf **SchedulingBasic**: 5,000 nodes
(4 cpu, 32 GiB, 110 pods each), 1,000 existing pods scheduled first and not
measured, then 10,000 measured pods (100m cpu, 500 MiB, no affinity: one
equivalence class), all with the default profile.  Upstream holds
kube-scheduler to 680 pods/s on it; the target here is ten times that.

What is measured: the 10,000 pods are created in the embedded store by a
concurrent creator (as scheduler_perf's pod creator runs beside the scheduler,
in the same process as its API server), and the clock runs from the first
create until the scheduler has had every binding *acknowledged by the store*.
The scheduler learns of pods only through its informer and writes every
binding as a merge patch with a resourceVersion precondition, plus a
``Scheduled`` Event per pod, as kube-scheduler does.  Events have lower
priority than bindings (like kube-scheduler's event broadcaster they are
written asynchronously); the figures say how long after the last binding the
last event was written (``events_done_after_s``).  Runs:

* ``pods_per_s`` — memory-only store (allowed by the target);
* ``persisted_pods_per_s`` — the store persisted to SQLite (WAL,
  ``synchronous=FULL``, every binding acknowledged only after its group commit);
* ``baseline_pods_per_s`` — the same scheduler and plugins evaluated node by
  node without the equivalence-class cache
  (:class:`pincompute.scheduler.reference.ReferenceFramework`), memory-only,
  on ``--baseline-pods`` pods (it is too slow for 10,000);
* ``prequeued_pods_per_s`` — memory-only, pods created before the scheduler
  starts (the decision and binding path alone).

With ``--peer``, kube-scheduler's own benchmark runs the same case in the same
run (``peer_pods_per_s``: scheduler_perf's average ``SchedulingThroughput``,
sampled once a second).  That compares whole systems doing the same job on the
same cores: kube-scheduler with its in-process kube-apiserver and an etcd that
fsyncs (the cached binary, started by the test), against ours with the embedded
store — ``ratio`` memory-only, ``ratio_persisted`` with every binding fsync'd as
etcd does.  scheduler_perf's test binary is built on first use
(``tools/build-kube.sh scheduler-perf``, ~15 min on two cores).

With ``--peer-apiserver`` (module :mod:`apiserver_peer`), both schedulers place
the same pods on one real kube-apiserver with kwok nodes, each in a process of
its own: ``apiserver_peer_pods_per_s`` (the real kube-scheduler binary),
``apiserver_pods_per_s`` (ours as a secondary scheduler binding through
``pods/binding``) and ``apiserver_ratio``.

Run: ``python benchmarks/scheduler.py [--quick] [--peer] [--peer-apiserver]``.  The
last line printed is one JSON object with the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson

from peers import machine, run_scheduler_perf
from pincompute.gctuning import tune_gc
from pincompute.kube.backends.embedded import EmbeddedStore
from pincompute.kube.protocol import KubeClient
from pincompute.kube.resource import NAMESPACES, NODES, PODS
from pincompute.scheduler import Scheduler

NAMESPACE = "sched-perf"


def node(i: int) -> dict[str, Any]:
    """scheduler_perf's node-default.yaml."""
    return {
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": f"scheduler-perf-{i:05d}",
                     "labels": {"kubernetes.io/hostname": f"scheduler-perf-{i:05d}"}},
        "spec": {},
        "status": {"capacity": {"pods": "110", "cpu": "4", "memory": "32Gi"},
                   "allocatable": {"pods": "110", "cpu": "4", "memory": "32Gi"},
                   "conditions": [{"type": "Ready", "status": "True"}], "phase": "Running"},
    }


def pod(name: str, *, node_name: str | None = None) -> dict[str, Any]:
    """scheduler_perf's pod-default.yaml (pause container, 100m / 500Mi)."""
    spec: dict[str, Any] = {
        "schedulerName": "pincompute",
        "containers": [{"name": "pause", "image": "registry.k8s.io/pause:3.10",
                        "ports": [{"containerPort": 80}],
                        "resources": {"limits": {"cpu": "100m", "memory": "500Mi"},
                                      "requests": {"cpu": "100m", "memory": "500Mi"}}}],
    }
    if node_name:
        spec["nodeName"] = node_name
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": NAMESPACE}, "spec": spec}


async def create_many(client: KubeClient, objs: list[dict[str, Any]], *,
                      chunk: int = 256) -> None:
    """Create objects in concurrent chunks (one group commit per chunk when persisted)."""
    for start in range(0, len(objs), chunk):
        part = objs[start:start + chunk]
        await asyncio.gather(*(client.create(PODS if o["kind"] == "Pod" else NODES, o)
                               for o in part))


async def run_case(*, nodes: int, init_pods: int, pods: int, path: Path | None,
                   vectorized: bool = True, prequeue: bool = False,
                   events: bool = True) -> dict[str, Any]:
    store = await EmbeddedStore.open(path=path)
    client = store.client()
    try:
        await client.create(NAMESPACES, {"metadata": {"name": NAMESPACE}})
        await create_many(client, [node(i) for i in range(nodes)])
        if vectorized:
            init = [pod(f"init-{i:06d}") for i in range(init_pods)]
        else:
            # The baseline is too slow to place the existing pods itself; they are bound
            # round-robin up front (not measured either way).
            init = [pod(f"init-{i:06d}", node_name=f"scheduler-perf-{i % nodes:05d}")
                    for i in range(init_pods)]
        await create_many(client, init)
        measured = [pod(f"pod-{i:06d}") for i in range(pods)]
        if prequeue:
            await create_many(client, measured)
        sched = Scheduler(client, vectorized=vectorized, record_scheduled_events=events)
        task = asyncio.get_running_loop().create_task(sched.run())
        expected_init = init_pods if vectorized else 0
        if prequeue:
            # The scheduler registers its handlers before starting the informers, so
            # once they have listed, every node is in its table and every pod queued.
            await sched.nodes_informer.wait_synced()
            await sched.pods_informer.wait_synced()
            assert sched.table.count == nodes
        else:
            await sched.wait_scheduled(expected_init, timeout=600)
            await sched.settle(timeout=600)
        gc.collect()
        base = sched.scheduled
        start = time.perf_counter()
        creator = None
        if not prequeue:
            creator = asyncio.get_running_loop().create_task(create_many(client, measured))
        await sched.wait_scheduled(base + pods, timeout=3600)
        elapsed = time.perf_counter() - start
        if creator is not None:
            await creator
        await sched.settle(timeout=600)
        events_after = time.perf_counter() - start - elapsed
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            pass
        listed = await client.list(PODS, namespace=NAMESPACE)
        bound = sum(1 for p in listed.items if (p.get("spec") or {}).get("nodeName"))
        if bound != init_pods + pods:
            raise SystemExit(f"only {bound} of {init_pods + pods} pods are bound in the store")
        over = sched.table.overcommitted()
        if over:
            raise SystemExit(f"overcommitted nodes: {over[:5]}")
        cache = sched.framework.cache
        return {"pods_per_s": pods / elapsed, "seconds": elapsed, "bound_in_store": bound,
                "events_written": sched.recorder.written, "events_dropped": sched.recorder.dropped,
                "events_done_after_s": events_after,
                "bind_failures": sched.bind_failures, "class_cache_hits": cache.hits,
                "class_cache_misses": cache.misses}
    finally:
        await store.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="a small case for smoke tests")
    ap.add_argument("--nodes", type=int)
    ap.add_argument("--init-pods", type=int)
    ap.add_argument("--pods", type=int)
    ap.add_argument("--baseline-pods", type=int)
    ap.add_argument("--no-persisted", action="store_true")
    ap.add_argument("--no-events", action="store_true", help="do not write Scheduled events")
    ap.add_argument("--peer", action="store_true",
                    help="also run kube-scheduler's scheduler_perf on the same case")
    ap.add_argument("--peer-apiserver", action="store_true",
                    help="also place pods with kube-scheduler and ours on one real API server")
    args = ap.parse_args()
    nodes = args.nodes or (500 if args.quick else 5000)
    init_pods = args.init_pods if args.init_pods is not None else (100 if args.quick else 1000)
    pods = args.pods or (1000 if args.quick else 10_000)
    baseline_pods = args.baseline_pods or (50 if args.quick else 300)
    events = not args.no_events
    tune_gc()
    # scheduler_perf's cases by size: (nodes, existing pods, measured pods).
    cases = {(5000, 1000, 10_000): "SchedulingBasic/5000Nodes_10000Pods",
             (500, 500, 1000): "SchedulingBasic/500Nodes"}
    if args.peer and args.quick and not (args.nodes or args.init_pods or args.pods):
        nodes, init_pods, pods = 500, 500, 1000  # scheduler_perf's 500Nodes
    print(f"SchedulingBasic: {nodes} nodes, {init_pods} existing pods, {pods} measured pods; "
          f"python {platform.python_version()}, {machine()}", file=sys.stderr)
    peer: dict[str, Any] = {}
    if args.peer:
        case = cases.get((nodes, init_pods, pods))
        if case is None:
            raise SystemExit(f"--peer runs scheduler_perf's own cases only: "
                             f"{', '.join(f'{k} ({v})' for v, k in cases.items())}")
        result = run_scheduler_perf(case)
        peer = {"peer_pods_per_s": round(result["Average"], 1), "peer_case": case,
                "peer_pods_per_s_p50": round(result["Perc50"], 1),
                "peer_seconds": round(result["seconds"], 1)}
        print(f"peer: kube-scheduler (scheduler_perf {case}, apiserver + etcd with fsync): "
              f"average {result['Average']:,.1f} pods/s, p50 {result['Perc50']:,.1f} "
              f"({result['seconds']:.0f} s with setup)", file=sys.stderr)

    mem = asyncio.run(run_case(nodes=nodes, init_pods=init_pods, pods=pods, path=None,
                               events=events))
    print(f"memory-only:  {mem['pods_per_s']:,.0f} pods/s ({mem['seconds']:.2f} s; "
          f"{mem['events_written']} events written, the last {mem['events_done_after_s']:.2f} s "
          "after the last binding)", file=sys.stderr)
    pre = asyncio.run(run_case(nodes=nodes, init_pods=init_pods, pods=pods, path=None,
                               prequeue=True, events=events))
    print(f"pre-queued:   {pre['pods_per_s']:,.0f} pods/s ({pre['seconds']:.2f} s)",
          file=sys.stderr)
    persisted: dict[str, Any] | None = None
    if not args.no_persisted:
        with tempfile.TemporaryDirectory(prefix="sched-bench-") as tmp:
            persisted = asyncio.run(run_case(nodes=nodes, init_pods=init_pods, pods=pods,
                                             path=Path(tmp) / "store", events=events))
        print(f"persisted:    {persisted['pods_per_s']:,.0f} pods/s "
              f"({persisted['seconds']:.2f} s)", file=sys.stderr)
    base = asyncio.run(run_case(nodes=nodes, init_pods=init_pods, pods=baseline_pods,
                                path=None, vectorized=False, events=events))
    print(f"baseline:     {base['pods_per_s']:,.1f} pods/s on {baseline_pods} pods "
          f"({base['seconds']:.2f} s)", file=sys.stderr)
    result = {
        "pods_per_s": round(mem["pods_per_s"]),
        "baseline_pods_per_s": round(base["pods_per_s"], 1),
        "persisted_pods_per_s": round(persisted["pods_per_s"]) if persisted else None,
        "prequeued_pods_per_s": round(pre["pods_per_s"]),
        "speedup": round(mem["pods_per_s"] / base["pods_per_s"], 1),
        "nodes": nodes, "init_pods": init_pods, "pods": pods, "baseline_pods": baseline_pods,
        "scheduled_events": events, "events_written": mem["events_written"],
        "events_dropped": mem["events_dropped"],
        "events_done_after_s": round(mem["events_done_after_s"], 2),
        "bind_failures": mem["bind_failures"],
        "class_cache_hits": mem["class_cache_hits"],
        "class_cache_misses": mem["class_cache_misses"],
    }
    if peer:
        result.update(peer)
        result["ratio"] = round(mem["pods_per_s"] / peer["peer_pods_per_s"], 1)
        if persisted:
            result["ratio_persisted"] = round(persisted["pods_per_s"] / peer["peer_pods_per_s"], 1)
        print(f"ratio: ours {result['ratio']}x kube-scheduler's throughput (memory-only store), "
              f"{result.get('ratio_persisted')}x (persisted, fsync'd)", file=sys.stderr)
    if args.peer_apiserver:
        from apiserver_peer import compare_on_apiserver

        result.update(compare_on_apiserver(quick=args.quick))
    print(orjson.dumps(result).decode())


if __name__ == "__main__":
    main()
