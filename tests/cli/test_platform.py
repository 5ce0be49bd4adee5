"""``project``, ``token``, ``cluster`` and ``node`` verbs, in-process against a real gateway."""

from __future__ import annotations

import pytest

from .conftest import Cli

pytestmark = pytest.mark.asyncio(loop_scope="module")


async def test_projects_and_members(cli: Cli) -> None:
    assert "project/team-a created" in (await cli("project", "create", "team-a",
                                                  "--admin", "ann")).stdout
    listed = (await cli("project", "list")).stdout
    assert "team-a" in listed and "demo" in listed
    await cli("project", "add-member", "team-a", "bob", "--role", "editor")
    members = (await cli("project", "members", "team-a")).stdout
    assert "ann" in members and "admin" in members and "bob" in members
    await cli("project", "remove-member", "team-a", "bob")
    assert "bob" not in (await cli("project", "members", "team-a")).stdout
    assert "unknown role" in (await cli("project", "add-member", "team-a", "x", "--role",
                                        "owner", code=2)).stderr
    usage = (await cli("project", "usage", "team-a")).stdout
    assert "TIER" in usage or "nothing charged" in usage


async def test_tokens_work_until_revoked(cli: Cli) -> None:
    made = (await cli("token", "create", "--user", "val", "--project", "demo", "--role",
                      "viewer")).stdout.strip().splitlines()
    token = made[-1]
    assert token.startswith("pct_") and "val" in made[0]
    token_id = made[0].split()[1]
    assert "No pinapps found" in (await cli("get", "apps", token=token)).stdout
    denied = await cli("scale", "someapp", "--replicas", "2", token=token, code=4)
    assert denied.stderr.startswith("error: ") and "editor" in denied.stderr
    assert token_id in (await cli("token", "list")).stdout
    await cli("token", "revoke", token_id)
    gone = await cli("get", "apps", token=token, code=4)
    assert "token" in gone.stderr


async def test_clusters_and_nodes(cli: Cli) -> None:
    before = (await cli("cluster", "list")).stdout
    assert "zone-a-1" in before and "zone-b-1" in before
    added = await cli("cluster", "add", "zone-c", "--nodes", "1")
    assert "cluster/zone-c-1 added to zone zone-c" in added.stdout
    nodes = (await cli("node", "list", "--cluster", "zone-c-1")).stdout
    assert "zone-c-1-ondemand-0" in nodes or "zone-c-1-general-0" in nodes
    node = next(w for w in nodes.split() if w.startswith("zone-c-1-"))
    assert "cordoned" in (await cli("node", "cordon", node)).stdout  # found in its cluster
    assert "SchedulingDisabled" in (await cli("node", "list")).stdout
    await cli("node", "uncordon", node, "--cluster", "zone-c-1")
    drained = await cli("node", "drain", node)
    assert "drained" in drained.stdout
    assert "no member cluster has" in (await cli("node", "cordon", "no-such", code=3)).stderr
    assert "removed" in (await cli("cluster", "remove", "zone-c-1")).stdout
    assert "zone-c-1" not in (await cli("cluster", "list")).stdout
