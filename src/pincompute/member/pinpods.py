"""The PinPod operator: one pod per PinPod, updated in place, failed over with its data.

Theory of operation
-------------------
A level-triggered reconciler per PinPod, on three informers: PinPods, their
pods (owned: an event on the pod reconciles its PinPod) and Nodes (a node's
change reconciles the PinPods whose pods it runs, through an index of pods by
node).  Each pass reads the PinPod, its pod (stable name: the PinPod's) and the
pod's node from the caches, lets :mod:`.pinpodrules` decide — the desired pod,
the :class:`~.pinpodrules.Situation`, the :data:`~.pinpodrules.ACTIONS` table —
and carries the action out:

* **create** the pod (on real clusters first the PersistentVolumeClaims of its
  ``persistent`` volumes, owned by the PinPod so they outlive every pod);
* **update in place**: the changed containers are written into the live pod
  (embedded: the whole container, which the node agent restarts alone; real
  clusters: the image, the only field a running pod may change), with the new
  labels and hashes; ``status.lastUpdate`` and an ``UpdatedInPlace`` Event
  name the containers;
* **recreate**: ``status.lastUpdate`` and a ``Recreated`` Event say why, then the
  pod is deleted; it is created again once gone;
* **fail over**: a pod on a dead node is force-deleted (nobody else will
  finish its deletion), a failed pod deleted; a pod gone without us is created
  again; ``status.failovers``/``failoverHistory`` record each one, and a
  ``FailedOver`` Event says from which node to which once it is placed;
* **stop** (``spec.stopped``): the pod is deleted, the spec and volumes stay;
  **start**: it is created again.

Persistent volumes.  On embedded clusters a ``persistent`` volume lives in the
cluster's storage directory, which every node agent of the cluster shares
(``NodeConfig.storage_dir``: ``<cluster node dir>/storage`` by default), keyed by
the pod's controlling owner (``persistent/<namespace>/pinpod-<name>/<volume>``,
:mod:`pincompute.node.volumes`): a replacement pod, on whichever node, finds the
same directory — the embedded equivalent of re-attaching a network volume to the
new node.  On real clusters the claim (:func:`~.podtemplate.claim_name`) is that
network volume.

Everything the operator must remember lives in the PinPod's status
(``podUID``: the pod it expects to find; ``pendingFailover``; the failover
history), never only in memory, and the pod's name is fixed, so a restarted
manager carries on where the last one stopped, with no duplicate pod.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Mapping
from typing import Any

from pincompute.kube import objects
from pincompute.kube.errors import AlreadyExists, Conflict, NotFound
from pincompute.kube.protocol import KubeClient, Preconditions
from pincompute.kube.resource import NODES, PERSISTENT_VOLUME_CLAIMS, PODS
from pincompute.kube.wellknown import ZONE_LABEL
from pincompute.model.pod import FAILOVER_HISTORY
from pincompute.model.registry import PINPODS
from pincompute.model.wellknown import NODE_DRAIN_ANNOTATION as DRAIN
from pincompute.runtime.cache import index_by_field
from pincompute.runtime.controller import Controller, Event, not_status_only
from pincompute.runtime.events import EventRecorder
from pincompute.runtime.informer import SharedInformer
from pincompute.runtime.logging import get_logger
from pincompute.runtime.manager import Manager
from pincompute.runtime.reconciler import Request, Result

from .operator import (
    CREATED,
    DELETED,
    FAILED_CREATE,
    FAILED_DELETE,
    FAILED_OVER,
    NORMAL,
    RECREATED,
    UPDATED_IN_PLACE,
    WARNING,
    close_with_manager,
    create_pod,
    event_recorder,
    is_controlled_by,
    observe,
    shard_of,
)
from .pinpodrules import (
    ACTIONS,
    Action,
    NodeHealth,
    Situation,
    changed_containers,
    desired_pod,
    node_health,
    situation,
    updated_in_place,
    why_recreate,
)
from .podtemplate import Backend, persistent_claims

Obj = dict[str, Any]

BY_NODE = "pinpods:spec.nodeName"
"""The pod informer's index by node (its own name: other controllers index it too)."""
DEFAULT_FAILOVER_GRACE = 60.0
"""Seconds a node may stay not Ready before its PinPods move (a blip must not move them)."""

_log = get_logger(__name__)
_by_node = index_by_field("spec", "nodeName")


