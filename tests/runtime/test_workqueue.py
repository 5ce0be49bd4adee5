"""Work queue: dedup, exclusivity, re-queue after done, delays, back-off, rate limits, shutdown."""

from __future__ import annotations

import asyncio
import random

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from pincompute.runtime.workqueue import (
    BucketRateLimiter,
    ItemExponentialFailureRateLimiter,
    MaxOfRateLimiter,
    ShutDown,
    WorkQueue,
    default_rate_limiter,
)


class FakeClock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


# --- basic semantics -------------------------------------------------------------------------

def test_add_deduplicates_and_keeps_order() -> None:
    q: WorkQueue[str] = WorkQueue()
    for k in ("a", "b", "a", "c", "b", "a"):
        q.add(k)
    assert len(q) == 3
    assert [q.get_nowait() for _ in range(3)] == ["a", "b", "c"]
    with pytest.raises(asyncio.QueueEmpty):
        q.get_nowait()


def test_add_while_processing_requeues_once_after_done() -> None:
    q: WorkQueue[str] = WorkQueue()
    q.add("a")
    assert q.get_nowait() == "a"
    for _ in range(5):
        q.add("a")
    # Held by a worker: not handed out again, however often it is added.
    assert len(q) == 0
    with pytest.raises(asyncio.QueueEmpty):
        q.get_nowait()
    q.done("a")
    assert list(q.queued()) == ["a"]
    assert q.get_nowait() == "a"
    q.done("a")
    assert len(q) == 0 and "a" not in q


def test_done_without_readd_does_not_requeue() -> None:
    q: WorkQueue[str] = WorkQueue()
    q.add("a")
    q.get_nowait()
    q.done("a")
    assert len(q) == 0


async def test_get_waits_for_add() -> None:
    q: WorkQueue[str] = WorkQueue()
    getter = asyncio.ensure_future(q.get())
    await asyncio.sleep(0)
    assert not getter.done()
    q.add("x")
    assert await getter == "x"
    assert q.processing == {"x"}


async def test_cancelled_getter_passes_wakeup_on() -> None:
    q: WorkQueue[str] = WorkQueue()
    first = asyncio.ensure_future(q.get())
    second = asyncio.ensure_future(q.get())
    await asyncio.sleep(0)
    q.add("x")          # wakes `first` ...
    first.cancel()      # ... which is cancelled before it runs
    assert await second == "x"
    with pytest.raises(asyncio.CancelledError):
        await first


# --- exclusivity -----------------------------------------------------------------------------

async def test_no_key_processed_by_two_workers_at_once_stress() -> None:
    q: WorkQueue[int] = WorkQueue()
    rng = random.Random(42)
    in_flight: set[int] = set()
    overlaps: list[int] = []
    processed: dict[int, int] = {}
    last_add: dict[int, int] = {}
    last_start: dict[int, int] = {}
    tick = 0
    idle = asyncio.Event()

    async def worker() -> None:
        nonlocal tick
        while True:
            try:
                k = await q.get()
            except ShutDown:
                return
            try:
                if k in in_flight:
                    overlaps.append(k)
                in_flight.add(k)
                tick += 1
                last_start[k] = tick
                for _ in range(rng.randint(0, 3)):
                    await asyncio.sleep(0)
                processed[k] = processed.get(k, 0) + 1
                in_flight.discard(k)
            finally:
                q.done(k)
                if not len(q) and not q.processing:
                    idle.set()

    async def adder() -> None:
        nonlocal tick
        for _ in range(400):
            k = rng.randrange(10)
            tick += 1
            last_add[k] = tick
            q.add(k)
            if rng.random() < 0.5:
                await asyncio.sleep(0)

    workers = [asyncio.ensure_future(worker()) for _ in range(16)]
    await asyncio.gather(*(adder() for _ in range(8)))
    # No more adds: let the workers run dry, then stop them.
    if len(q) or q.processing:
        idle.clear()
        await idle.wait()
    q.shutdown()
    await asyncio.gather(*workers)

    assert overlaps == []
    # Dedup did real work, and no change was lost: every key was processed after
    # its last add.
    assert sum(processed.values()) < 8 * 400
    for k, added in last_add.items():
        assert last_start[k] > added


