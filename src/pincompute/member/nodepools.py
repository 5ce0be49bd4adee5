"""Node pool status: how many nodes each pool has, how many are ready and updated.

A NodePool (DESIGN §4) is a group of identical nodes in one member cluster; its
nodes carry the label ``pincompute.io/node-pool=<pool>``.  This controller
counts them — from the node informer's cache, through an index on that label,
so a reconcile touches only the pool's own nodes — and writes the pool's
status: ``currentSize``, ``readyNodes``, ``desiredSize``, the node image most
of them run (label ``pincompute.io/node-image``) and how many run the pool's
declared image, plus a ``Ready`` condition that is true when the pool has at
least ``minSize`` ready nodes.  Node events that change a count map to their pool
(:func:`counts_changed`; heartbeats do not), batched for a second, so a node
turning NotReady shows within that.  The same code runs on embedded member clusters
and on real ones (where kwok or a cloud provides the nodes).

``desiredSize`` in the status is the pool's *target* (:func:`target_size`): the
spec's ``desiredSize`` when set, else the nodes it has that are not leaving
(:data:`DRAIN_ANNOTATION`), within ``minSize..maxSize`` — the size the node
provisioner (:mod:`.provisioner`) keeps an embedded pool at.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from typing import Any

from pincompute.kube import objects
from pincompute.kube.errors import Conflict, NotFound
from pincompute.kube.protocol import KubeClient
from pincompute.kube.resource import NODES
from pincompute.model.platform import NodePoolSpec, pool_size
from pincompute.model.registry import NODEPOOLS
from pincompute.model.views import spec_view
from pincompute.model.wellknown import NODE_DRAIN_ANNOTATION as DRAIN_ANNOTATION
from pincompute.model.wellknown import NODE_IMAGE_LABEL, NODE_POOL_LABEL
from pincompute.runtime.cache import index_by_label
from pincompute.runtime.controller import Controller, Event, not_status_only
from pincompute.runtime.informer import SharedInformer
from pincompute.runtime.manager import Manager
from pincompute.runtime.reconciler import Request, Result

BY_POOL = "pool"
by_pool = index_by_label(NODE_POOL_LABEL)


def node_ready(node: Mapping[str, Any]) -> bool:
    return objects.condition_true(node, "Ready") and not (node.get("spec") or {}).get(
        "unschedulable")


def is_leaving(node: Mapping[str, Any]) -> bool:
    """Whether the node is being drained out of its pool."""
    return DRAIN_ANNOTATION in (objects.meta(node).get("annotations") or {})


def target_size(spec: NodePoolSpec, staying: int) -> int:
    """The size a pool is kept at: ``desiredSize`` when set, else ``staying`` (its nodes
    not leaving), within ``minSize..maxSize`` (``spec`` a model or a view)."""
    size = staying if spec.desired_size is None else spec.desired_size
    return pool_size(size, min_size=spec.min_size, max_size=spec.max_size)


class NodePoolReconciler:
    def __init__(self, *, client: KubeClient, pools: SharedInformer,
                 nodes: SharedInformer) -> None:
        self.client = client
        self.pools = pools
        self.nodes = nodes

    async def reconcile(self, request: Request) -> Result | None:
        pool = self.pools.get(request.name)
        if pool is None or objects.is_deleting(pool):
            return None
        spec = spec_view(NodePoolSpec, pool)
        members = self.nodes.by_index(BY_POOL, request.name)
        ready = sum(1 for n in members if node_ready(n))
        images = Counter((objects.meta(n).get("labels") or {}).get(NODE_IMAGE_LABEL, "")
                         for n in members)
        common = next((image for image, _ in images.most_common() if image), None)
        wanted = spec.node_image
        updated = images.get(wanted, 0) if wanted else len(members)
        minimum = spec.min_size
        desired = target_size(spec, sum(1 for n in members if not is_leaving(n)))
        updated_pool = objects.deepcopy(pool)
        status = updated_pool.setdefault("status", {})
        status.update(currentSize=len(members), readyNodes=ready, desiredSize=desired,
                      updatedNodes=updated)
        if common:
            status["nodeImage"] = common
        else:
            status.pop("nodeImage", None)
        generation = objects.meta(pool).get("generation")
        status["observedGeneration"] = generation
        if ready >= minimum and (ready > 0 or minimum == 0):
            objects.set_condition(updated_pool, "Ready", True, reason="EnoughReadyNodes",
                                  message=f"{ready} of {len(members)} nodes ready",
                                  observed_generation=generation)
        else:
            objects.set_condition(updated_pool, "Ready", False, reason="TooFewReadyNodes",
                                  message=f"{ready} ready nodes, minSize is {minimum}",
                                  observed_generation=generation)
        if updated_pool["status"] != pool.get("status"):
            try:
                await self.client.update_status(NODEPOOLS, updated_pool)
            except NotFound:
                return None  # deleted meanwhile: no status to write
            except Conflict:
                return Result(requeue=True)  # its spec moved (a rotation's surge): count again
        return None


def add_nodepool_controller(manager: Manager, *, client: KubeClient,
                            name: str = "nodepools", batch: float = 1.0) -> Controller:
    """Keep each NodePool's status (sizes, ready and updated nodes) from its nodes.

    ``batch``: seconds a node's change waits for the pool's other nodes' changes."""
    pools = manager.informer(client, NODEPOOLS)
    nodes = manager.informer(client, NODES)
    nodes.add_indexer(BY_POOL, by_pool)
    controller = manager.controller(
        name, NodePoolReconciler(client=client, pools=pools, nodes=nodes))
    controller.for_(pools, predicate=not_status_only)  # not after its own writes

    def to_pool(node: dict[str, Any]) -> list[Request]:
        pool = (objects.meta(node).get("labels") or {}).get(NODE_POOL_LABEL)
        return [Request("", pool)] if pool else []

    # A pass counts every node of the pool: nodes' routine status updates (thousands a
    # minute in a large pool) must not each cost one, and the counts may lag a second.
    controller.watches(nodes, to_pool, predicate=counts_changed, batch=batch)
    return controller


def counts_changed(event: Event) -> bool:
    """A node event that may change its pool's status: added, deleted, Ready or cordoned
    flipped, its image, pool or leaving mark changed (not heartbeats or usage)."""
    if event.type != "update" or event.old is None:
        return True
    old, new = event.old, event.object
    old_labels = objects.meta(old).get("labels") or {}
    new_labels = objects.meta(new).get("labels") or {}
    return (node_ready(old) != node_ready(new) or is_leaving(old) != is_leaving(new)
            or old_labels.get(NODE_IMAGE_LABEL) != new_labels.get(NODE_IMAGE_LABEL)
            or old_labels.get(NODE_POOL_LABEL) != new_labels.get(NODE_POOL_LABEL))