class PinPodReconciler:
    """Keeps each PinPod's one pod as declared (see the module docstring)."""

    def __init__(self, *, client: KubeClient, backend: Backend, pinpods: SharedInformer,
                 pods: SharedInformer, nodes: SharedInformer, recorder: EventRecorder,
                 cluster: str = "", zone: str = "",
                 failover_grace: float = DEFAULT_FAILOVER_GRACE) -> None:
        self.client = client
        self.backend: Backend = backend
        self.pinpods = pinpods
        self.pods = pods
        self.nodes = nodes
        self.recorder = recorder
        self.cluster = cluster
        self.zone = zone
        self.failover_grace = failover_grace

    async def reconcile(self, request: Request) -> Result | None:
        cached = self.pinpods.get(request.name, namespace=request.namespace)
        if cached is None or objects.is_deleting(cached):
            return None  # its pod goes with it (owner reference: garbage collection)
        pinpod = shard_of(cached)
        pod = self.pods.get(request.name, namespace=request.namespace)
        desired = desired_pod(pinpod, backend=self.backend)
        node_name = (pod.get("spec") or {}).get("nodeName") if pod is not None else None
        node = self.nodes.get(node_name) if node_name else None
        health = node_health(node, now=time.time(), grace=self.failover_grace) \
            if node_name else None
        found = situation(pinpod, pod, desired=desired, node=health)
        action = ACTIONS[found]
        obj = objects.deepcopy(cached)
        status: Obj = obj.setdefault("status", {})
        try:
            result = await self._act(action, found, obj, status, pod, desired, health)
        except Conflict:
            return Result(requeue=True)  # a newer PinPod or pod: look again
        if result is None and health is not None and health.recheck_in is not None:
            # A silent node's Node object changes no more: look again when its grace ends.
            return Result(requeue_after=max(0.1, health.recheck_in))
        return result

    # -- the actions -----------------------------------------------------------------------------

    async def _act(self, action: Action, found: Situation, obj: Obj, status: Obj,
                   pod: Mapping[str, Any] | None, desired: Obj,
                   health: NodeHealth | None) -> Result | None:
        name = objects.name_of(obj)
        if action is Action.REPORT:
            assert pod is not None
            self.recorder.record(obj, WARNING, FAILED_CREATE,
                                 f"pod {name} exists and is not controlled by this PinPod")
            self._summarize(obj, None, found)
            status["reason"], status["message"] = "PodConflict", \
                f"a pod named {name} belongs to something else"
            await self._write_status(obj)
            return None
        if action is Action.NONE or action is Action.WAIT:
            self._summarize(obj, pod, found)
            if action is Action.WAIT and health is not None and health.reason == \
                    "NodeDrained" and not status.get("pendingFailover"):
                status["pendingFailover"] = {
                    "fromNode": (pod or {}).get("spec", {}).get("nodeName"),
                    "reason": "NodeDrained", "message": "its node is being drained"}
            await self._write_status(obj)
            return None
        if action is Action.FAIL_OVER:
            # The pod cache may lag our own create: ask the API before calling it lost.
            with contextlib.suppress(NotFound):
                await self.client.get(PODS, name, namespace=objects.namespace_of(obj))
                return Result(requeue_after=0.2)
        if action is Action.CREATE or action is Action.FAIL_OVER:
            return await self._create(obj, desired, failover=action is Action.FAIL_OVER)
        assert pod is not None
        if action is Action.UPDATE_IN_PLACE:
            return await self._update_in_place(obj, pod, desired)
        if action is Action.RECREATE:
            message = why_recreate(pod, desired, backend=self.backend)
            changed = changed_containers(pod, desired)
            self._summarize(obj, pod, found)
            status.pop("podUID", None)  # removed on purpose: no failover when it is gone
            status["lastUpdate"] = _update_record("Recreated", changed, message, obj)
            await self._write_status(obj)
            await self._delete(obj, pod, grace=None)
            self.recorder.record(obj, NORMAL, RECREATED,
                                 f"Recreating pod {name} ({_names(changed)}): {message}")
            return None
        if action is Action.DELETE:  # stop
            self._summarize(obj, pod, found)
            status.pop("podUID", None)
            await self._write_status(obj)
            await self._delete(obj, pod, grace=None)
            self.recorder.record(obj, NORMAL, DELETED, f"Stopped: deleting pod {name}")
            return None
        # FORCE_DELETE (dead node) or REPLACE (failed pod): the failover's first step.
        self._summarize(obj, pod, found)
        node_name = (pod.get("spec") or {}).get("nodeName")
        if action is Action.FORCE_DELETE:
            assert health is not None
            pending = {"fromNode": node_name, "reason": health.reason,
                       "message": f"node {node_name}: {health.reason}"}
        else:
            pod_status = pod.get("status") or {}
            pending = {"fromNode": node_name, "reason": "PodFailed",
                       "message": pod_status.get("message") or pod_status.get("reason")
                       or "the pod failed"}
        status["pendingFailover"] = pending
        await self._write_status(obj)
        await self._delete(obj, pod, grace=0)
        return None

    async def _create(self, obj: Obj, desired: Obj, *, failover: bool) -> Result | None:
        status = obj["status"]
        name = objects.name_of(obj)
        note = ""
        if failover:
            # Recorded before the pod exists: a crash after this write creates the pod
            # as a plain one (podUID is cleared), never records the failover twice.
            pending = status.pop("pendingFailover", None) or self._lost_reason(status)
            entry = {"time": objects.now(), "fromNode": pending.get("fromNode") or
                     status.get("nodeName"), "reason": pending.get("reason"),
                     "message": pending.get("message")}
            history = [*(status.get("failoverHistory") or []), entry][-FAILOVER_HISTORY:]
            status["failoverHistory"] = history
            status["failovers"] = int(status.get("failovers") or 0) + 1
            note = f" (failover from node {entry['fromNode']}: {entry['reason']})"
        self._summarize(obj, None, Situation.ABSENT)
        status.pop("podUID", None)  # until the new pod exists, its absence is no failover
        status["reason"] = "FailingOver" if failover else "Creating"
        written = await self._write_status(obj)
        if self.backend == "kubernetes":
            await self._ensure_claims(obj)
        try:
            # Through the pod admission hooks: platform sidecars are injected here.
            created = await create_pod(self.client, desired)
        except AlreadyExists:
            return Result(requeue=True)  # the old pod is still going: wait for it
        except Exception as exc:
            self.recorder.record(obj, WARNING, FAILED_CREATE, f"Error creating pod: {exc}")
            raise
        self.recorder.record(obj, NORMAL, CREATED, f"Created pod {name}{note}")
        done = objects.deepcopy(written)
        done.setdefault("status", {})
        self._summarize(done, created, Situation.CURRENT)
        await self._write_status(done)
        return None

    def _lost_reason(self, status: Mapping[str, Any]) -> Obj:
        """Why the pod went when nothing noted it: the state of its last node."""
        node_name = status.get("nodeName")
        node = self.nodes.get(node_name) if node_name else None
        health = node_health(node, now=time.time(), grace=self.failover_grace)
        reason = health.reason or "PodDeleted"
        message = (f"node {node_name}: {reason}" if health.reason else
                   "the pod was deleted or evicted")
        return {"fromNode": node_name, "reason": reason, "message": message}

    async def _update_in_place(self, obj: Obj, pod: Mapping[str, Any], desired: Obj
                               ) -> Result | None:
        changed = changed_containers(pod, desired)
        updated = await self.client.update(PODS, updated_in_place(pod, desired,
                                                                  backend=self.backend))
        name = objects.name_of(obj)
        tokens = obj["spec"].get("restarts") or {}
        if changed:
            message = (f"containers {', '.join(changed)} updated in place"
                       if self.backend == "embedded" else
                       f"images of {', '.join(changed)} updated in place")
            restarted = [c for c in changed if c in tokens]
            if restarted:
                message += f" (restart requested: {', '.join(restarted)})"
            obj["status"]["lastUpdate"] = _update_record("UpdatedInPlace", changed,
                                                         message, obj)
            self.recorder.record(obj, NORMAL, UPDATED_IN_PLACE, f"Pod {name}: {message}")
        self._summarize(obj, updated, Situation.CURRENT)
        await self._write_status(obj)
        return None

    async def _delete(self, obj: Mapping[str, Any], pod: Mapping[str, Any], *,
                      grace: int | None) -> None:
        try:
            await self.client.delete(PODS, objects.name_of(pod),
                                     namespace=objects.namespace_of(pod),
                                     preconditions=Preconditions(uid=objects.uid_of(pod)),
                                     grace_period_seconds=grace)
        except NotFound:
            pass
        except Conflict:
            raise
        except Exception as exc:
            self.recorder.record(obj, WARNING, FAILED_DELETE, f"Error deleting pod: {exc}")
            raise

    async def _ensure_claims(self, obj: Mapping[str, Any]) -> None:
        for claim in persistent_claims({"spec": obj["spec"]}, owner=obj,
                                       namespace=objects.namespace_of(obj)):
            with contextlib.suppress(AlreadyExists):
                await self.client.create(PERSISTENT_VOLUME_CLAIMS, claim,
                                         namespace=objects.namespace_of(obj))
                self.recorder.record(obj, NORMAL, CREATED,
                                     f"Created claim {objects.name_of(claim)}")

    # -- status ---------------------------------------------------------------------------------

    def _summarize(self, obj: Obj, pod: Mapping[str, Any] | None, found: Situation) -> None:
        """The PinPod's status from its pod (or its absence), in place on ``obj``."""
        status = obj["status"]
        stopped = bool(obj["spec"].get("stopped"))
        _set(status, "cluster", self.cluster)
        for key in ("reason", "message"):
            status.pop(key, None)
        if pod is None or not is_controlled_by(pod, obj):
            if found is not Situation.LOST:
                for key in ("nodeName", "podIP", "startTime", "containerStatuses", "zone"):
                    status.pop(key, None)
            status["phase"] = "Stopped" if stopped else "Pending"
            status["podName"] = objects.name_of(obj)
            ready, reason = False, "Stopped" if stopped else "NoPod"
        else:
            pod_status = pod.get("status") or {}
            node_name = (pod.get("spec") or {}).get("nodeName")
            deleting = objects.is_deleting(pod)
            status["phase"] = pod_status.get("phase") or "Pending"
            status["podName"] = objects.name_of(pod)
            if not deleting:
                status["podUID"] = objects.uid_of(pod)
            _set(status, "nodeName", node_name)
            _set(status, "podIP", pod_status.get("podIP"))
            _set(status, "startTime", pod_status.get("startTime"))
            node = self.nodes.get(node_name) if node_name else None
            zone = ((objects.meta(node).get("labels") or {}).get(ZONE_LABEL)
                    if node is not None else None) or self.zone or None
            _set(status, "zone", zone)
            _set(status, "containerStatuses", _container_statuses(pod))
            if deleting:
                status["reason"] = "Terminating"
            elif pod_status.get("reason"):
                status["reason"] = pod_status["reason"]
            if pod_status.get("message"):
                status["message"] = pod_status["message"]
            ready = objects.condition_true(pod, "Ready") and not deleting
            reason = "PodReady" if ready else ("Terminating" if deleting else "PodNotReady")
            self._record_arrival(obj, pod, node_name, deleting)
        generation = objects.meta(obj).get("generation")
        objects.set_condition(obj, "Ready", ready, reason=reason,
                              observed_generation=generation)
        objects.set_condition(obj, "Stopped", stopped,
                              reason="Stopped" if stopped else "Started",
                              observed_generation=generation)
        observe(obj)

    def _record_arrival(self, obj: Obj, pod: Mapping[str, Any], node_name: str | None,
                        deleting: bool) -> None:
        """A failover's last step: the new pod is placed; say where."""
        history = obj["status"].get("failoverHistory") or []
        if not history or history[-1].get("toNode") or not node_name or deleting:
            return
        entry = dict(history[-1], toNode=node_name)
        obj["status"]["failoverHistory"] = [*history[:-1], entry]
        self.recorder.record(obj, NORMAL, FAILED_OVER,
                             f"Pod {objects.name_of(pod)} moved from node "
                             f"{entry.get('fromNode')} to node {node_name}: "
                             f"{entry.get('reason')}")

    async def _write_status(self, obj: Obj) -> Obj:
        """Write ``obj``'s status if it differs from the cached one; returns the PinPod."""
        cached = self.pinpods.get(objects.name_of(obj), namespace=objects.namespace_of(obj))
        if cached is not None and cached.get("status") == obj.get("status") and \
                objects.meta(cached).get("resourceVersion") == \
                objects.meta(obj).get("resourceVersion"):
            return obj
        try:
            return await self.client.update_status(PINPODS, obj)
        except NotFound:  # deleted meanwhile: no status to write
            return obj


