"""The node provisioner: each NodePool of an embedded member cluster becomes node agents.

Theory of operation
-------------------
In an embedded member cluster the nodes are node agents of this process
(``process`` or ``sim`` runtime).  This controller makes every NodePool's nodes
exist, level-triggered: each reconcile compares the pool, its Node objects (label
``pincompute.io/node-pool``, from the informer) and the agents running here, and
acts on the difference.  It decides; a :class:`NodeHost` handed in by the
assembly (:class:`pincompute.node.agenthost.AgentHost`) starts and stops the
agents, so this package needs nothing of the node agent's internals.

* **Size.**  A pool is kept at its target (:func:`~.nodepools.target_size`):
  ``desiredSize`` when set, else the nodes it has, within ``minSize..maxSize``.
  What changes a size (the autoscaler, an operator) writes ``desiredSize``.
* **Growing** starts agents for new nodes named ``<cluster>-<pool>-<index>``
  with the lowest free index: stable (a restarted region finds the same names)
  and unique per pool (the index is what follows the last dash and is all
  digits, so pools whose names end in digits cannot collide); a node deleted
  behind the provisioner's back keeps its name while pods are still bound to it
  (a successor of that name would run them).  A node is made
  from the pool's spec (instance type, capacity, tier, node image, labels,
  taints) and joins with the readiness-gate taint, lifted by its agent once its
  health probes pass (:mod:`pincompute.node.registration`).
* **Shrinking** picks the nodes to remove deterministically (:func:`plan`): not
  ready first, then fewest pods, then newest (highest index); each is marked —
  annotation :data:`~.nodepools.DRAIN_ANNOTATION` and ``spec.unschedulable``
  (cordon), one write.  The mark is the durable decision: after a restart the
  same node goes on leaving.  Anyone may mark a node so (remediation, rotation:
  :func:`mark_for_removal`): a leaving node no longer counts towards the pool, so
  a pool with a ``desiredSize`` starts its successor at once.  Nor does a node a
  rotation replaces with surge, within the pool's ``maxSize``
  (:mod:`pincompute.model.surge`): its successor starts before it drains.
* **Draining** a marked node follows :data:`DRAIN_STEPS`, a table from what the
  node is in (:func:`drain_phase`) to what to do: delete its pods, each with its
  own grace period (the agent stops their containers — SIGTERM, SIGKILL at the
  end of the grace period — and finishes each deletion), daemon pods (label
  :data:`~pincompute.model.wellknown.DAEMON_POD_LABEL`) only once the others are
  gone; wait for them; past ``drain_timeout`` delete what is left at once; with no pod left stop the
  agent, then delete the Node (foreground: its Lease and address block go
  first, so a later node of the same name starts clean).
* **Deleting a pool**: the finalizer :data:`FINALIZER` holds the deletion while
  every node drains and goes (the target is 0), then is removed.  Nodes of a pool
  that no longer exists leave the same way.
* **Re-adoption.**  Agents live in this process.  After a restart every Node of
  a pool registered by an agent gets one again, under the same name and with
  the identity the Node carries — not the pool's current spec: a changed image
  or instance type reaches existing nodes by replacing them (rotation), never by
  a restart.

Events map back to pools: a pool's own, its nodes' (by label),
and pods' on leaving nodes (so a drain advances as each pod goes).
:meth:`NodeProvisioner.agents` tells which agents run for a pool; autoscaling,
remediation and rotation act on pools through ``desiredSize`` and the drain mark.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from pincompute.kube import objects
from pincompute.kube.errors import Conflict, NotFound
from pincompute.kube.protocol import KubeClient, Preconditions
from pincompute.kube.resource import NODES, PODS
from pincompute.model.disruption import evict
from pincompute.model.platform import NodePoolSpec
from pincompute.model.registry import NODEPOOLS
from pincompute.model.surge import covered, surge_room, surge_since
from pincompute.model.views import spec_view
from pincompute.model.wellknown import DAEMON_POD_LABEL
from pincompute.model.wellknown import NODE_DRAIN_ANNOTATION as DRAIN_ANNOTATION
from pincompute.model.wellknown import NODE_POOL_LABEL as POOL_LABEL
from pincompute.model.wellknown import NODE_PROVISIONER_FINALIZER as FINALIZER
from pincompute.runtime.cache import index_by_field
from pincompute.runtime.controller import Controller
from pincompute.runtime.informer import SharedInformer
from pincompute.runtime.logging import get_logger
from pincompute.runtime.manager import Manager
from pincompute.runtime.reconciler import Request, Result

from .nodepools import BY_POOL, by_pool, is_leaving, node_ready, target_size

BY_NODE = "spec.nodeName"
by_node = index_by_field("spec", "nodeName")

_log = get_logger(__name__)


# --- pure rules -------------------------------------------------------------------------------

class DrainPhase(enum.Enum):
    PODS_LEFT = "pods not yet asked to go"
    TERMINATING = "pods terminating"
    OVERDUE = "pods left after drain_timeout"
    DRAINED = "no pods, agent running"
    STOPPED = "no pods, no agent"


class DrainStep(enum.Enum):
    EVICT = "delete each pod with its own grace period"
    WAIT = "wait for the agent to finish the deletions"
    FORCE = "delete the pods left at once"
    STOP_AGENT = "stop the node's agent"
    DELETE_NODE = "delete the Node"


DRAIN_STEPS: Mapping[DrainPhase, DrainStep] = {
    DrainPhase.PODS_LEFT: DrainStep.EVICT,
    DrainPhase.TERMINATING: DrainStep.WAIT,
    DrainPhase.OVERDUE: DrainStep.FORCE,
    DrainPhase.DRAINED: DrainStep.STOP_AGENT,
    DrainPhase.STOPPED: DrainStep.DELETE_NODE,
}
"""What to do with a leaving node, by what it is in.  Each step leads to the next
phase (EVICT → TERMINATING → DRAINED → STOPPED → gone) or, past the timeout, FORCE."""


def drain_phase(*, pods: int, undeleted: int, overdue: bool, agent: bool) -> DrainPhase:
    """The phase of a leaving node with ``pods`` bound, ``undeleted`` of them not yet
    being deleted, past its drain timeout or not, its agent running or not."""
    if pods == 0:
        return DrainPhase.DRAINED if agent else DrainPhase.STOPPED
    if overdue:
        return DrainPhase.OVERDUE
    return DrainPhase.PODS_LEFT if undeleted else DrainPhase.TERMINATING


def node_name(cluster: str, pool: str, index: int) -> str:
    return f"{cluster}-{pool}-{index}"


def node_index(name: str, *, cluster: str, pool: str) -> int | None:
    """The index of a node named by :func:`node_name` for this pool (else None)."""
    prefix = f"{cluster}-{pool}-"
    rest = name[len(prefix):] if name.startswith(prefix) else ""
    return int(rest) if rest.isdigit() else None


@dataclass(frozen=True, slots=True)
class Member:
    """A node of a pool as far as sizing cares."""

    name: str
    index: int | None
    ready: bool
    pods: int


def plan(target: int, staying: Sequence[Member], *, taken: Iterable[int]
         ) -> tuple[list[int], list[str]]:
    """(indices of nodes to start, names of nodes to remove) to bring ``staying`` to
    ``target``; new nodes take the lowest indices not in ``taken``."""
    if len(staying) < target:
        used = set(taken)
        fresh: list[int] = []
        i = 0
        while len(fresh) < target - len(staying):
            if i not in used:
                fresh.append(i)
            i += 1
        return fresh, []
    if len(staying) > target:
        # Not ready first, then fewest pods, then newest; the name settles ties.
        order = sorted(staying, key=lambda m: (m.ready, m.pods, -(m.index if m.index is not None
                                                                  else -1), m.name))
        return [], [m.name for m in order[:len(staying) - target]]
    return [], []


def node_slot(name: str, *, cluster: str, pool: str) -> str:
    """The directory name of a node's files: ``<pool>-<index>`` (else its name)."""
    index = node_index(name, cluster=cluster, pool=pool)
    return f"{pool}-{index}" if index is not None else name


