import pytest

from pincompute.node.backoff import CRASH_LOOP, Backoff, BackoffPolicy


def test_kubernetes_defaults_double_from_10s_to_5min():
    b = Backoff(CRASH_LOOP)
    delays = [b.next_delay(ran_for=1.0) for _ in range(7)]
    assert delays == [10, 20, 40, 80, 160, 300, 300]


def test_a_long_run_resets_the_backoff():
    b = Backoff(BackoffPolicy(initial=1, maximum=8, reset_after=60))
    assert [b.next_delay(ran_for=0) for _ in range(3)] == [1, 2, 4]
    assert b.next_delay(ran_for=60) == 1
    assert b.next_delay(ran_for=0) == 2
    b.reset()
    assert b.next_delay(ran_for=0) == 1


def test_policy_is_checked():
    with pytest.raises(ValueError):
        BackoffPolicy(initial=10, maximum=5)
    assert Backoff(BackoffPolicy(initial=0, maximum=0)).next_delay(ran_for=0) == 0
