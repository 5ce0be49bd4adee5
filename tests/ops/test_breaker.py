"""The circuit breaker's table and thresholds (pure)."""

from __future__ import annotations

import pytest

from pincompute.ops.breaker import (
    TRANSITIONS,
    Breaker,
    BreakerState,
    Reading,
    allowed_unhealthy,
    parse_max_unhealthy,
)


def test_the_table_is_complete_and_only_cools_down_into_closed() -> None:
    assert set(TRANSITIONS) == {(s, r) for s in BreakerState for r in Reading}
    assert TRANSITIONS[(BreakerState.CLOSED, Reading.OVER)] is BreakerState.OPEN
    assert TRANSITIONS[(BreakerState.OPEN, Reading.UNDER_COOLED)] is BreakerState.COOLING
    assert TRANSITIONS[(BreakerState.COOLING, Reading.OVER)] is BreakerState.OPEN
    into_closed = {key for key, new in TRANSITIONS.items()
                   if new is BreakerState.CLOSED and key[0] is not BreakerState.CLOSED}
    assert into_closed == {(BreakerState.COOLING, Reading.UNDER_COOLED)}


def test_the_default_keeps_51_percent_healthy() -> None:
    assert allowed_unhealthy("49%", 10) == 4  # 6 of 10 healthy is 60 % ≥ 51 %
    assert allowed_unhealthy("49%", 100) == 49
    assert allowed_unhealthy("49%", 1) == 0  # a lone node is never remediated
    assert allowed_unhealthy(3, 10) == 3
    assert parse_max_unhealthy("30%") == "30%"
    for bad in ("130%", "x%", -1, "3"):
        with pytest.raises(ValueError):
            parse_max_unhealthy(bad)


def test_a_storm_trips_cools_down_and_rearms_after_the_cooldown() -> None:
    b = Breaker("pool/general", max_unhealthy="30%", cooldown=10.0)
    assert b.evaluate(1, 5, now=0.0) is None and b.closed
    t = b.evaluate(2, 5, now=1.0)  # 40 % > 30 %
    assert t is not None and (t.old, t.new, t.allowed) == (BreakerState.CLOSED,
                                                          BreakerState.OPEN, 1)
    assert "2 of 5 nodes unhealthy (40%)" in b.describe()
    t = b.evaluate(0, 5, now=2.0)
    assert t is not None and t.new is BreakerState.COOLING
    assert b.evaluate(0, 5, now=11.0) is None  # 9 s of cooling: not yet
    assert b.evaluate(2, 5, now=11.5).new is BreakerState.OPEN  # type: ignore[union-attr]
    b.evaluate(0, 5, now=12.0)
    t = b.evaluate(0, 5, now=22.0)
    assert t is not None and t.new is BreakerState.CLOSED and b.closed
