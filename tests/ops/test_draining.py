"""What one drain pass remembers of the apps' budgets."""

from __future__ import annotations

from pincompute.ops.draining import PassMemo


def test_room_the_api_gave_is_spent_then_the_app_refuses() -> None:
    memo = PassMemo()
    memo.allowed("uid-a", 2, app="ns/a", pod="a-0")  # room for two more after a-0
    assert memo.spend("uid-a", pod="a-1")
    assert "uid-a" not in memo.refused
    assert memo.spend("uid-a", pod="a-2")
    assert memo.refused["uid-a"] == ("PinApp ns/a: its budget has no room until pod a-2 is "
                                     "replaced", "ns/a")
    assert not memo.spend("uid-a", pod="a-3")  # refused now: nothing left to spend


def test_no_room_refuses_at_once_and_no_budget_remembers_nothing() -> None:
    memo = PassMemo()
    memo.allowed("uid-b", 0, app="ns/b", pod="b-0")
    assert "uid-b" in memo.refused and not memo.spend("uid-b", pod="b-1")
    memo.allowed("uid-c", None, app="", pod="c-0")  # no budget: the API is asked each time
    assert not memo.spend("uid-c", pod="c-1") and "uid-c" not in memo.refused
    memo.refuse("uid-d", "no", "ns/d")
    assert memo.refused["uid-d"] == ("no", "ns/d")