# --- the controller ---------------------------------------------------------------------------

class NodeHost(Protocol):
    """What runs a cluster's node agents (:class:`pincompute.node.agenthost.AgentHost`)."""

    @property
    def agents(self) -> Mapping[str, object]:
        """The running agents, by node name."""
        ...

    def pool_of(self, name: str) -> str | None:
        """The pool of the running agent ``name``."""
        ...

    def registered(self, node: Mapping[str, Any]) -> bool:
        """Whether a Node object was registered by a node agent (so one can adopt it)."""
        ...

    async def start(self) -> None: ...

    async def add_new(self, pool: Mapping[str, Any], name: str, *, slot: str) -> None:
        """Start a new node of ``pool`` made from its spec."""
        ...

    async def adopt(self, node: Mapping[str, Any], pool: Mapping[str, Any] | None, *,
                    slot: str) -> None:
        """Start an agent again for a registered Node, with the identity it carries."""
        ...

    async def remove(self, name: str) -> None:
        """Stop node ``name``'s agent."""
        ...

    async def forget(self, slot: str) -> None:
        """Delete a removed node's files."""
        ...

    async def close(self) -> None: ...


@dataclass(frozen=True, kw_only=True)
class ProvisionerConfig:
    cluster: str
    """The member cluster's name (the first part of every node name)."""
    drain_timeout: float = 600.0
    """Seconds a drain waits for pods to terminate before deleting them at once."""
    start_concurrency: int = 16
    """Agents started at once (registration is a few API calls each)."""


