"""Rate limits per cluster and zone (pure)."""

from __future__ import annotations

from pincompute.ops.ratelimit import Limit, RateLimits


def test_a_sliding_window_per_key_counts_against_all_keys_at_once() -> None:
    limits = RateLimits()
    a = [Limit("cluster/a", 2, 60), Limit("zone/z", 3, 60)]
    b = [Limit("cluster/b", 2, 60), Limit("zone/z", 3, 60)]
    assert limits.acquire(a, now=0).allowed and limits.acquire(a, now=1).allowed
    refused = limits.acquire(a, now=2)
    assert not refused.allowed and refused.key == "cluster/a" and refused.retry_after == 58
    assert limits.used("zone/z") == 2  # the refusal took nothing
    assert limits.acquire(b, now=3).allowed
    zone = limits.acquire(b, now=4)
    assert not zone.allowed and zone.key == "zone/z"  # the shared zone is full
    assert limits.acquire(a, now=60.5).allowed  # the first slot freed


def test_a_restored_snapshot_keeps_the_window_and_counts_an_action_once() -> None:
    before = RateLimits()
    a = [Limit("cluster/a", 2, 60), Limit("zone/z", 3, 60)]
    assert before.acquire(a, now=100).allowed and before.acquire(a, now=130).allowed
    assert before.snapshot(now=165) == {"cluster/a": [130.0], "zone/z": [130.0]}  # 100 aged
    snapshot = before.snapshot(now=150)

    after = RateLimits()  # a restarted controller
    after.restore(snapshot)
    after.restore(snapshot)  # twice (two clusters of the zone saved it): still two actions
    refused = after.acquire(a, now=150)
    assert not refused.allowed and refused.key == "cluster/a" and refused.retry_after == 10
    assert after.acquire(a, now=160.5).allowed  # the first slot freed as it would have
