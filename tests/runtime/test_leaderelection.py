"""Leader election on Lease objects: one leader, fast hand-over on release, expiry, step-down."""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest

from pincompute.kube.protocol import KubeClient
from pincompute.kube.resource import LEASES
from pincompute.runtime.leaderelection import LeaderElectionConfig, LeaderElector
from pincompute.runtime.metrics import RuntimeMetrics

pytestmark = pytest.mark.timeout(20)

# A hand-over on release takes one retry; one after a crash, a lease duration.  The lease is
# ten retries long so the two stay apart on a loaded machine, where the event loop can run
# late by several hundred milliseconds: bounds on how long things took carry that slack
# (SLACK), bounds on safety (nobody leads before the lease it saw expired) carry none.
LEASE = 2.0
RENEW = 1.0
RETRY = 0.2
SLACK = 1.0
MICRO_RFC3339 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")


@pytest.fixture
def store_kind() -> str:
    # These tests measure hand-over times of a fraction of a second; fsync latency
    # on a loaded machine would measure the disk instead.  Persistence plays no
    # part in the algorithm (the manager tests run it on both stores).
    return "memory"


class Candidate:
    """An elector plus the record of when it led (on the event loop's clock)."""

    def __init__(self, client: KubeClient, identity: str, timeline: list[tuple[float, str, str]],
                 *, release: bool = True, metrics: RuntimeMetrics | None = None) -> None:
        self.identity = identity
        self.timeline = timeline
        self.started = asyncio.Event()
        self.started_wall = 0.0  # wall clock, to compare with the lease's renewTime
        self.stopped = asyncio.Event()
        self.config = LeaderElectionConfig(
            name="ctrl", namespace="default", identity=identity, lease_duration=LEASE,
            renew_deadline=RENEW, retry_period=RETRY, release_on_cancel=release)
        self.elector = LeaderElector(client, self.config,
                                     on_started_leading=self._started,
                                     on_stopped_leading=self._stopped, metrics=metrics)
        self.task: asyncio.Task[None] | None = None

    def _now(self) -> float:
        return asyncio.get_running_loop().time()

    def _started(self) -> None:
        self.timeline.append((self._now(), "start", self.identity))
        self.started_wall = time.time()
        self.started.set()

    def _stopped(self) -> None:
        self.timeline.append((self._now(), "stop", self.identity))
        self.stopped.set()

    def run(self) -> Candidate:
        self.task = asyncio.ensure_future(self.elector.run())
        return self

    async def cancel(self) -> None:
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task


@pytest.fixture
async def timeline() -> AsyncIterator[list[tuple[float, str, str]]]:
    events: list[tuple[float, str, str]] = []
    yield events
    assert_never_two_leaders(events)


def assert_never_two_leaders(timeline: list[tuple[float, str, str]]) -> None:
    leading: set[str] = set()
    for _, what, who in sorted(timeline):
        if what == "start":
            assert not leading, f"{who} started leading while {leading} led"
            leading.add(who)
        else:
            leading.discard(who)


async def first_leader(*cands: Candidate) -> Candidate:
    waits = {asyncio.ensure_future(c.started.wait()): c for c in cands}
    done, pending = await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    for p in pending:
        p.cancel()
    return waits[next(iter(done))]


async def test_exactly_one_of_two_leads_and_release_hands_over_fast(
        client: KubeClient, timeline: list[tuple[float, str, str]]) -> None:
    metrics = RuntimeMetrics()
    a = Candidate(client, "a", timeline, metrics=metrics).run()
    b = Candidate(client, "b", timeline, metrics=metrics).run()
    try:
        leader = await first_leader(a, b)
        follower = b if leader is a else a
        assert leader.elector.is_leader and not follower.elector.is_leader
        # Several renew rounds pass; the follower sees the leader and stays out.
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(asyncio.shield(follower.started.wait()), 4 * RETRY)
        assert follower.elector.leader == leader.identity
        assert metrics.sample("leader_election_is_leader", {"lease": "default/ctrl"}) == 1

        lease = await client.get(LEASES, "ctrl", namespace="default")
        spec = lease["spec"]
        assert spec["holderIdentity"] == leader.identity
        assert spec["leaseDurationSeconds"] == 2
        assert MICRO_RFC3339.match(spec["acquireTime"])
        assert MICRO_RFC3339.match(spec["renewTime"])
        assert spec["renewTime"] > spec["acquireTime"]     # it has renewed since
        transitions = spec["leaseTransitions"]

        # The leader stops: it releases, and the follower takes over at its next
        # retry, well within a lease duration (which a take-over after expiry would need).
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        await leader.cancel()
        assert leader.stopped.is_set()
        released = (await client.get(LEASES, "ctrl", namespace="default"))["spec"]
        assert released["holderIdentity"] in ("", follower.identity)
        await asyncio.wait_for(follower.started.wait(), LEASE + SLACK)
        assert loop.time() - t0 < RETRY + SLACK < LEASE
        spec = (await client.get(LEASES, "ctrl", namespace="default"))["spec"]
        assert spec["holderIdentity"] == follower.identity
        assert spec["leaseTransitions"] == transitions + 1
    finally:
        await a.cancel()
        await b.cancel()


