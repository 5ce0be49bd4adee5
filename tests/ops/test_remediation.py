"""Remediation on an embedded member cluster (the whole member table, sim nodes): one bad
node is cordoned, drained within every budget and replaced; a storm trips the breaker
and nothing is drained; recovery re-arms it after the cooldown; a flapping node
escalates and then gives up."""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from pincompute.kube.objects import get_condition
from pincompute.kube.resource import CONFIGMAPS, NODES, PODS
from pincompute.model.registry import NODEPOOLS
from pincompute.model.wellknown import (
    PROBE_FAILURE_ANNOTATION,
    REMEDIATION_ANNOTATION,
    REPAIR_ANNOTATION,
    SYSTEM_NAMESPACE,
)
from pincompute.ops.safeguards import STATE_CONFIGMAP
from tests.waiting import eventually

from .conftest import Member, MemberFactory, settle_app, settle_pool

pytestmark = pytest.mark.slow


def options(**overrides: Any) -> dict[str, dict[str, Any]]:
    safeguards = overrides.pop("safeguards", {})
    return {"remediation": {"grace": 0.3, "cordon_wait": 0.3, "drain_wait": 0.3,
                            "startup_grace": 5.0, "retry": 0.2, "tick": 0.1, **overrides,
                            "safeguards": {"cooldown": 1.0, **safeguards}}}


async def annotate(member: Member, node: str, key: str, value: str | None) -> None:
    await member.client.patch(NODES, node, {"metadata": {"annotations": {key: value}}})


async def busiest_node(member: Member) -> str:
    pods = (await member.client.list(PODS, namespace="default")).items
    counts: dict[str, int] = {}
    for p in pods:
        counts[p["spec"]["nodeName"]] = counts.get(p["spec"]["nodeName"], 0) + 1
    return max(counts, key=lambda n: counts[n])


class BudgetWatch:
    """Checks, continuously, the fewest available pods each app ever had."""

    def __init__(self, member: Member, apps: list[str]) -> None:
        self.member = member
        self.lowest = {app: 10**9 for app in apps}
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        while True:
            for app in self.lowest:
                self.lowest[app] = min(self.lowest[app], await self.member.available(app))
            await asyncio.sleep(0.02)

    async def stop(self) -> dict[str, int]:
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        return self.lowest


async def test_one_bad_node_is_cordoned_drained_and_replaced_within_budgets(
        member_cluster: MemberFactory) -> None:
    member: Member = await member_cluster(options=options())
    await settle_pool(member, size=4)
    await settle_app(member, "web", 6, budget={"maxUnavailable": 1})
    await settle_app(member, "api", 4, budget={"minAvailable": "75%"})
    bad = await busiest_node(member)
    before = {n["metadata"]["name"] for n in await member.pool_nodes()}
    watch = BudgetWatch(member, ["web", "api"])
    await annotate(member, bad, PROBE_FAILURE_ANNOTATION, "disk probe: read-only")
    cordoned = await member.wait_event("RemediationCordoned", about=bad)
    assert "probe failure: disk probe: read-only" in cordoned["message"]
    assert "pool/general 1/4 unhealthy" in cordoned["message"]
    await member.wait_event("RemediationDrained", about=bad, timeout=30)
    await member.wait_event("RemediationReplacing", about=bad)

    async def replaced() -> bool:
        names = {n["metadata"]["name"] for n in await member.ready_nodes()}
        return bad not in names and len(names) == 4 and \
            bad not in {n["metadata"]["name"] for n in await member.pool_nodes()}

    await eventually(replaced, timeout=30, what="the bad node replaced by a new one")
    assert {n["metadata"]["name"] for n in await member.pool_nodes()} != before
    for app, n in (("web", 6), ("api", 4)):
        async def back(app: str = app, n: int = n) -> bool:
            return await member.available(app) == n
        await eventually(back, timeout=20, what=f"{app} whole again")
    lowest = await watch.stop()
    assert lowest["web"] >= 5 and lowest["api"] >= 3, lowest  # never below a budget
    pool = await member.client.get(NODEPOOLS, "general")
    assert pool["spec"]["desiredSize"] == 4
    cluster = "zone-a-1"
    for action in ("cordon", "drain", "replace"):
        assert member.sample("pincompute_remediation_actions_total", cluster=cluster,
                             action=action) >= 1
    assert member.sample("pincompute_remediation_reaction_seconds_count",
                         cluster=cluster) == 1


