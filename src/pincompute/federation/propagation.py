"""Propagation: a host workload becomes one shard per placement in the member clusters.

Theory of operation
-------------------
Users write workloads to the host; the cluster scheduler records where they go in
``status.placements`` (``[{cluster, zone, replicas}]``).  For each placement this
controller keeps a **shard** in that member cluster: the same kind, name and
namespace, the host's spec with its share (:func:`shard_spec`: a PinApp's
``replicas``; a job's ``parallelism``/``completions`` only when the decision split
it; everything else whole — a PinDaemon or PinSidecar is placed on every cluster
and runs or injects there as written), labelled
:data:`~pincompute.model.wellknown.PARENT_UID_LABEL` with the host's uid and
annotated with its generation.  There is no owner reference across clusters.

Each reconcile compares, per cluster, what should be there with what the member's
informer holds, and acts by the table :data:`TRANSITIONS`:

* placed, no shard → create it; placed, shard differs (share, template, labels, or a
  user's edit in the member: *drift*) → write it back; placed and equal → nothing;
* no longer placed, shard there → delete it only once every placed shard is ready
  (:meth:`~.statusaggregation.ShardCounts.ready_enough`): a placement moving from A
  to B creates B first and removes A after B's replicas are ready;
* the host object is being deleted → delete every shard, and only then drop the
  finalizer :data:`~pincompute.model.wellknown.PROPAGATION_FINALIZER`.  A deleted
  workload's shards are never written, only deleted.

An object of the same name in a member that does not carry this host object's uid
is not ours: it is reported in ``status.clusters`` and never touched.

For PinApps a template change goes zone by zone (:mod:`.zonerollout`): shards in
zones not yet released keep the template they run (their share still follows the
placement).  The host's status is folded from the shards (:mod:`.statusaggregation`)
in the same pass, and member Events about a shard are forwarded (:mod:`.eventforward`).

Member-side informers of each shard kind (``ClusterSet.watch``, selected by the
parent-uid label) enqueue the host object by that label, so a shard's status change
or a user's edit comes back here.  Everything the controller knows is in the API
(placements, shards, ``status.rollout``): a restarted controller converges.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from typing import Any, Final, Literal

from pincompute.kube import objects
from pincompute.kube.errors import AlreadyExists, Conflict, NotFound
from pincompute.kube.protocol import KubeClient
from pincompute.kube.resource import Resource
from pincompute.model.registry import KINDS
from pincompute.model.wellknown import (
    PARENT_GENERATION_ANNOTATION,
    PARENT_UID_LABEL,
    PROPAGATION_FINALIZER,
    RESUME_ROLLOUT_ANNOTATION,
)
from pincompute.runtime.controller import Controller
from pincompute.runtime.informer import FuncEventHandler, ResourceEventHandler, SharedInformer
from pincompute.runtime.manager import Manager
from pincompute.runtime.reconciler import Request, Result

from . import zonerollout
from .clusterset import ClusterSet
from .eventforward import EventForwarder
from .statusaggregation import aggregate, revision_of, shard_counts

Obj = dict[str, Any]

PROPAGATED_KINDS: Final = ("PinApp", "PinPod", "PinJob", "PinTrainingJob", "PinCronJob",
                           "PinDaemon", "PinSidecar")
"""The host workload kinds that become shards."""

Action = Literal["create", "update", "keep", "delete", "hold", "none"]

TRANSITIONS: Final[Mapping[tuple[str, str], Action]] = {
    # (desired, observed) -> action
    ("placed", "absent"): "create",
    ("placed", "differs"): "update",          # share or template changed, or drift
    ("placed", "equal"): "keep",
    ("placed", "foreign"): "none",            # not ours: reported, never touched
    ("unplaced", "absent"): "none",
    ("unplaced", "differs"): "hold",          # until the placed shards are ready...
    ("unplaced", "equal"): "hold",
    ("unplaced+ready", "differs"): "delete",  # ...then removed
    ("unplaced+ready", "equal"): "delete",
    ("unplaced+ready", "absent"): "none",
    ("deleting", "differs"): "delete",
    ("deleting", "equal"): "delete",
    ("deleting", "absent"): "none",
    ("unplaced", "foreign"): "none",
    ("unplaced+ready", "foreign"): "none",
    ("deleting", "foreign"): "none",
}
"""Shard transitions: what to do with a cluster's shard, given what should be there."""

_KEPT_ANNOTATIONS_PREFIX = "kubectl.kubernetes.io/"
REQUEUE_HOLD = 5.0


