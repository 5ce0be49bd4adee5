"""What one drain pass remembers of the apps' budgets: refusals only."""

from __future__ import annotations

from pincompute.ops.draining import PassMemo


def test_an_eviction_that_used_the_last_room_refuses_the_rest_of_the_pass() -> None:
    memo = PassMemo()
    memo.allowed("uid-a", 2, app="ns/a", pod="a-0")  # room left: the API is asked again
    assert "uid-a" not in memo.refused
    memo.allowed("uid-a", 0, app="ns/a", pod="a-1")
    assert memo.refused["uid-a"] == ("PinApp ns/a: its budget has no room until pod a-1 is "
                                     "replaced", "ns/a")


def test_no_budget_remembers_nothing_and_a_refusal_is_kept() -> None:
    memo = PassMemo()
    memo.allowed("uid-c", None, app="", pod="c-0")  # no budget: the API is asked each time
    assert "uid-c" not in memo.refused
    memo.refuse("uid-d", "no", "ns/d")
    assert memo.refused["uid-d"] == ("no", "ns/d")
