"""The manager: many controllers over shared informers, graceful shutdown, leader gating."""

from __future__ import annotations

import asyncio
import contextlib

import pytest

from pincompute.kube.protocol import KubeClient
from pincompute.kube.resource import CONFIGMAPS, LEASES, SECRETS
from pincompute.runtime.leaderelection import LeaderElectionConfig
from pincompute.runtime.manager import LeadershipLost, Manager
from pincompute.runtime.reconciler import Request

from .support import Notifier, configmap

pytestmark = pytest.mark.timeout(20)


def election(identity: str) -> LeaderElectionConfig:
    return LeaderElectionConfig(name="mgr", namespace="default", identity=identity,
                                lease_duration=1.0, renew_deadline=0.5, retry_period=0.1)


async def test_two_controllers_with_workers_over_shared_informers(client: KubeClient) -> None:
    for i in range(6):
        await client.create(CONFIGMAPS, configmap(f"cm{i}"))
    await client.create(SECRETS, {"metadata": {"name": "s0", "namespace": "default"}})

    mgr = Manager(name="test", shutdown_timeout=2.0)
    cms = mgr.informer(client, CONFIGMAPS)
    assert mgr.informer(client, CONFIGMAPS) is cms   # shared
    secrets = mgr.informer(client, SECRETS)

    in_parallel = 0
    peak = 0
    gate = asyncio.Event()
    cm_seen = Notifier()
    secret_seen = Notifier()

    async def reconcile_cm(req: Request) -> None:
        nonlocal in_parallel, peak
        in_parallel += 1
        peak = max(peak, in_parallel)
        if peak >= 3:
            gate.set()
        # Hold until three run at once (or a moment passes) to show the workers.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(gate.wait(), 0.5)
        in_parallel -= 1
        cm_seen.append(req.key)

    async def reconcile_secret(req: Request) -> None:
        # Controllers read shared caches, including ones another controller fills.
        secret_seen.append((req.key, len(cms.list())))

    mgr.controller("configmaps", reconcile_cm, workers=3).for_(cms)
    mgr.controller("secrets", reconcile_secret, workers=2).for_(secrets)
    assert [c.name for c in mgr.controllers] == ["configmaps", "secrets"]

    async with mgr:
        assert mgr.is_leader
        await cm_seen.wait_for(lambda items: len(set(items)) == 6)
        await secret_seen.wait_for(lambda items: len(items) == 1)
        await client.create(SECRETS, {"metadata": {"name": "s1", "namespace": "default"}})
        await secret_seen.wait_for(lambda items: len(items) == 2)
    assert peak == 3
    assert secret_seen.items[0] == ("default/s0", 6)   # caches were synced first
    m = mgr.metrics
    assert m.sample("controller_max_concurrent_reconciles", {"controller": "configmaps"}) == 3
    assert m.sample("reconcile_total", {"controller": "secrets", "result": "success"}) == 2
    assert not cms.running   # informers stopped with the manager


async def test_graceful_shutdown_waits_for_in_flight_reconcile(client: KubeClient) -> None:
    await client.create(CONFIGMAPS, configmap("slow"))
    mgr = Manager(shutdown_timeout=5.0)
    cms = mgr.informer(client, CONFIGMAPS)
    started = asyncio.Event()
    release = asyncio.Event()
    outcome: list[str] = []

    async def reconcile(req: Request) -> None:
        started.set()
        await release.wait()
        # The cache is still there while finishing up.
        outcome.append(f"finished, cache has {len(cms.list())}")

    mgr.controller("slow", reconcile).for_(cms)
    run = asyncio.ensure_future(mgr.run())
    await started.wait()
    mgr.stop()
    # Shutdown is waiting for the reconcile; the manager has not finished.
    done, _ = await asyncio.wait({run}, timeout=0.1)
    assert not done
    assert cms.running
    release.set()
    await asyncio.wait_for(run, 5.0)
    assert outcome == ["finished, cache has 1"]
    assert not cms.running


async def test_shutdown_timeout_cancels_stuck_reconciles(client: KubeClient) -> None:
    await client.create(CONFIGMAPS, configmap("stuck"))
    mgr = Manager(shutdown_timeout=0.05)
    started = asyncio.Event()
    outcome: list[str] = []

    async def reconcile(req: Request) -> None:
        started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            outcome.append("cancelled")
            raise

    mgr.controller("stuck", reconcile).for_(mgr.informer(client, CONFIGMAPS))
    run = asyncio.ensure_future(mgr.run())
    await started.wait()
    run.cancel()            # cancellation is a shutdown too
    with pytest.raises(asyncio.CancelledError):
        await run
    assert outcome == ["cancelled"]