class NodeProvisioner:
    """Reconciles NodePools into node agents; see the module docstring."""

    def __init__(self, *, client: KubeClient, pools: SharedInformer, nodes: SharedInformer,
                 pods: SharedInformer, host: NodeHost, config: ProvisionerConfig) -> None:
        self.client = client
        self.pools = pools
        self.nodes = nodes
        self.pods = pods
        self.host = host
        self.config = config
        self._host_started = False
        self._by_pool: dict[str, set[str]] = {}
        """pool → names of the agents running for it."""
        self._gone: set[str] = set()
        """Nodes this provisioner deleted that the informer may still show."""
        self._shown: set[str] = set()
        """Nodes of running agents that the informer has shown (a name missing from the
        informer is a node not seen yet, or — if shown before — one deleted by someone)."""
        self._orphaned: set[str] = set()
        """Nodes deleted by someone while their agent ran, whose pods are still bound to
        them: a successor under the same name would run those pods as if the machine had
        never gone (and their owners would not fail them over), so the name stays taken."""
        self._progress = asyncio.Event()
        """Set after every reconcile (for :meth:`wait_provisioned`)."""
        self.controller: Controller | None = None
        """The controller running this reconciler (set by :func:`add_node_provisioner`)."""

    # -- what exists --

    def agents(self, pool: str) -> dict[str, Any]:
        """The agents running for ``pool``, by node name."""
        running = self.host.agents
        return {name: running[name] for name in sorted(self._by_pool.get(pool, ()))
                if name in running}

    def agent(self, name: str) -> Any:
        """The agent of node ``name``, if it runs here (else None)."""
        return self.host.agents.get(name)

    def all_agents(self) -> dict[str, Any]:
        return dict(self.host.agents)

    def provisioned(self) -> bool:
        """Whether every live pool has its target of running, staying agents."""
        if not self._host_started:
            return False
        for pool in self.pools.list():
            if objects.is_deleting(pool):
                continue
            name = objects.name_of(pool)
            staying = 0
            for node in self._by_pool.get(name, ()):
                obj = self.nodes.get(node)
                staying += not (obj is not None and is_leaving(obj))
            if staying != target_size(spec_view(NodePoolSpec, pool), staying):
                return False
        return True

    async def wait_provisioned(self) -> None:
        """Until :meth:`provisioned` (bound it with ``asyncio.timeout``)."""
        while not self.provisioned():
            self._progress.clear()
            await self._progress.wait()

    async def close(self) -> None:
        """Stop every agent (their Nodes stay, to be re-adopted by the next start)."""
        await self.host.close()
        self._host_started = False
        self._by_pool.clear()
        self._shown.clear()

    # -- reconcile --

    async def reconcile(self, request: Request) -> Result | None:
        try:
            return await self._reconcile(request.name)
        finally:
            self._progress.set()

    async def _reconcile(self, name: str) -> Result | None:
        await self._ensure_host()
        # Deleted nodes the informer no longer shows: their names may be used again.
        self._gone = {n for n in self._gone if self.nodes.get(n) is not None}
        self._orphaned = {n for n in self._orphaned if self.nodes.get(n) is None
                          and self.pods.index_keys(BY_NODE, n)}
        pool = self.pools.get(name)
        deleting = pool is None or objects.is_deleting(pool)
        if pool is not None and not deleting and not objects.has_finalizer(pool, FINALIZER):
            md = objects.meta(pool)
            await self.client.patch(NODEPOOLS, name, {"metadata": {
                "finalizers": [*(md.get("finalizers") or ()), FINALIZER],
                "resourceVersion": md["resourceVersion"]}})
            return None  # the update brings the pool back with the finalizer
        nodes = self._nodes_of(name)
        for node in sorted(self._by_pool.get(name, ())):
            if node in nodes:
                self._shown.add(node)
            elif node in self._shown:
                # Deleted behind our back: the agent goes too, a new node replaces it.
                _log.warning("node %s was deleted while its agent ran: stopping it", node)
                await self._stop_agent(node)
                if self.pods.index_keys(BY_NODE, node):
                    self._orphaned.add(node)
        await self._adopt(pool, nodes)
        running = self._by_pool.get(name, set())
        members = set(nodes) | running
        leaving = {n for n, obj in nodes.items() if is_leaving(obj)}
        staying = members - leaving
        target, counted = 0, staying
        if not deleting and pool is not None:
            # Nodes a rotation replaces with surge do not count (their successors start):
            # as many as the pool's maxSize leaves room for.
            spec = spec_view(NodePoolSpec, pool)
            marked = [nodes[n] for n in staying
                      if n in nodes and surge_since(nodes[n]) is not None]
            target = target_size(spec, len(staying) - len(marked))
            counted = staying - set(covered(marked, room=surge_room(
                target=target, min_size=spec.min_size, max_size=spec.max_size)))
        fresh, remove = plan(target, [self._member(n, nodes.get(n), pool=name)
                                      for n in sorted(counted)],
                             taken=self._taken(name, members))
        if fresh and pool is not None:
            await self._start([(node_name(self.config.cluster, name, i), pool, None)
                               for i in fresh])
        for node in remove:
            await self._mark(node)
        wake: float | None = None
        for node in sorted(leaving):
            after = await self._drain(nodes[node])
            if after is not None:
                wake = after if wake is None else min(wake, after)
        if pool is not None and deleting and not self._nodes_of(name) and \
                not self._by_pool.get(name) and objects.has_finalizer(pool, FINALIZER):
            finalizers = [f for f in objects.meta(pool).get("finalizers") or ()
                          if f != FINALIZER]
            with contextlib.suppress(NotFound):
                await self.client.patch(NODEPOOLS, name, {"metadata": {
                    "finalizers": finalizers or None,
                    "resourceVersion": objects.meta(pool)["resourceVersion"]}})
        return Result(requeue_after=wake) if wake is not None else None

    def _nodes_of(self, pool: str) -> dict[str, dict[str, Any]]:
        out = {}
        for node in self.nodes.by_index(BY_POOL, pool):
            name = objects.name_of(node)
            if name not in self._gone:
                out[name] = node
        return out

    def _member(self, name: str, node: Mapping[str, Any] | None, *, pool: str) -> Member:
        return Member(name=name, index=node_index(name, cluster=self.config.cluster, pool=pool),
                      ready=node is not None and node_ready(node),
                      pods=len(self.pods.index_keys(BY_NODE, name)))

    def _taken(self, pool: str, members: Iterable[str]) -> set[int]:
        taken = set()
        for name in (*members, *self._gone, *self._orphaned):
            index = node_index(name, cluster=self.config.cluster, pool=pool)
            if index is not None:
                taken.add(index)
        return taken

    # -- agents --

    async def _ensure_host(self) -> None:
        if not self._host_started:
            await self.host.start()
            self._host_started = True

    async def _adopt(self, pool: dict[str, Any] | None, nodes: Mapping[str, dict[str, Any]]
                     ) -> None:
        """Start agents for Nodes registered by an agent that no longer runs."""
        adopt: list[tuple[str, dict[str, Any] | None, dict[str, Any] | None]] = []
        for name, node in nodes.items():
            if name in self.host.agents or not self.host.registered(node):
                continue
            if is_leaving(node) and not self.pods.index_keys(BY_NODE, name):
                continue  # drained already: nothing for an agent to do
            adopt.append((name, pool, node))
        if adopt:
            _log.info("re-adopting nodes %s", ", ".join(name for name, _, _ in adopt))
            await self._start(adopt)

    async def _start(self, nodes: Sequence[tuple[str, dict[str, Any] | None,
                                                 dict[str, Any] | None]]) -> None:
        """Start agents for ``(name, pool, registered Node or None for a new node)``."""
        limit = asyncio.Semaphore(self.config.start_concurrency)

        async def one(name: str, pool: dict[str, Any] | None,
                      node: dict[str, Any] | None) -> None:
            pool_name = (objects.name_of(pool) if pool is not None else
                         (objects.meta(node or {}).get("labels") or {}).get(POOL_LABEL, ""))
            slot = node_slot(name, cluster=self.config.cluster, pool=pool_name)
            async with limit:
                if node is None:
                    assert pool is not None
                    await self.host.add_new(pool, name, slot=slot)
                else:
                    await self.host.adopt(node, pool, slot=slot)
            self._by_pool.setdefault(self.host.pool_of(name) or pool_name, set()).add(name)

        results = await asyncio.gather(*(one(*n) for n in nodes), return_exceptions=True)
        for result in results:
            if isinstance(result, BaseException):
                raise result  # the others started; the retry starts what is missing

    # -- leaving --

    async def _mark(self, name: str) -> None:
        _log.info("node %s leaves its pool: cordoned, to be drained", name)
        await mark_for_removal(self.client, name)

    async def _drain(self, node: Mapping[str, Any]) -> float | None:
        """One step of a leaving node's drain; seconds until it needs another look."""
        name = objects.name_of(node)
        pods = self.pods.by_index(BY_NODE, name)
        # Daemon pods (node agents: log shippers, ...) go last, once every other pod is
        # gone, and their daemon does not put them back on a leaving node: the drain
        # never waits for them to be replaced (kubectl drain --ignore-daemonsets).
        pods = [p for p in pods if not _is_daemon_pod(p)] or pods
        undeleted = [p for p in pods if not objects.is_deleting(p)]
        started = (objects.meta(node).get("annotations") or {}).get(DRAIN_ANNOTATION, "")
        try:
            deadline = objects.parse_time(started).timestamp() + self.config.drain_timeout
        except ValueError:
            deadline = time.time()  # an unreadable mark: treat the drain as overdue
        left = deadline - time.time()
        step = DRAIN_STEPS[drain_phase(pods=len(pods), undeleted=len(undeleted),
                                       overdue=left <= 0, agent=name in self.host.agents)]
        if step is DrainStep.EVICT:
            refused = 0
            for pod in undeleted:
                # An app's disruption budget may refuse: ask again soon (its evicted replica
                # comes back elsewhere); past drain_timeout, FORCE does not ask.
                decision = await evict(self.client, pod)  # asked and deleted in one step
                if not decision.allowed:
                    refused += 1
                    _log.info("node %s: not evicting yet: %s", name, decision.message)
            return min(max(left, 0.05), 1.0) if refused else max(left, 0.05)
        if step is DrainStep.WAIT:
            return max(left, 0.05)  # pod deletions bring us back sooner
        if step is DrainStep.FORCE:
            _log.warning("node %s: %d pods still there after %.0fs of draining: deleting "
                         "them at once", name, len(pods), self.config.drain_timeout)
            for pod in pods:
                await self._delete_pod(pod, grace=0)
            return 1.0
        if step is DrainStep.STOP_AGENT:
            await self._stop_agent(name)
        # DELETE_NODE (also right after STOP_AGENT: nothing to wait for in between).
        pool = (objects.meta(node).get("labels") or {}).get(POOL_LABEL, "")
        self._gone.add(name)  # before the call: the informer may see the deletion during it
        try:
            await self.client.delete(NODES, name, propagation_policy="Foreground",
                                     preconditions=Preconditions(uid=objects.uid_of(node)))
        except NotFound:
            pass  # gone already
        except BaseException:
            self._gone.discard(name)
            raise
        await self.host.forget(node_slot(name, cluster=self.config.cluster, pool=pool))
        _log.info("node %s drained and removed", name)
        return None

    async def _stop_agent(self, name: str) -> None:
        pool = self.host.pool_of(name)
        if pool is None:
            return
        await self.host.remove(name)
        self._shown.discard(name)
        names = self._by_pool.get(pool)
        if names is not None:
            names.discard(name)

    async def _delete_pod(self, pod: Mapping[str, Any], *, grace: int | None) -> None:
        # Gone already, or a new pod of the same name: nothing to delete.
        with contextlib.suppress(NotFound, Conflict):
            await self.client.delete(PODS, objects.name_of(pod),
                                     namespace=objects.namespace_of(pod),
                                     grace_period_seconds=grace,
                                     preconditions=Preconditions(uid=objects.uid_of(pod)))