def shard_spec(kind: str, spec: Mapping[str, Any], placement: Mapping[str, Any], *,
               split: bool) -> Obj:
    """The spec of the shard for one placement (``split``: the decision divided the work)."""
    out = objects.deepcopy(dict(spec))
    share = placement.get("replicas")
    if kind == "PinApp" and share is not None:
        out["replicas"] = share
    elif kind == "PinJob" and split and share is not None:
        out["parallelism"] = min(int(out.get("parallelism") or share), share)
        if out.get("completions") is not None:
            out["completions"] = share
    return out


def desired_shard(kind: str, host: Mapping[str, Any], placement: Mapping[str, Any], *,
                  split: bool, template: Any = None) -> Obj:
    """The whole shard object for one placement (``template``: keep this one instead)."""
    md = objects.meta(host)
    spec = shard_spec(kind, host.get("spec") or {}, placement, split=split)
    if template is not None:
        spec["template"] = template
    labels = {**(md.get("labels") or {}), PARENT_UID_LABEL: md["uid"]}
    annotations = {k: v for k, v in (md.get("annotations") or {}).items()
                   if not k.startswith(_KEPT_ANNOTATIONS_PREFIX)
                   and k != RESUME_ROLLOUT_ANNOTATION}
    annotations[PARENT_GENERATION_ANNOTATION] = str(md.get("generation", 0))
    info = KINDS[kind]
    metadata = {"name": md["name"], "labels": labels, "annotations": annotations}
    if md.get("namespace"):  # cluster-scoped platform kinds (PinDaemon, PinSidecar) have none
        metadata["namespace"] = md["namespace"]
    return {"apiVersion": info.resource.api_version, "kind": kind, "metadata": metadata,
            "spec": spec}


def observe_shard(want: Mapping[str, Any] | None, have: Mapping[str, Any] | None,
                  uid: str) -> str:
    """``absent``, ``foreign``, ``equal`` or ``differs``: a member's object against ours."""
    if have is None:
        return "absent"
    md = objects.meta(have)
    if (md.get("labels") or {}).get(PARENT_UID_LABEL) != uid:
        return "foreign"
    if want is None:
        return "equal"
    wmd = want["metadata"]
    # Labels and annotations: ours must be there as we wrote them; others' (a member
    # operator's bookkeeping) are left alone, or we would fight over them.
    labels, annotations = md.get("labels") or {}, md.get("annotations") or {}
    if (have.get("spec") != want["spec"]
            or any(labels.get(k) != v for k, v in wmd["labels"].items())
            or any(annotations.get(k) != v for k, v in wmd["annotations"].items())):
        return "differs"
    return "equal"


