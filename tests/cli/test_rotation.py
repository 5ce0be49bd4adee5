"""``pincompute rotation``: a real rotation of a member cluster's pool, held by an app's
disruption budget, followed to the end with ``status -w``; and a Rotation whose status is
written directly (a finished, failed one: no controller touches it again)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from pincompute.cli.rotation import bars_of, phase_of, progress_line
from pincompute.kube.errors import Conflict, NotFound
from pincompute.kube.resource import NAMESPACES
from pincompute.model.registry import NODEPOOLS, PINAPPS, ROTATIONS
from tests.ops.conftest import pinapp
from tests.waiting import eventually

from .conftest import Cli

ON_THE_MODULE_LOOP = pytest.mark.asyncio(loop_scope="module")


async def _status_json(cli: Cli, name: str) -> dict[str, Any]:
    out = await cli("rotation", "status", name, "-o", "json")
    return dict(json.loads(out.stdout))


@ON_THE_MODULE_LOOP
async def test_a_real_rotation_blocked_by_a_budget_then_followed_to_the_end(cli: Cli) -> None:
    env = cli.env
    member = env.region.members[0]
    client = member.client

    async def namespace() -> bool:
        try:
            await client.get(NAMESPACES, "demo")
        except NotFound:
            return False
        return True

    await eventually(namespace, what="the project in the member")
    # one replica that must always stay: the only node cannot drain while it runs
    await client.create(PINAPPS, pinapp("pinned", replicas=1, namespace="demo",
                                        budget={"minAvailable": "100%"}), namespace="demo")

    async def up() -> bool:
        obj = await client.get(PINAPPS, "pinned", namespace="demo")
        return (obj.get("status") or {}).get("availableReplicas") == 1

    await eventually(up, timeout=10, what="the pinned app")
    await client.patch(NODEPOOLS, "general", {"spec": {"maxSize": 3}})  # room to surge
    r = await env.client.post("/api/v1/nodeimages", json={
        "metadata": {"name": "general-2"}, "spec": {"version": "2"}})
    assert r.status_code == 201, r.text
    r = await env.client.post("/api/v1/rotations", json={
        "metadata": {"name": "gen-2"},
        "spec": {"cluster": member.name, "targetImage": "general-2"}})
    assert r.status_code == 201, r.text

    async def blocked() -> dict[str, Any] | None:
        s = (await _status_json(cli, "gen-2")).get("status") or {}
        return s if s.get("blockedBy") else None

    s = await eventually(blocked, timeout=10, what="the drain held by the budget")
    assert s["blockedBy"] == ["demo/pinned"] and s["phase"] == "Running"
    old_node = s["inProgress"][0]
    out = (await cli("rotation", "status", "gen-2")).stdout
    assert f"rotation/gen-2  Running  {member.name} → image general-2" in out
    assert f"Current:      {old_node}" in out
    assert "Blocked by:   demo/pinned" in out
    assert "disruption budgets of demo/pinned" in out
    assert "general" in out and "0/1 nodes" in out

    # a tenant may read but not steer; the admin pauses and resumes through the spec
    viewer = await env.token(user="dana", project="demo", role="editor")
    await cli("rotation", "pause", "gen-2", token=viewer, code=4)
    assert "paused" in (await cli("rotation", "pause", "gen-2")).stdout
    assert (await env.region.host.client.get(ROTATIONS, "gen-2"))["spec"]["paused"] is True
    await cli("rotation", "resume", "gen-2")
    assert (await env.region.host.client.get(ROTATIONS, "gen-2"))["spec"]["paused"] is False

    # the app goes: the drain proceeds, and -w follows the pool's bar to the end
    await client.delete(PINAPPS, "pinned", namespace="demo")
    out = (await cli("rotation", "status", "gen-2", "-w", "--timeout", "30")).stdout
    assert "gen-2/general" in out and "1/1" in out
    assert "rotation/gen-2 Succeeded: 1/1 nodes" in out
    listed = (await cli("rotation", "list")).stdout
    assert "gen-2" in listed and "Succeeded" in listed and "general-2" in listed


async def _write_status(cli: Cli, name: str, status: dict[str, Any]) -> None:
    host = cli.env.region.host.client
    for _ in range(20):
        obj = await host.get(ROTATIONS, name)
        obj["status"] = status
        try:
            await host.update_status(ROTATIONS, obj)
            return
        except Conflict:  # the controller wrote "not reachable" meanwhile
            continue
    raise AssertionError("the status could not be written")


@ON_THE_MODULE_LOOP
async def test_a_written_status_shows_pools_failures_and_ends_watch_with_its_verdict(
        cli: Cli) -> None:
    r = await cli.env.client.post("/api/v1/rotations", json={
        "metadata": {"name": "old"},
        "spec": {"cluster": "retired", "targetImage": "general-9"}})
    assert r.status_code == 201, r.text
    await _write_status(cli, "old", {
        "phase": "Failed", "totalNodes": 5, "replacedNodes": 3,
        "pools": [{"pool": "general", "done": 2, "total": 4},
                  {"pool": "gpu", "done": 1, "total": 1}],
        "failedNodes": ["retired-general-3"], "currentStep": 1,
        "startTime": "2026-01-01T00:00:00Z", "completionTime": "2026-01-01T00:10:00Z",
        "message": "retired-general-3 did not drain within 600s"})
    out = (await cli("rotation", "status", "old")).stdout
    assert "rotation/old  Failed  retired → image general-9" in out
    assert "3/5 nodes" in out and "Failed nodes: retired-general-3" in out
    rows = [line.split() for line in out.splitlines()]
    assert ["general", "2", "4", "██████████░░░░░░░░░░", "50%"] in rows
    assert ["gpu", "1", "1", "████████████████████", "100%"] in rows
    assert "did not drain within 600s" in out
    as_yaml = (await cli("rotation", "status", "old", "-o", "yaml")).stdout
    assert "replacedNodes: 3" in as_yaml and "kind: Rotation" in as_yaml
    every = json.loads((await cli("rotation", "status", "-o", "json")).stdout)
    assert every["kind"] == "List" and "old" in {i["metadata"]["name"] for i in every["items"]}
    # watching a finished rotation answers at once, with its verdict as the exit code
    result = await cli("rotation", "status", "old", "-w", code=1)
    assert "rotation/old Failed: retired-general-3 did not drain" in result.stderr
    await cli("rotation", "abort", "old")
    assert (await cli.env.region.host.client.get(ROTATIONS, "old"))["spec"]["abort"] is True
    await cli("rotation", "status", "nothing", code=3)
    await cli("rotation", "status", "old", "-o", "wide", code=2)


def test_bars_are_per_pool_or_per_cluster_of_a_staged_rotation() -> None:
    pools = {"status": {"phase": "Running", "totalNodes": 3, "replacedNodes": 1,
                        "pools": [{"pool": "general", "done": 1, "total": 3}],
                        "inProgress": ["n1"], "blockedBy": ["demo/web"]}}
    assert bars_of(pools) == [("general", 1, 3)]
    assert progress_line(pools) == "Running · 1/3 nodes · replacing n1 · blocked by demo/web"
    staged = {"status": {"phase": "Running", "stage": "canary", "clusters": [
        {"cluster": "zone-a-1", "stage": "canary", "phase": "Running", "replaced": 2,
         "total": 4}]}}
    assert bars_of(staged) == [("zone-a-1 (canary)", 2, 4)]
    assert progress_line(staged) == "Running · stage canary"
    assert phase_of({}) == "Pending" and bars_of({}) == []