class WorkQueueMachine(RuleBasedStateMachine):
    """The queue against a model of client-go's dirty/processing/queue semantics."""

    def __init__(self) -> None:
        super().__init__()
        self.q: WorkQueue[str] = WorkQueue()
        self.queue: list[str] = []
        self.dirty: set[str] = set()
        self.processing: set[str] = set()

    @rule(item=st.sampled_from("abcde"))
    def add(self, item: str) -> None:
        self.q.add(item)
        if item in self.dirty:
            return
        self.dirty.add(item)
        if item not in self.processing:
            self.queue.append(item)

    @precondition(lambda self: bool(self.queue))
    @rule()
    def get(self) -> None:
        item = self.q.get_nowait()
        assert item not in self.processing, "handed to a second worker"
        assert item == self.queue.pop(0)
        self.processing.add(item)
        self.dirty.discard(item)

    @precondition(lambda self: bool(self.processing))
    @rule(data=st.data())
    def done(self, data: st.DataObject) -> None:
        item = data.draw(st.sampled_from(sorted(self.processing)))
        self.q.done(item)
        self.processing.discard(item)
        if item in self.dirty:
            self.queue.append(item)

    @invariant()
    def matches_model(self) -> None:
        queued = list(self.q.queued())
        assert queued == self.queue
        assert len(set(queued)) == len(queued)
        assert not set(queued) & self.q.processing
        assert self.q.processing == self.processing
        # Liveness: every dirty key is either queued or will be on done().
        for item in self.dirty:
            assert item in queued or item in self.processing


TestWorkQueueModel = WorkQueueMachine.TestCase
TestWorkQueueModel.settings = settings(max_examples=150, stateful_step_count=40,
                                       deadline=None)


# --- delays ----------------------------------------------------------------------------------

async def test_add_after_delivers_after_delay() -> None:
    q: WorkQueue[str] = WorkQueue()
    loop = asyncio.get_running_loop()
    start = loop.time()
    q.add_after("a", 0.05)
    assert len(q) == 0 and q.waiting == 1 and "a" in q
    assert await q.get() == "a"
    assert loop.time() - start >= 0.045
    assert q.waiting == 0


async def test_add_after_keeps_earliest_deadline() -> None:
    q: WorkQueue[str] = WorkQueue()
    loop = asyncio.get_running_loop()
    start = loop.time()
    q.add_after("a", 10.0)
    q.add_after("a", 0.02)   # earlier: replaces
    q.add_after("a", 5.0)    # later: ignored
    assert await asyncio.wait_for(q.get(), 2.0) == "a"
    assert loop.time() - start < 1.0
    assert q.waiting == 0


async def test_add_after_non_positive_is_immediate() -> None:
    q: WorkQueue[str] = WorkQueue()
    q.add_after("a", 0)
    q.add_after("b", -1)
    assert len(q) == 2


async def test_add_rate_limited_uses_per_item_backoff() -> None:
    q: WorkQueue[str] = WorkQueue(rate_limiter=ItemExponentialFailureRateLimiter(
        base_delay=0.01, max_delay=1.0))
    assert q.add_rate_limited("a") == pytest.approx(0.01)
    assert q.add_rate_limited("a") == pytest.approx(0.02)
    assert q.add_rate_limited("b") == pytest.approx(0.01)
    assert q.num_requeues("a") == 2
    q.forget("a")
    assert q.num_requeues("a") == 0
    assert q.add_rate_limited("a") == pytest.approx(0.01)
    got = {await q.get(), await q.get()}
    assert got == {"a", "b"}


# --- rate limiters ---------------------------------------------------------------------------

