"""The container state machine and the pod planner, read as tables: no processes."""

from __future__ import annotations

import pytest

from pincompute.node.containerlifecycle import (
    RESTART_ON_EXIT,
    TRANSITIONS,
    ContainerView,
    Event,
    IllegalTransition,
    Kill,
    PodView,
    Start,
    State,
    Stop,
    Update,
    exit_event,
    plan,
    transition,
)

W, SG, R, SP, B, T = (State.WAITING, State.STARTING, State.RUNNING, State.STOPPING,
                      State.BACKOFF, State.TERMINATED)


def test_every_state_has_a_row_and_only_terminated_is_quiet():
    assert set(TRANSITIONS) == set(State)
    for state, row in TRANSITIONS.items():
        assert row, state
        assert set(row.values()) <= set(State)
    assert TRANSITIONS[T] == {Event.UPDATE: W}


@pytest.mark.parametrize(("state", "event", "after"), [
    (W, Event.START, SG), (SG, Event.STARTED, R), (R, Event.KILL, SP),
    (SP, Event.EXITED_RESTART, B), (SP, Event.EXITED_REPLACE, W), (R, Event.EXITED_FINAL, T),
    (B, Event.START, SG), (B, Event.STOP, T), (T, Event.UPDATE, W), (W, Event.STOP, T)])
def test_allowed_transitions(state, event, after):
    assert transition(state, event) is after


@pytest.mark.parametrize(("state", "event"), [
    (W, Event.STARTED), (T, Event.START), (R, Event.START), (B, Event.KILL),
    (SP, Event.START), (W, Event.EXITED_FINAL)])
def test_illegal_transitions_raise(state, event):
    with pytest.raises(IllegalTransition):
        transition(state, event)


def test_restart_policy_table():
    assert {k: v for k, v in RESTART_ON_EXIT.items() if v} == {
        ("Always", True): True, ("Always", False): True, ("OnFailure", False): True}


@pytest.mark.parametrize(("kwargs", "event"), [
    ({"policy": "Never", "sidecar": True, "succeeded": True}, Event.EXITED_RESTART),
    ({"policy": "Never", "sidecar": False, "succeeded": False}, Event.EXITED_FINAL),
    ({"policy": "OnFailure", "sidecar": False, "succeeded": False}, Event.EXITED_RESTART),
    ({"policy": "Always", "sidecar": False, "succeeded": True, "teardown": True},
     Event.EXITED_FINAL),
    ({"policy": "Never", "sidecar": False, "succeeded": True, "replacing": True},
     Event.EXITED_REPLACE),
])
def test_exit_event(kwargs, event):
    kwargs = {"teardown": False, "replacing": False, **kwargs}
    assert exit_event(**kwargs) is event


def view(*containers, now=100.0, **kw):
    return PodView(containers=list(containers), now=now, **kw)


def c(name, state=W, *, sidecar=False, ready=False, **kw):
    return ContainerView(name=name, sidecar=sidecar, state=state, ready=ready, **kw)


def test_sidecars_start_one_at_a_time_in_order_then_mains():
    p = plan(view(c("app"), c("s1", sidecar=True), c("s2", sidecar=True)))
    assert p.actions == (Start("s1"),)
    assert not p.initialized
    # s1 started but not ready yet: nothing else may start.
    p = plan(view(c("app"), c("s1", R, sidecar=True), c("s2", sidecar=True)))
    assert p.actions == ()
    p = plan(view(c("app"), c("s1", R, sidecar=True, ready=True), c("s2", sidecar=True)))
    assert p.actions == (Start("s2"),)
    p = plan(view(c("app"), c("app2"), c("s1", R, sidecar=True, ready=True),
                  c("s2", R, sidecar=True, ready=True)))
    assert p.actions == (Start("app"), Start("app2"))
    assert p.initialized


def test_without_sidecars_mains_start_together():
    assert plan(view(c("a"), c("b"))).actions == (Start("a"), Start("b"))


def test_after_initialization_a_sidecar_restart_does_not_block_mains():
    p = plan(view(c("app", R, ready=True), c("s1", B, sidecar=True, backoff_until=90.0),
                  initialized=True))
    assert p.actions == (Start("s1"),)


def test_backoff_waits_until_due_and_says_when():
    p = plan(view(c("app", B, backoff_until=105.0)))
    assert p.actions == ()
    assert p.wake_at == 105.0
    assert plan(view(c("app", B, backoff_until=105.0), now=105.0)).actions == (Start("app"),)


def test_teardown_stops_mains_first_then_sidecars_in_reverse_order():
    containers = [c("s1", R, sidecar=True, ready=True), c("s2", R, sidecar=True, ready=True),
                  c("app", R, ready=True), c("helper", B)]
    p = plan(view(*containers, stopping=True, initialized=True))
    assert p.actions == (Kill("app", "Stopping"), Stop("helper"))
    assert p.teardown and not p.finished
    # Main still stopping: sidecars wait.
    p = plan(view(containers[0], containers[1], c("app", SP), c("helper", T), stopping=True,
                  initialized=True))
    assert p.actions == ()
    # Mains gone: the last sidecar goes first, alone.
    p = plan(view(containers[0], containers[1], c("app", T), c("helper", T), stopping=True,
                  initialized=True))
    assert p.actions == (Kill("s2", "Stopping"),)
    p = plan(view(containers[0], c("s2", T, sidecar=True), c("app", T), c("helper", T),
                  stopping=True, initialized=True))
    assert p.actions == (Kill("s1", "Stopping"),)
    p = plan(view(c("s1", T, sidecar=True), c("s2", T, sidecar=True), c("app", T),
                  c("helper", T), stopping=True, initialized=True))
    assert p.actions == () and p.finished


def test_finished_mains_tear_down_sidecars_without_deletion():
    p = plan(view(c("s1", R, sidecar=True, ready=True), c("job", T), initialized=True))
    assert p.teardown
    assert p.actions == (Kill("s1", "Stopping"),)


def test_unhealthy_and_outdated_containers_are_killed_alone():
    p = plan(view(c("a", R, ready=True, unhealthy="Liveness probe failed"),
                  c("b", R, ready=True, outdated=True), c("c", R, ready=True),
                  initialized=True))
    assert p.actions == (Kill("a", "Unhealthy", "Liveness probe failed"),
                         Kill("b", "SpecChanged",
                              "container spec changed; restarting with the new spec"))


def test_an_outdated_container_in_backoff_is_updated_and_started_at_once():
    p = plan(view(c("a", B, outdated=True, backoff_until=500.0), initialized=True))
    assert p.actions == (Update("a"), Start("a"))
