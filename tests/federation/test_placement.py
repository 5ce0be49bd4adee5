"""The placement controller on an embedded host store: decisions recorded in status,
failover after the grace period, gradual rebalance, no re-decision on status writes.

The host's MemberClusters are written by hand (the health controller is not part of
this test): their conditions and taints are what the controller reacts to.  Shard
status (``status.clusters``) is written by hand as the propagation/status helper will.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import pytest

from pincompute.federation.placement import (
    PlacementController,
    add_placement_controller,
    admitted,
)
from pincompute.kube import objects
from pincompute.kube.backends.embedded import EmbeddedStore
from pincompute.kube.errors import Conflict
from pincompute.kube.protocol import KubeClient
from pincompute.kube.resource import NAMESPACES
from pincompute.model import registry
from pincompute.model.registry import MEMBERCLUSTERS, PINAPPS, PINJOBS
from pincompute.model.wellknown import CLUSTER_DRAINING_TAINT, CLUSTER_NOT_READY_TAINT
from pincompute.runtime.manager import Manager
from tests.waiting import recorded

from .clusterscheduler.support import app, job, member

NS = "proj"
GRACE = 0.8


@dataclass
class Host:
    client: KubeClient
    placement: PlacementController
    manager: Manager

    async def cluster(self, name: str, zone: str, **kw: Any) -> None:
        mc = member(name, zone, cpu="16", memory="64Gi", **kw)
        status = mc.pop("status")
        created = await self.client.create(MEMBERCLUSTERS, mc)
        created["status"] = {**status, "conditions": [
            {"type": "Ready", "status": "True", "reason": "Healthy",
             "lastTransitionTime": "2026-01-01T00:00:00Z"}]}
        await self.client.update_status(MEMBERCLUSTERS, created)

    async def edit_cluster(self, name: str, fn: Callable[[dict[str, Any]], None], *,
                           status: bool = False) -> None:
        while True:
            mc = await self.client.get(MEMBERCLUSTERS, name)
            fn(mc)
            try:
                if status:
                    await self.client.update_status(MEMBERCLUSTERS, mc)
                else:
                    await self.client.update(MEMBERCLUSTERS, mc)
                return
            except Conflict:
                continue

    async def set_ready(self, name: str, ready: bool) -> None:
        def fn(mc: dict[str, Any]) -> None:
            objects.set_condition(mc, "Ready", ready, reason="Probe" if not ready else "Healthy")
        await self.edit_cluster(name, fn, status=True)

    async def report_shards(self, resource: Any, name: str, *, ready: bool = True) -> None:
        """What the status helper does: status.clusters from the placements."""
        while True:
            obj = await self.client.get(resource, name, namespace=NS)
            obj["status"]["clusters"] = [
                {"cluster": p["cluster"], "zone": p.get("zone"), "replicas": p["replicas"],
                 "readyReplicas": p["replicas"] if ready else 0}
                for p in obj["status"].get("placements") or ()]
            try:
                await self.client.update_status(resource, obj)
                return
            except Conflict:
                continue


@pytest.fixture
async def host() -> AsyncIterator[Host]:
    store = await EmbeddedStore.open(path=None)
    registry.install(store, resources=registry.HOST_RESOURCES)
    client = store.client()
    await client.create(NAMESPACES, {"metadata": {"name": NS}})
    manager = Manager(name="test", shutdown_timeout=5.0)
    placement = add_placement_controller(manager, host=client, identity="test",
                                         require_admission=False, grace=GRACE,
                                         rebalance_step=1, rebalance_interval=0.05,
                                         retry_interval=5.0)
    h = Host(client, placement, manager)
    for zone in ("a", "b", "c"):
        await h.cluster(f"zone-{zone}-1", f"zone-{zone}")
    await h.cluster("gpu-1", "zone-a", taints=[{"key": "gpu", "effect": "NoSchedule"}])
    task = asyncio.create_task(manager.run())
    await manager.wait_started()
    yield h
    manager.stop()
    await task
    await store.close()


async def until(fn: Callable[[], Any], *, timeout: float = 20.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        got = await fn()
        if got:
            return got
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out; last: {got!r}")  # pragma: no cover
        await asyncio.sleep(0.02)


def placed(obj: dict[str, Any]) -> dict[str, int]:
    return {p["cluster"]: p.get("replicas", 0)
            for p in (obj.get("status") or {}).get("placements") or ()}


def spread_app(name: str, replicas: int = 6, *, hard: bool = True, **kw: Any
               ) -> dict[str, Any]:
    spread = ({"topology": "zone", "minGroups": 3, "whenUnsatisfiable": "DoNotSchedule"}
              if hard else {"topology": "zone"})
    obj = app(replicas, placement={"spread": [spread]}, **kw)
    obj["metadata"] = {"name": name, "namespace": NS}
    return obj


async def get(h: Host, name: str, resource: Any = PINAPPS) -> dict[str, Any]:
    return await h.client.get(resource, name, namespace=NS)


THREE = {"zone-a-1": 2, "zone-b-1": 2, "zone-c-1": 2}


async def test_spread_over_three_zones_with_reasons(host: Host) -> None:
    await host.client.create(PINAPPS, spread_app("web"))

    async def scheduled() -> dict[str, Any] | None:
        obj = await get(host, "web")
        return obj if objects.condition_true(obj, "Scheduled") else None

    obj = await until(scheduled)
    assert placed(obj) == THREE
    assert {p["zone"] for p in obj["status"]["placements"]} == {"zone-a", "zone-b", "zone-c"}
    excluded = {e["cluster"]: e for e in obj["status"]["excludedClusters"]}
    assert excluded["gpu-1"]["plugin"] == "TaintToleration"
    assert "gpu" in excluded["gpu-1"]["reason"]
    cond = objects.get_condition(obj, "Scheduled")
    assert cond["reason"] == "Scheduled" and cond["observedGeneration"] == 1
    # The reservation is confirmed from the shards' reports.
    await host.report_shards(PINAPPS, "web")
    uid = objects.uid_of(obj)
    await until(lambda: _async(host.placement.scheduler.assumed.reserved(uid) == {}))
    assert uid in host.placement.scheduler.assumed
    # Deleted: what it held is released.
    await host.client.delete(PINAPPS, "web", namespace=NS)
    await until(lambda: _async(uid not in host.placement.scheduler.assumed))


async def _async(value: Any) -> Any:
    return value


async def test_status_writes_do_not_redecide_but_spec_changes_do(host: Host) -> None:
    await host.client.create(PINAPPS, spread_app("web"))
    await until(lambda: _placed_as(host, "web", THREE))
    before = host.placement.decisions
    for _ in range(5):
        await host.report_shards(PINAPPS, "web")
    await host.edit_cluster("zone-a-1", lambda mc: mc["metadata"].setdefault(
        "annotations", {}).update({"touched": "yes"}))   # not a change that matters
    await asyncio.sleep(0.3)
    assert host.placement.decisions == before
    obj = await get(host, "web")
    obj["spec"]["replicas"] = 9
    await host.client.update(PINAPPS, obj)
    await until(lambda: _placed_as(host, "web", {"zone-a-1": 3, "zone-b-1": 3,
                                                 "zone-c-1": 3}))
    assert host.placement.decisions == before + 1


async def quiet_decisions(h: Host, *, quiet: float = 0.3) -> int:
    """The placement's decision count once it has not moved for ``quiet`` seconds: what the
    writes before are worth, however late a loaded machine runs their reconciles."""
    async def still() -> list[int]:
        seen = h.placement.decisions
        await asyncio.sleep(quiet)
        return [seen] if h.placement.decisions == seen else []

    return int((await until(still))[0])


async def _placed_as(h: Host, name: str, want: dict[str, int], resource: Any = PINAPPS
                     ) -> bool:
    return placed(await get(h, name, resource)) == want


async def test_failover_after_grace_then_gradual_rebalance(host: Host) -> None:
    obj = spread_app("web", hard=False)
    await host.client.create(PINAPPS, obj)
    await until(lambda: _placed_as(host, "web", THREE))
    await host.report_shards(PINAPPS, "web")
    went = time.monotonic()
    await host.set_ready("zone-c-1", False)
    await asyncio.sleep(GRACE / 3)
    now = placed(await get(host, "web"))
    if time.monotonic() - went < GRACE * 0.9:  # (a loaded machine may have slept past it)
        assert now == THREE  # within the grace: nothing moves

    async def failed_over() -> dict[str, Any] | None:
        o = await get(host, "web")
        return o if "zone-c-1" not in placed(o) else None

    o = await until(failed_over)
    assert time.monotonic() - went >= GRACE * 0.9
    assert sum(placed(o).values()) == 6
    assert objects.get_condition(o, "Scheduled")["reason"] == "FailedOver"
    await recorded(host.client, namespace=NS, reason="FailedOver", name="web",
                   match=lambda e: "zone-c-1" in e["message"])
    await host.report_shards(PINAPPS, "web")
    # While the cluster is out, status writes cost at most one look at the ideal placement.
    before = await quiet_decisions(host)
    for _ in range(5):
        await host.report_shards(PINAPPS, "web")
    assert await quiet_decisions(host) <= before + 1

    # Recovery: back one replica per step (rebalance_step=1), each after the last is ready.
    await host.set_ready("zone-c-1", True)
    seen: list[dict[str, int]] = []
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        o = await get(host, "web")
        now = placed(o)
        if not seen or seen[-1] != now:
            seen.append(now)
        if now == THREE and objects.get_condition(o, "Scheduled")["reason"] == "Scheduled":
            break
        await host.report_shards(PINAPPS, "web")
        await asyncio.sleep(0.05)
    assert seen[-1] == THREE
    assert len(seen) >= 3  # failed-over, at least one intermediate step, balanced
    for a, b in itertools.pairwise(seen):
        moved = sum(max(0, b.get(c, 0) - a.get(c, 0)) for c in set(a) | set(b))
        assert moved <= 1
    await recorded(host.client, namespace=NS, reason="Rebalanced", name="web")


async def test_a_cluster_back_but_still_tainted_is_waited_for_not_given_up(host: Host) -> None:
    # The health controller lifts its taints in a write after the conditions: in between,
    # the cluster is no longer evacuated but the filters still exclude it.  A rebalance
    # that settled then ("ideal == current") would never move back.
    await host.client.create(PINAPPS, spread_app("web", hard=False))
    await until(lambda: _placed_as(host, "web", THREE))
    await host.report_shards(PINAPPS, "web")
    health_taint = {"key": CLUSTER_NOT_READY_TAINT, "effect": "NoSchedule"}
    await host.edit_cluster("zone-c-1", lambda mc: mc["spec"].update(taints=[health_taint]))
    await host.set_ready("zone-c-1", False)
    o = await until(lambda: _reason(host, "web", "FailedOver"))
    assert "zone-c-1" not in placed(o)
    await host.report_shards(PINAPPS, "web")
    await host.set_ready("zone-c-1", True)  # the taint stays, for now
    await asyncio.sleep(0.5)  # rebalance passes (every 0.05 s) find nothing better meanwhile
    assert objects.get_condition(await get(host, "web"), "Scheduled")["reason"] == "FailedOver"
    await host.edit_cluster("zone-c-1", lambda mc: mc["spec"].update(taints=[]))

    async def back() -> bool:
        await host.report_shards(PINAPPS, "web")
        return bool(await _reason(host, "web", "Scheduled")) and \
            await _placed_as(host, "web", THREE)

    await until(back)


async def test_hard_spread_unschedulable_keeps_placements(host: Host) -> None:
    await host.client.create(PINAPPS, spread_app("web"))
    await until(lambda: _placed_as(host, "web", THREE))
    await host.edit_cluster("zone-c-1", lambda mc: mc["spec"].setdefault("taints", []).append(
        {"key": CLUSTER_DRAINING_TAINT, "effect": "NoSchedule"}))
    # Draining moves at once (no grace); zone spread DoNotSchedule with minGroups 3
    # cannot be met on two zones: unschedulable, the old placements stay.
    o = await until(lambda: _reason(host, "web", "Unschedulable"))
    assert placed(o) == THREE
    assert "minGroups" in objects.get_condition(o, "Scheduled")["message"]


async def _reason(h: Host, name: str, reason: str) -> dict[str, Any] | None:
    o = await get(h, name)
    cond = objects.get_condition(o, "Scheduled")
    return o if cond and cond["reason"] == reason else None


async def test_draining_moves_at_once_and_unready_shards_hold_the_rebalance(
        host: Host) -> None:
    obj = app(6)
    obj["metadata"] = {"name": "api", "namespace": NS}
    await host.client.create(PINAPPS, obj)
    await until(lambda: _placed_as(host, "api", THREE))
    await host.edit_cluster("zone-b-1", lambda mc: mc["spec"].setdefault("taints", []).append(
        {"key": CLUSTER_DRAINING_TAINT, "effect": "NoSchedule"}))
    o = await until(lambda: _reason(host, "api", "FailedOver"), timeout=GRACE * 0.9)
    assert "zone-b-1" not in placed(o) and sum(placed(o).values()) == 6
    await host.report_shards(PINAPPS, "api", ready=False)
    await host.edit_cluster("zone-b-1", lambda mc: mc["spec"].update(taints=[]))
    await asyncio.sleep(0.4)
    assert placed(await get(host, "api")) == placed(o)  # shards not ready: no step yet
    await host.report_shards(PINAPPS, "api", ready=True)
    await until(lambda: _reason(host, "api", "Rebalancing"))


async def test_job_goes_whole_to_one_cluster_and_fails_over_whole(host: Host) -> None:
    obj = job(4)
    obj["metadata"] = {"name": "train", "namespace": NS}
    await host.client.create(PINJOBS, obj)

    async def one() -> dict[str, int] | None:
        p = placed(await get(host, "train", PINJOBS))
        return p or None

    p = await until(one)
    assert list(p.values()) == [4]
    (cluster,) = p
    await host.set_ready(cluster, False)
    await until(lambda: _other(host, cluster), timeout=GRACE + 5)
    await host.set_ready(cluster, True)
    await asyncio.sleep(0.3)
    o = await get(host, "train", PINJOBS)
    assert cluster not in placed(o)  # not moved back: that would restart it


async def _other(h: Host, cluster: str) -> bool:
    p = placed(await get(h, "train", PINJOBS))
    return bool(p) and cluster not in p and list(p.values()) == [4]


async def test_admission_gate(host: Host) -> None:
    host.placement.require_admission = True
    obj = app(2)
    obj["metadata"] = {"name": "gated", "namespace": NS}
    await host.client.create(PINAPPS, obj)
    await asyncio.sleep(0.3)
    o = await get(host, "gated")
    assert not placed(o)
    objects.set_condition(o, "Admitted", True, reason="Admitted")
    await host.client.update_status(PINAPPS, o)
    await until(lambda: _reason(host, "gated", "Scheduled"))


async def test_a_preempted_workload_is_withdrawn_then_placed_again(host: Host) -> None:
    host.placement.require_admission = True
    obj = app(2)
    obj["metadata"] = {"name": "borrower", "namespace": NS}
    await host.client.create(PINAPPS, obj)

    async def admit(yes: bool) -> None:
        while True:
            o = await get(host, "borrower")
            objects.set_condition(o, "Admitted", yes, reason="QuotaReserved" if yes else
                                  "NotAdmitted")
            try:
                await host.client.update_status(PINAPPS, o)
                return
            except Conflict:
                continue

    await admit(True)
    o = await until(lambda: _reason(host, "borrower", "Scheduled"))
    uid = objects.uid_of(o)
    assert placed(o) and uid in host.placement.scheduler.assumed
    await admit(False)  # admission took it back (Preempted)
    o = await until(lambda: _reason(host, "borrower", "NotAdmitted"))
    assert not placed(o)
    assert objects.get_condition(o, "Scheduled")["status"] == "False"
    assert uid not in host.placement.scheduler.assumed  # its room is free at once
    await recorded(host.client, namespace=NS, reason="Withdrawn", name="borrower")
    await admit(True)  # after its back-off
    o = await until(lambda: _reason(host, "borrower", "Scheduled"))
    assert sum(placed(o).values()) == 2


def test_admitted() -> None:
    bare: dict[str, Any] = {"status": {}}
    assert not admitted(bare, require_admission=True)
    assert admitted(bare, require_admission=False)
    queued = {"status": {"conditions": [{"type": "Queued", "status": "True"}]}}
    assert not admitted(queued, require_admission=False)
    yes = {"status": {"conditions": [{"type": "Admitted", "status": "True"}]}}
    no = {"status": {"conditions": [{"type": "Admitted", "status": "False"}]}}
    assert admitted(yes, require_admission=True) and not admitted(no, require_admission=False)


async def test_a_restarted_controller_converges_without_redeciding(host: Host) -> None:
    await host.client.create(PINAPPS, spread_app("web"))
    await until(lambda: _placed_as(host, "web", THREE))
    uid = objects.uid_of(await get(host, "web"))
    host.manager.stop()
    await asyncio.sleep(0.2)
    # A new manager (as after a crash or a new leader): same store, nothing in memory.
    manager = Manager(name="again", shutdown_timeout=5.0)
    placement = add_placement_controller(manager, host=host.client, identity="test",
                                         require_admission=False, grace=GRACE)
    task = asyncio.create_task(manager.run())
    await manager.wait_started()
    try:
        await until(lambda: _async(uid in placement.scheduler.assumed))
        assert placement.decisions == 0  # recorded for this generation: nothing to decide
        assert placement.scheduler.assumed.reserved(uid) == THREE  # rebuilt from status
        # A workload submitted meanwhile is decided against the rebuilt reservations.
        await host.client.create(PINAPPS, spread_app("more"))
        await until(lambda: _placed_as(host, "more", THREE))
        assert placement.decisions == 1
    finally:
        manager.stop()
        await task


async def test_in_an_embedded_region(tmp_path: Any) -> None:
    """The controller as the region wires it: a PinApp on the host gets placements over
    the region's three zones once the clusters report their room (written here as the
    health controller's resource summary will)."""
    from pincompute.region import Region

    region = await Region.open(tmp_path / "data", zones=3, nodes_per_cluster=1,
                               runtime="sim", lease_duration=3)
    await region.start()
    try:
        await region.ensure_project(NS)
        client = region.host.client
        summary = member("x", cpu="8", memory="32Gi")["status"]["tiers"]
        for m in region.members:
            while True:
                mc = await client.get(MEMBERCLUSTERS, m.name)
                mc.setdefault("status", {})["tiers"] = summary
                try:
                    await client.update_status(MEMBERCLUSTERS, mc)
                    break
                except Conflict:
                    continue
        obj = spread_app("web")
        await region.apply([obj])

        async def spread() -> bool:
            return placed(await client.get(PINAPPS, "web", namespace=NS)) == THREE

        await until(spread, timeout=20)
    finally:
        await region.close()


