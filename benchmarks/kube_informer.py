"""Informer against a real kube-apiserver (DESIGN §11, issue "Real Kubernetes").

Starts one real control plane (etcd + kube-apiserver + controller manager, from
the binaries ``tools/build-kube.sh`` builds), creates pods through PinCompute's
kubernetes backend, and measures:

* a shared informer's initial list of every pod through the backend, which
  keeps objects as raw JSON dicts — seconds and resident memory added;
* the baseline, measured in the same run: the same paginated list through
  lightkube's typed client, converting every object into its pydantic-free
  dataclass models (what typed Python clients do, and the known bottleneck);
* watch throughput: events per second one watcher receives while concurrent
  writers patch the pods.

Run: ``python benchmarks/kube_informer.py [--quick] [--pods N]``; last line is JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import platform
import sys
import time
from typing import Any

import orjson
import psutil

from pincompute.gctuning import tune_gc
from pincompute.kube.resource import NAMESPACES, PODS
from pincompute.kubeenv import ClusterSpec, KubeEnv
from pincompute.runtime.informer import SharedInformer

NAMESPACE = "bench"


def pod(i: int) -> dict[str, Any]:
    return {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": f"pod-{i:06d}", "namespace": NAMESPACE,
                     "labels": {"app": f"app-{i % 50}", "pincompute.io/tier": "ondemand"}},
        "spec": {
            "schedulerName": "pincompute",
            "containers": [{"name": "main", "image": "registry.local/app:1.0",
                            "command": ["python3", "-m", "http.server"],
                            "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}},
                            "env": [{"name": "ZONE", "value": "zone-a"}]}],
        },
    }


def rss_mib() -> float:
    return psutil.Process().memory_info().rss / 2**20


async def create_pods(client: Any, count: int, *, writers: int = 32) -> float:
    per = (count + writers - 1) // writers

    async def writer(w: int) -> None:
        for i in range(w * per, min(count, (w + 1) * per)):
            await client.create(PODS, pod(i))

    start = time.perf_counter()
    await asyncio.gather(*(writer(w) for w in range(writers)))
    return count / (time.perf_counter() - start)


async def informer_list(client: Any) -> tuple[float, float, int]:
    gc.collect()
    before = rss_mib()
    informer = SharedInformer(client, PODS, namespace=NAMESPACE, page_size=500)
    start = time.perf_counter()
    informer.start()
    await informer.wait_synced()
    elapsed = time.perf_counter() - start
    grown = rss_mib() - before
    count = len(informer.keys())
    await informer.stop()
    del informer
    gc.collect()
    return elapsed, grown, count


async def typed_list(kubeconfig: str) -> tuple[float, float, int]:
    from lightkube import AsyncClient, KubeConfig
    from lightkube.resources.core_v1 import Pod

    gc.collect()
    before = rss_mib()
    client = AsyncClient(KubeConfig.from_file(kubeconfig))
    start = time.perf_counter()
    items = [p async for p in client.list(Pod, namespace=NAMESPACE, chunk_size=500)]
    elapsed = time.perf_counter() - start
    grown = rss_mib() - before
    await client.close()
    count = len(items)
    del items
    gc.collect()
    return elapsed, grown, count


async def watch_throughput(client: Any, count: int, since: str) -> float:
    """Events/s a watcher takes in when the server replays ``count`` events from its cache."""
    received = 0
    start = time.perf_counter()
    async for event in client.watch(PODS, namespace=NAMESPACE, resource_version=since,
                                    allow_bookmarks=False):
        if event.type == "ADDED":
            received += 1
            if received == count:
                break
    return received / (time.perf_counter() - start)


async def child(kind: str, kubeconfig: str) -> None:
    """One list in a fresh process, so its resident memory is its own."""
    from pincompute.kube.backends.kubernetes import connect

    tune_gc()
    if kind == "raw":
        client = connect(kubeconfig, qps=5000, burst=5000)
        seconds, grown, count = await informer_list(client)
        await client.close()
    else:
        seconds, grown, count = await typed_list(kubeconfig)
    print(orjson.dumps({"seconds": seconds, "rss_mib": grown, "count": count}).decode())


async def in_child(kind: str, kubeconfig: str) -> dict[str, Any]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, __file__, "--child", kind, "--kubeconfig", kubeconfig,
        stdout=asyncio.subprocess.PIPE)
    out, _ = await proc.communicate()
    return orjson.loads(out.splitlines()[-1])


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--pods", type=int, default=None)
    parser.add_argument("--child", choices=["raw", "typed"], help=argparse.SUPPRESS)
    parser.add_argument("--kubeconfig", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        await child(args.child, args.kubeconfig)
        return
    count = args.pods or (1_000 if args.quick else 10_000)
    tune_gc()
    print(f"machine: {platform.machine()} {os.cpu_count()} cores, Python {sys.version.split()[0]}")
    async with KubeEnv.start(clusters=(ClusterSpec("host", role="host"),)) as env:
        print(f"kube-apiserver up in {env.startup_seconds:.1f} s")
        cluster = env.host
        client = cluster.client(qps=5000, burst=5000)
        await client.create(NAMESPACES, {"metadata": {"name": NAMESPACE}})
        since = (await client.list(PODS, namespace=NAMESPACE)).resource_version
        rate = await create_pods(client, count)
        print(f"created {count} pods at {rate:,.0f}/s through the kubernetes backend")
        kubeconfig = str(cluster.kubeconfig)
        raw = await in_child("raw", kubeconfig)
        raw_s, raw_mib = raw["seconds"], raw["rss_mib"]
        print(f"informer initial list (raw JSON): {raw['count']} pods in {raw_s:.2f} s, "
              f"+{raw_mib:.0f} MiB resident")
        typed = await in_child("typed", kubeconfig)
        typed_s, typed_mib = typed["seconds"], typed["rss_mib"]
        print(f"baseline, typed models (lightkube): {typed['count']} pods in {typed_s:.2f} s, "
              f"+{typed_mib:.0f} MiB resident ({typed_s / raw_s:.1f}x the time)")
        events = await watch_throughput(client, count, since)
        print(f"watch throughput: {events:,.0f} events/s (replay of {count} creations)")
        await client.close()
    print(orjson.dumps({
        "pods": count, "creates_per_s": round(rate),
        "informer_list_s": round(raw_s, 3), "informer_rss_mib": round(raw_mib),
        "baseline_typed_list_s": round(typed_s, 3), "baseline_typed_rss_mib": round(typed_mib),
        "watch_events_per_s": round(events),
    }).decode())


if __name__ == "__main__":
    asyncio.run(main())
