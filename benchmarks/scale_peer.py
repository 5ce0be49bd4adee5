"""The memory a real control plane takes for the same pods and nodes (cluster_scale --peer).

Theory of operation
-------------------
:func:`measure_peer` starts one cluster of the test environment
(:class:`pincompute.kubeenv.KubeEnv`: etcd, kube-apiserver, a controller manager,
and kwok, which plays the node agents' part) with ``nodes`` kwok nodes, and reads
the resident memory of kube-apiserver + etcd + kwok (``/proc/<pid>/status``):

1. with the nodes only (A);
2. after ``nodes`` more kwok nodes are created through the API (B):
   bytes per node = (B - A) / nodes;
3. after ``pods`` pods of cluster_scale's template, bound to those nodes
   (``spec.nodeName``, so no scheduler runs) and turned Running by kwok (C):
   bytes per pod = (C - B) / pods.

The full case (3,000 nodes, 120,000 pods) is not run against the peer: on two
cores its creates alone would take many minutes.  The figures are extrapolated
linearly from the measured ones, and the result says so.  Go's collector keeps
heap headroom (GOGC=100), which is part of what a user pays, so RSS is the figure.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time
from typing import Any

from pincompute.kube.errors import AlreadyExists
from pincompute.kube.protocol import KubeClient
from pincompute.kube.resource import NAMESPACES, NODES, PODS, Resource
from pincompute.kubeenv import ClusterSpec, KubeEnv, NodePool
from pincompute.kubeenv.components import APISERVER, ETCD, KWOK
from pincompute.kubeenv.kwok import node_manifests

_MEASURED = (APISERVER, ETCD, KWOK)
SERVICEACCOUNTS = Resource(group="", version="v1", plural="serviceaccounts",
                           kind="ServiceAccount", namespaced=True)


def _rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


async def _settled_rss(pids: list[int], *, seconds: float = 6.0) -> float:
    """The processes' summed RSS once it stops moving (a few samples a second apart)."""
    await asyncio.sleep(2)
    last = sum(_rss_mib(p) for p in pids)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        await asyncio.sleep(1)
        now = sum(_rss_mib(p) for p in pids)
        if abs(now - last) < 2:
            return now
        last = now
    return last


async def _bounded(client: KubeClient, objs: list[dict[str, Any]], *, width: int = 64) -> None:
    it = iter(objs)

    async def worker() -> None:
        for obj in it:
            with contextlib.suppress(AlreadyExists):
                await client.create(PODS if obj["kind"] == "Pod" else NODES, obj)

    await asyncio.gather(*(worker() for _ in range(width)))


def _for_kubernetes(obj: dict[str, Any]) -> dict[str, Any]:
    """The pod without PinCompute's container ``type`` (its sidecar is an ordinary
    container there), which a real API server rejects as an unknown field."""
    for c in obj["spec"]["containers"]:
        c.pop("type", None)
    return obj


async def _measure(nodes: int, pods: int, pod: Any, namespaces: int) -> dict[str, Any]:
    pool = NodePool("general", nodes=nodes, instance_type="kwok.standard-32", cpu="32",
                    memory="128Gi", pods=110)
    spec = ClusterSpec("scale", role="member", zone="zone-a", node_pools=(pool,),
                       controllers=("serviceaccount-controller", "node-lifecycle-controller"))
    print(f"peer: kube-apiserver + etcd + kwok with {nodes} kwok nodes ...", file=sys.stderr,
          flush=True)
    async with KubeEnv.start(clusters=(spec,), startup_timeout=900) as env:
        cluster = env["scale"]
        pids = [cluster.pids[name] for name in _MEASURED]
        client = cluster.client(qps=5000, burst=5000)
        try:
            a = await _settled_rss(pids)
            more = ClusterSpec("scale", role="member", zone="zone-a", node_pools=(
                NodePool("more", nodes=nodes, instance_type="kwok.standard-32", cpu="32",
                         memory="128Gi", pods=110),))
            extra = node_manifests(more)
            await _bounded(client, extra)
            b = await _settled_rss(pids)
            for n in range(namespaces):
                with contextlib.suppress(AlreadyExists):
                    await client.create(NAMESPACES, {"metadata": {"name": f"ns-{n}"}})
            # Pods are admitted only once their namespace's default ServiceAccount exists.
            for _ in range(300):
                accounts = (await client.list(SERVICEACCOUNTS)).items
                ready = {a["metadata"]["namespace"] for a in accounts
                         if a["metadata"]["name"] == "default"}
                if all(f"ns-{n}" in ready for n in range(namespaces)):
                    break
                await asyncio.sleep(0.5)
            names = [n["metadata"]["name"] for n in extra]
            start = time.monotonic()
            await _bounded(client, [_for_kubernetes(pod(i, names[i % len(names)]))
                                    for i in range(pods)])
            created_s = time.monotonic() - start
            # kwok turns them Running (status writes: part of what a pod costs).
            for _ in range(300):
                items = (await client.list(PODS)).items
                if sum(1 for p in items if (p.get("status") or {}).get("phase") == "Running") \
                        >= pods:
                    break
                await asyncio.sleep(2)
            c = await _settled_rss(pids)
        finally:
            await client.close()
    return {"nodes_rss_mib": a, "more_nodes_rss_mib": b, "pods_rss_mib": c,
            "created_s": created_s}


async def measure_peer(*, nodes: int, pods: int, pod: Any, namespaces: int,
                       full_nodes: int, full_pods: int) -> dict[str, Any]:
    """The peer's memory per node and per pod, measured, and extrapolated to the full case."""
    m = await _measure(nodes, pods, pod, namespaces)
    per_node = (m["more_nodes_rss_mib"] - m["nodes_rss_mib"]) * 2**20 / nodes
    per_pod = (m["pods_rss_mib"] - m["more_nodes_rss_mib"]) * 2**20 / pods
    fixed = m["nodes_rss_mib"] * 2**20 - per_node * nodes
    full = (fixed + per_node * full_nodes + per_pod * full_pods) / 2**20
    print(f"peer: {2 * nodes} kwok nodes, {pods} pods: {per_node / 1024:,.1f} KiB per node, "
          f"{per_pod / 1024:,.1f} KiB per pod (kube-apiserver + etcd + kwok RSS); "
          f"extrapolated linearly to {full_nodes} nodes / {full_pods} pods: {full:,.0f} MiB",
          file=sys.stderr)
    return {"peer_nodes": 2 * nodes, "peer_pods": pods,
            "peer_bytes_per_node": round(per_node), "peer_bytes_per_pod": round(per_pod),
            "peer_rss_mib_measured": round(m["pods_rss_mib"]),
            "peer_rss_mib_extrapolated": round(full), "peer_extrapolated": True}
