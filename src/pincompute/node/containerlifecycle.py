"""The container lifecycle: a state machine per container and a planner per pod.

Theory of operation
-------------------
Everything the node agent does to a container is a transition in one table,
:data:`TRANSITIONS`, in the manner of h11's ``_state.py``: a container is in one
:class:`State`; an :class:`Event` either names an allowed move to a new state or
is a bug (:class:`IllegalTransition`).  The table is data, so tests read it, and
the container records (:mod:`.containerrunner`) only ever change a state through
:func:`transition`.  The pod itself has a table of its own one level up
(:mod:`.podlifecycle`).

::

    WAITING ──START──▶ STARTING ──STARTED──▶ RUNNING
       ▲                  │  └─────KILL──────┐  │
       │ UPDATE           │ EXITED_*          ▼  │ KILL
       │               ◀──┘            STOPPING ◀┘
    BACKOFF ◀─EXITED_RESTART─┘   EXITED_REPLACE ──▶ WAITING
    TERMINATED ◀─EXITED_FINAL / STOP

``STARTING`` is a running process whose startup probe has not passed yet
(Kubernetes reports it ``running`` with ``started: false``); ``STOPPING`` is a
process that was signalled and has not exited.  Which ``EXITED_*`` event an exit
is depends on the pod's restart policy (:data:`RESTART_ON_EXIT`), on whether the
container is a sidecar (sidecars always restart while the pod runs), on whether
the pod is being torn down, and on whether the container was stopped to be
replaced by a new spec (per-container update: straight back to ``WAITING``, no
back-off); :func:`exit_event` decides.

The pod planner, :func:`plan`, is a pure function from a snapshot of the pod's
containers (:class:`PodView`) to the next actions (:class:`Start`, :class:`Kill`,
:class:`Stop`, :class:`Update`).  It encodes the ordering rules (KEP-753 native
sidecars, DESIGN §8):

* until the pod is *initialized*, sidecars start one at a time in spec order, each
  only after every earlier sidecar is running and ready; main containers start
  once every sidecar is; after that, restarts do not wait for anyone;
* teardown (pod deleted, or every main container finished for good) stops all
  main containers first, then sidecars one at a time in reverse order;
* a container whose liveness or startup probe failed, or whose spec changed, is
  killed; a changed container that is not running is re-armed (``UPDATE``).

The worker applies the actions, feeds the resulting events back through the
table, and asks again; the planner never sees processes, only states, which is
why the ordering rules are tested without starting any.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal


class State(enum.Enum):
    WAITING = "Waiting"
    """Not started yet (or re-armed by an update); waits for its turn."""
    STARTING = "Starting"
    """Process running; startup probe not passed yet."""
    RUNNING = "Running"
    """Process running and started."""
    STOPPING = "Stopping"
    """Signalled (SIGTERM, later SIGKILL); waiting for the process to exit."""
    BACKOFF = "BackOff"
    """Exited; will be started again when its back-off delay has passed."""
    TERMINATED = "Terminated"
    """Exited (or never started) and will not run again unless its spec changes."""


class Event(enum.Enum):
    START = "Start"
    """The runtime launched the process."""
    STARTED = "Started"
    """The startup probe passed (immediately, without one)."""
    KILL = "Kill"
    """A stop signal was sent (teardown, failed probe, spec change)."""
    EXITED_RESTART = "ExitedRestart"
    """The process exited and will be restarted after back-off."""
    EXITED_FINAL = "ExitedFinal"
    """The process exited and will not be restarted."""
    EXITED_REPLACE = "ExitedReplace"
    """The process exited to be replaced by a new spec: start again at once."""
    STOP = "Stop"
    """Teardown of a container without a process: it never runs again."""
    UPDATE = "Update"
    """The spec of a container without a process changed: run the new spec."""


TRANSITIONS: Mapping[State, Mapping[Event, State]] = {
    State.WAITING: {
        Event.START: State.STARTING,
        Event.STOP: State.TERMINATED,
        Event.UPDATE: State.WAITING,
    },
    State.STARTING: {
        Event.STARTED: State.RUNNING,
        Event.KILL: State.STOPPING,
        Event.EXITED_RESTART: State.BACKOFF,
        Event.EXITED_FINAL: State.TERMINATED,
        Event.EXITED_REPLACE: State.WAITING,
    },
    State.RUNNING: {
        Event.KILL: State.STOPPING,
        Event.EXITED_RESTART: State.BACKOFF,
        Event.EXITED_FINAL: State.TERMINATED,
        Event.EXITED_REPLACE: State.WAITING,
    },
    State.STOPPING: {
        # A second KILL (teardown while stopping for an update) changes nothing.
        Event.KILL: State.STOPPING,
        Event.EXITED_RESTART: State.BACKOFF,
        Event.EXITED_FINAL: State.TERMINATED,
        Event.EXITED_REPLACE: State.WAITING,
    },
    State.BACKOFF: {
        Event.START: State.STARTING,
        Event.STOP: State.TERMINATED,
        Event.UPDATE: State.WAITING,
    },
    State.TERMINATED: {
        Event.UPDATE: State.WAITING,
    },
}

PROCESS_STATES = frozenset({State.STARTING, State.RUNNING, State.STOPPING})
"""States in which the container has a live process."""


class IllegalTransition(RuntimeError):
    """An event the table does not allow in the current state (a bug in the caller).

    Raised by this table and by the pod table (:mod:`.podlifecycle`).
    """

    def __init__(self, state: enum.Enum, event: enum.Enum) -> None:
        super().__init__(f"cannot handle {event.name} in state {state.name}")
        self.state = state
        self.event = event


def transition(state: State, event: Event) -> State:
    try:
        return TRANSITIONS[state][event]
    except KeyError:
        raise IllegalTransition(state, event) from None


# --- restart policy -------------------------------------------------------------------------

RestartPolicy = Literal["Always", "OnFailure", "Never"]

RESTART_ON_EXIT: Mapping[tuple[str, bool], bool] = {
    # (restartPolicy, exited successfully) -> restart?
    ("Always", True): True,
    ("Always", False): True,
    ("OnFailure", True): False,
    ("OnFailure", False): True,
    ("Never", True): False,
    ("Never", False): False,
}


def exit_event(*, policy: str, sidecar: bool, succeeded: bool, teardown: bool,
               replacing: bool) -> Event:
    """Which event an exited process is, for the state machine."""
    if teardown:
        return Event.EXITED_FINAL
    if replacing:
        return Event.EXITED_REPLACE
    if sidecar:
        # Sidecars serve the main containers for as long as the pod runs.
        return Event.EXITED_RESTART
    restart = RESTART_ON_EXIT.get((policy, succeeded), True)
    return Event.EXITED_RESTART if restart else Event.EXITED_FINAL


# --- the pod planner ------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class ContainerView:
    """What the planner needs to know about one container (spec order matters)."""

    name: str
    sidecar: bool
    state: State
    ready: bool = False
    backoff_until: float | None = None
    """Monotonic time after which a BACKOFF container may start again."""
    unhealthy: str | None = None
    """Why its liveness or startup probe failed (it must be restarted)."""
    outdated: bool = False
    """Its spec in the Pod differs from what it runs (per-container update)."""


@dataclass(frozen=True, slots=True)
class PodView:
    containers: Sequence[ContainerView]
    now: float
    """The current monotonic time."""
    stopping: bool = False
    """The pod is being deleted, evicted or past its deadline."""
    initialized: bool = False
    """Every sidecar has been running and ready once (the ordering gate is open)."""


@dataclass(frozen=True, slots=True)
class Start:
    name: str


@dataclass(frozen=True, slots=True)
class Kill:
    name: str
    reason: str
    """``Stopping`` (teardown), ``Unhealthy`` (probe), ``SpecChanged`` (update)."""
    message: str = ""


@dataclass(frozen=True, slots=True)
class Stop:
    """Mark a container without a process terminated (teardown)."""

    name: str


@dataclass(frozen=True, slots=True)
class Update:
    """Re-arm a container without a process to run its new spec."""

    name: str


Action = Start | Kill | Stop | Update


@dataclass(frozen=True, slots=True)
class Plan:
    actions: tuple[Action, ...]
    initialized: bool
    """Whether the ordering gate is open after this plan."""
    teardown: bool
    """The pod is stopping for good (deleted, or every main container finished)."""
    finished: bool
    """Every container is terminated: the pod is done."""
    wake_at: float | None
    """The earliest monotonic time at which planning again may do something new."""


def _up(c: ContainerView) -> bool:
    return c.state is State.RUNNING and c.ready


def plan(view: PodView) -> Plan:
    """The next actions for a pod; pure, so the rules are testable without processes."""
    containers = list(view.containers)
    sidecars = [c for c in containers if c.sidecar]
    mains = [c for c in containers if not c.sidecar]
    mains_done = bool(mains) and all(c.state is State.TERMINATED for c in mains)
    teardown = view.stopping or mains_done
    actions: list[Action] = []
    wake_at: float | None = None
    initialized = view.initialized or all(_up(c) for c in sidecars)

    if teardown:
        for c in mains:
            if c.state in (State.STARTING, State.RUNNING):
                actions.append(Kill(c.name, "Stopping"))
            elif c.state in (State.WAITING, State.BACKOFF):
                actions.append(Stop(c.name))
        # Sidecars go only after every main container has exited, one at a time,
        # last started first: each may be serving the ones before it.
        if all(c.state in (State.TERMINATED, State.WAITING, State.BACKOFF) for c in mains):
            for c in reversed(sidecars):
                if c.state in (State.WAITING, State.BACKOFF):
                    actions.append(Stop(c.name))
                    continue
                if c.state is State.TERMINATED:
                    continue
                if c.state in (State.STARTING, State.RUNNING):
                    actions.append(Kill(c.name, "Stopping"))
                break  # wait for this one (STOPPING, or just killed) to exit
        finished = all(c.state is State.TERMINATED for c in containers) and not actions
        return Plan(tuple(actions), initialized, True, finished, None)

    for c in containers:
        if c.state in (State.STARTING, State.RUNNING):
            if c.unhealthy is not None:
                actions.append(Kill(c.name, "Unhealthy", c.unhealthy))
            elif c.outdated:
                actions.append(Kill(c.name, "SpecChanged",
                                    "container spec changed; restarting with the new spec"))
        elif c.outdated and c.state in (State.BACKOFF, State.TERMINATED):
            actions.append(Update(c.name))
    updated = {a.name for a in actions if isinstance(a, Update)}

    if not view.initialized:
        # First start: sidecars in order, each waiting for the previous to be up.
        for c in sidecars:
            if c.state is State.WAITING or c.name in updated:
                actions.append(Start(c.name))
                break
            if not _up(c):
                break
    else:
        for c in sidecars:
            if c.state is State.WAITING or c.name in updated:
                actions.append(Start(c.name))
    if initialized:
        for c in mains:
            if c.state is State.WAITING or c.name in updated:
                actions.append(Start(c.name))

    for c in containers:
        if c.state is State.BACKOFF and c.name not in updated:
            due = c.backoff_until if c.backoff_until is not None else view.now
            if due <= view.now:
                actions.append(Start(c.name))
            else:
                wake_at = due if wake_at is None else min(wake_at, due)
    return Plan(tuple(actions), initialized, False, False, wake_at)


__all__ = [
    "PROCESS_STATES", "RESTART_ON_EXIT", "TRANSITIONS",
    "Action", "ContainerView", "Event", "IllegalTransition", "Kill", "Plan", "PodView",
    "Start", "State", "Stop", "Update", "exit_event", "plan", "transition",
]
