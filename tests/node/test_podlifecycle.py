"""The pod's states on the node: the table read as data, then walked by real (sim) pods."""

from __future__ import annotations

import pytest

from pincompute.kube.resource import PODS
from pincompute.node import worker as worker_module
from pincompute.node.containerlifecycle import IllegalTransition
from pincompute.node.podlifecycle import (
    FINISHED_STATES,
    POD_TRANSITIONS,
    PodEvent,
    PodState,
    grace_period,
    kill_grace,
    pod_transition,
)
from pincompute.node.simruntime import PREFIX

from .conftest import eventually, make_pod
from .test_agent import gone, phase_is, ready

SY, TG, TD, GO = PodState.SYNCING, PodState.TERMINATING, PodState.TERMINATED, PodState.GONE
ORDER = [SY, TG, TD, GO]


def test_every_state_has_a_row_and_only_gone_is_final():
    assert set(POD_TRANSITIONS) == set(PodState)
    assert POD_TRANSITIONS[GO] == {}
    for state, row in POD_TRANSITIONS.items():
        assert set(row.values()) <= set(PodState)
        assert bool(row) == (state is not GO)


def test_no_event_leads_backwards():
    # A stop is never undone; a finished pod never runs again.
    for state, row in POD_TRANSITIONS.items():
        for after in row.values():
            assert ORDER.index(after) >= ORDER.index(state), (state, after)
    assert FINISHED_STATES == {TD, GO}


@pytest.mark.parametrize(("state", "event", "after"), [
    (SY, PodEvent.STOP, TG), (SY, PodEvent.CONTAINERS_DONE, TD),
    (TG, PodEvent.STOP, TG), (TG, PodEvent.CONTAINERS_DONE, TD),
    (TD, PodEvent.STOP, TD), (TD, PodEvent.CONTAINERS_DONE, TD), (TD, PodEvent.RELEASE, GO)])
def test_allowed_transitions(state, event, after):
    assert pod_transition(state, event) is after


@pytest.mark.parametrize(("state", "event"), [
    (SY, PodEvent.RELEASE), (TG, PodEvent.RELEASE), (GO, PodEvent.STOP),
    (GO, PodEvent.CONTAINERS_DONE), (GO, PodEvent.RELEASE)])
def test_illegal_transitions_raise(state, event):
    with pytest.raises(IllegalTransition):
        pod_transition(state, event)


def test_grace_period_is_the_deletions_while_deleting():
    pod = {"metadata": {"deletionGracePeriodSeconds": 3},
           "spec": {"terminationGracePeriodSeconds": 20}}
    assert grace_period(pod, deleting=True) == 3.0
    assert grace_period(pod, deleting=False) == 20.0
    assert grace_period({}, deleting=True) == 30.0  # Kubernetes' default


def test_teardown_shares_the_pods_grace_and_restarts_get_their_own():
    pod = {"spec": {"terminationGracePeriodSeconds": 20}}
    common = {"deleting": False, "now": 100.0, "sidecar_min_grace": 2.0}
    # Teardown: what is left until the deadline; a sidecar at least the minimum.
    assert kill_grace(pod, reason="Stopping", sidecar=False, stop_deadline=105.0,
                      **common) == 5.0
    assert kill_grace(pod, reason="Stopping", sidecar=True, stop_deadline=100.5,
                      **common) == 2.0
    assert kill_grace(pod, reason="Stopping", sidecar=False, stop_deadline=99.0,
                      **common) == -1.0  # past the deadline: SIGKILL at once
    # A pod deleted with grace 0 gives its sidecars nothing either.
    now_pod = {"metadata": {"deletionGracePeriodSeconds": 0}, **pod}
    assert kill_grace(now_pod, reason="Stopping", sidecar=True, stop_deadline=100.0,
                      deleting=True, now=100.0, sidecar_min_grace=2.0) == 0.0
    # Restarts (probe, new spec, removed) and teardown without a pod stop: the pod's own.
    for reason in ("Unhealthy", "SpecChanged", "Removed"):
        assert kill_grace(pod, reason=reason, sidecar=False, stop_deadline=101.0,
                          **common) == 20.0
    assert kill_grace(pod, reason="Stopping", sidecar=True, stop_deadline=None,
                      **common) == 20.0


# --- real pods walk the table --------------------------------------------------------------

@pytest.fixture
def walks(monkeypatch):
    """Every state change of every pod worker, as (state, event, new state)."""
    seen: list[tuple[PodState, PodEvent, PodState]] = []

    def recording(state: PodState, event: PodEvent) -> PodState:
        after = pod_transition(state, event)
        seen.append((state, event, after))
        return after

    monkeypatch.setattr(worker_module, "pod_transition", recording)
    return seen


def changes(seen):
    """The moves between different states, in order (self-loops dropped)."""
    return [(s, e, a) for s, e, a in seen if s is not a]


def sim_pod(name, annotations, **spec):
    return make_pod(name, [{"name": "main"}], metadata={"annotations": {
        f"{PREFIX}{k}": v for k, v in annotations.items()}}, **spec)


async def test_a_deleted_pod_terminates_then_is_released(cluster, make_agent, walks):
    agent = await make_agent(runtime="sim")
    await cluster.create(PODS, sim_pod("web", {"stop-delay": "0.2"}), namespace="default")
    await eventually(ready(cluster, "web"))
    worker = agent.find("default", "web")
    assert worker.state is SY and changes(walks) == []
    await cluster.delete(PODS, "web", namespace="default")
    await eventually(gone(cluster, "web"))
    await worker.done.wait()
    assert changes(walks) == [(SY, PodEvent.STOP, TG), (TG, PodEvent.CONTAINERS_DONE, TD),
                              (TD, PodEvent.RELEASE, GO)]
    assert agent.find("default", "web") is None


async def test_a_finished_pod_stays_terminated_until_deleted(cluster, make_agent, walks):
    agent = await make_agent(runtime="sim")
    await cluster.create(PODS, sim_pod("job", {"run-duration": "0.1"}, restartPolicy="Never"),
                         namespace="default")
    await eventually(phase_is(cluster, "job", "Succeeded"))
    worker = agent.find("default", "job")
    assert worker.state is TD and worker.finished and worker.torn_down
    assert changes(walks) == [(SY, PodEvent.CONTAINERS_DONE, TD)]
    await cluster.delete(PODS, "job", namespace="default")
    await eventually(gone(cluster, "job"))
    await worker.done.wait()
    assert changes(walks) == [(SY, PodEvent.CONTAINERS_DONE, TD), (TD, PodEvent.RELEASE, GO)]


async def test_a_rejected_pod_never_syncs_containers(cluster, make_agent, walks):
    agent = await make_agent(runtime="sim", pods=1)
    await cluster.create(PODS, sim_pod("first", {}), namespace="default")
    await eventually(ready(cluster, "first"))
    await cluster.create(PODS, sim_pod("second", {}), namespace="default")
    pod = await eventually(phase_is(cluster, "second", "Failed"))
    assert pod["status"]["reason"] == "OutOfpods"
    worker = agent.find("default", "second")
    assert worker.state is TD
    assert not any(r.ever_started for r in worker.records.values())
    assert changes(walks) == [(SY, PodEvent.STOP, TG), (TG, PodEvent.CONTAINERS_DONE, TD)]