async def test_daemon_runs_on_every_healthy_cluster(host: Host) -> None:
    from pincompute.model.infra import PinDaemonSpec
    from pincompute.model.registry import PINDAEMONS

    from .clusterscheduler.support import template

    spec = PinDaemonSpec.model_validate({"template": template()}).to_dict()
    await host.client.create(PINDAEMONS, {
        "apiVersion": "pincompute.io/v1alpha1", "kind": "PinDaemon",
        "metadata": {"name": "logs"}, "spec": spec})  # cluster-scoped

    async def on(clusters: set[str]) -> bool:
        o = await host.client.get(PINDAEMONS, "logs")
        return set(placed(o)) == clusters

    three = {"zone-a-1", "zone-b-1", "zone-c-1"}
    await until(lambda: on(three))
    await host.set_ready("zone-b-1", False)
    await until(lambda: on({"zone-a-1", "zone-c-1"}), timeout=GRACE + 5)
    await host.set_ready("zone-b-1", True)
    await until(lambda: on(three))


async def test_sidecar_is_duplicated_to_every_healthy_cluster_without_admission(
        host: Host) -> None:
    from pincompute.model.registry import PINSIDECARS

    host.placement.require_admission = True   # cluster-scoped: no project, no admission
    assert admitted({"kind": "PinSidecar", "status": {}}, require_admission=True)
    await host.client.create(PINSIDECARS, {
        "apiVersion": "pincompute.io/v1alpha1", "kind": "PinSidecar",
        "metadata": {"name": "logship"},
        "spec": {"selector": {"matchLabels": {"logs": "ship"}},
                 "containers": [{"name": "ship", "image": "busybox"}]}})

    async def on(clusters: set[str]) -> bool:
        o = await host.client.get(PINSIDECARS, "logship")
        return set(placed(o)) == clusters and all(
            "replicas" not in p for p in o["status"]["placements"])

    await until(lambda: on({"zone-a-1", "zone-b-1", "zone-c-1"}))
    await host.set_ready("zone-b-1", False)
    await until(lambda: on({"zone-a-1", "zone-c-1"}), timeout=GRACE + 5)