def _is_daemon_pod(pod: Mapping[str, Any]) -> bool:
    return (objects.meta(pod).get("labels") or {}).get(DAEMON_POD_LABEL) == "true"


async def mark_for_removal(client: KubeClient, name: str) -> bool:
    """Have node ``name`` leave its pool: cordoned now, drained and removed by the
    provisioner, and replaced when its pool has a ``desiredSize`` (what remediation
    and rotation call).  Returns whether the node exists; marking twice is harmless."""
    try:
        node = await client.get(NODES, name)
    except NotFound:
        return False
    if is_leaving(node):
        return True  # keep the first mark's time: the drain timeout counts from it
    with contextlib.suppress(NotFound):
        await client.patch(NODES, name, {
            "metadata": {"annotations": {DRAIN_ANNOTATION: objects.now()}},
            "spec": {"unschedulable": True}})
        return True
    return False


def add_node_provisioner(manager: Manager, *, client: KubeClient, host: NodeHost,
                         config: ProvisionerConfig,
                         name: str = "node-provisioner") -> NodeProvisioner:
    """Run the provisioner for the member cluster ``client`` in ``manager``.

    The provisioner needs leadership (it is one of the manager's leader-gated
    controllers); its agents outlive the manager: call :meth:`NodeProvisioner.close`
    after the manager stopped to stop them.
    """
    pools = manager.informer(client, NODEPOOLS)
    nodes = manager.informer(client, NODES)
    pods = manager.informer(client, PODS)
    nodes.add_indexer(BY_POOL, by_pool)
    pods.add_indexer(BY_NODE, by_node)
    provisioner = NodeProvisioner(client=client, pools=pools, nodes=nodes, pods=pods,
                                  host=host, config=config)
    controller = manager.controller(name, provisioner)
    controller.for_(pools)

    def node_to_pool(node: dict[str, Any]) -> list[Request]:
        pool = (objects.meta(node).get("labels") or {}).get(POOL_LABEL)
        return [Request("", pool)] if pool else []

    def pod_to_pool(pod: dict[str, Any]) -> list[Request]:
        # Only pods of leaving nodes matter (a drain advancing): a dict lookup per event.
        node = nodes.get((pod.get("spec") or {}).get("nodeName") or "")
        return node_to_pool(node) if node is not None and is_leaving(node) else []

    controller.watches(nodes, node_to_pool)
    controller.watches(pods, pod_to_pool)
    provisioner.controller = controller
    return provisioner


__all__ = [
    "DRAIN_STEPS", "FINALIZER", "DrainPhase", "DrainStep", "Member", "NodeHost",
    "NodeProvisioner", "ProvisionerConfig", "add_node_provisioner", "drain_phase",
    "mark_for_removal", "node_index", "node_name", "node_slot", "plan",
]