def _set(status: Obj, key: str, value: Any) -> None:
    if value is None or value == "":
        status.pop(key, None)
    else:
        status[key] = value


def _names(containers: list[str]) -> str:
    return f"containers {', '.join(containers)}" if containers else "no container changed"


def _update_record(kind: str, containers: list[str], message: str,
                   obj: Mapping[str, Any]) -> Obj:
    return {"type": kind, "containers": containers, "message": message,
            "time": objects.now(), "generation": objects.meta(obj).get("generation")}


def _container_statuses(pod: Mapping[str, Any]) -> list[Obj]:
    """Per-container state, main containers and sidecars (init containers on real clusters)."""
    spec = pod.get("spec") or {}
    types = {c["name"]: c.get("type") or "main" for c in spec.get("containers") or ()}
    types.update({c["name"]: "sidecar" for c in spec.get("initContainers") or ()
                  if c.get("restartPolicy") == "Always"})
    status = pod.get("status") or {}
    out: list[Obj] = []
    for c in [*(status.get("initContainerStatuses") or ()),
              *(status.get("containerStatuses") or ())]:
        if c.get("name") not in types:
            continue
        state_dict = c.get("state") or {}
        state = next(iter(state_dict), None)
        detail = state_dict.get(state) or {} if state else {}
        entry: Obj = {"name": c["name"], "type": types[c["name"]],
                      "ready": bool(c.get("ready")), "started": bool(c.get("started")),
                      "restartCount": int(c.get("restartCount") or 0)}
        if c.get("image"):
            entry["image"] = c["image"]
        if state:
            entry["state"] = state
        if detail.get("exitCode") is not None:
            entry["exitCode"] = detail["exitCode"]
        if detail.get("reason"):
            entry["reason"] = detail["reason"]
        out.append(entry)
    return out


