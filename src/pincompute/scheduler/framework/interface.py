"""Extension points: what a plugin may implement, and the values they exchange.

Theory of operation
-------------------
The scheduling of one pod runs through fixed extension points, as in the
Kubernetes scheduler framework; a plugin is a small object that implements some
of them, and a profile enables plugins by name (:mod:`.registry`, :mod:`.profile`).

* **QueueSort** orders the active queue (exactly one per profile).
* **PreEnqueue** keeps a pod out of the queue (scheduling gates).
* **PreFilter** checks the pod as a whole before any node is considered.
* **Filter** and **Score** are *vectorized*: instead of ``filter(pod, node)``
  called once per node, a plugin answers for many rows of the
  :class:`~pincompute.scheduler.nodetable.NodeTable` at once — ``rows`` is a slice
  (all nodes) or an index array (the few rows that changed) — returning a numpy
  array.  Each also says which changes its answer *depends on* (:class:`Deps`):
  the node object only, the pods on that same node, or state anywhere in the
  cluster.  That lets the equivalence-class cache re-run a plugin only on the
  rows whose inputs changed.  ``Deps.NONE`` means the plugin does not apply to
  this pod and is skipped.  Score plugins return raw per-node scores; those
  marked ``normalized`` are rescaled over the feasible nodes to 0-100, the others
  already are.  Scores are weighted by the profile.
* **PostFilter** runs when no node fits: release gang siblings, preempt.
* **Reserve/Unreserve** keep plugin state in step with assumed pods.
* **Permit** allows, rejects or makes a reserved pod *wait* (gang).
* **Bind** writes the decision (:mod:`pincompute.scheduler.binder`).
* **PreemptionPolicy** (TierPriority) decides who may preempt whom and in which
  order victims are taken.

Filters also *explain*: given the rows a plugin rejected, it returns the reasons
with node counts (``"Insufficient cpu": 2100``), from which the unschedulable
message is built.  A plugin whose failures preemption cannot fix (node selector,
taints, cordon) sets ``unresolvable = True``.

Every plugin may also list the cluster events after which a pod it rejected may
fit (:meth:`EnqueueExtensions.events`), so unschedulable pods are retried on
those events and not by polling.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np

if TYPE_CHECKING:
    from pincompute.scheduler.nodetable import NodeTable
    from pincompute.scheduler.podinfo import PodInfo

    from .diagnosis import Diagnosis

Rows = slice | np.ndarray


class Code(enum.IntEnum):
    SUCCESS = 0
    UNSCHEDULABLE = 1
    UNRESOLVABLE = 2  # unschedulable, and preemption cannot help
    WAIT = 3
    SKIP = 4
    ERROR = 5


@dataclass(frozen=True, slots=True)
class Status:
    """A plugin's answer at one extension point."""

    code: Code = Code.SUCCESS
    reasons: tuple[str, ...] = ()
    plugin: str = ""
    timeout: float = 0.0

    @property
    def ok(self) -> bool:
        return self.code == Code.SUCCESS

    @property
    def rejected(self) -> bool:
        return self.code in (Code.UNSCHEDULABLE, Code.UNRESOLVABLE)

    @property
    def message(self) -> str:
        return ", ".join(self.reasons)

    def with_plugin(self, plugin: str) -> Status:
        return Status(self.code, self.reasons, plugin, self.timeout)


SUCCESS = Status()
SKIP = Status(Code.SKIP)


def unschedulable(*reasons: str, resolvable: bool = True, plugin: str = "") -> Status:
    return Status(Code.UNSCHEDULABLE if resolvable else Code.UNRESOLVABLE, reasons, plugin)


def wait(timeout: float, plugin: str = "") -> Status:
    return Status(Code.WAIT, (), plugin, timeout)


class Deps(enum.IntFlag):
    """What a vectorized plugin's answer for a node depends on (NONE: not applicable)."""

    NONE = 0
    NODE = 1    # the node object: labels, taints, allocatable, cordon
    LOCAL = 2   # the pods (and nominations) on the same node
    GLOBAL = 4  # pods or nodes anywhere (domain-wide counts, normalisation)


# Cluster events after which unschedulable pods may fit (queueing hints).
NODE_ADD = "NodeAdd"
NODE_DELETE = "NodeDelete"
NODE_ALLOCATABLE = "NodeAllocatableChange"
NODE_LABEL = "NodeLabelChange"
NODE_TAINT = "NodeTaintChange"
NODE_UNSCHEDULABLE = "NodeSpecUnschedulableChange"
ASSIGNED_POD_ADD = "AssignedPodAdd"
ASSIGNED_POD_UPDATE = "AssignedPodUpdate"
ASSIGNED_POD_DELETE = "AssignedPodDelete"
UNASSIGNED_POD_ADD = "UnassignedPodAdd"
ALL_EVENTS = frozenset((NODE_ADD, NODE_DELETE, NODE_ALLOCATABLE, NODE_LABEL, NODE_TAINT,
                        NODE_UNSCHEDULABLE, ASSIGNED_POD_ADD, ASSIGNED_POD_UPDATE,
                        ASSIGNED_POD_DELETE, UNASSIGNED_POD_ADD))


