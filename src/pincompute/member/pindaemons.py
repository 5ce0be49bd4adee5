"""The PinDaemon operator: one platform pod on every node that fits, kept current.

Theory of operation
-------------------
A PinDaemon is a platform object (cluster-scoped, written by administrators
only — the API enforces the role); its pods live in ``spec.namespace``, the
platform namespace :data:`~pincompute.model.wellknown.SYSTEM_NAMESPACE` by
default, which is also what lets them use host networking (the node agent
grants ``networkMode: host`` to system namespaces only).  Each reconcile of a
daemon reads the node and pod caches, asks :mod:`.daemonplan` where the daemon
fits and what to do on each node, and does it:

* **create** a pod on a fitting node without one — including nodes that join
  later (node events requeue every daemon) — named ``<daemon>-<revision>-<node
  hash>``: a stable name, so a retry after a lost answer or a restarted
  manager meets ``AlreadyExists`` instead of making a second pod;
* **delete** pods on nodes that stopped fitting (labels, taints), failed
  pods, and duplicates — but not on a node being drained: the drain deletes
  its daemon pod after every other pod, and the operator makes none there;
* **roll** pods of an older revision (:func:`~.podtemplate.template_hash` of
  the template and tolerations) ``maxUnavailable`` nodes at a time; a new pod
  is created only once the old one is gone (a node's agent never runs two).

**Binding.** Daemon pods are bound to their node directly (``spec.nodeName``),
not through the scheduler with a node affinity as DaemonSets do since
Kubernetes 1.12.  The affinity route exists for preemption and for the default
scheduler's resource accounting; here a platform daemon runs at the
``reserved`` tier and must land on its node even when PinCompute's scheduler is
down or busy (it may be what the scheduler waits for: a network or log agent),
and the node agent — or the kubelet — still admits the pod against the node's
resources and ports, and a rejected pod is reported (an Event) and replaced.
The scheduler's cache accounts bound pods like any other.  The pods carry the
tolerations a DaemonSet adds (:data:`~.daemonplan.DEFAULT_TOLERATIONS`), so the
node lifecycle controller never evicts them, and the label
:data:`~pincompute.model.wellknown.DAEMON_POD_LABEL`, by which the node
provisioner's drain deletes them after every other pod and does not wait for
them to be replaced (``kubectl drain --ignore-daemonsets``).

**Restarts.**  Nothing is kept only in memory: pods are found by the owner-uid
label; the only memory is the *expectations* of the last pass (pods created or
deleted that the informer has not shown yet), which keep a pass on a stale
cache from acting twice (over-deleting during a rollout); they expire.

The status counts nodes as a DaemonSet's does (``desiredNumberScheduled``,
``currentNumberScheduled``, ``numberReady``, ``numberAvailable``,
``updatedNumberScheduled``, ``numberMisscheduled``).  ``clusterSelector`` is
the federation's business (which member clusters get a shard); a PinDaemon in a
member cluster runs there.
"""

from __future__ import annotations

import hashlib
import socket
import time
from collections.abc import Mapping
from typing import Any

from pincompute.kube import objects
from pincompute.kube.errors import AlreadyExists, ApiError, Conflict, NotFound
from pincompute.kube.protocol import KubeClient, Preconditions
from pincompute.kube.resource import NODES, PODS
from pincompute.model.registry import PINDAEMONS
from pincompute.model.wellknown import (
    DAEMON_POD_LABEL,
    NODE_DRAIN_ANNOTATION,
    OWNER_UID_LABEL,
    RESERVED,
    REVISION_LABEL,
)
from pincompute.runtime.cache import index_by_label
from pincompute.runtime.controller import Controller, Event
from pincompute.runtime.events import EventRecorder
from pincompute.runtime.informer import SharedInformer
from pincompute.runtime.logging import get_logger
from pincompute.runtime.manager import Manager
from pincompute.runtime.reconciler import Request, Result

from .daemonplan import Fit, NodePods, daemon_tolerations, fits, node_pods, plan
from .operator import (
    CREATED,
    DELETED,
    FAILED_CREATE,
    FAILED_DELETE,
    NORMAL,
    WARNING,
    close_with_manager,
    create_pod,
    event_recorder,
    observe,
    resolve_count,
    shard_of,
)
from .podtemplate import Backend, pod_for, template_hash

Obj = dict[str, Any]

BY_OWNER = OWNER_UID_LABEL
by_owner = index_by_label(OWNER_UID_LABEL)
EXPECTATION_TTL = 30.0
"""Seconds after which an unobserved create or delete is no longer waited for."""

