"""The gateway under load vs a real kube-apiserver (DESIGN §11, issue 11 "Under load").

Both servers hold the same workloads — N PinApps of the same size in one namespace
(10,000; ``--quick`` 1,000) — and take the same requests from the same load generator
(``api_support.py``: 100 concurrent keep-alive clients in a process of their own, each
also holding one streaming watch of its own objects, ``labelSelector=client=<i>``):

* **reads** — ``GET`` of a random PinApp, for a fixed time: requests per second and P99;
* **writes** — ``POST`` of new PinApps (each seen by its client's watch), for a fixed
  time: requests per second (and per minute).

The gateway is PinCompute's own front door as ``pincompute up`` runs it — over the
embedded host store (SQLite WAL, ``synchronous=FULL``), served by uvicorn, every request
authenticated, authorized, rate-limit counted (limits set high) and audited.  The peer is
the real kube-apiserver of the test environment (``pincompute.kubeenv``: etcd + apiserver
from the binaries ``tools/build-kube.sh`` builds) with PinCompute's CRDs installed, reached
over TLS with a bearer token; a plain ``GET`` there is a quorum read from etcd, as
``kubectl get`` does.  The two run one after the other, never at once, on the same machine.

Run: ``python benchmarks/api_load.py [--quick]``; the last line is JSON with
``read_ratio``, ``write_ratio``, ``read_p99_ms`` and ``peer_read_p99_ms`` (targets: reads
>= 1x at equal or better P99; writes >= 3x).
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson

from api_support import PROJECT, fill, machine, run_load, serve
from pincompute import install as installer
from pincompute.api.app import create_app
from pincompute.api.context import ApiContext, ApiSettings
from pincompute.gctuning import tune_gc
from pincompute.kube.backends.embedded import EmbeddedStore
from pincompute.kube.resource import NAMESPACES
from pincompute.kubeenv import ClusterSpec, KubeEnv
from pincompute.model import registry
from pincompute.model.registry import PINAPPS
from pincompute.model.wellknown import SYSTEM_NAMESPACE
from pincompute.runtime.informer import InformerFactory

CLIENTS = 100
UNLIMITED = ApiSettings(requests_per_second=10**9, mutations_per_second=10**9,
                        unauthenticated_per_second=10**9)


class NoMembers:
    def names(self) -> list[str]:
        return []

    def get(self, name: str) -> Any:
        return None


def report(name: str, what: str, r: dict[str, Any]) -> None:
    print(f"{name:>8} {what}: {r['rps']:8.0f}/s  p50 {r['p50_ms']:6.1f} ms  "
          f"p99 {r['p99_ms']:6.1f} ms  ({r['requests']} requests, codes {r['codes']}, "
          f"{r['watch_events']} watch events)")


async def measure(spec: dict[str, Any], *, get_path: str, post_path: str, watch: str,
                  count: int, seconds: float) -> dict[str, dict[str, Any]]:
    common = {**spec, "clients": CLIENTS, "seconds": seconds, "watch": watch}
    reads = await run_load({**common, "op": "get", "path": get_path, "names": count})
    writes = await run_load({**common, "op": "post", "path": post_path, "prefix": "w"})
    return {"reads": reads, "writes": writes}


async def gateway_phase(count: int, seconds: float) -> dict[str, dict[str, Any]]:
    with tempfile.TemporaryDirectory() as tmp:
        store = await EmbeddedStore.open(path=Path(tmp) / "host")
        registry.install(store)
        client = store.client()
        for ns in (PROJECT, SYSTEM_NAMESPACE):
            await client.create(NAMESPACES, {"metadata": {"name": ns}})
        rate = await fill(client, PINAPPS, count)
        print(f"gateway: {count} PinApps in the embedded host store ({rate:,.0f} creates/s)")
        ctx = ApiContext(host=client, members=NoMembers(), informers=InformerFactory(),
                         owns_informers=True,
                         settings=dataclasses.replace(UNLIMITED,
                                                      audit_path=Path(tmp) / "audit.log"))
        await ctx.start()
        token, _ = await ctx.tokens.create(user="bench", admin=True, created_by="bench")
        await asyncio.sleep(0.2)
        rv = ctx.host_informer(PINAPPS).resource_version
        async with serve(create_app(ctx)) as base:
            base_path = f"/api/v1/projects/{PROJECT}/pinapps"
            result = await measure(
                {"base": base, "headers": {"Authorization": f"Bearer {token}"}},
                get_path=base_path + "/app-{i:05d}", post_path=base_path,
                watch=base_path + "?watch=true&labelSelector=client%3D{c}"
                f"&resourceVersion={rv}", count=count, seconds=seconds)
        await ctx.stop()
        await store.close()
    return result


async def peer_phase(count: int, seconds: float) -> dict[str, dict[str, Any]]:
    async with KubeEnv.start(clusters=(ClusterSpec("peer", role="host"),)) as env:
        cluster = env.host
        client = cluster.client(qps=10_000, burst=10_000)
        await installer.install(client, "host")
        await client.create(NAMESPACES, {"metadata": {"name": PROJECT}})
        t0 = time.perf_counter()
        rate = await fill(client, PINAPPS, count, writers=64)
        print(f"peer: {count} PinApps in kube-apiserver ({rate:,.0f} creates/s, "
              f"{time.perf_counter() - t0:.1f} s)")
        rv = (await client.list(PINAPPS, namespace=PROJECT, limit=1)).resource_version
        await client.close()
        base_path = f"/apis/pincompute.io/v1alpha1/namespaces/{PROJECT}/pinapps"
        return await measure(
            {"base": cluster.server, "ca_file": str(cluster.ca_file),
             "headers": {"Authorization": f"Bearer {cluster.token}"}},
            get_path=base_path + "/app-{i:05d}", post_path=base_path,
            watch=base_path + "?watch=true&labelSelector=client%3D{c}"
            f"&resourceVersion={rv}&allowWatchBookmarks=false", count=count, seconds=seconds)


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--objects", type=int, default=None)
    args = parser.parse_args()
    count = args.objects or (1_000 if args.quick else 10_000)
    seconds = 3.0 if args.quick else 10.0
    tune_gc()
    print(f"machine: {machine()}; {CLIENTS} clients, one watch each, {seconds:g} s per phase")
    ours = await gateway_phase(count, seconds)
    report("gateway", "reads ", ours["reads"])
    report("gateway", "writes", ours["writes"])
    peer = await peer_phase(count, seconds)
    report("peer", "reads ", peer["reads"])
    report("peer", "writes", peer["writes"])
    for phase in (ours, peer):
        for r in phase.values():
            bad = {k: v for k, v in r["codes"].items() if not k.startswith("2")}
            assert not bad, f"failed requests: {bad}"
    read_ratio = ours["reads"]["rps"] / peer["reads"]["rps"]
    write_ratio = ours["writes"]["rps"] / peer["writes"]["rps"]
    print(f"reads {read_ratio:.2f}x the peer's (target >= 1), "
          f"writes {write_ratio:.2f}x (target >= 3)")
    print(orjson.dumps({
        "objects": count, "clients": CLIENTS,
        "read_rps": round(ours["reads"]["rps"]), "peer_read_rps": round(peer["reads"]["rps"]),
        "read_ratio": round(read_ratio, 2),
        "read_p99_ms": round(ours["reads"]["p99_ms"], 1),
        "peer_read_p99_ms": round(peer["reads"]["p99_ms"], 1),
        "writes_per_min": round(ours["writes"]["rps"] * 60),
        "peer_writes_per_min": round(peer["writes"]["rps"] * 60),
        "write_ratio": round(write_ratio, 2),
        "write_p99_ms": round(ours["writes"]["p99_ms"], 1),
        "peer_write_p99_ms": round(peer["writes"]["p99_ms"], 1),
    }).decode())


if __name__ == "__main__":
    asyncio.run(main())
