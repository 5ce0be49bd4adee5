import asyncio
import time

import pytest

from pincompute.kube.backends.kubernetes.ratelimit import TokenBucket


def test_burst_then_paced() -> None:
    bucket = TokenBucket(qps=100, burst=5)
    delays = [bucket.reserve() for _ in range(8)]
    assert delays[:5] == [0.0] * 5
    # Later callers reserve slots 10 ms apart instead of all waking at once.
    assert delays[5] == pytest.approx(0.01, abs=0.002)
    assert delays[7] == pytest.approx(0.03, abs=0.003)


async def test_acquire_waits_for_its_slot() -> None:
    bucket = TokenBucket(qps=50, burst=1)
    start = time.monotonic()
    await asyncio.gather(*(bucket.acquire() for _ in range(6)))
    assert time.monotonic() - start >= 0.09  # five paced slots of 20 ms


def test_rejects_nonsense() -> None:
    with pytest.raises(ValueError):
        TokenBucket(qps=0, burst=1)