def node_fate_changed(event: Event) -> bool:
    """A node event that may move its PinPods: added, deleted, Ready flipped, cordoned, or
    marked for draining (not the routine status updates: a node may run many PinPods)."""
    if event.type != "update" or event.old is None:
        return True
    old, new = event.old, event.object
    ready_old = objects.get_condition(old, "Ready") or {}
    ready_new = objects.get_condition(new, "Ready") or {}
    return (ready_old.get("status") != ready_new.get("status")
            or (old.get("spec") or {}).get("unschedulable") !=
            (new.get("spec") or {}).get("unschedulable")
            or (DRAIN in (objects.meta(old).get("annotations") or {})) !=
            (DRAIN in (objects.meta(new).get("annotations") or {})))


def add_pinpod_controller(manager: Manager, *, client: KubeClient, backend: Backend,
                          identity: str, cluster: str = "", zone: str = "",
                          name: str = "pinpods",
                          failover_grace: float = DEFAULT_FAILOVER_GRACE,
                          workers: int = 32) -> Controller:
    """Run the PinPod operator for the member cluster ``client`` in ``manager``.

    ``workers``: PinPods reconciled at once (never the same one twice: the work queue).
    Creating a pod is three committed writes in a row (status, pod, status), and a
    reconcile spends nearly all its time waiting for them; concurrent writes share the
    store's group commits.  With a few workers, a drain that moves thousands of pods at
    once (a rotation's wave) queues their replacements behind each other's commits."""
    pinpods = manager.informer(client, PINPODS)
    pods = manager.informer(client, PODS)
    nodes = manager.informer(client, NODES)
    pods.add_indexer(BY_NODE, _by_node)
    recorder = event_recorder(client, operator="pinpods", identity=identity)
    reconciler = PinPodReconciler(client=client, backend=backend, pinpods=pinpods, pods=pods,
                                  nodes=nodes, recorder=recorder, cluster=cluster, zone=zone,
                                  failover_grace=failover_grace)
    controller = manager.controller(name, reconciler, workers=workers)
    # Not after its own status writes: a pod's move makes five of them, and each pass
    # reads the pod and the node, whose own events bring it back.
    controller.for_(pinpods, predicate=not_status_only)
    controller.owns(pods, owner=PINPODS)

    def node_to_pinpods(node: Obj) -> list[Request]:
        out = []
        for pod in pods.by_index(BY_NODE, objects.name_of(node)):
            ref = objects.controller_of(pod)
            if ref is not None and ref.get("kind") == PINPODS.kind:
                out.append(Request(objects.namespace_of(pod), ref["name"]))
        return out

    controller.watches(nodes, node_to_pinpods, predicate=node_fate_changed)

    close_with_manager(manager, recorder, name=name)
    return controller


__all__ = ["BY_NODE", "DEFAULT_FAILOVER_GRACE", "PinPodReconciler", "add_pinpod_controller",
           "node_fate_changed"]
