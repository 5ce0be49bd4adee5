"""The node lifecycle controller: silent nodes become Unknown, get tainted, lose their pods.

Theory of operation
-------------------
Node agents renew a Lease every few seconds (:mod:`.registration`); this
controller, running in the control plane (leader-elected, one per member
cluster), watches Nodes, their Leases and the pods bound to them, and per node:

1. **Health.**  A node is *unreachable* when its Lease has not been renewed for
   ``grace_period`` seconds (Kubernetes' node-monitor-grace-period).  As the
   leader elector does, the silence is timed on the controller's own monotonic
   clock from the moment it first saw the current ``renewTime`` — never by
   comparing the Lease's wall-clock time with ours — so clock skew between the
   agent's machine and ours does not matter.  An unreachable node's conditions
   become ``Unknown`` (reason ``NodeStatusUnknown``).  A reachable node that
   reports ``Ready=False`` itself is *not ready*.  A node that has posted no
   ``Ready`` condition yet is *starting*.
2. **Pods not ready** (Kubernetes' MarkPodsNotReady).  Every pod of an
   unreachable or not-ready node gets ``Ready`` and ``ContainersReady`` False,
   reason ``NodeNotReady`` (:func:`pincompute.node.status.marked_not_ready`), so
   workloads stop counting it available; pods already not ready are not written.
   Each pod is marked once per outage.  The node's agent, once back, sees that
   reason and writes the pod's real status again (:mod:`.worker`).
3. **Taints.**  Unreachable → ``node.kubernetes.io/unreachable`` with effects
   NoSchedule and NoExecute; not ready → ``node.kubernetes.io/not-ready`` likewise;
   healthy → neither; starting → left as they are (a new node joins with
   ``not-ready:NoSchedule``, which must stay until it is Ready).  Each taint
   carries ``timeAdded``.  Schedulers stop placing
   pods on tainted nodes; the NoExecute taints drive eviction.
4. **Eviction** (the taint manager).  A pod on a node with NoExecute taints is
   deleted at once if it does not tolerate one of them, or at ``timeAdded +
   tolerationSeconds`` (the smallest over the taints) if it tolerates them for a
   while; a toleration without seconds keeps it forever.  A pod with no toleration
   for ``not-ready``/``unreachable`` at all is treated as tolerating them for
   ``default_toleration_seconds`` (300), which is what Kubernetes' admission adds
   to every pod — a blip of a few seconds must not reschedule a fleet.
   Eviction is a graceful delete; on an unreachable node nobody finishes it, so
   the pod stays terminating (its owner already replaces it elsewhere) until the
   node returns, or — with ``force_delete_after`` — the controller removes it.

Circuit breaker: when *every* node of the cluster is unhealthy the fault is far
more likely in the control plane or the network than in all the nodes at once,
so the controller taints but does not evict (Kubernetes' full-disruption rule),
and evicts as usual once some node is healthy again.

Every reconcile returns when it next needs to look (the lease's expiry, the next
toleration deadline), so expiry is noticed without any event.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pincompute.kube import objects
from pincompute.kube.errors import Conflict, NotFound
from pincompute.kube.protocol import KubeClient, Preconditions
from pincompute.kube.resource import LEASES, NODES, PODS
from pincompute.kube.tolerations import tolerates
from pincompute.kube.wellknown import NODE_LEASE_NAMESPACE, NOT_READY_TAINT, UNREACHABLE_TAINT
from pincompute.runtime.cache import index_by_field
from pincompute.runtime.controller import Controller
from pincompute.runtime.informer import SharedInformer
from pincompute.runtime.logging import get_logger
from pincompute.runtime.manager import Manager
from pincompute.runtime.reconciler import Request, Result

from .status import marked_not_ready

UNREACHABLE = UNREACHABLE_TAINT
NOT_READY = NOT_READY_TAINT
OWN_TAINT_KEYS = (UNREACHABLE, NOT_READY)
NODE_CONDITIONS = ("Ready", "MemoryPressure", "DiskPressure", "PIDPressure")
BY_NODE = "spec.nodeName"

_log = get_logger(__name__)
_by_node = index_by_field("spec", "nodeName")


# --- pure rules -------------------------------------------------------------------------------

def eviction_delay(pod: Mapping[str, Any], taints: Sequence[Mapping[str, Any]], *,
                   default_seconds: float | None) -> float | None:
    """Seconds after the taints' addition at which the pod must go (None: never).

    Returns 0 for a pod that does not tolerate one of the NoExecute taints.
    """
    tolerations = (pod.get("spec") or {}).get("tolerations") or []
    delay: float | None = None
    for taint in taints:
        if taint.get("effect") != "NoExecute":
            continue
        matching = [t for t in tolerations if tolerates(t, taint)]
        if not matching:
            if taint.get("key") in OWN_TAINT_KEYS and default_seconds is not None:
                seconds: float = default_seconds
            else:
                return 0.0
        else:
            bounded = [float(t["tolerationSeconds"]) for t in matching
                       if t.get("tolerationSeconds") is not None]
            # Any toleration without seconds tolerates the taint for ever.
            if len(bounded) < len(matching):
                continue
            seconds = min(bounded)
        delay = seconds if delay is None else min(delay, seconds)
    return delay


def desired_taints(current: Sequence[Mapping[str, Any]], health: str, now: str
                   ) -> list[dict[str, Any]]:
    """The node's taints for ``health`` (``healthy``, ``not-ready``, ``unreachable``,
    ``starting``: unchanged)."""
    if health == "starting":
        return [dict(t) for t in current]
    want_key = {"unreachable": UNREACHABLE, "not-ready": NOT_READY}.get(health)
    out = [dict(t) for t in current if t.get("key") not in OWN_TAINT_KEYS
           or t.get("key") == want_key]
    if want_key is not None:
        for effect in ("NoSchedule", "NoExecute"):
            if not any(t.get("key") == want_key and t.get("effect") == effect for t in out):
                out.append({"key": want_key, "effect": effect, "timeAdded": now})
    return out


def unknown_conditions(conditions: Sequence[Mapping[str, Any]], now: str
                       ) -> list[dict[str, Any]]:
    out = []
    seen = set()
    for c in conditions:
        c = dict(c)
        if c.get("type") in NODE_CONDITIONS:
            seen.add(c["type"])
            if c.get("status") != "Unknown":
                c.update(status="Unknown", reason="NodeStatusUnknown",
                         message="Node agent stopped posting node status.",
                         lastTransitionTime=now)
        out.append(c)
    for t in NODE_CONDITIONS:
        if t not in seen:
            out.append({"type": t, "status": "Unknown", "reason": "NodeStatusNeverUpdated",
                        "message": "Node agent never posted node status.",
                        "lastTransitionTime": now})
    return out


# --- the controller ---------------------------------------------------------------------------

@dataclass(frozen=True, kw_only=True)
class LifecycleConfig:
    grace_period: float = 40.0
    """Seconds of Lease silence after which a node is unreachable."""
    default_toleration_seconds: float | None = 300.0
    """How long pods without explicit not-ready/unreachable tolerations stay."""
    force_delete_after: float | None = None
    """Remove evicted pods of an unreachable node after this many seconds (None: never)."""
    stop_evicting_when_all_unhealthy: bool = True


class NodeLifecycleReconciler:
    def __init__(self, *, client: KubeClient, nodes: SharedInformer, leases: SharedInformer,
                 pods: SharedInformer, config: LifecycleConfig) -> None:
        self.client = client
        self.nodes = nodes
        self.leases = leases
        self.pods = pods
        self.config = config
        self._seen: dict[str, tuple[str, float]] = {}
        """node → (renewTime last seen, monotonic time it was first seen)."""
        self._marked: dict[str, set[str]] = {}
        """node → uids of its pods marked not ready in its current outage."""
        self.evictions = 0

    def _health(self, node: Mapping[str, Any]) -> tuple[str, float | None]:
        """(health, seconds until the lease expires if healthy)."""
        name = objects.name_of(node)
        lease = self.leases.get(name, namespace=NODE_LEASE_NAMESPACE)
        renew = ((lease or {}).get("spec") or {}).get("renewTime") or ""
        t = time.monotonic()
        seen = self._seen.get(name)
        if seen is None or seen[0] != renew:
            seen = (renew, t)
            self._seen[name] = seen
        duration = self.config.grace_period
        left = seen[1] + duration - t
        if left <= 0:
            return "unreachable", None
        ready = objects.get_condition(node, "Ready")
        if ready is None:
            return "starting", left
        if ready.get("status") != "True":
            return "not-ready", left
        return "healthy", left

    def _all_unhealthy(self) -> bool:
        keys = self.nodes.keys()
        if not keys:
            return False
        for key in keys:
            node = self.nodes.get_by_key(key)
            if node is not None and self._health(node)[0] in ("healthy", "starting"):
                return False
        return True

    async def reconcile(self, request: Request) -> Result | None:
        node = self.nodes.get(request.name)
        if node is None:
            self._seen.pop(request.name, None)
            self._marked.pop(request.name, None)
            return None
        health, left = self._health(node)
        now = objects.now()
        spec = node.get("spec") or {}
        taints = desired_taints(spec.get("taints") or [], health, now)
        if taints != (spec.get("taints") or []):
            updated = objects.deepcopy(node)
            updated.setdefault("spec", {})["taints"] = taints
            if not taints:
                updated["spec"].pop("taints")
            try:
                node = await self.client.update(NODES, updated)
            except NotFound:
                return None
            except Conflict:
                # The agent lifting its readiness gate, a cordon: the fresher node
                # comes back through the informer.
                return Result(requeue=True)
            if health != "healthy":
                _log.warning("node %s is %s: tainted", request.name, health)
        if health == "unreachable":
            conditions = (node.get("status") or {}).get("conditions") or []
            new = unknown_conditions(conditions, now)
            if new != conditions:
                await self.client.patch(NODES, request.name, {"status": {"conditions": new}},
                                        subresource="status")
        if health in ("unreachable", "not-ready"):
            await self._mark_pods_not_ready(request.name)
        else:
            self._marked.pop(request.name, None)
        wake = await self._evict(node, health)
        if left is not None:
            wake = left if wake is None else min(wake, left)
        return Result(requeue_after=max(0.05, wake)) if wake is not None else None

    async def _mark_pods_not_ready(self, node: str) -> None:
        """Kubernetes' MarkPodsNotReady: the node's pods stop counting as available.

        Once per pod and outage (``_marked``): should the node's agent still write pod
        status while its Lease is silent, it sets its own view back, and this does not
        answer it, so the two never take turns.
        """
        marked = self._marked.setdefault(node, set())
        stamp = objects.now()
        for pod in self.pods.by_index(BY_NODE, node):
            uid = objects.uid_of(pod)
            if uid in marked:
                continue
            status = marked_not_ready(pod.get("status") or {}, now_=stamp)
            if status is None:
                continue
            updated = {**pod, "status": status}
            try:
                await self.client.update_status(PODS, updated)
            except NotFound:
                continue
            except Conflict:
                # A fresher pod is on its way through the informer, which requeues us.
                continue
            marked.add(uid)
            _log.info("pod %s marked not ready: node %s is not ready", objects.key_of(pod),
                      node)

    async def _evict(self, node: Mapping[str, Any], health: str) -> float | None:
        taints = [t for t in (node.get("spec") or {}).get("taints") or ()
                  if t.get("effect") == "NoExecute"]
        if not taints:
            return None
        if self.config.stop_evicting_when_all_unhealthy and health != "healthy" and \
                self._all_unhealthy():
            _log.warning("every node is unhealthy: not evicting (full disruption)")
            return self.config.grace_period
        added = min((objects.parse_time(t["timeAdded"]).timestamp() for t in taints
                     if t.get("timeAdded")), default=time.time())
        since = time.time() - added
        wake: float | None = None
        for pod in self.pods.by_index(BY_NODE, objects.name_of(node)):
            if (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
                continue
            if objects.is_deleting(pod):
                left = self._force_in(pod, health)
                if left is None:
                    continue
                if left <= 0:
                    await self._delete(pod, grace=0)
                else:
                    wake = left if wake is None else min(wake, left)
                continue
            delay = eviction_delay(pod, taints,
                                   default_seconds=self.config.default_toleration_seconds)
            if delay is None:
                continue
            if delay - since > 0:
                wake = delay - since if wake is None else min(wake, delay - since)
                continue
            await self._delete(pod, grace=None)
            self.evictions += 1
            if self.config.force_delete_after is not None and health == "unreachable":
                wake = self.config.force_delete_after if wake is None else min(
                    wake, self.config.force_delete_after)
        return wake

    def _force_in(self, pod: Mapping[str, Any], health: str) -> float | None:
        """Seconds until an evicted pod of an unreachable node is removed (None: never)."""
        after = self.config.force_delete_after
        if after is None or health != "unreachable":
            return None
        md = objects.meta(pod)
        grace = float(md.get("deletionGracePeriodSeconds") or 0)
        stamp = md.get("deletionTimestamp")
        # deletionTimestamp is when the grace period ends; the deletion began before.
        began = objects.parse_time(stamp).timestamp() - grace if stamp else time.time()
        return began + after - time.time()

    async def _delete(self, pod: Mapping[str, Any], *, grace: int | None) -> None:
        _log.info("evicting pod %s from node %s%s", objects.key_of(pod),
                  (pod.get("spec") or {}).get("nodeName"), " (forced)" if grace == 0 else "")
        # Gone already, or replaced by a new pod of the same name: nothing to evict.
        with contextlib.suppress(NotFound, Conflict):
            await self.client.delete(PODS, objects.name_of(pod),
                                     namespace=objects.namespace_of(pod),
                                     grace_period_seconds=grace,
                                     preconditions=Preconditions(uid=objects.uid_of(pod)))


def add_node_lifecycle_controller(manager: Manager, *, client: KubeClient,
                                  config: LifecycleConfig | None = None,
                                  name: str = "node-lifecycle") -> Controller:
    """Run the controller in ``manager`` (leader-elected with the manager's other controllers)."""
    nodes = manager.informer(client, NODES)
    leases = manager.informer(client, LEASES, namespace=NODE_LEASE_NAMESPACE)
    pods = manager.informer(client, PODS)
    pods.add_indexer(BY_NODE, _by_node)
    reconciler = NodeLifecycleReconciler(client=client, nodes=nodes, leases=leases, pods=pods,
                                       config=config or LifecycleConfig())
    controller = manager.controller(name, reconciler)
    controller.for_(nodes)
    controller.watches(leases, lambda lease: [Request("", objects.name_of(lease))])

    def pod_to_node(pod: Mapping[str, Any]) -> list[Request]:
        node = (pod.get("spec") or {}).get("nodeName")
        return [Request("", node)] if node else []

    controller.watches(pods, pod_to_node)
    return controller


__all__ = ["NOT_READY", "UNREACHABLE", "LifecycleConfig", "NodeLifecycleReconciler",
           "add_node_lifecycle_controller", "desired_taints", "eviction_delay", "tolerates",
           "unknown_conditions"]