async def test_a_storm_trips_the_breaker_and_nothing_is_drained(
        member_cluster: MemberFactory) -> None:
    member: Member = await member_cluster(options=options(
        grace=0.5, safeguards={"pool_max_unhealthy": "30%", "cooldown": 1.0}))
    await settle_pool(member, size=5)
    await settle_app(member, "web", 5, budget={"maxUnavailable": 1})
    pods_before = {p["metadata"]["uid"] for p in
                   (await member.client.list(PODS, namespace="default")).items}
    names = sorted(n["metadata"]["name"] for n in await member.pool_nodes())
    for name in names[:2]:  # 40 % of the pool at once
        await annotate(member, name, PROBE_FAILURE_ANNOTATION, "network unreachable")
    tripped = await member.wait_event("BreakerTripped")
    assert "pool/general" in tripped["message"]
    assert "2 of 5 nodes unhealthy (40%), at most 1 allowed" in tripped["message"]
    refused = await member.wait_event("RemediationRefused")
    assert "circuit breaker of pool/general is Open" in refused["message"]
    await asyncio.sleep(1.0)  # well past the grace: still nothing done
    for n in await member.pool_nodes():
        assert not n["spec"].get("unschedulable"), n["metadata"]["name"]
        assert REMEDIATION_ANNOTATION not in (n["metadata"].get("annotations") or {})
    pods_after = {p["metadata"]["uid"] for p in
                  (await member.client.list(PODS, namespace="default")).items}
    assert pods_after == pods_before
    assert member.sample("pincompute_remediation_refusals_total", cluster="zone-a-1",
                         reason="BreakerOpen") >= 1
    assert member.sample("pincompute_remediation_breaker_state", cluster="zone-a-1",
                         scope="pool/general") == 1
    record = await member.client.get(CONFIGMAPS, STATE_CONFIGMAP, namespace=SYSTEM_NAMESPACE)
    assert json.loads(record["data"]["breakers"])["pool/general"]["state"] == "Open"


async def test_recovery_rearms_the_breaker_after_the_cooldown(
        member_cluster: MemberFactory) -> None:
    member: Member = await member_cluster(options=options(
        grace=0.3, safeguards={"pool_max_unhealthy": "30%", "cooldown": 1.5}))
    await settle_pool(member, size=5)
    names = sorted(n["metadata"]["name"] for n in await member.pool_nodes())
    for name in names[:2]:
        await annotate(member, name, PROBE_FAILURE_ANNOTATION, "network unreachable")
    await member.wait_event("BreakerTripped")
    await annotate(member, names[1], PROBE_FAILURE_ANNOTATION, None)  # the storm passes
    cooling = await member.wait_event("BreakerCoolingDown")
    assert "1 of 5 nodes unhealthy" in cooling["message"]
    node0 = await member.client.get(NODES, names[0])
    assert not node0["spec"].get("unschedulable")  # held back while cooling down
    rearmed = await member.wait_event("BreakerRearmed", timeout=10)
    first = cooling["lastTimestamp"]
    assert rearmed["lastTimestamp"] >= first
    # the node still bad is remediated now that the breaker is armed again
    await member.wait_event("RemediationCordoned", about=names[0], timeout=10)
    assert member.sample("pincompute_remediation_breaker_state", cluster="zone-a-1",
                         scope="pool/general") == 0