def test_exponential_backoff_grows_per_item_caps_and_resets() -> None:
    rl = ItemExponentialFailureRateLimiter(base_delay=0.005, max_delay=1000.0)
    delays = [rl.when("a") for _ in range(5)]
    assert delays == pytest.approx([0.005, 0.01, 0.02, 0.04, 0.08])
    assert rl.when("b") == pytest.approx(0.005)   # per item
    assert rl.num_requeues("a") == 5
    for _ in range(40):
        last = rl.when("a")
    assert last == 1000.0                          # capped
    for _ in range(100):
        assert rl.when("a") == 1000.0               # no overflow
    rl.forget("a")
    assert rl.num_requeues("a") == 0
    assert rl.when("a") == pytest.approx(0.005)


def test_token_bucket_allows_burst_then_spaces_at_qps() -> None:
    clock = FakeClock()
    rl = BucketRateLimiter(qps=10, burst=3, clock=clock)
    assert [rl.when(i) for i in range(3)] == [0.0, 0.0, 0.0]
    assert rl.when("x") == pytest.approx(0.1)
    assert rl.when("y") == pytest.approx(0.2)
    clock.t += 1.0   # refills, but never beyond the burst
    assert [rl.when(i) for i in range(3)] == pytest.approx([0.0, 0.0, 0.0])
    assert rl.when("z") == pytest.approx(0.1)


def test_max_of_takes_longest_and_forgets_all() -> None:
    clock = FakeClock()
    rl = MaxOfRateLimiter(
        ItemExponentialFailureRateLimiter(base_delay=0.005, max_delay=1000.0),
        BucketRateLimiter(qps=1, burst=1, clock=clock))
    assert rl.when("a") == pytest.approx(0.005)    # bucket had a token
    assert rl.when("b") == pytest.approx(1.0)      # bucket empty: it dominates
    assert rl.num_requeues("a") == 1
    rl.forget("a")
    assert rl.num_requeues("a") == 0


def test_default_rate_limiter_matches_client_go() -> None:
    rl = default_rate_limiter()
    exp, bucket = rl.limiters
    assert isinstance(exp, ItemExponentialFailureRateLimiter)
    assert (exp.base_delay, exp.max_delay) == (0.005, 1000.0)
    assert isinstance(bucket, BucketRateLimiter)
    assert (bucket.qps, bucket.burst) == (10.0, 100)


# --- shutdown --------------------------------------------------------------------------------

async def test_shutdown_wakes_getters_and_refuses_adds() -> None:
    q: WorkQueue[str] = WorkQueue()
    getters = [asyncio.ensure_future(q.get()) for _ in range(3)]
    await asyncio.sleep(0)
    q.add_after("later", 10.0)
    q.shutdown()
    results = await asyncio.gather(*getters, return_exceptions=True)
    assert all(isinstance(r, ShutDown) for r in results)
    q.add("a")
    q.add_after("b", 0.01)
    q.add_rate_limited("c")
    assert len(q) == 0 and q.waiting == 0
    with pytest.raises(ShutDown):
        await q.get()


async def test_shutdown_with_drain_waits_for_processing() -> None:
    q: WorkQueue[str] = WorkQueue()
    q.add("a")
    q.add("b")
    a = await q.get()
    q.add("a")   # dirty while held: must not come back after shutdown
    drain = asyncio.ensure_future(q.shutdown_with_drain(grace_period=5.0))
    await asyncio.sleep(0)
    assert not drain.done()
    with pytest.raises(ShutDown):
        q.get_nowait()            # queued "b" is dropped, not started
    q.done(a)
    assert await drain is True
    assert len(q) == 0


async def test_shutdown_with_drain_times_out() -> None:
    q: WorkQueue[str] = WorkQueue()
    q.add("a")
    await q.get()
    assert await q.shutdown_with_drain(grace_period=0.01) is False
    q.done("a")
    assert await q.shutdown_with_drain(grace_period=0.01) is True