class PropagationReconciler:
    def __init__(self, *, kind: str, host: KubeClient, clusters: ClusterSet,
                 workloads: SharedInformer, events: EventForwarder | None = None) -> None:
        self.kind = kind
        self.resource: Resource = KINDS[kind].resource
        self.host = host
        self.clusters = clusters
        self.workloads = workloads
        self.events = events

    def _shards(self, key: str) -> dict[str, Obj | None]:
        """Every ready member's object at ``key`` (``None`` where there is none)."""
        found: dict[str, Obj | None] = {}
        for name in self.clusters.names():
            member = self.clusters.get(name)
            if member is None:
                continue
            informer = member.informer(self.resource, label_selector=PARENT_UID_LABEL)
            found[name] = informer.get_by_key(key)
        return found

    async def reconcile(self, request: Request) -> Result | None:
        obj = self.workloads.get_by_key(request.key)
        if obj is None:
            return None
        shards = self._shards(request.key)
        uid = objects.uid_of(obj)
        if objects.is_deleting(obj):
            return await self._finalize(obj, shards)
        if not objects.has_finalizer(obj, PROPAGATION_FINALIZER):
            md = objects.meta(obj)
            with contextlib.suppress(Conflict, NotFound):
                await self.host.patch(self.resource, md["name"], {"metadata": {
                    "finalizers": [*(md.get("finalizers") or ()), PROPAGATION_FINALIZER],
                    "resourceVersion": md["resourceVersion"]}}, namespace=md.get("namespace"))
            return None  # the update brings it back with the finalizer
        status = obj.get("status") or {}
        placements = [p for p in status.get("placements") or () if p.get("cluster")]
        zones = {p["cluster"]: p.get("zone") or "" for p in placements}
        split = len(placements) > 1
        step = self._rollout(obj, placements, shards, zones)
        requeue: float | None = step.requeue_after if step else None
        placed_ready = all(
            (s := shards.get(p["cluster"])) is not None
            and observe_shard(None, s, uid) == "equal"
            and shard_counts(self.kind, s).ready_enough for p in placements)
        for placement in placements:
            cluster = placement["cluster"]
            if cluster not in shards:
                continue  # not reachable now: its status says so; we come back
            have = shards[cluster]
            template = None
            if step is not None and zones.get(cluster, "") not in step.released \
                    and have is not None:
                template = (have.get("spec") or {}).get("template")
            want = desired_shard(self.kind, obj, placement, split=split, template=template)
            action = TRANSITIONS[("placed", observe_shard(want, have, uid))]
            await self._act(action, cluster, want, have)
        placed = {p["cluster"] for p in placements}
        for cluster, have in shards.items():
            if cluster in placed or have is None:
                continue
            desired = "unplaced+ready" if placed_ready else "unplaced"
            action = TRANSITIONS[(desired, observe_shard(None, have, uid))]
            if action == "hold":
                requeue = min(requeue or REQUEUE_HOLD, REQUEUE_HOLD)
            await self._act(action, cluster, None, have)
        await self._write_status(obj, placements, shards, zones, step)
        if self.events is not None:
            await self.events.forward(obj, {c: s for c, s in shards.items()
                                            if s is not None and
                                            observe_shard(None, s, uid) != "foreign"})
        return Result(requeue_after=requeue) if requeue else None

    def _rollout(self, obj: Obj, placements: list[Obj], shards: Mapping[str, Obj | None],
                 zones: Mapping[str, str]) -> zonerollout.Step | None:
        if self.kind != "PinApp":
            return None
        spec = obj.get("spec") or {}
        zr = (spec.get("strategy") or {}).get("zoneRollout") or {}
        if zr.get("enabled", True) is False:
            return None
        revision = revision_of(spec.get("template"))
        uid = objects.uid_of(obj)
        per_zone: dict[str, list[Obj | None]] = {}
        for p in placements:
            per_zone.setdefault(zones.get(p["cluster"], ""), []).append(
                shards.get(p["cluster"]))
        states = {}
        for zone, members in per_zone.items():
            ours = [s for s in members if s is not None
                    and observe_shard(None, s, uid) == "equal"]
            updated = all(revision_of((s.get("spec") or {}).get("template")) == revision
                          for s in ours)
            available = updated and len(ours) == len(members) and all(
                shard_counts("PinApp", s).fully_available for s in ours)
            states[zone] = zonerollout.ZoneState(updated=updated, available=available)
        status = obj.get("status") or {}
        progressing: Mapping[str, Any] = next((c for c in status.get("conditions") or ()
                            if c.get("type") == "Progressing"), {})
        return zonerollout.step(
            revision=revision, zones=states, previous=status.get("rollout"),
            since=status.get("lastProgressTime"), order=zr.get("order"),
            soak_seconds=zr.get("soakSeconds") or 0,
            deadline_seconds=spec.get("progressDeadlineSeconds") or 600,
            paused=bool(spec.get("paused")),
            resume=RESUME_ROLLOUT_ANNOTATION in (objects.meta(obj).get("annotations") or {}),
            paused_reason=progressing.get("reason") or "")

    async def _act(self, action: Action, cluster: str, want: Obj | None,
                   have: Obj | None) -> None:
        member = self.clusters.get(cluster)
        if member is None or action in ("keep", "none", "hold"):
            return
        client = member.client
        try:
            if action == "create" and want is not None:
                with contextlib.suppress(AlreadyExists):  # our cache is behind: next pass
                    await client.create(self.resource, want)
            elif action == "update" and want is not None and have is not None:
                updated = objects.deepcopy(have)
                updated["spec"] = want["spec"]
                md = updated["metadata"]
                md["labels"] = {**(md.get("labels") or {}), **want["metadata"]["labels"]}
                md["annotations"] = {**(md.get("annotations") or {}),
                                     **want["metadata"]["annotations"]}
                with contextlib.suppress(Conflict, NotFound):
                    await client.update(self.resource, updated)
            elif action == "delete" and have is not None and not objects.is_deleting(have):
                with contextlib.suppress(NotFound):
                    await client.delete(self.resource, objects.name_of(have),
                                        namespace=objects.namespace_of(have))
        except Exception:
            if self.clusters.is_current(member):
                raise  # a removed member is let go, not an error

    async def _finalize(self, obj: Obj, shards: Mapping[str, Obj | None]) -> Result | None:
        uid = objects.uid_of(obj)
        remaining = [c for c, s in shards.items()
                     if s is not None and observe_shard(None, s, uid) != "foreign"]
        for cluster in remaining:
            await self._act(TRANSITIONS[("deleting", "equal")], cluster, None, shards[cluster])
        unreachable = [c for c in self.clusters.names() if c not in shards]
        if remaining or unreachable:
            return Result(requeue_after=REQUEUE_HOLD)  # shard deletions bring us back
        if not objects.has_finalizer(obj, PROPAGATION_FINALIZER):
            return None
        md = objects.meta(obj)
        finalizers = [f for f in md.get("finalizers") or () if f != PROPAGATION_FINALIZER]
        with contextlib.suppress(Conflict, NotFound):
            await self.host.patch(self.resource, md["name"], {"metadata": {
                "finalizers": finalizers or None, "resourceVersion": md["resourceVersion"]}},
                namespace=md.get("namespace"))
        return None

    async def _write_status(self, obj: Obj, placements: list[Obj],
                            shards: Mapping[str, Obj | None], zones: Mapping[str, str],
                            step: zonerollout.Step | None) -> None:
        uid = objects.uid_of(obj)
        visible = {c: (s if s is None or observe_shard(None, s, uid) != "foreign" else None)
                   for c, s in shards.items()}
        for p in placements:
            visible.setdefault(p["cluster"], None)
        fields = aggregate(self.kind, obj, placements, visible, zones,
                           rollout_phase=step.status.get("phase") if step else None,
                           rollout_reason=step.reason if step else "")
        for c, s in shards.items():
            if s is not None and visible.get(c) is None:
                for entry in fields["clusters"]:
                    if entry["cluster"] == c:
                        entry["message"] = "an object of this name not made by the federation"
        conditions = fields.pop("conditions")
        updated = objects.deepcopy(obj)
        status = updated.setdefault("status", {})
        status.update(fields)
        if step is not None:
            status["rollout"] = step.status
            if step.since:
                status["lastProgressTime"] = step.since
        generation = objects.meta(obj).get("generation")
        for cond in conditions:
            objects.set_condition(updated, cond["type"], cond["status"], reason=cond["reason"],
                                  message=cond["message"], observed_generation=generation)
        status["observedGeneration"] = generation
        if updated.get("status") != obj.get("status"):
            with contextlib.suppress(Conflict, NotFound):  # the newer version comes back
                await self.host.update_status(self.resource, updated)
        if step is not None:
            for reason, message in step.events:
                if self.events is not None:
                    await self.events.record(obj, reason, message)
            if step.resumed:
                with contextlib.suppress(Conflict, NotFound):
                    await self.host.patch(self.resource, objects.name_of(obj), {
                        "metadata": {"annotations": {RESUME_ROLLOUT_ANNOTATION: None}}},
                        namespace=objects.namespace_of(obj))


