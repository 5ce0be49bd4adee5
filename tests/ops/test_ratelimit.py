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