async def test_leader_election_gates_controllers(client: KubeClient) -> None:
    await client.create(CONFIGMAPS, configmap("work"))
    seen: dict[str, Notifier] = {"a": Notifier(), "b": Notifier()}
    always: dict[str, Notifier] = {"a": Notifier(), "b": Notifier()}
    managers: dict[str, Manager] = {}
    for ident in ("a", "b"):
        mgr = Manager(name=ident, leader_election=election(ident),
                      leader_election_client=client, shutdown_timeout=1.0)
        cms = mgr.informer(client, CONFIGMAPS)

        async def reconcile(req: Request, ident: str = ident) -> None:
            seen[ident].append(req.key)

        async def observe(req: Request, ident: str = ident) -> None:
            always[ident].append(req.key)

        mgr.controller("gated", reconcile).for_(cms)
        mgr.controller("ungated", observe, needs_leader=False).for_(cms)
        managers[ident] = mgr

    runs = {i: asyncio.ensure_future(m.run()) for i, m in managers.items()}
    try:
        # Both run the ungated controller at once; only the leader runs the gated one.
        await always["a"].wait_for(lambda items: "default/work" in items)
        await always["b"].wait_for(lambda items: "default/work" in items)
        waits = {asyncio.ensure_future(n.wait_for(lambda items: bool(items))): i
                 for i, n in seen.items()}
        done, pending = await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        for p in pending:
            p.cancel()
        leader = waits[next(iter(done))]
        follower = "b" if leader == "a" else "a"
        assert managers[leader].is_leader and not managers[follower].is_leader
        assert seen[follower].items == []
        assert not managers[follower].controllers[0].started

        # The leader shuts down (releasing the lease): the follower takes over
        # promptly and reconciles with its already-warm cache.
        managers[leader].stop()
        await asyncio.wait_for(runs[leader], 5.0)
        await asyncio.wait_for(seen[follower].wait_for(lambda items: "default/work" in items),
                               3.0)
        assert managers[follower].is_leader
    finally:
        for m in managers.values():
            m.stop()
        await asyncio.gather(*runs.values(), return_exceptions=True)


async def test_losing_the_lease_shuts_down_and_raises(client: KubeClient) -> None:
    await client.create(CONFIGMAPS, configmap("work"))
    mgr = Manager(name="solo", leader_election=election("solo"),
                  leader_election_client=client, shutdown_timeout=5.0)
    seen = Notifier()

    async def reconcile(req: Request) -> None:
        seen.append(req.key)

    mgr.controller("c", reconcile).for_(mgr.informer(client, CONFIGMAPS))
    run = asyncio.ensure_future(mgr.run())
    await seen.wait_for(lambda items: bool(items))
    lease = await client.get(LEASES, "mgr", namespace="default")
    lease["spec"]["holderIdentity"] = "usurper"
    lease["spec"]["leaseDurationSeconds"] = 30
    await client.update(LEASES, lease)
    with pytest.raises(LeadershipLost):
        await asyncio.wait_for(run, 3.0)
    assert not mgr.is_leader
    # The lease it no longer held was left alone.
    spec = (await client.get(LEASES, "mgr", namespace="default"))["spec"]
    assert spec["holderIdentity"] == "usurper"


async def test_runnables_and_failures(client: KubeClient) -> None:
    mgr = Manager()
    ran = asyncio.Event()
    cancelled: list[str] = []

    async def background() -> None:
        ran.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.append("background")
            raise

    async def broken() -> None:
        await ran.wait()
        raise RuntimeError("runnable bug")

    mgr.add_runnable(background, needs_leader=False)
    mgr.add_runnable(broken)
    # A failing runnable takes the manager down (and everything is cleaned up).
    with pytest.raises(RuntimeError, match="runnable bug"):
        await asyncio.wait_for(mgr.run(), 5.0)
    assert cancelled == ["background"]
    with pytest.raises(RuntimeError, match="runs once"):
        await mgr.run()


def test_building_rules(client: KubeClient) -> None:
    mgr = Manager()

    async def noop(req: Request) -> None:
        return None

    mgr.controller("x", noop)
    with pytest.raises(ValueError):
        mgr.controller("x", noop)
    with pytest.raises(ValueError):
        Manager(leader_election=election("a"))   # needs a client
