"""The rotation's rules, as pure functions and tables (tested without a cluster).

Theory of operation
-------------------
A Rotation replaces every *old* node of its pools — one whose image label is not
the target image — by a node of the target image.  Three tables:

**Which nodes next** (:func:`pick`).  Nodes are grouped into the declared steps
(``order``: a pool, or a label selector; a node in no step comes last); a step
starts only once the one before is finished, as declared.  Within the current
step, nodes are taken by pool, zone, name, as long as each limit holds: nodes in
progress in the cluster < ``parallelism``, in the node's pool <
``maxParallelPerPool``, in its zone < ``maxParallelPerZone``, and the cluster's
unavailable nodes (in progress, or NotReady) < ``maxUnavailable``.

**Application-aware** (:class:`Spread`).  Taking nodes by name can put all of one
app's replicas in progress at once — a scheduler that spread the app over
consecutive nodes does just that — and the app's budget then moves them a few at a
time while the rest of the wave waits.  So within the step a node is taken only if
every app with pods on it stays within what its budget lets go at once, counting
the pods on the nodes already in progress (an app with none there may always take
one node: the rotation never stalls).  A node that does not fit waits for a later
pick, when the apps' pods in progress have moved.

**What a node in progress needs** (:data:`NODE_STEPS`, from :func:`node_phase`):

============== ==================================================== ==========
phase          what it is in                                         action
============== ==================================================== ==========
Surging        its surge node is not Ready yet (:func:`may_drain`)    wait
Draining       capacity is there, workload pods left                evict
Drained        only daemon pods left                                release
Leaving        marked to leave its pool (the provisioner removes it) wait
============== ==================================================== ==========

*release* marks the node to leave its pool (the node provisioner stops and
deletes it; its successor already counts, :mod:`pincompute.model.surge`).  *evict* asks each
pod's disruption budget (:mod:`.draining`); a refusal waits and names the app.

**Where the rotation stands** (:func:`rotation_phase`): ``Aborted`` once asked,
``Succeeded`` when no old node is left, ``Paused`` when paused with nothing in
progress (``Pausing`` while the nodes in progress finish), else ``Running``.
"""

from __future__ import annotations

import enum
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Candidate:
    name: str
    pool: str
    zone: str
    step: int
    """The index of the first declared step naming it (``len(order)``: none)."""


@dataclass(frozen=True, slots=True)
class Limits:
    parallelism: int
    per_pool: int
    per_zone: int
    max_unavailable: int


def current_step(remaining: Sequence[Candidate]) -> int | None:
    """The step in progress: the lowest step of any node still to finish."""
    return min((c.step for c in remaining), default=None)


@dataclass(slots=True)
class Spread:
    """What an application-aware pick knows of the apps (see the module docstring)."""

    apps_of: Callable[[str], Mapping[str, int]]
    """Node name → the pods it would move, per app."""
    room: Callable[[str], int]
    """App → how many of its pods may be in progress at once (what its budget lets go)."""
    load: Counter[str]
    """App → its pods on the nodes in progress now."""
    scan: int = 256
    """Look at no more than this many candidates (or two per free slot) per pick: a pick
    runs on the event loop the region shares, and the next pass looks further."""

    def fitting(self, candidates: Sequence[Candidate], *, want: int) -> list[Candidate]:
        """Of ``candidates`` (in order), up to ``want`` that fit together."""
        load = Counter(self.load)
        out: list[Candidate] = []
        for c in candidates[:max(self.scan, 2 * want)]:
            if len(out) >= want:
                break
            apps = self.apps_of(c.name)
            if all(not load[a] or load[a] + n <= self.room(a) for a, n in apps.items()):
                out.append(c)
                load.update(apps)
        return out


def pick(waiting: Sequence[Candidate], in_progress: Sequence[Candidate], *, limits: Limits,
         not_ready: int = 0, spread: Spread | None = None) -> list[Candidate]:
    """The nodes of ``waiting`` to start now (see the module docstring)."""
    step = current_step([*waiting, *in_progress])
    if step is None:
        return []
    pools = Counter(c.pool for c in in_progress)
    zones = Counter(c.zone for c in in_progress)
    busy = len(in_progress)
    unavailable = busy + not_ready
    out: list[Candidate] = []
    ordered = [c for c in sorted(waiting, key=lambda c: (c.step, c.pool, c.zone, c.name))
               if c.step == step]
    if spread is not None:
        ordered = spread.fitting(ordered, want=max(0, min(
            limits.parallelism - busy, limits.max_unavailable - unavailable)))
    for c in ordered:
        if busy >= limits.parallelism or unavailable >= limits.max_unavailable:
            break
        if pools[c.pool] >= limits.per_pool or zones[c.zone] >= limits.per_zone:
            continue
        out.append(c)
        busy += 1
        unavailable += 1
        pools[c.pool] += 1
        zones[c.zone] += 1
    return out


class NodePhase(enum.Enum):
    SURGING = "Surging"
    DRAINING = "Draining"
    DRAINED = "Drained"
    LEAVING = "Leaving"


class NodeAction(enum.Enum):
    WAIT = "wait"
    EVICT = "evict"
    RELEASE = "release"


NODE_STEPS: Mapping[NodePhase, NodeAction] = {
    NodePhase.SURGING: NodeAction.WAIT,
    NodePhase.DRAINING: NodeAction.EVICT,
    NodePhase.DRAINED: NodeAction.RELEASE,
    NodePhase.LEAVING: NodeAction.WAIT,
}


def node_phase(*, leaving: bool, capacity_ready: bool, workload_pods: int) -> NodePhase:
    if leaving:
        return NodePhase.LEAVING
    if workload_pods == 0:
        return NodePhase.DRAINED  # nothing to move: no need to wait for the surge
    if not capacity_ready:
        return NodePhase.SURGING
    return NodePhase.DRAINING


def may_drain(*, rank: int, base: int, desired: int, staying: int, starting: int) -> bool:
    """Whether the pool's node in progress of ``rank`` (0: picked first) may drain now.

    Each node in progress has its surge node: the first ``up`` of them may drain, where
    ``up`` is the surges asked for (``desired - base``) less those not registered yet
    (``desired - staying``) and those still starting (NotReady, not cordoned).  A node
    beyond the surges asked for (the pool is at its ``maxSize``) drains without one.  (A
    pool whose base is not held yet has nothing to wait for: the caller lets it drain.)"""
    asked = max(0, desired - base)
    up = max(0, asked - max(0, desired - staying) - starting)
    return rank < up or rank >= asked


class Phase(enum.Enum):
    PENDING = "Pending"
    RUNNING = "Running"
    PAUSING = "Pausing"
    PAUSED = "Paused"
    SUCCEEDED = "Succeeded"
    ABORTED = "Aborted"
    FAILED = "Failed"


def rotation_phase(*, abort: bool, paused: bool, remaining: int, in_progress: int) -> Phase:
    if abort:
        return Phase.ABORTED
    if remaining == 0 and in_progress == 0:
        return Phase.SUCCEEDED
    if paused:
        return Phase.PAUSING if in_progress else Phase.PAUSED
    return Phase.RUNNING


TERMINAL = frozenset({Phase.SUCCEEDED, Phase.ABORTED, Phase.FAILED})


__all__ = ["NODE_STEPS", "TERMINAL", "Candidate", "Limits", "NodeAction", "NodePhase", "Phase",
           "Spread", "current_step", "may_drain", "node_phase", "pick", "rotation_phase"]
