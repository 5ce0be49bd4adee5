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
        await seen[follower].wait_for(lambda items: "default/work" in items, timeout=10.0)
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
        await asyncio.wait_for(run, 10.0)
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


async def test_a_runnable_added_while_running_starts_at_once(client: KubeClient) -> None:
    mgr = Manager(shutdown_timeout=1.0)
    ran = asyncio.Event()
    cancelled: list[str] = []

    async def late() -> None:
        ran.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.append("late")
            raise

    async with mgr:
        mgr.add_runnable(late, name="late")
        await asyncio.wait_for(ran.wait(), 2.0)
    assert cancelled == ["late"]
    with pytest.raises(RuntimeError, match="stopped"):
        mgr.add_runnable(late)


def _child(client: KubeClient, name: str, seen: Notifier, *,
           hold: asyncio.Event | None = None, shutdown_timeout: float = 1.0) -> Manager:
    """A child manager with one controller over its own ConfigMap informer."""
    child = Manager(name=name, shutdown_timeout=shutdown_timeout)
    cms = child.informer(client, CONFIGMAPS)

    async def reconcile(req: Request) -> None:
        seen.append(req.key)
        if hold is not None:
            await hold.wait()

    child.controller(f"cms-{name}", reconcile).for_(cms)
    return child


async def test_child_managers_come_and_go_while_the_parent_runs(client: KubeClient) -> None:
    await client.create(CONFIGMAPS, configmap("work"))
    parent = Manager(name="parent", shutdown_timeout=1.0)
    seen = {n: Notifier() for n in ("early", "late", "other")}
    early = _child(client, "early", seen["early"])
    parent.add_child(early)
    async with parent:
        await seen["early"].wait_for(lambda items: items == ["default/work"])
        # Added while the parent runs: starts at once, with warm informers of its own.
        late = _child(client, "late", seen["late"])
        parent.add_child(late)
        await asyncio.wait_for(late.wait_started(), 2.0)
        await seen["late"].wait_for(lambda items: items == ["default/work"])
        other = _child(client, "other", seen["other"])
        parent.add_child(other)
        assert parent.children == [early, late, other]
        with pytest.raises(ValueError, match="already exists"):
            parent.add_child(_child(client, "late", Notifier()))

        # Removed: stopped whole (controllers, informers); the others carry on.
        await parent.remove_child(late)
        assert parent.children == [early, other]
        assert late.controllers[0].queue.shutting_down
        assert not any(i.running for i in late.informers.informers)
        with pytest.raises(LookupError):
            await parent.remove_child(late)
        await client.create(CONFIGMAPS, configmap("more"))
        await seen["early"].wait_for(lambda items: "default/more" in items)
        await seen["other"].wait_for(lambda items: "default/more" in items)
        assert "default/more" not in seen["late"].items
    # The parent's shutdown stops the children it still has.
    for child in (early, other):
        assert child.controllers[0].queue.shutting_down
        assert not any(i.running for i in child.informers.informers)


async def test_a_child_is_gated_on_the_parents_lease_and_stops_at_once_without_it(
        client: KubeClient) -> None:
    await client.create(CONFIGMAPS, configmap("work"))
    parent = Manager(name="solo", leader_election=election("solo"),
                     leader_election_client=client, shutdown_timeout=5.0)
    seen = Notifier()
    hold = asyncio.Event()   # never set: the child's reconcile is in flight when the lease goes
    parent.add_child(_child(client, "member", seen, hold=hold, shutdown_timeout=5.0))
    with pytest.raises(ValueError, match="elector"):
        parent.add_child(Manager(name="x", leader_election=election("x"),
                                 leader_election_client=client))
    run = asyncio.ensure_future(parent.run())
    await seen.wait_for(lambda items: bool(items))
    assert parent.is_leader
    lease = await client.get(LEASES, "mgr", namespace="default")
    lease["spec"]["holderIdentity"] = "usurper"
    lease["spec"]["leaseDurationSeconds"] = 30
    await client.update(LEASES, lease)
    loop = asyncio.get_running_loop()
    lost_at = loop.time()
    with pytest.raises(LeadershipLost):
        await asyncio.wait_for(run, 10.0)
    # No grace for the child either (a successor may already lead): not its 5 s.
    assert loop.time() - lost_at < 4.0  # (under the 5 s, with slack for a loaded machine)


async def test_a_failing_child_fails_the_parent(client: KubeClient) -> None:
    parent = Manager(name="parent", shutdown_timeout=1.0)
    child = Manager(name="child", shutdown_timeout=1.0)

    async def broken() -> None:
        raise RuntimeError("child bug")

    child.add_runnable(broken)
    run = asyncio.ensure_future(parent.run())
    await parent.wait_started()
    parent.add_child(child)
    with pytest.raises(RuntimeError, match="child bug"):
        await asyncio.wait_for(run, 5.0)


def test_building_rules(client: KubeClient) -> None:
    mgr = Manager()

    async def noop(req: Request) -> None:
        return None

    mgr.controller("x", noop)
    with pytest.raises(ValueError):
        mgr.controller("x", noop)
    with pytest.raises(ValueError):
        Manager(leader_election=election("a"))   # needs a client
