"""Staged releases: a node image rolled out release stage by release stage.

Theory of operation
-------------------
Member clusters carry a release stage (MemberCluster label
:data:`RELEASE_STAGE_LABEL`: ``test``, ``canary``, ``early``, ``general``...).  A
Rotation with ``stages`` instead of ``cluster`` rolls its image out in that
order: this host-side controller gives each cluster of the current stage a
*child* Rotation (``<rotation>-<cluster>``, owned by the parent, the same target
and rules, one cluster), which :mod:`.rotation` carries out.  The table
(:func:`stage_state`), per stage in order:

================================ =============================================
what the stage's clusters show   then
================================ =============================================
a child not Succeeded            the stage is in progress: make its children,
                                 let them run
all Succeeded, canary green on   the stage is done: on to the next
every one for ``soakSeconds``
all Succeeded, still soaking     wait (status says how long is left)
================================ =============================================

The canary (:mod:`.canary`) writes its verdict on each MemberCluster.  While it is
red on any cluster of the stages reached so far, the rotation is *held*: every
child is paused (the nodes in progress finish), the parent is ``Paused`` with
the cluster and the reason, and it resumes on its own once the canary is green
again.  ``paused`` on the parent pauses the children too.  All stages done:
``Succeeded``.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Mapping
from typing import Any

from pincompute.kube import objects
from pincompute.kube.errors import AlreadyExists, Conflict, NotFound
from pincompute.kube.protocol import KubeClient
from pincompute.model.registry import MEMBERCLUSTERS, ROTATIONS
from pincompute.model.wellknown import RELEASE_STAGE_LABEL, SYSTEM_NAMESPACE
from pincompute.runtime.controller import Controller
from pincompute.runtime.events import EventRecorder
from pincompute.runtime.informer import SharedInformer
from pincompute.runtime.manager import Manager
from pincompute.runtime.reconciler import Request, Result

from .canary import canary_verdict

PARENT_LABEL = "pincompute.io/rotation-parent"
"""On a child Rotation: the staged Rotation it belongs to."""
COPIED = ("targetImage", "nodePools", "order", "parallelism", "maxParallelPerPool",
          "maxParallelPerZone", "maxUnavailable", "surge", "respectDisruptionBudgets",
          "drainTimeoutSeconds")


def child_name(parent: str, cluster: str) -> str:
    return f"{parent}-{cluster}"[:253]


def stage_state(*, children: list[str | None], greens: list[float | None], now: float,
                soak: float) -> tuple[str, float]:
    """(``running`` | ``soaking`` | ``done``, seconds of soak left) of a stage whose
    clusters' children are in ``children`` phases (None: not made yet) and whose canary
    has been green since ``greens`` (None: not green)."""
    if any(phase != "Succeeded" for phase in children):
        return "running", soak
    left = max((soak - (now - g) if g is not None else soak) for g in greens) if greens else 0
    return ("done", 0.0) if left <= 0 else ("soaking", left)


class StageReconciler:
    def __init__(self, *, host: KubeClient, rotations: SharedInformer, clusters: SharedInformer,
                 recorder: EventRecorder, poll: float, clock: Callable[[], float]) -> None:
        self.host = host
        self.rotations = rotations
        self.clusters = clusters
        self.recorder = recorder
        self.poll = poll
        self.clock = clock

    async def reconcile(self, request: Request) -> Result | None:
        parent = self.rotations.get(request.name)
        if parent is None or objects.is_deleting(parent):
            return None
        spec = parent.get("spec") or {}
        stages: list[str] = list(spec.get("stages") or ())
        status = dict(parent.get("status") or {})
        if not stages or status.get("phase") in ("Succeeded", "Aborted", "Failed"):
            return None
        now = self.clock()
        by_stage: dict[str, list[Mapping[str, Any]]] = {s: [] for s in stages}
        for member in self.clusters.list():
            stage = (objects.meta(member).get("labels") or {}).get(RELEASE_STAGE_LABEL)
            if stage in by_stage and not objects.is_deleting(member):
                by_stage[stage].append(member)
        progress: list[dict[str, Any]] = []
        reached: list[Mapping[str, Any]] = []
        current, message, state = None, "", "done"
        for stage in stages:
            clusters = sorted(by_stage[stage], key=objects.name_of)
            reached.extend(clusters)
            children = [self.rotations.get(child_name(request.name, objects.name_of(mc)))
                        for mc in clusters]
            for mc, child in zip(clusters, children, strict=True):
                cs = (child or {}).get("status") or {}
                progress.append({"cluster": objects.name_of(mc), "stage": stage,
                                 "phase": cs.get("phase") or "Pending",
                                 "replaced": cs.get("replacedNodes", 0),
                                 "total": cs.get("totalNodes", 0)})
            greens = [v.get("since") if (v := canary_verdict(mc)).get("ok") else None
                      for mc in clusters]
            state, left = stage_state(
                children=[((c or {}).get("status") or {}).get("phase") for c in children],
                greens=greens, now=now, soak=float(spec.get("soakSeconds", 600)))
            if state == "done":
                continue
            current = stage
            if state == "soaking":
                message = f"stage {stage} done; canary must stay green {left:.0f}s more"
            else:
                for mc in clusters:
                    await self._child(parent, objects.name_of(mc))
            break
        red = [(objects.name_of(mc), v.get("message", "")) for mc in reached
               if (v := canary_verdict(mc)) and v.get("ok") is False]
        held = bool(red) or bool(spec.get("paused"))
        for mc in reached:
            await self._pause(request.name, objects.name_of(mc), paused=held)
        if current is None:
            phase = "Succeeded"
        elif red:
            phase = "Paused"
            message = f"held: the canary is red on {red[0][0]}: {red[0][1]}"
        else:
            phase = "Paused" if spec.get("paused") else "Running"
        await self._status(parent, status, phase=phase, stage=current, clusters=progress,
                           message=message)
        return None if phase == "Succeeded" else Result(requeue_after=self.poll)

    async def _child(self, parent: Mapping[str, Any], cluster: str) -> None:
        name = child_name(objects.name_of(parent), cluster)
        if self.rotations.get(name) is not None:
            return
        spec = {k: v for k, v in (parent.get("spec") or {}).items() if k in COPIED}
        child = {"metadata": {"name": name, "labels": {PARENT_LABEL: objects.name_of(parent)},
                              "ownerReferences": [objects.owner_reference(parent)]},
                 "spec": {**spec, "cluster": cluster, "paused": True}}
        with contextlib.suppress(AlreadyExists):
            await self.host.create(ROTATIONS, child)
            self.recorder.record(parent, "Normal", "StageStarted",
                                 f"rotating cluster {cluster} (child rotation {name})")

    async def _pause(self, parent: str, cluster: str, *, paused: bool) -> None:
        child = self.rotations.get(child_name(parent, cluster))
        if child is None or bool((child.get("spec") or {}).get("paused")) == paused:
            return
        with contextlib.suppress(NotFound, Conflict):
            await self.host.patch(ROTATIONS, objects.name_of(child),
                                  {"spec": {"paused": paused}})

    async def _status(self, parent: Mapping[str, Any], old: dict[str, Any], *, phase: str,
                      stage: str | None, clusters: list[dict[str, Any]], message: str) -> None:
        new = {**old, "phase": phase, "clusters": clusters,
               "totalNodes": sum(c["total"] for c in clusters),
               "replacedNodes": sum(c["replaced"] for c in clusters)}
        for key, value in (("stage", stage), ("message", message or None)):
            if value is None:
                new.pop(key, None)
            else:
                new[key] = value
        new.setdefault("startTime", objects.now())
        if phase == "Succeeded":
            new.setdefault("completionTime", objects.now())
        if new == old:
            return
        if new.get("phase") != old.get("phase") or new.get("stage") != old.get("stage"):
            kind = "Warning" if message.startswith("held") else "Normal"
            self.recorder.record(parent, kind, f"Rotation{phase}",
                                 f"stage {stage or 'all done'}: {message or phase}")
        updated = objects.deepcopy(parent)
        updated["status"] = new
        with contextlib.suppress(NotFound, Conflict):
            await self.host.update_status(ROTATIONS, updated)


def add_stage_controller(manager: Manager, *, host: KubeClient, poll: float = 1.0,
                         clock: Callable[[], float] = time.time,
                         name: str = "rotation-stages",
                         events_namespace: str = SYSTEM_NAMESPACE) -> Controller:
    rotations = manager.informer(host, ROTATIONS)
    clusters = manager.informer(host, MEMBERCLUSTERS)
    reconciler = StageReconciler(
        host=host, rotations=rotations, clusters=clusters, poll=poll, clock=clock,
        recorder=EventRecorder(host, component="rotation-stages", host="pincompute",
                               cluster_namespace=events_namespace))
    controller = manager.controller(name, reconciler)
    controller.for_(rotations)

    def to_parent(child: dict[str, Any]) -> list[Request]:
        parent = (objects.meta(child).get("labels") or {}).get(PARENT_LABEL)
        return [Request("", parent)] if parent else []

    controller.watches(rotations, to_parent)
    return controller


__all__ = ["PARENT_LABEL", "StageReconciler", "add_stage_controller", "child_name",
           "stage_state"]