_log = get_logger(__name__)


def daemon_revision(spec: Mapping[str, Any]) -> str:
    """The revision of a daemon's pods: its template and tolerations (both reach the pod)."""
    return template_hash({"template": spec["template"],
                          "tolerations": spec.get("tolerations") or []})


def pod_name(daemon: str, revision: str, node: str) -> str:
    """``<daemon>-<revision[:5]>-<hash of node[:6]>``: stable per daemon, revision and node."""
    node_hash = hashlib.blake2b(node.encode(), digest_size=4).hexdigest()[:6]
    return f"{daemon}-{revision[:5]}-{node_hash}"


def _node_changed(event: Event) -> bool:
    """Only what decides where a daemon fits: labels, taints, the drain mark, deletion."""
    if event.type != "update" or event.old is None:
        return True
    old, new = event.old, event.object
    om, nm = objects.meta(old), objects.meta(new)
    return (om.get("labels") != nm.get("labels")
            or (old.get("spec") or {}).get("taints") != (new.get("spec") or {}).get("taints")
            or (NODE_DRAIN_ANNOTATION in (om.get("annotations") or {}))
            != (NODE_DRAIN_ANNOTATION in (nm.get("annotations") or {}))
            or om.get("deletionTimestamp") != nm.get("deletionTimestamp"))


class PinDaemonReconciler:
    """Reconciles one PinDaemon; see the module docstring."""

    def __init__(self, *, client: KubeClient, backend: Backend, daemons: SharedInformer,
                 nodes: SharedInformer, pods: SharedInformer, recorder: EventRecorder) -> None:
        self.client = client
        self.backend = backend
        self.daemons = daemons
        self.nodes = nodes
        self.pods = pods
        self.recorder = recorder
        self._expect: dict[str, dict[tuple[str, str, str, str], float]] = {}
        """daemon uid → (op, namespace, name, uid) → deadline: acts not yet seen."""

    def _waiting(self, uid: str) -> bool:
        pending = self._expect.get(uid)
        if not pending:
            return False
        now = time.monotonic()
        for key, deadline in list(pending.items()):
            op, ns, name, pod_uid = key
            pod = self.pods.get(name, namespace=ns)
            seen = (pod is not None if op == "create" else
                    pod is None or objects.uid_of(pod) != pod_uid or objects.is_deleting(pod))
            if seen or now > deadline:
                del pending[key]
        if not pending:
            del self._expect[uid]
        return bool(pending)

    async def reconcile(self, request: Request) -> Result | None:
        daemon = self.daemons.get(request.name)
        if daemon is None or objects.is_deleting(daemon):
            self._expect.pop(objects.uid_of(daemon) if daemon else "", None)
            return None  # its pods go with it (owner references)
        uid = objects.uid_of(daemon)
        if self._waiting(uid):
            return Result(requeue_after=0.05)
        spec = shard_of(daemon)["spec"]
        template = spec["template"]
        revision = daemon_revision(spec)
        host_network = (template.get("spec") or {}).get("networkMode") == "host"
        tolerations = daemon_tolerations(spec.get("tolerations"), host_network=host_network)
        selector = {**((template.get("spec") or {}).get("nodeSelector") or {}),
                    **(spec.get("nodeSelector") or {})}
        fit = {objects.name_of(n): fits(n, node_selector=selector, tolerations=tolerations)
               for n in self.nodes.list()}
        by_node_pods: dict[str, list[Obj]] = {}
        for pod in self.pods.by_index(BY_OWNER, uid):
            node = (pod.get("spec") or {}).get("nodeName") or ""
            by_node_pods.setdefault(node, []).append(pod)
        sorted_pods: dict[str, NodePods] = {
            node: node_pods(pods, revision=revision, revision_of=_revision_of)
            for node, pods in by_node_pods.items()}
        strategy = spec.get("updateStrategy") or {}
        desired = sum(1 for f in fit.values() if f is Fit.YES)
        max_unavailable = max(1, resolve_count(strategy.get("maxUnavailable", 1), desired,
                                               round_up=True))
        todo = plan(fit, sorted_pods, max_unavailable=max_unavailable,
                    rolling=strategy.get("type", "RollingUpdate") == "RollingUpdate")
        namespace = spec.get("namespace") or objects.namespace_of(template) or ""
        pending: dict[tuple[str, str, str, str], float] = {}
        deadline = time.monotonic() + EXPECTATION_TTL
        for pod, why in todo.delete:
            if await self._delete(daemon, pod, why):
                pending[("delete", objects.namespace_of(pod), objects.name_of(pod),
                         objects.uid_of(pod))] = deadline
        for node in todo.create:
            name = pod_name(objects.name_of(daemon), revision, node)
            if await self._create(daemon, template, name=name, namespace=namespace, node=node,
                                  revision=revision, tolerations=tolerations):
                pending[("create", namespace, name, "")] = deadline
        if pending:
            self._expect.setdefault(uid, {}).update(pending)
        return await self._status(daemon, todo.desired, todo.current, todo.ready,
                                  todo.updated, todo.misscheduled)

    async def _create(self, daemon: Obj, template: Mapping[str, Any], *, name: str,
                      namespace: str, node: str, revision: str,
                      tolerations: list[Obj]) -> bool:
        pod = pod_for(template, name=name, namespace=namespace, owner=daemon,
                      backend=self.backend, tier=RESERVED, labels={DAEMON_POD_LABEL: "true"},
                      tolerations=tolerations, env={"NODE_NAME": node}, revision=revision)
        pod["spec"]["nodeName"] = node
        try:
            await create_pod(self.client, pod)
        except AlreadyExists:
            return False  # made by an earlier pass (or the old pod is still going)
        except ApiError as exc:
            self.recorder.record(daemon, WARNING, FAILED_CREATE,
                                 f"creating pod {name} on node {node}: {exc}")
            _log.warning("pindaemon %s: creating pod on %s: %s", objects.name_of(daemon),
                         node, exc)
            return False
        self.recorder.record(daemon, NORMAL, CREATED, f"created pod {name} on node {node}")
        return True

    async def _delete(self, daemon: Obj, pod: Obj, why: str) -> bool:
        name = objects.name_of(pod)
        node = (pod.get("spec") or {}).get("nodeName") or "-"
        # On a node that is gone no agent will finish a graceful deletion: at once.
        grace = 0 if self.nodes.get(node) is None else None
        try:
            await self.client.delete(PODS, name, namespace=objects.namespace_of(pod),
                                     grace_period_seconds=grace,
                                     preconditions=Preconditions(uid=objects.uid_of(pod)))
        except (NotFound, Conflict):
            return False
        except ApiError as exc:
            self.recorder.record(daemon, WARNING, FAILED_DELETE,
                                 f"deleting pod {name} on node {node}: {exc}")
            return False
        self.recorder.record(daemon, NORMAL, DELETED, f"deleted pod {name} on node {node}: "
                                                      f"{why}")
        return True

    async def _status(self, daemon: Obj, desired: int, current: int, ready: int,
                      updated: int, misscheduled: int) -> Result | None:
        new = objects.deepcopy(daemon)
        status = observe(new)
        status.update(desiredNumberScheduled=desired, currentNumberScheduled=current,
                      numberReady=ready, numberAvailable=ready,
                      updatedNumberScheduled=updated, numberMisscheduled=misscheduled)
        if status == daemon.get("status"):
            return None
        try:
            await self.client.update_status(PINDAEMONS, new)
        except Conflict:
            return Result(requeue=True)
        except NotFound:
            pass
        return None


