"""Slow start: doubling batches, side by side, stopping at the first failed batch."""

from __future__ import annotations

import asyncio

import pytest

from pincompute.member.slowstart import slow_start


async def test_batches_double_and_run_side_by_side() -> None:
    running = 0
    calls = 0

    async def call() -> int:
        nonlocal running, calls
        calls += 1
        running += 1
        await asyncio.sleep(0)
        peak.append(running)
        await asyncio.sleep(0.01)
        running -= 1
        return calls

    peak: list[int] = []
    done, error = await slow_start(10, call)
    assert error is None
    assert len(done) == 10
    # 1, 2, 4, then the 3 left: never more at once than the batch allows, and the
    # batch of 4 did run 4 at once.
    assert max(peak) == 4


async def test_the_first_failed_batch_ends_the_run() -> None:
    calls = 0

    async def call() -> int:
        nonlocal calls
        calls += 1
        if calls == 3:  # in the second batch (calls 2 and 3)
            raise RuntimeError("quota refused")
        return calls

    done, error = await slow_start(100, call)
    assert isinstance(error, RuntimeError)
    assert str(error) == "quota refused"
    assert done == [1, 2]  # the first batch and the batch's other call
    assert calls == 3  # no third batch


@pytest.mark.parametrize("count", [0, 1, 7])
async def test_every_call_is_made_once(count: int) -> None:
    calls = 0

    async def call() -> None:
        nonlocal calls
        calls += 1

    done, error = await slow_start(count, call)
    assert error is None and calls == count and len(done) == count