async def test_a_flapping_node_escalates_and_then_gives_up(
        member_cluster: MemberFactory) -> None:
    member: Member = await member_cluster(options=options(
        grace=0.2, cordon_wait=30.0, drain_wait=30.0, max_attempts=2))
    await settle_pool(member, size=4)
    await settle_app(member, "web", 4, budget={"maxUnavailable": 1})
    node = await busiest_node(member)

    async def step() -> str:
        obj = await member.client.get(NODES, node)
        raw = (obj["metadata"].get("annotations") or {}).get(REMEDIATION_ANNOTATION)
        return json.loads(raw)["step"] if raw else "Healthy"

    async def flap(expect: str) -> None:
        await annotate(member, node, PROBE_FAILURE_ANNOTATION, "kernel oops")

        async def reached() -> bool:
            return await step() == expect
        await eventually(reached, timeout=20, what=f"step {expect}")

    await flap("Cordoned")  # attempt 1: cordoned only (the cordon wait is long)
    await asyncio.sleep(0.3)
    assert await step() == "Cordoned"
    await annotate(member, node, PROBE_FAILURE_ANNOTATION, None)
    await member.wait_event("RemediationRecovered", about=node)
    assert not (await member.client.get(NODES, node))["spec"].get("unschedulable")
    await flap("Drained")  # attempt 2: escalated, drained at once
    assert not [p for p in (await member.client.list(PODS, namespace="default")).items
                if p["spec"]["nodeName"] == node and not p["metadata"].get("deletionTimestamp")]
    await annotate(member, node, PROBE_FAILURE_ANNOTATION, None)

    async def recovered_twice() -> bool:
        return sum(e.get("count", 1) for e in await member.events("RemediationRecovered")) >= 2
    await eventually(recovered_twice, what="a second recovery")
    await flap("GaveUp")  # attempt 3 would exceed max_attempts 2
    gave_up = await member.wait_event("RemediationGaveUp", about=node)
    assert gave_up["type"] == "Warning" and "after 2 attempts" in gave_up["message"]
    assert (await member.client.get(NODES, node))["spec"].get("unschedulable")

    async def alerted() -> dict[str, Any] | None:
        pool = await member.client.get(NODEPOOLS, "general")
        c = get_condition(pool, "RemediationFailed")
        return c if c and c["status"] == "True" else None
    condition = await eventually(alerted, what="the pool's RemediationFailed condition")
    assert node in condition["message"]
    assert member.sample("pincompute_remediation_gave_up_nodes", cluster="zone-a-1") == 1
    assert await member.ready_nodes() and node in {
        n["metadata"]["name"] for n in await member.pool_nodes()}  # not replaced


async def test_a_manual_repair_request_escalates_at_once(
        member_cluster: MemberFactory) -> None:
    member: Member = await member_cluster(options=options(
        grace=30.0, cordon_wait=30.0, drain_wait=30.0))
    await settle_pool(member, size=3)
    node = sorted(n["metadata"]["name"] for n in await member.pool_nodes())[0]
    await annotate(member, node, REPAIR_ANNOTATION, "ticket OPS-12")
    replacing = await member.wait_event("RemediationReplacing", about=node, timeout=10)
    assert "repair requested: ticket OPS-12" in replacing["message"]

    async def replaced() -> bool:
        names = {n["metadata"]["name"] for n in await member.ready_nodes()}
        return node not in names and len(names) == 3
    await eventually(replaced, timeout=20, what="the node replaced")


async def test_a_node_whose_own_health_probe_fails_is_remediated(
        member_cluster: MemberFactory, node_dir: Path) -> None:
    member: Member = await member_cluster(options=options())
    await settle_pool(member, size=3, runtime="process")  # real health probes
    node = sorted(n["metadata"]["name"] for n in await member.pool_nodes())[0]
    # The node agent's probes write into the node's directory: make that impossible
    # (root ignores permissions, so the directory becomes a file).
    slot = node_dir / f"general-{node.rsplit('-', 1)[1]}"
    shutil.rmtree(slot)
    slot.write_text("not a directory")
    try:
        cordoned = await member.wait_event("RemediationCordoned", about=node, timeout=20)
        # the agent's own conditions: RuntimeUnhealthy and/or Ready False
        assert "RuntimeUnhealthy" in cordoned["message"] or "Ready=False" in \
            cordoned["message"]
        assert "not writable" in cordoned["message"]
        # (the successor is not waited for: this fixture's process nodes share one
        # address block, which the removed node holds until it is gone)
        await member.wait_event("RemediationReplacing", about=node, timeout=20)
    finally:
        slot.unlink(missing_ok=True)