def add_propagation_controllers(manager: Manager, *, host: KubeClient, clusters: ClusterSet,
                                name: str = "propagation", workers: int = 2,
                                kinds: tuple[str, ...] = PROPAGATED_KINDS,
                                forward_events: bool = True) -> dict[str, Controller]:
    """One propagation controller per host workload kind (``<name>-<kind>``)."""
    made: dict[str, Controller] = {}
    events = EventForwarder(host=host, clusters=clusters) if forward_events else None
    for kind in kinds:
        resource = KINDS[kind].resource
        workloads = manager.informer(host, resource)
        workloads.add_indexer("uid", lambda obj: [objects.uid_of(obj)])
        reconciler = PropagationReconciler(kind=kind, host=host, clusters=clusters,
                                           workloads=workloads, events=events)
        controller = manager.controller(f"{name}-{kind.lower()}", reconciler, workers=workers)
        controller.for_(workloads)
        made[kind] = controller
        clusters.watch(resource, _handler(controller, workloads),
                       label_selector=PARENT_UID_LABEL)
        if events is not None:
            events.route(kind, controller, workloads)

        def every(*_: object, _w: SharedInformer = workloads, _c: Controller = controller
                  ) -> None:
            for key in _w.keys():
                _c.enqueue(Request.from_key(key))

        clusters.subscribe(on_added=every, on_removed=every)
    return made


def parent_requests(workloads: SharedInformer, shard: Mapping[str, Any]) -> list[Request]:
    uid = (objects.meta(shard).get("labels") or {}).get(PARENT_UID_LABEL)
    if not uid:
        return []
    return [Request.for_object(o) for o in workloads.by_index("uid", uid)]


def _handler(controller: Controller, workloads: SharedInformer
             ) -> Any:
    def handler_for(member: str) -> ResourceEventHandler:
        def enqueue(obj: Obj) -> None:
            for request in parent_requests(workloads, obj):
                controller.enqueue(request)
        return FuncEventHandler(add=enqueue, update=lambda _o, n: enqueue(n), delete=enqueue)
    return handler_for


__all__ = ["PROPAGATED_KINDS", "TRANSITIONS", "PropagationReconciler",
           "add_propagation_controllers", "desired_shard", "observe_shard", "parent_requests",
           "shard_spec"]
