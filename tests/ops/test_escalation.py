"""Remediation's escalation table (pure)."""

from __future__ import annotations

from pincompute.ops.escalation import (
    ESCALATION,
    Action,
    Delays,
    Seen,
    Step,
    decide,
    seen,
)

DELAYS = Delays(grace=10, cordon_wait=60, drain_wait=120)


def test_the_table_covers_every_step_and_escalates_in_order() -> None:
    assert set(ESCALATION) == {(s, o) for s in Step for o in Seen}
    path = [ESCALATION[(step, Seen.DUE)] for step in
            (Step.SUSPECT, Step.CORDONED, Step.DRAINED)]
    assert path == [Action.CORDON, Action.DRAIN, Action.REPLACE]
    assert all(ESCALATION[(s, Seen.HEALTHY)] is Action.RECOVER
               for s in (Step.CORDONED, Step.DRAINING, Step.DRAINED))
    assert {ESCALATION[(Step.GAVE_UP, o)] for o in Seen} == {Action.NONE}


def test_delays_shrink_for_a_flapping_node_and_manual_repairs_are_due_at_once() -> None:
    def see(step: Step, in_step: float, attempts: int = 1, manual: bool = False) -> Seen:
        return seen(unhealthy=True, manual=manual, step=step, in_step=in_step,
                    attempts=attempts, delays=DELAYS)

    assert see(Step.SUSPECT, 5) is Seen.UNHEALTHY and see(Step.SUSPECT, 10) is Seen.DUE
    assert see(Step.CORDONED, 30) is Seen.UNHEALTHY
    assert see(Step.CORDONED, 0, attempts=2) is Seen.DUE  # second attempt drains at once
    assert see(Step.DRAINED, 0, attempts=2) is Seen.UNHEALTHY
    assert see(Step.DRAINED, 0, attempts=3) is Seen.DUE  # third replaces at once
    assert see(Step.SUSPECT, 0, manual=True) is Seen.DUE
    assert seen(unhealthy=False, manual=False, step=Step.CORDONED, in_step=0, attempts=1,
                delays=DELAYS) is Seen.HEALTHY


def test_after_max_attempts_a_cordon_gives_up() -> None:
    assert decide(Step.SUSPECT, Seen.DUE, attempts=2, max_attempts=3) is Action.CORDON
    assert decide(Step.SUSPECT, Seen.DUE, attempts=3, max_attempts=3) is Action.GIVE_UP
    assert decide(Step.CORDONED, Seen.DUE, attempts=3, max_attempts=3) is Action.DRAIN