def _revision_of(pod: Mapping[str, Any]) -> str | None:
    return (objects.meta(pod).get("labels") or {}).get(REVISION_LABEL)


def add_pindaemon_controller(manager: Manager, *, client: KubeClient, backend: Backend,
                             name: str = "pindaemons", identity: str | None = None,
                             workers: int = 2) -> PinDaemonReconciler:
    """Run the PinDaemon operator for the member cluster ``client`` in ``manager``."""
    daemons = manager.informer(client, PINDAEMONS)
    nodes = manager.informer(client, NODES)
    pods = manager.informer(client, PODS)
    pods.add_indexer(BY_OWNER, by_owner)
    recorder = event_recorder(client, operator=name, identity=identity or socket.gethostname())
    reconciler = PinDaemonReconciler(client=client, backend=backend, daemons=daemons,
                                     nodes=nodes, pods=pods, recorder=recorder)
    controller: Controller = manager.controller(name, reconciler, workers=workers)
    controller.for_(daemons)
    controller.owns(pods, owner=PINDAEMONS)

    def every_daemon(_node: Obj) -> list[Request]:
        return [Request.for_object(d) for d in daemons.list()]

    controller.watches(nodes, every_daemon, predicate=_node_changed)

    close_with_manager(manager, recorder, name=name)
    return reconciler


__all__ = [
    "EXPECTATION_TTL", "PinDaemonReconciler", "add_pindaemon_controller", "daemon_revision",
    "pod_name",
]
