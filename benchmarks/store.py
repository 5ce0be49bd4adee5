"""Embedded store benchmark (DESIGN §11, row "store writes").

Creates pod-sized objects from many concurrent writers into one embedded store,
memory-only and persisted (SQLite WAL, synchronous=FULL, group commit), then —
with every object present — measures watch latency under a steady update load,
an informer-style paginated initial list, and a label-selector list answered by
the index versus a full scan.  The baseline, measured in the same run, is one
writer acknowledging each persisted write before sending the next (no batch to
share an fsync with: one commit per write).

With ``--peer`` the same load also runs against the real peer, side by side in
the same run: the cached etcd (``tools/build-kube.sh``; etcd's defaults, so every
put is acknowledged after its WAL fsync, on the same disk) receives the same
number of puts of the same size from ``etcdload`` (the official Go client,
``--writers`` clients over 8 gRPC connections, as etcd's own benchmark tool runs),
and one client alone as the serial baseline's twin.  ``ratio_persisted`` is our
persisted creates/s over etcd's puts/s.  A create here does more than a put
(admission defaults, uid, timestamps, indexes, a watch event), so the
comparison is conservative.

Run: ``python benchmarks/store.py [--quick] [--peer] [--objects N] [--writers N]``.
The last line printed is one JSON object with the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson
import psutil

from peers import Etcd, machine, peer_dir
from pincompute.gctuning import tune_gc
from pincompute.kube.backends.embedded import EmbeddedStore
from pincompute.kube.resource import NAMESPACES, PODS
from pincompute.runtime.informer import SharedInformer

NAMESPACE_COUNT = 100


def pod(i: int) -> dict[str, Any]:
    """A pod of realistic size (~1.5 KB of JSON), as a PinApp replica would be."""
    app = f"app-{i % 500}"
    return {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {
            "name": f"{app}-{i:07d}", "namespace": f"ns-{i % NAMESPACE_COUNT}",
            "labels": {"app": app, "pincompute.io/tier": "ondemand",
                       "pod-template-hash": "7c9f8d6b5", "topology.kubernetes.io/zone": "zone-a"},
            "annotations": {"pincompute.io/revision": "3", "pincompute.io/owner": "team-search"},
        },
        "spec": {
            "containers": [
                {"name": "main", "image": "registry.local/search/api:1.42.0",
                 "command": ["python3", "-m", "api"], "args": ["--port", "8080"],
                 "env": [{"name": "ZONE", "value": "zone-a"},
                         {"name": "LOG_LEVEL", "value": "info"}],
                 "ports": [{"name": "http", "containerPort": 8080}],
                 "resources": {"requests": {"cpu": "500m", "memory": "512Mi"},
                               "limits": {"cpu": "1", "memory": "1Gi"}},
                 "readinessProbe": {"httpGet": {"path": "/healthz", "port": 8080},
                                    "periodSeconds": 5}},
                {"name": "envoy", "image": "registry.local/infra/envoy:1.30",
                 "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}}},
            ],
            "tolerations": [{"key": "pincompute.io/tier", "operator": "Equal",
                             "value": "ondemand", "effect": "NoSchedule"}],
            "terminationGracePeriodSeconds": 30, "schedulerName": "pincompute",
        },
    }


def rss_mib() -> float:
    return psutil.Process().memory_info().rss / 2**20


async def make_store(path: Path | None) -> EmbeddedStore:
    store = await EmbeddedStore.open(path=path)
    client = store.client()
    for n in range(NAMESPACE_COUNT):
        await client.create(NAMESPACES, {"metadata": {"name": f"ns-{n}"}})
    return store


async def fill(store: EmbeddedStore, count: int, writers: int, *, start_index: int = 0) -> float:
    client = store.client()
    objects = [pod(i) for i in range(start_index, start_index + count)]
    per = (count + writers - 1) // writers

    async def writer(w: int) -> None:
        for obj in objects[w * per:(w + 1) * per]:
            await client.create(PODS, obj)

    gc.collect()
    start = time.perf_counter()
    await asyncio.gather(*(writer(w) for w in range(writers)))
    return count / (time.perf_counter() - start)


async def serial_persisted_baseline(count: int) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        store = await make_store(Path(tmp))
        client = store.client()
        start = time.perf_counter()
        for i in range(count):
            await client.create(PODS, pod(i))
        rate = count / (time.perf_counter() - start)
        await store.close()
    return rate


def etcd_peer(count: int, writers: int, value_size: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """etcdload against a fresh etcd: ``count`` puts from ``writers`` clients, then 1,000
    from one client; both results as etcdload reports them."""
    bins = peer_dir("etcdload")
    with tempfile.TemporaryDirectory() as tmp, Etcd(bins, parent=Path(tmp)) as etcd:
        def load(total: int, clients: int, conns: int, prefix: str) -> dict[str, Any]:
            out = subprocess.run(
                [str(bins / "etcdload"), f"-endpoints={etcd.endpoint}", f"-conns={conns}",
                 f"-clients={clients}", f"-total={total}", f"-val-size={value_size}",
                 f"-prefix={prefix}"], capture_output=True, text=True, check=True, timeout=1200)
            result: dict[str, Any] = orjson.loads(out.stdout.strip().splitlines()[-1])
            return result

        concurrent = load(count, writers, 8, "/registry/pods/bench/")
        serial = load(min(1000, count), 1, 1, "/registry/pods/serial/")
    return concurrent, serial


async def watch_latency(store: EmbeddedStore, count: int, *, rate: int,
                        seconds: float) -> list[float]:
    """p99 of write → watcher delivery while ``rate`` updates/s run."""
    client = store.client()
    listed = await client.list(PODS, namespace="ns-0", limit=1)
    latencies: list[float] = []
    total = int(rate * seconds)
    done = asyncio.Event()

    async def watcher() -> None:
        async for event in client.watch(PODS, resource_version=listed.resource_version):
            sent = (event.object["metadata"].get("annotations") or {}).get("bench/sent")
            if sent is not None:
                latencies.append((time.perf_counter() - float(sent)) * 1000)
                if len(latencies) >= total:
                    done.set()
                    return

    task = asyncio.create_task(watcher())
    names = [pod(i)["metadata"] for i in range(0, count, max(1, count // 5000))]
    start = time.perf_counter()
    for i in range(total):
        md = names[i % len(names)]
        target = start + i / rate
        delay = target - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        patch = {"metadata": {"annotations": {"bench/sent": repr(time.perf_counter())}}}
        await client.patch(PODS, md["name"], patch, namespace=md["namespace"])
    await asyncio.wait_for(done.wait(), 30)
    task.cancel()
    return latencies


async def informer_initial_list(store: EmbeddedStore) -> tuple[float, int]:
    """A shared informer's start: paginated list into its cache, until synced."""
    informer = SharedInformer(store.client(), PODS)
    start = time.perf_counter()
    informer.start()
    await informer.wait_synced()
    elapsed = time.perf_counter() - start
    count = len(informer.keys())
    await informer.stop()
    return elapsed, count


