"""The sync loop: kicks coalesce, passes never overlap, failures retry, idle costs no task."""

from __future__ import annotations

import asyncio
import time

from pincompute.node.syncloop import SyncLoop

from .conftest import eventually


class Counter(SyncLoop):
    __slots__ = ("active", "fail", "failures", "overlaps", "passes", "release")

    def __init__(self) -> None:
        super().__init__()
        self.passes = 0
        self.active = 0
        self.overlaps = 0
        self.failures = 0
        self.fail = False
        self.release = asyncio.Event()
        self.release.set()

    async def sync(self) -> None:
        self.active += 1
        self.overlaps += self.active > 1
        self.passes += 1
        try:
            await self.release.wait()
            if self.fail:
                self.fail = False
                raise RuntimeError("boom")
        finally:
            self.active -= 1

    def sync_failed(self) -> None:
        self.failures += 1


async def test_kicks_during_a_pass_coalesce_into_one_more_pass():
    loop = Counter()
    loop.release.clear()
    loop.kick()
    await asyncio.sleep(0)
    for _ in range(5):
        loop.kick()  # while the first pass waits
    assert loop.kicked
    loop.release.set()
    await loop.wait_idle()
    assert (loop.passes, loop.overlaps) == (2, 0)
    assert not loop.kicked


async def test_a_failed_pass_is_retried():
    loop = Counter()
    loop.fail = True
    started = time.monotonic()
    loop.kick()
    await loop.wait_idle()
    assert (loop.passes, loop.failures) == (1, 1)

    async def retried() -> bool:
        return loop.passes == 2

    await eventually(retried)
    assert time.monotonic() - started >= 0.9  # RETRY_AFTER_FAILURE


async def test_the_earliest_wake_up_wins_and_halt_cancels_it():
    loop = Counter()
    now = time.monotonic()
    loop.wake_at(now + 10)
    loop.wake_at(now + 0.05)
    loop.wake_at(now + 5)  # later than the one armed: ignored
    await asyncio.sleep(0.2)
    await loop.wait_idle()
    assert loop.passes == 1
    loop.wake_at(time.monotonic() + 0.05)
    await loop.halt(background=True)
    await asyncio.sleep(0.1)
    assert loop.passes == 1


async def test_halt_waits_for_background_work():
    loop = Counter()
    done = []

    async def work() -> None:
        await asyncio.sleep(0.05)
        done.append(True)

    loop.in_background(work())
    await loop.halt(background=True)
    assert done == [True]
