"""``top_pods``, ``top_apps``, ``top_nodes``: the sim pods' declared usage, read back
through the gateway by both clients."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from pincompute.sdk import AsyncClient, Client, Forbidden, MissingScope, NotFound
from tests.api.conftest import ApiEnv
from tests.waiting import eventually

from .support import pinapp

pytestmark = pytest.mark.asyncio(loop_scope="package")

MI = 1 << 20


def loaded(name: str, *, replicas: int, cpu: str, memory: str) -> dict[str, Any]:
    """A PinApp whose sim pods use ``cpu`` and ``memory`` (requests: 100m, 64Mi)."""
    obj = pinapp(name, replicas=replicas)
    template = obj["spec"]["template"]
    template["metadata"] = {"annotations": {"sim.pincompute.io/cpu-profile": cpu,
                                            "sim.pincompute.io/memory-profile": memory}}
    template["spec"]["containers"][0]["resources"]["requests"] = {"cpu": "100m",
                                                                  "memory": "64Mi"}
    return obj


async def test_top_of_pods_apps_and_nodes(pc: AsyncClient, gateway: ApiEnv) -> None:
    await pc.create(loaded("busy", replicas=2, cpu="150m", memory="48Mi"))
    try:
        async def sampled() -> list[dict[str, Any]] | None:
            rows = await pc.top_pods(app="busy")
            return rows if len(rows) == 2 and all(r["cpuMillicores"] == 150 and r["ready"]
                                                  for r in rows) else None

        pods = await eventually(sampled, timeout=15, what="both pods' usage reported")
        clusters = {c["metadata"]["name"] async for c in pc.list_all("cluster")}
        for row in pods:
            assert row["app"] == "busy" and row["namespace"] == "demo" and row["ready"]
            assert row["memoryBytes"] == 48 * MI
            assert (row["cpuRequestMillicores"], row["memoryRequestBytes"]) == (100, 64 * MI)
            assert row["containers"] == [{"name": "main", "cpuMillicores": 150,
                                          "memoryBytes": 48 * MI}]
            assert row["cluster"] in clusters and row["node"] and not row["stale"]

        apps = {a["name"]: a for a in await pc.top_apps()}
        assert apps["busy"] == {"name": "busy", "kind": "pinapp", "namespace": "demo",
                                "pods": 2, "readyPods": 2, "cpuMillicores": 300,
                                "memoryBytes": 96 * MI, "cpuRequestMillicores": 200,
                                "memoryRequestBytes": 128 * MI}

        # every member cluster's nodes; each carries at least its busy pods' use
        nodes = await pc.top_nodes()
        assert {n["cluster"] for n in nodes} == clusters
        by_node = {(n["cluster"], n["name"]): n for n in nodes}
        for row in pods:
            node = by_node[(row["cluster"], row["node"])]
            here = [p for p in pods if (p["cluster"], p["node"]) == (row["cluster"],
                                                                     row["node"])]
            assert node["cpuMillicores"] >= 150 * len(here)
            assert node["memoryBytes"] >= 48 * MI * len(here)
        one = pods[0]["cluster"]
        assert await pc.top_nodes(one) == [n for n in nodes if n["cluster"] == one]

        # the sync client answers the same, with the same signatures
        def sync() -> tuple[list[dict[str, Any]], ...]:
            with Client(gateway.url, token=gateway.admin_token) as c:
                return (c.top_pods("demo", app="busy"), c.top_apps("demo"),
                        c.top_nodes(one), c.top_nodes())

        s_pods, s_apps, s_nodes, s_all = await asyncio.to_thread(sync)
        assert [(p["name"], p["cpuMillicores"]) for p in s_pods] == [
            (p["name"], 150) for p in pods]
        assert {a["name"]: a for a in s_apps}["busy"]["cpuMillicores"] == 300
        assert {n["name"] for n in s_nodes} == {n["name"] for n in nodes if n["cluster"] == one}
        assert {(n["cluster"], n["name"]) for n in s_all} == set(by_node)
        assert await pc.top_pods(app="nothing-by-this-name") == []
    finally:
        await pc.delete("app", "busy")


async def test_top_refuses_what_it_should(pc: AsyncClient, gateway: ApiEnv) -> None:
    with pytest.raises(NotFound, match="nowhere"):
        await pc.top_nodes("nowhere")
    async with AsyncClient(gateway.url, token=gateway.admin_token) as no_project:
        with pytest.raises(MissingScope):
            await no_project.top_pods()
    stranger = await gateway.token(user="stranger")
    async with AsyncClient(gateway.url, token=stranger, project="demo") as c:
        with pytest.raises(Forbidden):
            await c.top_pods()
        with pytest.raises(Forbidden):
            await c.top_apps()
    viewer = await gateway.token(user="vic", project="demo", role="viewer")
    async with AsyncClient(gateway.url, token=viewer, project="demo") as c:
        assert isinstance(await c.top_apps(), list)
