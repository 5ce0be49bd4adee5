"""The ``Connected`` condition of MemberClusters: what the cluster set knows, written down.

The cluster set runs on every replica (standbys keep warm member caches), but
only the leader writes: this small leader-gated controller reads a member's
:class:`~.clusterset.MemberState` and records it as the condition ``Connected``
on the MemberCluster's status.  It is level-triggered — each MemberCluster is
reconciled when it changes and whenever its state in the cluster set does — so a
new leader writes what it sees without remembering anything.

How a state becomes the condition is a table (:data:`CONDITION_OF`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping

from pincompute.kube import objects
from pincompute.kube.errors import Conflict, NotFound
from pincompute.kube.protocol import KubeClient
from pincompute.model.registry import MEMBERCLUSTERS
from pincompute.runtime.controller import Controller
from pincompute.runtime.manager import Manager
from pincompute.runtime.reconciler import Request, Result

from .clusterset import ClusterSet
from .member import MemberState, Phase

CONDITION = "Connected"

CONDITION_OF: Mapping[Phase, str] = {
    "Connecting": "Unknown",
    "Ready": "True",
    "Failed": "False",
}
"""The condition's status for each phase; the reason and message are the state's."""


def condition_for(state: MemberState) -> tuple[str, str, str]:
    """``(status, reason, message)`` of the ``Connected`` condition for a state."""
    message = state.message
    if state.phase == "Failed" and state.attempts > 1:
        message = f"{message} ({state.attempts} attempts)"
    return CONDITION_OF[state.phase], state.reason, message


class ConnectionStatusReconciler:
    def __init__(self, *, host: KubeClient, clusters: ClusterSet) -> None:
        self.host = host
        self.clusters = clusters

    async def reconcile(self, request: Request) -> Result | None:
        mc = self.clusters.memberclusters.get(request.name)
        state = self.clusters.state(request.name)
        if mc is None or objects.is_deleting(mc) or state is None:
            return None  # gone, or not tried yet (its first attempt enqueues it again)
        status, reason, message = condition_for(state)
        updated = objects.deepcopy(mc)
        if not objects.set_condition(updated, CONDITION, status, reason=reason,
                                     message=message):
            return None
        # Conflict: our cache is behind; the newer version's event brings the key back.
        with contextlib.suppress(NotFound, Conflict):
            await self.host.update_status(MEMBERCLUSTERS, updated)
        return None


def add_connection_status_controller(manager: Manager, *, host: KubeClient,
                                     clusters: ClusterSet,
                                     name: str = "membercluster-connection") -> Controller:
    """Wire the controller that writes ``Connected`` conditions (leader only)."""
    controller = manager.controller(
        name, ConnectionStatusReconciler(host=host, clusters=clusters))
    controller.for_(clusters.memberclusters)
    clusters.subscribe(on_state=lambda name: controller.enqueue(Request("", name)))
    return controller
