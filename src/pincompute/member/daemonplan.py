"""Where a PinDaemon runs and what to do on each node: pure rules, no cluster.

Theory of operation
-------------------
A PinDaemon (:mod:`pincompute.model.infra`) runs one pod on every node it
*fits*, as Kubernetes' DaemonSet controller decides it (``NodeShouldRunDaemonPod``):

* the node's labels match the daemon's ``nodeSelector`` (and the template's);
* every ``NoSchedule``/``NoExecute`` taint of the node is tolerated by the
  daemon's tolerations plus :data:`DEFAULT_TOLERATIONS`, the ones a DaemonSet
  adds to its pods: ``not-ready``/``unreachable`` (``NoExecute``: a daemon pod is
  never evicted from a sick node), the pressure taints and ``unschedulable``
  (a cordoned node keeps its agents), and ``network-unavailable`` for
  host-network pods.  The readiness gate a joining node carries is
  ``not-ready:NoSchedule``, which is *not* tolerated by default (as in
  Kubernetes): a new node gets its daemon pods once its health probes pass;
* the node is not being deleted.

A node leaving its pool (the node provisioner's drain mark) is a third case,
:attr:`Fit.LEAVING`: its daemon pod is kept — the drain deletes it after every
other pod, so a log shipper outlives what it ships — but nothing is created or
rolled there (the pod would only be drained again).

Each node is then in one :class:`NodeState` (what pod it has), and
:data:`ACTIONS` says what to do, by how the daemon fits it — a table a test
reads whole.  :func:`plan` applies the table to every node and the rolling-update
budget: old pods are replaced ``maxUnavailable`` nodes at a time (a node whose
daemon pod is missing, terminating, failed or not ready counts as unavailable;
old pods that are not ready go first and free, as they are down already).
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pincompute.kube import objects
from pincompute.kube.tolerations import tolerates
from pincompute.kube.wellknown import (
    DISK_PRESSURE_TAINT,
    MEMORY_PRESSURE_TAINT,
    NETWORK_UNAVAILABLE_TAINT,
    NOT_READY_TAINT,
    PID_PRESSURE_TAINT,
    UNREACHABLE_TAINT,
    UNSCHEDULABLE_TAINT,
)
from pincompute.model.wellknown import NODE_DRAIN_ANNOTATION

Obj = dict[str, Any]

DEFAULT_TOLERATIONS: tuple[Obj, ...] = (
    {"key": NOT_READY_TAINT, "operator": "Exists", "effect": "NoExecute"},
    {"key": UNREACHABLE_TAINT, "operator": "Exists", "effect": "NoExecute"},
    {"key": DISK_PRESSURE_TAINT, "operator": "Exists", "effect": "NoSchedule"},
    {"key": MEMORY_PRESSURE_TAINT, "operator": "Exists", "effect": "NoSchedule"},
    {"key": PID_PRESSURE_TAINT, "operator": "Exists", "effect": "NoSchedule"},
    {"key": UNSCHEDULABLE_TAINT, "operator": "Exists", "effect": "NoSchedule"},
)
"""What every daemon pod tolerates (Kubernetes' ``AddOrUpdateDaemonPodTolerations``)."""
HOST_NETWORK_TOLERATIONS: tuple[Obj, ...] = (
    {"key": NETWORK_UNAVAILABLE_TAINT, "operator": "Exists", "effect": "NoSchedule"},
)
"""Added for daemons on the host network (they are what makes the network available)."""


def daemon_tolerations(tolerations: Sequence[Mapping[str, Any]] | None, *,
                       host_network: bool) -> list[Obj]:
    """The daemon's tolerations plus the defaults (those it states already come once)."""
    out = [dict(t) for t in tolerations or ()]
    defaults = DEFAULT_TOLERATIONS + (HOST_NETWORK_TOLERATIONS if host_network else ())
    out.extend(dict(t) for t in defaults if t not in out)
    return out


class Fit(enum.Enum):
    YES = "the daemon runs there"
    NO = "the daemon does not run there"
    LEAVING = "the node is being drained: keep its pod, make none"


def fits(node: Mapping[str, Any], *, node_selector: Mapping[str, str] | None,
         tolerations: Sequence[Mapping[str, Any]]) -> Fit:
    """Whether the daemon should run on ``node`` (see the module docstring);
    ``tolerations`` already include the defaults (:func:`daemon_tolerations`)."""
    md = objects.meta(node)
    if md.get("deletionTimestamp"):
        return Fit.NO
    labels = md.get("labels") or {}
    if node_selector and any(labels.get(k) != v for k, v in node_selector.items()):
        return Fit.NO
    for taint in (node.get("spec") or {}).get("taints") or ():
        if taint.get("effect") not in ("NoSchedule", "NoExecute"):
            continue  # PreferNoSchedule never keeps a daemon away
        if not any(tolerates(t, taint) for t in tolerations):
            return Fit.NO
    if NODE_DRAIN_ANNOTATION in (md.get("annotations") or {}):
        return Fit.LEAVING
    return Fit.YES


# --- per node: a table ---------------------------------------------------------------------------

class NodeState(enum.Enum):
    NONE = "no daemon pod"
    DELETING = "its daemon pod is terminating"
    FAILED = "its daemon pod failed (or ended)"
    CURRENT = "a pod of the current revision"
    OLD = "a pod of an older revision"


class Action(enum.Enum):
    NOTHING = "nothing to do"
    CREATE = "create the daemon pod"
    WAIT = "wait for the terminating pod to go"
    KEEP = "keep the pod"
    ROLL = "replace the pod when the rolling update allows"
    REPLACE = "delete the failed pod (a new one follows)"
    REMOVE = "delete the pod: the node no longer fits"


ACTIONS: Mapping[tuple[Fit, NodeState], Action] = {
    (Fit.YES, NodeState.NONE): Action.CREATE,
    (Fit.YES, NodeState.DELETING): Action.WAIT,
    (Fit.YES, NodeState.FAILED): Action.REPLACE,
    (Fit.YES, NodeState.CURRENT): Action.KEEP,
    (Fit.YES, NodeState.OLD): Action.ROLL,
    (Fit.NO, NodeState.NONE): Action.NOTHING,
    (Fit.NO, NodeState.DELETING): Action.NOTHING,
    (Fit.NO, NodeState.FAILED): Action.REMOVE,
    (Fit.NO, NodeState.CURRENT): Action.REMOVE,
    (Fit.NO, NodeState.OLD): Action.REMOVE,
    (Fit.LEAVING, NodeState.NONE): Action.NOTHING,
    (Fit.LEAVING, NodeState.DELETING): Action.NOTHING,
    (Fit.LEAVING, NodeState.FAILED): Action.REMOVE,
    (Fit.LEAVING, NodeState.CURRENT): Action.KEEP,
    (Fit.LEAVING, NodeState.OLD): Action.KEEP,
}
"""What to do on a node, by (how the daemon fits it, what daemon pod it has)."""


def pod_ready(pod: Mapping[str, Any]) -> bool:
    return objects.condition_true(pod, "Ready")


def pod_ended(pod: Mapping[str, Any]) -> bool:
    return (pod.get("status") or {}).get("phase") in ("Failed", "Succeeded")


@dataclass(slots=True)
class NodePods:
    """A node's daemon pods, sorted into the one that counts and extras."""

    state: NodeState
    pod: Obj | None = None
    """The live pod that counts (None for NONE and DELETING)."""
    extras: list[Obj] = field(default_factory=list)
    """Further live pods on the node: duplicates, to delete."""


def node_pods(pods: Iterable[Obj], *, revision: str,
              revision_of: Callable[[Obj], str | None]) -> NodePods:
    """Sort the daemon's pods on one node. ``revision_of(pod)`` reads a pod's revision.

    The pod that counts is a live one of the current revision if any, else the
    oldest live one; other live pods are extras.
    """
    pods = list(pods)
    live = [p for p in pods if not objects.is_deleting(p)]
    if not live:
        return NodePods(NodeState.DELETING if pods else NodeState.NONE)
    live.sort(key=lambda p: (revision_of(p) != revision, pod_ended(p),
                             objects.meta(p).get("creationTimestamp") or "",
                             objects.name_of(p)))
    first = live[0]
    if pod_ended(first):
        state = NodeState.FAILED
    else:
        state = NodeState.CURRENT if revision_of(first) == revision else NodeState.OLD
    return NodePods(state, first, live[1:])


@dataclass(slots=True)
class Plan:
    """What one reconcile does."""

    create: list[str] = field(default_factory=list)
    """Nodes to create a daemon pod on."""
    delete: list[tuple[Obj, str]] = field(default_factory=list)
    """(pod, why) to delete."""
    desired: int = 0
    current: int = 0
    ready: int = 0
    updated: int = 0
    misscheduled: int = 0
    unavailable: int = 0


def plan(nodes: Mapping[str, Fit], pods: Mapping[str, NodePods], *, max_unavailable: int,
         rolling: bool) -> Plan:
    """The plan over every node: ``nodes`` maps node → :class:`Fit`; ``pods`` node → its
    pods. Leaving nodes count nowhere (not desired, not misscheduled).

    ``rolling`` is the RollingUpdate strategy (else OnDelete: old pods are kept).
    """
    out = Plan()
    roll_ready: list[tuple[str, Obj]] = []
    for name in sorted(set(nodes) | set(pods)):
        fit = nodes.get(name, Fit.NO)  # a pod on a node that is gone: it does not fit
        np = pods.get(name) or NodePods(NodeState.NONE)
        for extra in np.extras:
            out.delete.append((extra, "a second daemon pod on the node"))
        action = ACTIONS[(fit, np.state)]
        if fit is Fit.YES:
            out.desired += 1
            if np.pod is not None:
                out.current += 1
                ready = np.state in (NodeState.CURRENT, NodeState.OLD) and pod_ready(np.pod)
                out.ready += ready
                out.updated += np.state is NodeState.CURRENT
                out.unavailable += not ready
            else:
                out.unavailable += 1
        elif np.pod is not None and fit is Fit.NO:
            out.misscheduled += 1
        if action is Action.CREATE:
            out.create.append(name)
        elif action is Action.REPLACE:
            assert np.pod is not None
            out.delete.append((np.pod, "the daemon pod ended: replaced"))
        elif action is Action.REMOVE:
            assert np.pod is not None
            out.delete.append((np.pod, "the node no longer matches the daemon"))
        elif action is Action.ROLL and rolling:
            assert np.pod is not None
            if pod_ready(np.pod):
                roll_ready.append((name, np.pod))
            else:  # down already: replacing it costs no availability
                out.delete.append((np.pod, "rolling update (the old pod was not ready)"))
    budget = max(0, max_unavailable - out.unavailable)
    for _, pod in roll_ready[:budget]:
        out.delete.append((pod, "rolling update"))
    return out


__all__ = [
    "ACTIONS", "DEFAULT_TOLERATIONS", "HOST_NETWORK_TOLERATIONS", "Action", "Fit", "NodePods",
    "NodeState", "Plan", "daemon_tolerations", "fits", "node_pods", "plan", "pod_ended",
    "pod_ready", "tolerates",
]
