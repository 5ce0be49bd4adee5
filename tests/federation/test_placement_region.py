"""End to end on an embedded region (sim runtime, three zones): the placement controller's
failover and rebalance when a member cluster goes down for real, and preemption acted on.

A cluster goes down as a power cut does: its node agents stop (they stay in the
provisioner's fleet, so nothing restarts them), their Leases expire, the node
lifecycle controller marks the nodes Unknown, the health controller marks the
MemberCluster not Ready and taints it, and after the grace period its share moves.
It comes back as the machines reboot: the agents are dropped and the provisioner
re-adopts the registered Nodes.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from pincompute.federation.admission.queue import AdmissionQueues
from pincompute.kube import objects
from pincompute.kube.resource import PODS
from pincompute.model.registry import MEMBERCLUSTERS, NODEPOOLS, PINAPPS, PROJECTS
from pincompute.node.nodelifecyclecontroller import LifecycleConfig
from pincompute.region import Region
from pincompute.runtime.reconciler import Request
from tests.waiting import recorded

NS = "demo"
GRACE = 2.0
OPTIONS: dict[str, dict[str, Any]] = {
    "node-lifecycle": {"config": LifecycleConfig(grace_period=2.0)},
    "membercluster-health": {"grace": GRACE},
    "placement": {"grace": GRACE, "rebalance_interval": 0.5, "retry_interval": 2.0},
}


@pytest.fixture
async def region(tmp_path: Path) -> AsyncIterator[Region]:
    region = await Region.open(
        tmp_path / "region", zones=3, nodes_per_cluster=1, runtime="sim", lease_duration=3,
        health_port=None, node_options={"lease_duration": 2.0, "status_interval": 1.0},
        controller_options={**OPTIONS, "admission": {"queues": AdmissionQueues(
            backoff_base=1.0, backoff_max=1.0)}})
    await region.start()
    try:
        await region.ensure_project(NS)
        yield region
    finally:
        await region.close()


def pinapp(name: str, *, replicas: int, cpu: str = "10m", tier: str | None = None,
           **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "pincompute.io/v1alpha1", "kind": "PinApp",
            "metadata": {"name": name, "namespace": NS},
            "spec": {"replicas": replicas, **({"tier": tier} if tier else {}), **spec,
                     "template": {"spec": {"containers": [
                         {"name": "main", "image": "web:1",
                          "resources": {"requests": {"cpu": cpu, "memory": "16Mi"}}}]}}}}


async def until(check: Callable[[], Awaitable[Any]], *, timeout: float = 20.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        got = await check()
        if got:
            return got
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out; last: {got!r}")
        await asyncio.sleep(0.1)


async def host_app(region: Region, name: str) -> dict[str, Any]:
    return await region.host.client.get(PINAPPS, name, namespace=NS)


def shares(obj: dict[str, Any]) -> dict[str, int]:
    return {p["cluster"]: int(p.get("replicas") or 0)
            for p in (obj.get("status") or {}).get("placements") or ()}


async def running_pods(region: Region, cluster: str, app: str) -> int:
    pods = (await region.member(cluster).client.list(PODS, namespace=NS)).items
    return sum(1 for p in pods if not objects.is_deleting(p)
               and (p.get("status") or {}).get("phase") == "Running"
               and app in objects.name_of(p))


async def test_a_downed_cluster_fails_over_and_rebalances_back(region: Region) -> None:
    app = pinapp("web", replicas=6, disruptionBudget={"maxUnavailable": 1}, placement={
        "spread": [{"topology": "zone", "maxSkew": 1, "whenUnsatisfiable": "ScheduleAnyway"}]})
    await region.apply([app])

    async def available(n: int) -> dict[str, Any] | None:
        obj = await host_app(region, "web")
        st = obj.get("status") or {}
        return obj if st.get("availableReplicas") == n and len(shares(obj)) == 3 else None

    obj = await until(lambda: available(6), timeout=20)
    assert sorted(shares(obj).values()) == [2, 2, 2]
    down = sorted(shares(obj))[0]
    lost = shares(obj)[down]

    samples: list[tuple[float, int, dict[str, int]]] = []
    stop = asyncio.Event()

    async def sample() -> None:
        while not stop.is_set():
            o = await host_app(region, "web")
            samples.append((time.monotonic(), int((o.get("status") or {})
                                                  .get("availableReplicas") or 0), shares(o)))
            await asyncio.sleep(0.05)

    sampler = asyncio.create_task(sample())
    try:
        provisioner = region.provisioners[down]
        agents = provisioner.agents("general")
        assert agents
        cut = time.monotonic()
        for agent in agents.values():
            await agent.stop()  # a power cut: stays in the fleet, nothing restarts it

        async def failed_over() -> dict[str, Any] | None:
            o = await host_app(region, "web")
            st = o.get("status") or {}
            # ... and the old shard gone: until then it may still count its replicas (its
            # status is the member's last word), and its removal would show as a dip later.
            gone = all(c.get("cluster") != down for c in st.get("clusters") or ())
            return o if down not in shares(o) and gone and st.get("availableReplicas") == 6 \
                else None

        obj = await until(failed_over, timeout=45)

        async def sampled() -> bool:  # (the sampler, another task, may lag behind)
            return any(down not in s for _, _, s in samples)

        await until(sampled, timeout=5)
        moved_after = next(t for t, _, s in samples if down not in s) - cut
        assert sum(shares(obj).values()) == 6
        cond = objects.get_condition(obj, "Scheduled")
        assert cond is not None and cond["reason"] == "FailedOver"
        mc = await region.host.client.get(MEMBERCLUSTERS, down)
        assert objects.get_condition(mc, "Ready")["status"] != "True"
        assert mc["spec"].get("taints"), mc["spec"]
        # Not before the grace period (lease expiry + grace), and well within a test's time.
        assert GRACE <= moved_after < 40, moved_after
        # Never below what the failed cluster had, less the budget.
        assert min(a for t, a, _ in samples if t >= cut) >= 6 - lost - 1, samples

        # The machines come back: the agents restart and re-adopt their Nodes.
        back = time.monotonic()
        for name in list(agents):
            await provisioner.host.remove(name)
        assert provisioner.controller is not None
        provisioner.controller.enqueue(Request("", "general"))

        async def rebalanced() -> dict[str, Any] | None:
            o = await host_app(region, "web")
            cond = objects.get_condition(o, "Scheduled") or {}
            ok = sorted(shares(o).values()) == [2, 2, 2] and cond.get("reason") == "Scheduled"
            return o if ok and (o.get("status") or {}).get("availableReplicas") == 6 else None

        await until(rebalanced, timeout=45)
    finally:
        stop.set()
        await sampler
    # Gradual: from the failed-over placement on, each change moves at most the budget (one
    # replica), and it took more than one step to get back.
    start = next(i for i, (t, _, s) in enumerate(samples) if t >= cut and down not in s)
    seen = [s for _, _, s in samples[start:]]
    steps = [s for i, s in enumerate(seen) if i == 0 or s != seen[i - 1]]
    for a, b in itertools.pairwise(steps):
        moved = sum(max(0, b.get(c, 0) - a.get(c, 0)) for c in set(a) | set(b))
        assert moved <= 1, (a, b)
    assert len(steps) >= 3, steps  # failed over, at least one step between, balanced
    assert min(a for t, a, _ in samples if t >= back) >= 6 - 1
    await recorded(region.host.client, namespace=NS, reason="FailedOver", name="web",
                   match=lambda e: down in e["message"])
    await recorded(region.host.client, namespace=NS, reason="Rebalanced", name="web")


async def test_a_preempted_workload_leaves_its_clusters_and_queues_again(
        region: Region) -> None:
    # One member cluster offers the reserved tier (a node pool of its own).
    await region.member("zone-a-1").client.create(NODEPOOLS, {
        "metadata": {"name": "reserved"},
        "spec": {"instanceType": "embedded.standard-4", "runtime": "sim", "tier": "reserved",
                 "capacity": {"cpu": "4", "memory": "8Gi", "pods": "110"},
                 "minSize": 0, "maxSize": 1, "desiredSize": 1}})
    project = await region.host.client.get(PROJECTS, NS)
    project["spec"]["quota"] = {"reserved": {"cpu": "1"}, "ondemand": {"cpu": "0"},
                                "preemptible": {"cpu": "0"}}
    await region.host.client.update(PROJECTS, project)
    await region.apply([pinapp("batch", replicas=2, cpu="500m", tier="preemptible")])

    async def pods_of(app: str) -> int:
        return sum([await running_pods(region, m.name, app) for m in region.members])

    await until(lambda: _eq(pods_of("batch"), 2), timeout=20)
    await region.apply([pinapp("svc", replicas=2, cpu="500m", tier="reserved")])

    async def preempted() -> dict[str, Any] | None:
        o = await host_app(region, "batch")
        cond = objects.get_condition(o, "Preempted") or {}
        return o if cond.get("status") == "True" else None

    batch = await until(preempted, timeout=15)
    assert "svc" in objects.get_condition(batch, "Preempted")["message"]
    await until(lambda: _eq(pods_of("svc"), 2), timeout=20)

    async def batch_gone() -> bool:
        o = await host_app(region, "batch")
        return not shares(o) and await pods_of("batch") == 0
    await until(batch_gone, timeout=20)
    batch = await host_app(region, "batch")
    cond = objects.get_condition(batch, "Scheduled")
    assert cond is not None and cond["status"] == "False" and cond["reason"] == "NotAdmitted"
    await recorded(region.host.client, namespace=NS, reason="Withdrawn", name="batch")

    # It waits in its queue again with a reason: first its back-off, then (past it) the
    # quota svc holds, with its position; it is not placed meanwhile.
    cond = objects.get_condition(batch, "Queued")
    assert cond is not None and cond["status"] == "True", cond
    assert cond["reason"] == "BackingOff", cond
    admission = batch["status"]["admission"]
    assert admission["state"] == "Preempted" and admission["preemptions"] == 1, admission

    async def queued() -> dict[str, Any] | None:
        o = await host_app(region, "batch")
        cond = objects.get_condition(o, "Queued") or {}
        return o if cond.get("status") == "True" and cond.get("reason") == "QuotaExceeded" \
            else None

    batch = await until(queued, timeout=15)
    cond = objects.get_condition(batch, "Queued")
    assert "position 1" in cond["message"], cond
    # The state says what the conditions say: Queued again, no longer Preempted.
    admission = batch["status"]["admission"]
    assert admission["state"] == "Queued" and admission["position"] == 1, admission
    assert admission["preemptions"] == 1 and "notBefore" not in admission, admission
    preempted = objects.get_condition(batch, "Preempted")
    assert preempted["status"] == "False" and "preempted 1 time" in preempted["message"]
    assert objects.get_condition(batch, "Admitted")["status"] == "False"
    assert not shares(batch) and await pods_of("batch") == 0
    assert await pods_of("svc") == 2

    # The reservation goes: the preemptible workload is admitted again and placed.
    await region.host.client.delete(PINAPPS, "svc", namespace=NS)

    async def readmitted() -> dict[str, Any] | None:
        o = await host_app(region, "batch")
        cond = objects.get_condition(o, "Admitted") or {}
        return o if cond.get("status") == "True" else None

    batch = await until(readmitted, timeout=15)
    admission = batch["status"]["admission"]
    assert admission["state"] == "Admitted" and admission["preemptions"] == 1, admission
    assert objects.get_condition(batch, "Queued")["status"] == "False"
    assert objects.get_condition(batch, "Preempted")["status"] == "False"
    await until(lambda: _eq(pods_of("batch"), 2), timeout=30)
    assert sum(shares(await host_app(region, "batch")).values()) == 2


async def _eq(value: Awaitable[Any], want: Any) -> bool:
    return await value == want
