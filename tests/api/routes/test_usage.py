"""``top``: pods, apps and nodes from the node usage records, through the gateway."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from pincompute.gateway import Gateway
from pincompute.region import Region
from tests.api.conftest import ApiEnv
from tests.api.support import pinapp
from tests.waiting import eventually

BASE = "/api/v1/projects/demo"


@pytest.fixture
async def env(region_dir: Path) -> AsyncIterator[ApiEnv]:
    # nodes report every 0.3 s (15 s by default)
    region = await Region.open(region_dir, zones=2, nodes_per_cluster=1, runtime="sim",
                               lease_duration=3, health_port=None,
                               node_options={"usage_interval": 0.3})
    try:
        await region.start()
        await region.ensure_project("demo")
        await region.ensure_project("other")
        async with Gateway.start(region) as gw, httpx.AsyncClient(
                base_url=gw.url, timeout=30,
                headers={"Authorization": f"Bearer {gw.admin_token}"}) as client:
            yield ApiEnv(region=region, gateway=gw, client=client)
    finally:
        await region.close()


def loaded_app(name: str, *, replicas: int, cpu: str) -> dict[str, Any]:
    obj = pinapp(name, replicas=replicas)
    obj["spec"]["template"]["metadata"] = {"annotations": {
        "sim.pincompute.io/cpu-profile": cpu, "sim.pincompute.io/memory-profile": "32Mi"}}
    return obj


async def test_top_pods_apps_and_nodes(env: ApiEnv) -> None:
    c = env.client
    assert (await c.post(f"{BASE}/pinapps", json=loaded_app("web", replicas=2,
                                                            cpu="250m"))).status_code == 201
    assert (await c.post("/api/v1/projects/other/pinapps",
                         json=loaded_app("secret", replicas=1, cpu="5m"))).status_code == 201

    async def pods() -> list[dict[str, Any]] | None:
        r = await c.get(f"{BASE}/top/pods")
        assert r.status_code == 200, r.text
        items = r.json()["items"]
        return items if len(items) == 2 and all(p["cpuMillicores"] == 250
                                                for p in items) else None

    rows = await eventually(pods, timeout=20, what="both pods' usage reported")
    assert {p["app"] for p in rows} == {"web"}
    assert all(p["memoryBytes"] == 32 << 20 and p["containers"][0]["name"] == "main"
               for p in rows)
    assert {p["cluster"] for p in rows} <= {m.name for m in env.region.members}
    apps = (await c.get(f"{BASE}/top/apps")).json()["items"]
    assert apps == [{"name": "web", "kind": "pinapp", "namespace": "demo", "pods": 2,
                     "readyPods": 2, "cpuMillicores": 500, "memoryBytes": 64 << 20,
                     "cpuRequestMillicores": 20, "memoryRequestBytes": 32 << 20}]
    only = (await c.get(f"{BASE}/top/pods", params={"app": "nope"})).json()["items"]
    assert only == []
    cluster = rows[0]["cluster"]
    nodes = (await c.get(f"/api/v1/clusters/{cluster}/top/nodes")).json()["items"]
    assert nodes and all(n["cluster"] == cluster for n in nodes)
    assert sum(n["cpuMillicores"] for n in nodes) >= 250
    assert (await c.get("/api/v1/clusters/nowhere/top/nodes")).status_code == 404

    # a viewer of "other" sees its own pods, never demo's
    token = await env.token(user="eve", project="other", role="viewer")
    async with env.as_token(token) as eve:
        assert (await eve.get(f"{BASE}/top/pods")).status_code == 403
        assert (await eve.get(f"{BASE}/top/apps")).status_code == 403
        r = await eve.get("/api/v1/projects/other/top/pods")
        assert r.status_code == 200
        assert {p["namespace"] for p in r.json()["items"]} <= {"other"}


async def test_platform_metrics_show_the_scaler(env: ApiEnv) -> None:
    c = env.client
    assert (await c.post(f"{BASE}/pinapps", json=loaded_app("web", replicas=1,
                                                            cpu="50m"))).status_code == 201
    r = await c.post(f"{BASE}/pinscalers", json={
        "metadata": {"name": "web"},
        "spec": {"scaleTargetRef": {"name": "web"}, "maxReplicas": 3}})
    assert r.status_code == 201, r.text

    async def exported() -> bool:
        text = (await c.get("/metrics")).text
        return 'pincompute_scaler_current_replicas{namespace="demo",scaler="web"} 1.0' in text

    await eventually(exported, timeout=30, what="the scaler's series on /metrics")
    text = (await c.get("/metrics")).text
    assert "pincompute_api_request_duration_seconds" in text
