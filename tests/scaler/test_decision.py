"""Windows, policies, cooldown and bounds, as tables over a timeline."""

from __future__ import annotations

import pytest

from pincompute.scaler.decision import (
    Behaviour,
    History,
    Policy,
    Rules,
    decide,
    down_limit,
    record_scale,
    seed,
    up_limit,
)

HPA_DEFAULT = Behaviour(
    up=Rules(0, "Max", (Policy("Percent", 100, 15), Policy("Pods", 4, 15))),
    down=Rules(300, "Max", (Policy("Percent", 100, 15),)), cooldown_seconds=0)


def run(timeline: list[tuple[float, int]], *, behaviour: Behaviour = HPA_DEFAULT,
        start: int = 2, floor: int = 1, maximum: int = 20) -> list[int]:
    """Feed (time, proposal) steps; apply every decision; return the replicas after each."""
    history, current, last, out = History(), start, None, []
    seed(history, now=timeline[0][0] - 1000, current=current)
    for now, proposal in timeline:
        d = decide(current=current, proposal=proposal, behaviour=behaviour, floor=floor,
                   maximum=maximum, now=now, history=history, last_scale_time=last)
        if d.replicas != current:
            record_scale(history, now=now, before=current, after=d.replicas)
            current, last = d.replicas, now
        out.append(current)
    return out


def test_up_fast_down_only_after_the_window() -> None:
    # load rises at t=0 (2 -> 6 -> 8: +4 pods per 15 s), falls at t=60; the down
    # window is 300 s from the last high recommendation (t=15)
    steps = [(0, 8), (15, 8), (60, 2), (120, 2), (300, 2), (314, 2), (316, 2)]
    assert run(steps) == [6, 8, 8, 8, 8, 8, 2]


def test_scale_up_rate_is_limited_by_policies() -> None:
    # +100% or +4 per 15 s, whichever is more: 2 -> 6 -> 12 -> 20 (max)
    assert run([(0, 50), (15, 50), (30, 50), (45, 50)]) == [6, 12, 20, 20]
    # within one period the limit counts what was already added
    assert run([(0, 50), (5, 50), (16, 50)]) == [6, 6, 12]


@pytest.mark.parametrize(("select", "expected"), [("Max", 6), ("Min", 5), ("Disabled", 3)])
def test_select_policy(select: str, expected: int) -> None:
    # from 3: +100% allows 6, +2 pods allows 5
    rules = Rules(0, select, (Policy("Percent", 100, 15), Policy("Pods", 2, 15)))  # type: ignore[arg-type]
    assert up_limit(3, rules, [], 0) == expected
    behaviour = Behaviour(up=rules, down=HPA_DEFAULT.down, cooldown_seconds=0)
    assert run([(0, 10)], behaviour=behaviour, start=3)[0] == expected


def test_scale_down_policy_in_pods_per_period() -> None:
    behaviour = Behaviour(up=HPA_DEFAULT.up, down=Rules(0, "Max", (Policy("Pods", 1, 60),)),
                          cooldown_seconds=0)
    assert run([(0, 1), (30, 1), (61, 1), (122, 1)], behaviour=behaviour, start=4) == \
        [3, 3, 2, 1]
    assert down_limit(10, Rules(0, "Max", (Policy("Percent", 50, 60),)), [], 0) == 5


def test_cooldown_holds_both_directions() -> None:
    behaviour = Behaviour(up=HPA_DEFAULT.up, down=Rules(0, "Max", HPA_DEFAULT.down.policies),
                          cooldown_seconds=60)
    # up at 0; the up asked at 30 waits until 60; the down asked at 90 waits until 120
    assert run([(0, 4), (30, 8), (60, 8), (90, 2), (119, 2), (120, 2)],
               behaviour=behaviour) == [4, 4, 8, 8, 8, 2]


def test_cooldown_decision_says_until_when() -> None:
    history = History()
    d = decide(current=2, proposal=5, behaviour=Behaviour(HPA_DEFAULT.up, HPA_DEFAULT.down, 60),
               floor=1, maximum=10, now=100, history=history, last_scale_time=70)
    assert (d.desired, d.replicas, d.cooldown_until) == (5, 2, 130)


@pytest.mark.parametrize(("current", "proposal", "floor", "maximum", "replicas", "limit"), [
    (2, 30, 1, 10, 6, "ScaleUpLimit"),       # the rate limit first (+4 pods) ...
    (8, 30, 1, 10, 10, "TooManyReplicas"),   # ... then the maximum
    (2, 1, 2, 10, 2, "TooFewReplicas"),      # never below the floor
    (12, 12, 1, 10, 10, "TooManyReplicas"),  # out of bounds: straight to the bound
    (1, 1, 5, 10, 5, "TooFewReplicas"),      # a schedule's floor: at once
    (3, None, 1, 10, 3, "StabilizationWindow"),  # no metrics: towards min, after the window
])
def test_bounds(current: int, proposal: int | None, floor: int, maximum: int, replicas: int,
                limit: str) -> None:
    history = History()
    seed(history, now=0, current=current)
    d = decide(current=current, proposal=proposal, behaviour=HPA_DEFAULT, floor=floor,
               maximum=maximum, now=10, history=history, last_scale_time=5)
    assert d.replicas == replicas
    assert d.limit is not None and d.limit.reason == limit


def test_bounds_ignore_the_cooldown() -> None:
    behaviour = Behaviour(HPA_DEFAULT.up, HPA_DEFAULT.down, cooldown_seconds=600)
    d = decide(current=1, proposal=1, behaviour=behaviour, floor=5, maximum=10, now=10,
               history=History(), last_scale_time=5, floor_reason="schedule peak")
    assert d.replicas == 5 and "schedule peak" in d.reason


def test_stabilization_up_window() -> None:
    behaviour = Behaviour(up=Rules(30, "Max", HPA_DEFAULT.up.policies), down=HPA_DEFAULT.down,
                          cooldown_seconds=0)
    # scale-up only once every recommendation of the last 30 s asks for it
    assert run([(0, 2), (10, 6), (20, 6), (41, 6)], behaviour=behaviour) == [2, 2, 2, 6]
