"""Exponential back-off: the formula and the per-retrier counter."""

from __future__ import annotations

import asyncio

import pytest

from pincompute.runtime.backoff import Backoff, BackoffPolicy, exponential_delay


def test_exponential_delay_doubles_from_initial_up_to_the_cap() -> None:
    delays = [exponential_delay(n, initial=0.5, maximum=30.0) for n in range(9)]
    assert delays == [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0, 30.0]
    assert exponential_delay(-1, initial=0.5, maximum=30.0) == 0.5
    assert exponential_delay(3, initial=1.0, maximum=100.0, factor=3.0) == 27.0
    # Far past the cap the power would overflow a float: it is the cap.
    assert exponential_delay(5000, initial=0.005, maximum=1000.0) == 1000.0
    assert exponential_delay(10**9, initial=1.0, maximum=7.0, factor=10.0) == 7.0


def test_backoff_counts_failures_and_resets() -> None:
    b = Backoff(BackoffPolicy(initial=10.0, maximum=300.0))
    assert [b.next_delay() for _ in range(7)] == [10.0, 20.0, 40.0, 80.0, 160.0, 300.0, 300.0]
    assert b.failures == 7
    b.reset()
    assert b.failures == 0 and b.next_delay() == 10.0


def test_a_long_enough_run_resets_before_the_next_delay() -> None:
    # The kubelet's crash-loop rule: a container that ran reset_after seconds was healthy.
    b = Backoff(BackoffPolicy(initial=10.0, maximum=300.0, reset_after=600.0))
    assert b.next_delay(ran_for=1.0) == 10.0
    assert b.next_delay(ran_for=599.0) == 20.0
    assert b.next_delay(ran_for=600.0) == 10.0
    assert b.next_delay() == 20.0


def test_jitter_stretches_within_bounds_and_can_be_left_out() -> None:
    b = Backoff(BackoffPolicy(initial=1.0, maximum=8.0, jitter=0.5))
    for expected in (1.0, 2.0, 4.0, 8.0, 8.0):
        delay = b.next_delay()
        assert expected <= delay < expected * 1.5
    b.reset()
    assert b.next_delay(jitter=False) == 1.0


@pytest.mark.parametrize("options", [
    {"initial": -1.0, "maximum": 1.0},
    {"initial": 2.0, "maximum": 1.0},
    {"initial": 1.0, "maximum": 2.0, "factor": 0.5},
    {"initial": 1.0, "maximum": 2.0, "jitter": -0.1},
    {"initial": 1.0, "maximum": 2.0, "reset_after": 0.0},
])
def test_policy_rejects_nonsense(options: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        BackoffPolicy(**options)


async def test_sleep_waits_the_delay() -> None:
    b = Backoff(BackoffPolicy(initial=0.02, maximum=0.04))
    loop = asyncio.get_running_loop()
    start = loop.time()
    assert await b.sleep() == 0.02
    assert await b.sleep() == 0.04
    assert loop.time() - start >= 0.06