async def test_crashed_leader_is_replaced_after_lease_expires(
        client: KubeClient, timeline: list[tuple[float, str, str]]) -> None:
    a = Candidate(client, "a", timeline, release=False).run()
    await a.started.wait()
    b = Candidate(client, "b", timeline).run()
    try:
        loop = asyncio.get_running_loop()
        # "Crash": stop renewing without releasing.
        await a.cancel()
        t0 = loop.time()
        spec = (await client.get(LEASES, "ctrl", namespace="default"))["spec"]
        assert spec["holderIdentity"] == "a"
        await asyncio.wait_for(b.started.wait(), LEASE + RETRY + 2 * SLACK)
        waited = loop.time() - t0
        # It respected the lease: it trusted the last renew for a whole lease duration
        # (measured from the renew's own timestamp, so a late-running loop cannot hide an
        # early take-over) ...
        renewed = datetime.strptime(spec["renewTime"], "%Y-%m-%dT%H:%M:%S.%fZ")
        assert b.started_wall >= renewed.replace(tzinfo=UTC).timestamp() + LEASE - 0.01
        # ... and took over once it expired, at a retry after it.
        assert waited <= LEASE + RETRY + SLACK
    finally:
        await a.cancel()
        await b.cancel()


async def test_leader_steps_down_when_it_cannot_renew(
        client: KubeClient, timeline: list[tuple[float, str, str]]) -> None:
    a = Candidate(client, "a", timeline).run()
    await a.started.wait()
    loop = asyncio.get_running_loop()
    # Someone else grabs the lease behind its back (as after a long pause).
    lease = await client.get(LEASES, "ctrl", namespace="default")
    lease["spec"]["holderIdentity"] = "intruder"
    lease["spec"]["leaseDurationSeconds"] = 30
    await client.update(LEASES, lease)
    t0 = loop.time()
    await asyncio.wait_for(a.stopped.wait(), RENEW + RETRY + 2 * SLACK)
    assert loop.time() - t0 <= RENEW + RETRY + SLACK
    assert not a.elector.is_leader
    assert a.task is not None
    await asyncio.wait_for(a.task, 1.0)    # run() returns after losing the lease
    # It did not release what it no longer holds.
    spec = (await client.get(LEASES, "ctrl", namespace="default"))["spec"]
    assert spec["holderIdentity"] == "intruder"


async def test_many_candidates_one_leader_through_handovers(
        client: KubeClient, timeline: list[tuple[float, str, str]]) -> None:
    cands = [Candidate(client, f"c{i}", timeline).run() for i in range(4)]
    try:
        for _ in range(3):
            alive = [c for c in cands if c.task is not None and not c.task.done()]
            leader = await first_leader(*alive)
            assert sum(c.elector.is_leader for c in alive) == 1
            await leader.cancel()
    finally:
        for c in cands:
            await c.cancel()
    assert [w for _, w, _ in sorted(timeline)].count("start") == 3


def test_config_is_validated() -> None:
    with pytest.raises(ValueError):
        LeaderElectionConfig(name="x", namespace="d", lease_duration=1, renew_deadline=1)
    with pytest.raises(ValueError):
        LeaderElectionConfig(name="x", namespace="d", lease_duration=2, renew_deadline=1,
                             retry_period=1)
    with pytest.raises(ValueError):
        LeaderElectionConfig(name="x", namespace="d", identity="")
    assert LeaderElectionConfig(name="x", namespace="d").identity
