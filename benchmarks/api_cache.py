"""API reads from the informer cache vs listing the store per request (DESIGN §11).

A host store holds 10,000 PinApps in one project; the gateway serves it over HTTP (uvicorn,
loopback), and a load generator in its own process lists the project's PinApps with a few
concurrent keep-alive clients:

* **cached** — the gateway's own route (``GET /api/v1/projects/bench/pinapps``): the
  informer cache, objects simplified and encoded once per version, the whole body kept
  while the collection is unchanged;
* **direct** — the baseline, measured in the same run through the same app, auth and
  server: a route that lists the store on each request and simplifies and encodes what it
  got (what a gateway without a read cache does).

Both answer the same bytes.  Run: ``python benchmarks/api_cache.py [--quick]``; the last
line is JSON with ``cached_rps``, ``direct_rps`` and ``ratio`` (target ≥ 10).
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson
from starlette.responses import Response

from api_support import PROJECT, fill, machine, run_load, serve
from pincompute.api.app import create_app
from pincompute.api.auth import Ctx, ProjectViewer
from pincompute.api.context import ApiContext, ApiSettings
from pincompute.api.crud import present
from pincompute.gctuning import tune_gc
from pincompute.kube.backends.embedded import EmbeddedStore
from pincompute.kube.resource import NAMESPACES
from pincompute.model import registry
from pincompute.model.registry import PINAPPS
from pincompute.model.wellknown import SYSTEM_NAMESPACE
from pincompute.runtime.informer import InformerFactory

UNLIMITED = ApiSettings(requests_per_second=10**9, mutations_per_second=10**9,
                        unauthenticated_per_second=10**9)


class NoMembers:
    def names(self) -> list[str]:
        return []

    def get(self, name: str) -> Any:
        return None


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--objects", type=int, default=None)
    args = parser.parse_args()
    count = args.objects or (2_000 if args.quick else 10_000)
    seconds = 2.0 if args.quick else 6.0
    tune_gc()
    print(f"machine: {machine()}")
    with tempfile.TemporaryDirectory() as tmp:
        store = await EmbeddedStore.open(path=Path(tmp) / "host")
        registry.install(store)
        client = store.client()
        for ns in (PROJECT, SYSTEM_NAMESPACE):
            await client.create(NAMESPACES, {"metadata": {"name": ns}})
        rate = await fill(client, PINAPPS, count)
        print(f"{count} PinApps in the store ({rate:,.0f} creates/s)")
        ctx = ApiContext(host=client, members=NoMembers(), informers=InformerFactory(),
                         owns_informers=True, settings=UNLIMITED)
        await ctx.start()
        token, _ = await ctx.tokens.create(user="bench", admin=True, created_by="bench")
        await asyncio.sleep(0.2)  # the token's Secret reaches the cache
        app = create_app(ctx)

        @app.get("/bench/direct/projects/{project}/pinapps")
        async def direct(project: str, ctx: Ctx, _: ProjectViewer) -> Response:
            page = await ctx.host.list(PINAPPS, namespace=project)
            body = {"apiVersion": PINAPPS.api_version, "kind": "PinAppList",
                    "metadata": {"resourceVersion": page.resource_version},
                    "items": [present(PINAPPS, o) for o in page.items]}
            return Response(orjson.dumps(body), media_type="application/json")

        figures: dict[str, Any] = {}
        async with serve(app) as base:
            spec = {"base": base, "headers": {"Authorization": f"Bearer {token}"},
                    "clients": 4, "seconds": seconds, "op": "list"}
            for name, path in (("cached", f"/api/v1/projects/{PROJECT}/pinapps"),
                               ("direct", f"/bench/direct/projects/{PROJECT}/pinapps")):
                t0 = time.perf_counter()
                result = await run_load({**spec, "path": path})
                assert result["codes"] == {"200": result["requests"]}, result["codes"]
                figures[name] = result
                print(f"{name:>7}: {result['rps']:8.1f} lists/s of {count} objects, "
                      f"p50 {result['p50_ms']:.1f} ms, p99 {result['p99_ms']:.1f} ms "
                      f"({time.perf_counter() - t0:.1f} s)")
        await ctx.stop()
        await store.close()
    ratio = figures["cached"]["rps"] / figures["direct"]["rps"]
    print(f"ratio: {ratio:.1f}x (target >= 10)")
    print(orjson.dumps({
        "objects": count, "cached_rps": round(figures["cached"]["rps"], 1),
        "direct_rps": round(figures["direct"]["rps"], 1), "ratio": round(ratio, 1),
        "cached_p99_ms": round(figures["cached"]["p99_ms"], 1),
        "direct_p99_ms": round(figures["direct"]["p99_ms"], 1)}).decode())


if __name__ == "__main__":
    asyncio.run(main())
