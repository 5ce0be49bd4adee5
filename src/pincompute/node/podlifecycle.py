"""The pod lifecycle on the node: the states a pod worker goes through, as a table.

Theory of operation
-------------------
One level above the container state machine (:mod:`.containerlifecycle`), a pod
worker (:mod:`.worker`) is in one :class:`PodState`, and only an event of
:data:`POD_TRANSITIONS` moves it — anything else is a bug
(:class:`~.containerlifecycle.IllegalTransition`).  These are the node's stages
of a pod, not the pod's API ``phase`` (``Pending``/``Running``/``Succeeded``/
``Failed``, which :mod:`.status` derives from its containers)::

    SYNCING ──STOP──▶ TERMINATING
       │                   │
       └──CONTAINERS_DONE──┴──▶ TERMINATED ──RELEASE──▶ GONE

``SYNCING``
    The pod runs.  Its sandbox is set up (retried with back-off while that
    fails, :mod:`.podsandbox`), and the planner starts, restarts and updates its
    containers.  When every main container has finished for good (its restart
    policy says so) the planner stops the sidecars too, and once every container
    has terminated: ``CONTAINERS_DONE``.
``TERMINATING``
    A stop was asked (``STOP``): the pod is being deleted or is gone from the
    API, was evicted, was rejected (admission, network), passed its
    ``activeDeadlineSeconds``, or its agent is stopping.  The planner stops its
    containers — main containers first, sidecars last — within the grace period;
    a second ``STOP`` with a shorter one (a second delete) shortens it.
``TERMINATED``
    Every container has terminated for good.  On entry the sandbox is torn down
    (network, volumes, processes); the status is final; a pod being deleted is
    now deleted for good (the node's part of graceful deletion: ``delete`` with
    grace 0).  A pod already terminal when its agent (re)starts begins here.
``GONE``
    The Pod object is gone from the API — or the agent let the pod go — and its
    sandbox is torn down (``RELEASE``): its logs are removed (kept when the
    agent only stops, for its next run to serve) and the worker is done.

How long stopping may take is a pure function of the pod too
(:func:`grace_period`, :func:`kill_grace`).

``STOP`` and ``CONTAINERS_DONE`` are idempotent where they may repeat: a pod
deleted after it finished has nothing left to stop, and the planner reports
every container terminated on each later pass.  No state is left backwards: a
stop is never undone and a finished pod never runs again.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import Any

from .containerlifecycle import IllegalTransition


class PodState(enum.Enum):
    SYNCING = "Syncing"
    """Running: sandbox set up (or retried), containers started and restarted."""
    TERMINATING = "Terminating"
    """Stopping its containers within the grace period."""
    TERMINATED = "Terminated"
    """Every container terminated for good; sandbox torn down; status final."""
    GONE = "Gone"
    """The API object is gone (or let go) and the sandbox removed: the worker is done."""


class PodEvent(enum.Enum):
    STOP = "Stop"
    """Deleted, gone, evicted, rejected, past its deadline, or the agent is stopping."""
    CONTAINERS_DONE = "ContainersDone"
    """The planner found every container terminated for good."""
    RELEASE = "Release"
    """The API object is gone (or the agent let the pod go) after the teardown."""


POD_TRANSITIONS: Mapping[PodState, Mapping[PodEvent, PodState]] = {
    PodState.SYNCING: {
        PodEvent.STOP: PodState.TERMINATING,
        PodEvent.CONTAINERS_DONE: PodState.TERMINATED,
    },
    PodState.TERMINATING: {
        PodEvent.STOP: PodState.TERMINATING,
        PodEvent.CONTAINERS_DONE: PodState.TERMINATED,
    },
    PodState.TERMINATED: {
        PodEvent.STOP: PodState.TERMINATED,
        PodEvent.CONTAINERS_DONE: PodState.TERMINATED,
        PodEvent.RELEASE: PodState.GONE,
    },
    PodState.GONE: {},
}

FINISHED_STATES = frozenset({PodState.TERMINATED, PodState.GONE})
"""States in which no container of the pod runs again."""


def pod_transition(state: PodState, event: PodEvent) -> PodState:
    try:
        return POD_TRANSITIONS[state][event]
    except KeyError:
        raise IllegalTransition(state, event) from None


# --- grace periods ----------------------------------------------------------------------------

def grace_period(pod: Mapping[str, Any], *, deleting: bool) -> float:
    """The pod's grace period: the deletion's, while it is being deleted, else its own."""
    md = pod.get("metadata") or {}
    if deleting and md.get("deletionGracePeriodSeconds") is not None:
        return float(md["deletionGracePeriodSeconds"])
    return float((pod.get("spec") or {}).get("terminationGracePeriodSeconds", 30))


def kill_grace(pod: Mapping[str, Any], *, reason: str, sidecar: bool, deleting: bool,
               stop_deadline: float | None, now: float, sidecar_min_grace: float) -> float:
    """Seconds a container gets between SIGTERM and SIGKILL (0 or less: SIGKILL at once).

    Teardown (``Stopping``) shares what is left of the pod's grace period until
    ``stop_deadline`` — main containers stop first, so sidecars get the rest, but
    at least ``sidecar_min_grace`` unless the pod's grace is 0.  A container
    restarted on its own (failed probe, new spec, removed from the pod) gets the
    pod's ``terminationGracePeriodSeconds``.
    """
    if reason == "Stopping" and stop_deadline is not None:
        grace = stop_deadline - now
        if sidecar and grace_period(pod, deleting=deleting) > 0:
            grace = max(grace, sidecar_min_grace)
        return grace
    return float((pod.get("spec") or {}).get("terminationGracePeriodSeconds", 30))


__all__ = ["FINISHED_STATES", "POD_TRANSITIONS", "PodEvent", "PodState", "grace_period",
           "kill_grace", "pod_transition"]
