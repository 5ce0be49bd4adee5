from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from pincompute.federation.clusterscheduler.division import (
    balanced,
    fill,
    proportional,
    skew,
    sticky,
)


def a(*v: int) -> np.ndarray:
    return np.array(v, dtype=np.int64)


def test_proportional_uses_largest_remainders_then_rank() -> None:
    assert proportional(10, a(1, 1, 1), a(99, 99, 99), a(0, 1, 2)).tolist() == [4, 3, 3]
    assert proportional(10, a(1, 1, 1), a(99, 99, 99), a(2, 1, 0)).tolist() == [3, 3, 4]
    assert proportional(7, a(3, 1), a(99, 99), a(0, 1)).tolist() == [5, 2]


def test_proportional_caps_and_water_fills() -> None:
    assert proportional(10, a(1, 1, 1), a(1, 99, 99), a(0, 1, 2)).tolist() == [1, 5, 4]
    # More than fits: everything that fits, no more.
    assert proportional(10, a(1, 1), a(2, 3), a(0, 1)).tolist() == [2, 3]
    assert proportional(5, a(0, 1), a(9, 9), a(0, 1)).tolist() == [0, 5]


def test_balanced_and_fill() -> None:
    assert balanced(9, a(2, 9, 9), a(0, 1, 2)).tolist() == [2, 4, 3]
    assert fill(9, a(4, 9, 9), a(1, 0, 2)).tolist() == [0, 9, 0]
    assert fill(12, a(4, 9, 9), a(0, 1, 2)).tolist() == [4, 8, 0]


def test_sticky_moves_only_the_difference() -> None:
    rank = a(0, 1, 2)
    caps = a(99, 99, 99)
    assert sticky(a(4, 4, 4), a(6, 6, 0), caps, rank).tolist() == [6, 6, 0]
    assert sticky(a(5, 5, 4), a(6, 6, 0), caps, rank).tolist() == [6, 6, 2]
    assert sticky(a(2, 2, 2), a(6, 6, 0), caps, rank).tolist() == [3, 3, 0]
    # A position that can no longer hold its replicas gives them up.
    assert sticky(a(6, 6, 0), a(6, 0, 6), a(99, 99, 0), rank).tolist() == [6, 6, 0]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 20), st.integers(0, 30), st.integers(0, 10)),
                min_size=1, max_size=8), st.integers(0, 100))
def test_division_laws(rows: list[tuple[int, int, int]], total: int) -> None:
    weights = a(*(w for w, _, _ in rows))
    caps = a(*(c for _, c, _ in rows))
    current = np.minimum(a(*(c for _, _, c in rows)), caps)
    rank = np.arange(len(rows))
    out = proportional(total, weights, caps, rank)
    assert (out >= 0).all() and (out <= caps).all()
    assert (out[weights == 0] == 0).all()
    room = int(caps[weights > 0].sum())
    assert int(out.sum()) == min(total, room)
    even = balanced(total, caps, rank)
    assert int(even.sum()) == min(total, int(caps.sum()))
    # Balanced: no position below another by more than one unless it is full.
    for i in range(len(rows)):
        for j in range(len(rows)):
            if even[i] < caps[i]:
                assert even[j] <= even[i] + 1
    moved = sticky(even, current, caps, rank)
    assert int(moved.sum()) == int(even.sum())
    assert (moved <= caps).all()
    # It moves no more than it must.
    assert int(np.abs(moved - current).sum()) <= int(np.abs(even - current).sum())
    assert skew(a()) == 0
