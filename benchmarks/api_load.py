"""The gateway under load vs a real kube-apiserver (DESIGN §11, issue 11 "Under load").

Both servers hold the same workloads — N PinApps of the same size in one namespace
(10,000; ``--quick`` 500) — and take the same requests from the same load generator
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
``kubectl get`` does.  Both stay up; the load goes to one at a time, the two taking turns
for a few rounds (each figure the best of its rounds), so a machine shared with other work
weighs on both alike.

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
from collections.abc import Awaitable, Callable
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


class Target:
    """One server under test: how the load generator reaches it."""

    def __init__(self, name: str, spec: dict[str, Any], *, base_path: str,
                 current_rv: Callable[[], Awaitable[str]], count: int,
                 extra_watch: str = "") -> None:
        self.name, self.spec, self.count = name, spec, count
        self.get_path = base_path + "/app-{i:05d}"
        self.post_path = base_path
        self.current_rv = current_rv
        self.watch = base_path + "?watch=true&labelSelector=client%3D{c}" + extra_watch

    async def run(self, op: str, seconds: float, round_: int) -> dict[str, Any]:
        # Each run's watches start from the collection's current version, as a client that
        # has just listed does.
        watch = self.watch + f"&resourceVersion={await self.current_rv()}"
        common = {**self.spec, "clients": CLIENTS, "seconds": seconds, "watch": watch}
        if op == "get":
            return await run_load({**common, "op": "get", "path": self.get_path,
                                   "names": self.count})
        return await run_load({**common, "op": "post", "path": self.post_path,
                               "prefix": f"w{round_}"})


async def open_gateway(tmp: Path, count: int) -> tuple[Any, ApiContext, str]:
    store = await EmbeddedStore.open(path=tmp / "host")
    registry.install(store)
    client = store.client()
    for ns in (PROJECT, SYSTEM_NAMESPACE):
        await client.create(NAMESPACES, {"metadata": {"name": ns}})
    rate = await fill(client, PINAPPS, count)
    print(f"gateway: {count} PinApps in the embedded host store ({rate:,.0f} creates/s)")
    ctx = ApiContext(host=client, members=NoMembers(), informers=InformerFactory(),
                     owns_informers=True,
                     settings=dataclasses.replace(UNLIMITED, audit_path=tmp / "audit.log"))
    await ctx.start()
    token, _ = await ctx.tokens.create(user="bench", admin=True, created_by="bench")
    await asyncio.sleep(0.2)
    return store, ctx, token


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--objects", type=int, default=None)
    parser.add_argument("--rounds", type=int, default=None)
    args = parser.parse_args()
    count = args.objects or (500 if args.quick else 10_000)
    seconds = 1.5 if args.quick else 8.0
    rounds = args.rounds or (1 if args.quick else 3)
    tune_gc()
    print(f"machine: {machine()}; {CLIENTS} clients, one watch each, {seconds:g} s a run, "
          f"{rounds} round(s), the two servers taking turns")
    best: dict[tuple[str, str], dict[str, Any]] = {}
    async with KubeEnv.start(clusters=(ClusterSpec("peer", role="host"),)) as env:
        cluster = env.host
        client = cluster.client(qps=10_000, burst=10_000)
        await installer.install(client, "host")
        await client.create(NAMESPACES, {"metadata": {"name": PROJECT}})
        t0 = time.perf_counter()
        rate = await fill(client, PINAPPS, count, writers=64)
        print(f"peer: {count} PinApps in kube-apiserver ({rate:,.0f} creates/s, "
              f"{time.perf_counter() - t0:.1f} s)")

        async def peer_rv() -> str:
            return (await client.list(PINAPPS, namespace=PROJECT, limit=1)).resource_version

        kube_path = f"/apis/pincompute.io/v1alpha1/namespaces/{PROJECT}/pinapps"
        peer = Target("peer", {"base": cluster.server, "ca_file": str(cluster.ca_file),
                               "headers": {"Authorization": f"Bearer {cluster.token}"}},
                      base_path=kube_path, current_rv=peer_rv, count=count,
                      extra_watch="&allowWatchBookmarks=false")
        with tempfile.TemporaryDirectory() as tmp:
            store, ctx, token = await open_gateway(Path(tmp), count)

            async def gateway_rv() -> str:
                return ctx.host_informer(PINAPPS).resource_version

            async with serve(create_app(ctx)) as base:
                ours = Target("gateway", {"base": base,
                                          "headers": {"Authorization": f"Bearer {token}"}},
                              base_path=f"/api/v1/projects/{PROJECT}/pinapps",
                              current_rv=gateway_rv, count=count)
                for round_ in range(rounds):
                    for op in ("get", "post"):
                        for target in (ours, peer):
                            r = await target.run(op, seconds, round_)
                            report(target.name, "reads " if op == "get" else "writes", r)
                            bad = {k: v for k, v in r["codes"].items()
                                   if not k.startswith("2")}
                            assert not bad, f"failed requests: {bad}"
                            key = (target.name, op)
                            if key not in best or r["rps"] > best[key]["rps"]:
                                best[key] = r
            await ctx.stop()
            await store.close()
        await client.close()
    g_read, p_read = best[("gateway", "get")], best[("peer", "get")]
    g_write, p_write = best[("gateway", "post")], best[("peer", "post")]
    read_ratio = g_read["rps"] / p_read["rps"]
    write_ratio = g_write["rps"] / p_write["rps"]
    print(f"best of {rounds}: reads {read_ratio:.2f}x the peer's (target >= 1), "
          f"writes {write_ratio:.2f}x (target >= 3)")
    print(orjson.dumps({
        "objects": count, "clients": CLIENTS, "rounds": rounds,
        "read_rps": round(g_read["rps"]), "peer_read_rps": round(p_read["rps"]),
        "read_ratio": round(read_ratio, 2),
        "read_p99_ms": round(g_read["p99_ms"], 1),
        "peer_read_p99_ms": round(p_read["p99_ms"], 1),
        "writes_per_min": round(g_write["rps"] * 60),
        "peer_writes_per_min": round(p_write["rps"] * 60),
        "write_ratio": round(write_ratio, 2),
        "write_p99_ms": round(g_write["p99_ms"], 1),
        "peer_write_p99_ms": round(p_write["p99_ms"], 1),
    }).decode())


if __name__ == "__main__":
    asyncio.run(main())
