"""``top pods|apps|nodes``: sim pods' declared usage in kubectl-like tables, in-process
against a real gateway whose nodes report every 0.3 s."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
import yaml

from pincompute.cli.top import mebibytes, millicores, percent
from tests.waiting import eventually

from .conftest import Cli

pytestmark = pytest.mark.asyncio(loop_scope="module")

MI = 1 << 20


def loaded(name: str, *, replicas: int, cpu: str, memory: str) -> dict[str, Any]:
    return {"apiVersion": "pincompute.io/v1alpha1", "kind": "PinApp",
            "metadata": {"name": name},
            "spec": {"replicas": replicas, "template": {
                "metadata": {"annotations": {"sim.pincompute.io/cpu-profile": cpu,
                                             "sim.pincompute.io/memory-profile": memory}},
                "spec": {"containers": [{"name": "main", "image": "web:1", "resources": {
                    "requests": {"cpu": "200m", "memory": "64Mi"}}}]}}}}


def table(stdout: str) -> list[list[str]]:
    """The rows of a table (no cell has a space)."""
    return [line.split() for line in stdout.splitlines() if line.strip()]


async def test_top_shows_pods_apps_and_nodes(cli: Cli) -> None:
    await cli("apply", "-f", "-", stdin=yaml.safe_dump(
        loaded("hot", replicas=2, cpu="250m", memory="48Mi")))

    async def sampled() -> list[dict[str, Any]] | None:
        out = json.loads((await cli("top", "pods", "--app", "hot", "-o", "json")).stdout)
        rows = out["items"]
        return rows if len(rows) == 2 and all(r["cpuMillicores"] == 250 and r["ready"]
                                                 for r in rows) \
            else None

    pods = await eventually(sampled, timeout=15, what="both pods' usage in top pods")
    assert all(r["memoryBytes"] == 48 * MI for r in pods)

    # the table: millicores, mebibytes, share of the requests (250m of 200m, 48Mi of 64Mi)
    lines = table((await cli("top", "pods", "--app", "hot")).stdout)
    assert lines[0] == ["NAME", "APP", "CPU(cores)", "CPU%REQ", "MEMORY(bytes)", "MEM%REQ",
                        "NODE"]
    assert sorted(line[0] for line in lines[1:]) == sorted(p["name"] for p in pods)
    for line in lines[1:]:
        assert line[1:6] == ["hot", "250m", "125%", "48Mi", "75%"]
    containers = (await cli("top", "pods", "--app", "hot", "--containers")).stdout
    assert containers.count("main") == 2 and "250m" in containers

    apps = {line[0]: line for line in table((await cli("top", "apps")).stdout)}
    assert apps["NAME"] == ["NAME", "KIND", "PODS", "CPU(cores)", "CPU%REQ", "MEMORY(bytes)",
                            "MEM%REQ"]
    assert apps["hot"] == ["hot", "pinapp", "2/2", "500m", "125%", "96Mi", "75%"]
    as_yaml = yaml.safe_load((await cli("top", "apps", "-o", "yaml")).stdout)
    assert as_yaml["kind"] == "AppUsageList"
    assert {a["name"]: a["cpuMillicores"] for a in as_yaml["items"]}["hot"] == 500

    # nodes of every cluster; each busy node shows its pods' use and a share of allocatable
    nodes = table((await cli("top", "nodes")).stdout)
    assert nodes[0] == ["NAME", "CLUSTER", "PODS", "CPU(cores)", "CPU%", "MEMORY(bytes)",
                        "MEMORY%"]
    busy = {(p["cluster"], p["node"]) for p in pods}
    rows = {(line[1], line[0]): line for line in nodes[1:]}
    assert busy <= set(rows)
    for key in busy:
        cpu, cpu_share = rows[key][3], rows[key][4]
        assert int(cpu.rstrip("m")) >= 250 and re.fullmatch(r"\d+%", cpu_share)
    cluster = next(iter(busy))[0]
    only = table((await cli("top", "nodes", "--cluster", cluster)).stdout)
    assert {line[1] for line in only[1:]} == {cluster}
    by_cpu = table((await cli("top", "pods", "--sort-by", "cpu")).stdout)
    assert by_cpu[1][2] == "250m"

    await cli("delete", "app", "hot")


async def test_top_errors_are_one_line(cli: Cli) -> None:
    missing = await cli("top", "nodes", "--cluster", "nowhere", code=3)
    assert missing.stderr.startswith("error: ") and "nowhere" in missing.stderr
    assert "unknown output format" in (await cli("top", "pods", "-o", "wide", code=2)).stderr
    assert "--sort-by" in (await cli("top", "apps", "--sort-by", "age", code=2)).stderr
    assert "No pods of app ghost" in (await cli("top", "pods", "--app", "ghost")).stdout


async def test_units_as_kubectl_top_shows_them() -> None:
    assert (millicores(1500), millicores(0), millicores(None)) == ("1500m", "0m", "-")
    assert (mebibytes(48 * MI), mebibytes(MI - 1), mebibytes(None)) == ("48Mi", "0Mi", "-")
    assert (percent(250, 200), percent(1, 3), percent(5, 0), percent(None, 100)) == (
        "125%", "33%", "-", "-")
