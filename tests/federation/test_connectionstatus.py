"""How a member's state becomes its ``Connected`` condition."""

from __future__ import annotations

from pincompute.federation.connectionstatus import CONDITION_OF, condition_for
from pincompute.federation.member import MemberState


def test_every_phase_has_a_condition_status() -> None:
    assert CONDITION_OF == {"Connecting": "Unknown", "Ready": "True", "Failed": "False"}


def test_the_condition_carries_the_reason_and_counts_repeated_failures() -> None:
    assert condition_for(MemberState("Ready", "Connected", "connected to x")) == (
        "True", "Connected", "connected to x")
    assert condition_for(MemberState("Failed", "Timeout", "no answer", attempts=1)) == (
        "False", "Timeout", "no answer")
    assert condition_for(MemberState("Failed", "Timeout", "no answer", attempts=4)) == (
        "False", "Timeout", "no answer (4 attempts)")
