"""``apply``, ``get``, ``describe``, ``delete``, in-process against a real gateway."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
import yaml

from tests.waiting import eventually

from .conftest import Cli

pytestmark = pytest.mark.asyncio(loop_scope="module")


def _app(name: str, *, replicas: int = 1, cpu: str = "10m") -> dict:
    return {"apiVersion": "pincompute.io/v1alpha1", "kind": "PinApp",
            "metadata": {"name": name, "labels": {"suite": "cli"}},
            "spec": {"replicas": replicas, "template": {"spec": {"containers": [
                {"name": "main", "image": "busybox", "command": ["sleep", "1d"],
                 "resources": {"requests": {"cpu": cpu, "memory": "16Mi"}}}]}}}}


async def test_apply_get_and_delete_from_a_directory(cli: Cli, tmp_path: Path) -> None:
    (tmp_path / "apps.yaml").write_text(yaml.safe_dump_all([_app("one"), _app("two")]))
    applied = (await cli("apply", "-f", str(tmp_path), "--wait", "--timeout", "30")).stdout
    assert "pinapp/one created" in applied and "pinapp/two created" in applied
    again = (await cli("apply", "-f", str(tmp_path / "apps.yaml"))).stdout
    assert "pinapp/one unchanged" in again
    table = (await cli("get", "apps", "-l", "suite=cli")).stdout
    assert table.splitlines()[0].split()[:3] == ["NAME", "TIER", "REPLICAS"]
    assert json.loads((await cli("get", "app/one", "-o", "json")).stdout)["kind"] == "PinApp"
    listed = yaml.safe_load((await cli("get", "pinapps", "-o", "yaml")).stdout)
    assert listed["kind"] == "List" and len(listed["items"]) >= 2
    names = (await cli("get", "app", "-o", "name", "-l", "suite=cli")).stdout.split()
    assert names == ["pinapp/one", "pinapp/two"]
    stdin = yaml.safe_dump(_app("one", replicas=2))
    assert "pinapp/one configured" in (await cli("apply", "-f", "-", stdin=stdin)).stdout
    deleted = (await cli("delete", "-f", str(tmp_path / "apps.yaml"))).stdout
    assert 'pinapp "one" deleted' in deleted and 'pinapp "two" deleted' in deleted
    await cli("delete", "app", "one", "--ignore-not-found")


async def test_describe_says_why_a_workload_waits(cli: Cli) -> None:
    await cli("project", "create", "tight")
    quota = (await cli("project", "quota", "tight", "--tier", "ondemand", "--cpu", "100m",
                       "--memory", "1Gi", "--pods", "10")).stdout
    assert "ondemand" in quota and "100m" in quota
    await cli("apply", "-p", "tight", "-f", "-", stdin=yaml.safe_dump(_app("fits")))
    await cli("apply", "-p", "tight", "-f", "-", stdin=yaml.safe_dump(_app("big", cpu="1")))
    for _ in range(50):
        described = (await cli("describe", "app", "big", "-p", "tight")).stdout
        if "Queued" in described and "Why:" in described:
            break
        await asyncio.sleep(0.1)
    assert "State:" in described and "Queued" in described
    assert "Position:" in described and "cpu" in described.split("Why:", 1)[1]
    stuck = await cli("rollout", "status", "app/big", "-p", "tight", "--timeout", "2", code=1)
    assert "queued" in stuck.stderr and "not rolled out" in stuck.stderr


async def test_unknown_kinds_and_missing_names(cli: Cli) -> None:
    assert "unknown kind" in (await cli("get", "deployments", code=2)).stderr
    assert "not found" in (await cli("describe", "app", "ghost", code=3)).stderr
    assert "delete what?" in (await cli("delete", "app", code=2)).stderr


async def test_rollout_history_lists_revisions_and_undo_picks_one(cli: Cli) -> None:
    app = _app("hist")
    await cli("apply", "-f", "-", stdin=yaml.safe_dump(app))
    app["spec"]["template"]["spec"]["containers"][0]["image"] = "busybox:2"
    await cli("apply", "-f", "-", stdin=yaml.safe_dump(app))

    async def history_with(*needles: str) -> str | None:
        out = (await cli("rollout", "history", "app/hist")).stdout
        return out if all(n in out for n in needles) else None

    out = await eventually(lambda: history_with("busybox → busybox:2"), timeout=30,
                           what="two revisions listed")
    lines = [line.split() for line in out.splitlines()]
    assert lines[0][:5] == ["REVISION", "HASH", "IMAGES", "CHANGE", "CREATED"]
    assert lines[1][0] == "1" and lines[1][2] == "main=busybox" and "current" not in lines[1]
    assert lines[2][0] == "2" and lines[2][-1] == "current"
    await cli("rollout", "undo", "app/hist", "--to-revision", "1")
    out = await eventually(lambda: history_with("busybox:2 → busybox"), timeout=30,
                           what="revision 1 back as revision 3")
    last = out.splitlines()[-1].split()
    assert last[0] == "3" and last[2] == "main=busybox" and last[-1] == "current"
    bad = await cli("rollout", "undo", "app/hist", "--to-revision", "99", code=6)
    assert "revision" in bad.stderr
    states = (await cli("rollout", "history", "app/hist", "--states")).stdout
    assert states.split()[:4] == ["TIME", "STATE", "REASON", "MESSAGE"]