async def selector_list(store: EmbeddedStore) -> tuple[float, float, int]:
    """One namespace's pods of one app: through the label index vs a full scan."""
    client = store.client()
    reps = 20
    start = time.perf_counter()
    for _ in range(reps):
        indexed = await client.list(PODS, namespace="ns-7", label_selector="app=app-7")
    t_index = (time.perf_counter() - start) / reps
    # Baseline: what a store without indexes does — decode and test every object.
    entries = store.collections[PODS.key].entries  # measuring the store itself
    start = time.perf_counter()
    scan_reps = 3
    for _ in range(scan_reps):
        found = []
        for entry in entries.values():
            obj = orjson.loads(entry.raw)
            md = obj["metadata"]
            if md["namespace"] == "ns-7" and md["labels"].get("app") == "app-7":
                found.append(obj)
    t_scan = (time.perf_counter() - start) / scan_reps
    assert len(found) == len(indexed.items)
    return t_index, t_scan, len(indexed.items)


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="a small case for smoke tests")
    parser.add_argument("--objects", type=int, default=None)
    parser.add_argument("--writers", type=int, default=512,
                        help="concurrent writers (an API server's many clients)")
    parser.add_argument("--peer", action="store_true",
                        help="also run the same puts against the cached etcd (fsync on)")
    parser.add_argument("--default-gc", action="store_true",
                        help="keep CPython's default GC thresholds (to see what tuning buys)")
    args = parser.parse_args()
    if not args.default_gc:
        tune_gc()
    count = args.objects or (12_000 if args.quick else 120_000)
    print(f"machine: {platform.machine()} {machine()}, Python {sys.version.split()[0]}")

    base_rss = rss_mib()
    memory = await make_store(None)
    mem_rate = await fill(memory, count, args.writers)
    gc.collect()
    rss = rss_mib() - base_rss
    print(f"memory-only: {count} creates at {mem_rate:,.0f}/s; store RSS {rss:,.0f} MiB")
    await memory.close()
    del memory
    gc.collect()

    with tempfile.TemporaryDirectory() as tmp:
        persisted = await make_store(Path(tmp))
        per_rate = await fill(persisted, count, args.writers)
        print(f"persisted (WAL, synchronous=FULL, group commit): {per_rate:,.0f}/s")
        baseline = await serial_persisted_baseline(min(1000, count))
        print(f"baseline, one writer, one commit per write: {baseline:,.0f}/s")
        peer: dict[str, Any] = {}
        if args.peer:
            size = round(statistics.mean(len(orjson.dumps(pod(i))) for i in range(1000)))
            etcd, etcd_serial = await asyncio.to_thread(etcd_peer, count, args.writers, size)
            peer = {"peer_puts_per_s": round(etcd["puts_per_s"]),
                    "peer_serial_puts_per_s": round(etcd_serial["puts_per_s"]),
                    "peer_value_bytes": size, "peer_conns": etcd["conns"],
                    "ratio_persisted": round(per_rate / etcd["puts_per_s"], 2),
                    "ratio_serial": round(baseline / etcd_serial["puts_per_s"], 2)}
            print(f"peer: etcd (fsync on), {count} puts of {size} B from {args.writers} clients "
                  f"over {etcd['conns']} connections: {etcd['puts_per_s']:,.0f}/s "
                  f"(p99 {etcd['p99_ms']:.1f} ms); one client: "
                  f"{etcd_serial['puts_per_s']:,.0f}/s")
            print(f"ratio (ours persisted / etcd): {peer['ratio_persisted']}x; one writer: "
                  f"{peer['ratio_serial']}x")

        lat = await watch_latency(persisted, count, rate=1000, seconds=3 if args.quick else 10)
        lat.sort()
        p99 = lat[int(len(lat) * 0.99) - 1]
        print(f"watch latency at 1000 updates/s with {count} pods: p50 "
              f"{statistics.median(lat):.2f} ms, p99 {p99:.2f} ms ({len(lat)} events)")

        list_s, listed = await informer_initial_list(persisted)
        print(f"informer initial list of {listed} objects: {list_s:.2f} s")
        t_index, t_scan, hits = await selector_list(persisted)
        print(f"label-selector list ({hits} hits): index {t_index * 1000:.2f} ms vs full scan "
              f"{t_scan * 1000:.1f} ms ({t_scan / t_index:,.0f}x)")
        await persisted.close()

    print(orjson.dumps({
        "objects": count, "writers": args.writers, "gc_tuned": not args.default_gc,
        "creates_per_s_memory": round(mem_rate), "creates_per_s_persisted": round(per_rate),
        "baseline_creates_per_s_serial_fsync": round(baseline),
        "rss_mib": round(rss), "watch_p50_ms": round(statistics.median(lat), 3),
        "watch_p99_ms": round(p99, 3), "informer_list_s": round(list_s, 3),
        "selector_list_index_ms": round(t_index * 1000, 3),
        "selector_list_scan_ms": round(t_scan * 1000, 3),
        **peer,
    }).decode())


if __name__ == "__main__":
    asyncio.run(main())