@dataclass(slots=True)
class CycleState:
    """Per-pod, per-attempt scratch space shared by the plugins of one scheduling cycle."""

    data: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class ClassContext:
    """Per-equivalence-class scratch space, kept as long as the class's cached vectors."""

    data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class PostFilterResult:
    status: Status
    nominated_node: str = ""


@dataclass(slots=True)
class QueuedPod:
    """A pod in the scheduling queue, with its queue bookkeeping."""

    info: PodInfo
    seq: int = 0                 # arrival order: FIFO within a priority
    attempts: int = 0
    first_seq: int = 0           # for groups: the arrival of the first member
    backoff_until: float = 0.0
    rejectors: frozenset[str] = frozenset()
    cycle: int = 0               # the scheduling cycle that last rejected it
    since: float = 0.0           # when it entered its current sub-queue


# --- plugin protocols ---------------------------------------------------------------------------

class Plugin(Protocol):
    name: str


@runtime_checkable
class EnqueueExtensions(Protocol):
    def events(self) -> frozenset[str]:
        """Cluster events after which a pod this plugin rejected may fit."""
        ...


@runtime_checkable
class QueueSortPlugin(Protocol):
    name: str

    def sort_key(self, qp: QueuedPod) -> tuple[Any, ...]:
        """Smaller keys are scheduled first."""
        ...


@runtime_checkable
class PreEnqueuePlugin(Protocol):
    name: str

    def pre_enqueue(self, pod: PodInfo) -> Status: ...


@runtime_checkable
class PreFilterPlugin(Protocol):
    name: str

    def pre_filter(self, state: CycleState, pod: PodInfo) -> Status: ...


@runtime_checkable
class FilterPlugin(Protocol):
    name: str
    unresolvable: bool

    def filter_deps(self, pod: PodInfo, table: NodeTable) -> Deps: ...

    def filter(self, ctx: ClassContext, pod: PodInfo, table: NodeTable,
               rows: Rows) -> np.ndarray:
        """Whether each of ``rows`` passes (a bool array shaped like ``rows``)."""
        ...

    def explain(self, ctx: ClassContext, pod: PodInfo, table: NodeTable,
                rows: np.ndarray) -> Mapping[str, int]:
        """Reasons (with node counts) this plugin rejected ``rows``, which all failed it."""
        ...


@runtime_checkable
class ScorePlugin(Protocol):
    name: str
    normalized: bool

    def score_deps(self, pod: PodInfo, table: NodeTable) -> Deps: ...

    def score(self, ctx: ClassContext, pod: PodInfo, table: NodeTable,
              rows: Rows) -> np.ndarray:
        """Raw scores of ``rows`` (float64); 0-100 unless ``normalized``."""
        ...


@runtime_checkable
class NormalizedScorePlugin(Protocol):
    def normalize(self, raw: np.ndarray, feasible: np.ndarray) -> np.ndarray:
        """Rescale raw scores of all rows to 0-100 using the feasible rows' range."""
        ...


@runtime_checkable
class PostFilterPlugin(Protocol):
    name: str

    def post_filter(self, state: CycleState, pod: PodInfo,
                    diagnosis: Diagnosis) -> PostFilterResult: ...


@runtime_checkable
class ReservePlugin(Protocol):
    name: str

    def reserve(self, state: CycleState, pod: PodInfo, node: str) -> Status: ...

    def unreserve(self, state: CycleState, pod: PodInfo, node: str) -> None: ...


@runtime_checkable
class PermitPlugin(Protocol):
    name: str

    def permit(self, state: CycleState, pod: PodInfo, node: str) -> Status:
        """SUCCESS, a rejection, or ``wait(timeout)``."""
        ...


@runtime_checkable
class PreemptionPolicyPlugin(Protocol):
    name: str

    def can_preempt(self, preemptor: PodInfo, victim: PodInfo) -> bool: ...

    def victim_key(self, victim: PodInfo) -> tuple[Any, ...]:
        """Smaller keys are evicted first (and reprieved last)."""
        ...


class BindPlugin(Protocol):
    """Writes the decision (any plugin with a ``bind`` method; SKIP passes to the next)."""

    name: str

    async def bind(self, state: CycleState, pod: PodInfo, node: str) -> Status: ...


class PodObserver(Protocol):
    """Told of every pod the scheduler sees (any plugin with ``on_pod_seen``: Gang)."""

    def on_pod_seen(self, pod: PodInfo) -> None: ...

    def on_pod_gone(self, pod: PodInfo) -> None: ...


class ClusterEventListener(Protocol):
    """Told of every cluster event (any plugin with ``on_cluster_event``: Gang)."""

    def on_cluster_event(self, event: str) -> None: ...
