from __future__ import annotations

from pincompute.scheduler.framework import CycleState, WaitingPod
from tests.scheduler.support import ManualTimers, info, pod


def test_all_plugins_must_allow_and_any_may_reject() -> None:
    timers = ManualTimers()
    results: list[tuple[str, bool, str]] = []
    wp = WaitingPod(info(pod("p")), "n", CycleState(), {"A": 10, "B": 10},
                    call_later=timers.call_later,
                    on_done=lambda w, st: results.append((w.info.name, st.ok, st.plugin)))
    wp.allow("A")
    assert not results and not wp.done
    wp.allow("B")
    assert results == [("p", True, "")] and timers.pending == 0
    wp.reject("A", "too late")  # after the verdict: ignored
    assert len(results) == 1


def test_timeouts_reject_on_the_plugins_behalf() -> None:
    timers = ManualTimers()
    results: list[str] = []
    WaitingPod(info(pod("p")), "n", CycleState(), {"A": 3},
               call_later=timers.call_later, on_done=lambda w, st: results.append(st.message),
               timeout_message=lambda plugin: f"{plugin} gave up")
    timers.advance(2.9)
    assert not results
    timers.advance(0.2)
    assert results == ["A gave up"]
