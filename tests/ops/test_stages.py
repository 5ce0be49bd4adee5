"""The canary and staged releases in an embedded region: the canary passes as a user on
every cluster (metrics, Events, a verdict per cluster); a staged Rotation is held while
the canary is red, then rolls stage by stage after the soak time."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from pincompute.kube.resource import EVENTS, NODES
from pincompute.model.registry import MEMBERCLUSTERS, NODEIMAGES, ROTATIONS
from pincompute.model.wellknown import (
    CANARY_ANNOTATION,
    NODE_IMAGE_LABEL,
    RELEASE_STAGE_LABEL,
)
from pincompute.ops.stages import stage_state
from pincompute.region import Region
from tests.waiting import eventually

from .conftest import FAST_NODES


def test_a_stage_is_done_once_its_clusters_stayed_green_for_the_soak() -> None:
    assert stage_state(children=["Succeeded", "Running"], greens=[0, 0], now=9, soak=5) == \
        ("running", 5)
    assert stage_state(children=["Succeeded", None], greens=[0, 0], now=9, soak=5)[0] == \
        "running"
    assert stage_state(children=["Succeeded"] * 2, greens=[0, 6], now=9, soak=5) == \
        ("soaking", 2)
    assert stage_state(children=["Succeeded"], greens=[None], now=9, soak=5) == ("soaking", 5)
    assert stage_state(children=["Succeeded"] * 2, greens=[0, 4], now=9, soak=5) == \
        ("done", 0.0)


@pytest.mark.slow
async def test_a_red_canary_holds_a_staged_rotation_which_then_rolls_stage_by_stage(
        region_dir: Path) -> None:
    region = await Region.open(
        region_dir, zones=2, nodes_per_cluster=2, runtime="sim", lease_duration=3,
        node_options=FAST_NODES, controller_options={
            "canary": {"interval": 0.3, "timeout": 2.5, "poll": 0.1},
            "rotations": {"poll": 0.1}, "rotation-stages": {"poll": 0.1}})
    await region.start()
    try:
        host = region.host.client
        for name, stage in (("zone-a-1", "test"), ("zone-b-1", "general")):
            await host.patch(MEMBERCLUSTERS, name,
                             {"metadata": {"labels": {RELEASE_STAGE_LABEL: stage}}})

        async def verdict(cluster: str, ok: bool) -> dict[str, Any] | None:
            mc = await host.get(MEMBERCLUSTERS, cluster)
            raw = (mc["metadata"].get("annotations") or {}).get(CANARY_ANNOTATION)
            v = json.loads(raw) if raw else {}
            return v if v.get("ok") is ok else None

        for cluster in ("zone-a-1", "zone-b-1"):
            await eventually(lambda c=cluster: verdict(c, True), timeout=30,  # type: ignore[misc]
                             what=f"the canary green on {cluster}")
        registry = region.manager.metrics.registry
        assert (registry.get_sample_value("pincompute_canary_runs_total", {
            "cluster": "zone-a-1", "result": "success"}) or 0) >= 1
        assert (registry.get_sample_value("pincompute_canary_step_seconds_count", {
            "cluster": "zone-a-1", "step": "job-complete"}) or 0) >= 1

        async def event(reason: str) -> dict[str, Any] | None:
            return next((e for e in (await host.list(EVENTS)).items
                         if e["reason"] == reason), None)

        passed = await eventually(lambda: event("CanaryPassed"), what="a CanaryPassed event")
        assert "app-ready" in passed["message"] and "cleanup" in passed["message"]
        # the canary cannot place its app on zone-a-1 any more: red
        await host.patch(MEMBERCLUSTERS, "zone-a-1", {"spec": {"unschedulable": True}})
        red = await eventually(lambda: verdict("zone-a-1", False), timeout=20,
                               what="the canary red on zone-a-1")
        assert "app-ready" in red["message"]
        failed = await eventually(lambda: event("CanaryFailed"), what="a CanaryFailed event")
        assert "canary failed at app-ready" in failed["message"]
        assert registry.get_sample_value("pincompute_canary_healthy",
                                         {"cluster": "zone-a-1"}) == 0

        await host.create(NODEIMAGES, {"metadata": {"name": "gen-2"},
                                       "spec": {"version": "2"}})
        await host.create(ROTATIONS, {"metadata": {"name": "fleet"}, "spec": {
            "stages": ["test", "general"], "targetImage": "gen-2", "soakSeconds": 1}})

        async def status(name: str = "fleet") -> dict[str, Any]:
            try:
                return (await host.get(ROTATIONS, name)).get("status") or {}
            except Exception:
                return {}

        async def held() -> dict[str, Any] | None:
            s = await status()
            return s if s.get("phase") == "Paused" and "red" in s.get("message", "") else None

        held_status = await eventually(held, timeout=10, what="the rotation held")
        assert "canary is red on zone-a-1" in held_status["message"]
        child = await host.get(ROTATIONS, "fleet-zone-a-1")
        assert child["spec"]["paused"] is True and child["spec"]["cluster"] == "zone-a-1"
        a_nodes = (await region.member("zone-a-1").client.list(NODES)).items
        assert all(n["metadata"]["labels"].get(NODE_IMAGE_LABEL) != "gen-2" for n in a_nodes)

        await host.patch(MEMBERCLUSTERS, "zone-a-1", {"spec": {"unschedulable": None}})
        await eventually(lambda: verdict("zone-a-1", True), timeout=20,
                         what="the canary green again")

        async def soaking() -> dict[str, Any] | None:
            s = await status()
            return s if "canary must stay green" in s.get("message", "") else None

        await eventually(soaking, timeout=30, what="stage test soaking")
        b_child = await host.list(ROTATIONS)
        assert "fleet-zone-b-1" not in {r["metadata"]["name"] for r in b_child.items}

        async def succeeded() -> dict[str, Any] | None:
            s = await status()
            return s if s.get("phase") == "Succeeded" else None

        done = await eventually(succeeded, timeout=40, what="the staged rotation done")
        assert [(c["cluster"], c["stage"], c["phase"]) for c in done["clusters"]] == [
            ("zone-a-1", "test", "Succeeded"), ("zone-b-1", "general", "Succeeded")]
        assert done["replacedNodes"] == done["totalNodes"] == 4
        for member in region.members:
            nodes = (await member.client.list(NODES)).items
            assert {n["metadata"]["labels"][NODE_IMAGE_LABEL] for n in nodes} == {"gen-2"}
    finally:
        await region.close()
