"""Application-aware rotation: a cluster's nodes replaced by nodes of a new image.

Theory of operation
-------------------
A host-side controller over Rotation objects; it reaches the rotated member
cluster through the region's cluster set (:mod:`.members`) and touches only
Kubernetes objects there, so it runs on embedded and real clusters alike.  Each
reconcile is level-triggered from what the member's informers show, following
the rules of :mod:`.rotationplan`:

1. **Roll the pools.**  Each selected NodePool gets the target image
   (``spec.nodeImage``: its *new* nodes will run it) and its size is held: the
   size before the rotation is kept in the pool's :data:`BASE_ANNOTATION` and
   ``desiredSize`` stays at it (the pool autoscaler leaves such a pool alone).
   Nodes are started only once the pool carries the target image resolved (the
   node-image controller writes it), so they are made from the new image.
2. **Pick** old nodes (image label not the target) in the declared order within
   the limits (parallelism, per pool, per zone, max unavailable): each is cordoned
   and carries :data:`~pincompute.model.wellknown.ROTATION_ANNOTATION`, the
   durable record that it is in progress — with ``surge``, the node provisioner
   no longer counts it and starts its successor at once, within ``maxSize``
   (:mod:`pincompute.model.surge`; a pool at its maximum rotates without surging).
3. **Drain** a node in progress once its successor is up: pods are evicted
   only within every PinApp's disruption budget, decided from the member's caches
   (:mod:`.budgetcache`); a refusal waits, and status (``blockedBy``) and an Event
   name the app that holds it.
4. **Release** a drained node: it is marked to leave its pool (the node
   provisioner stops and deletes it); the pool's count does not change.
5. **Finish**: no old node left — ``Succeeded``; the pools are let go.  ``paused``
   takes no new node (the nodes in progress finish); ``abort`` hands the nodes in
   progress that have not left back (uncordoned: they count again, and the pool
   shrinks back to its size) and ends ``Aborted``.

Status shows the phase, done/total per pool, the nodes in progress, the apps
blocking drains and the step; Events mark starts, pauses, blocks and the end.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections import Counter
from collections.abc import Callable, Mapping
from typing import Any

from prometheus_client import CollectorRegistry

from pincompute.kube import objects
from pincompute.kube.errors import Conflict, NotFound
from pincompute.kube.protocol import KubeClient
from pincompute.kube.resource import NODES, PODS
from pincompute.kube.selectors import selector_from_dict
from pincompute.kube.wellknown import ZONE_LABEL
from pincompute.model.app import PinAppSpec
from pincompute.model.disruption import required_available
from pincompute.model.platform import RotationSpec, pool_size
from pincompute.model.registry import NODEIMAGES, NODEPOOLS, PINAPPS, PINPODS, ROTATIONS
from pincompute.model.surge import surge_room, surge_since
from pincompute.model.views import spec_view
from pincompute.model.wellknown import (
    NODE_DRAIN_ANNOTATION,
    NODE_IMAGE_LABEL,
    NODE_POOL_LABEL,
    RESOLVED_IMAGE_ANNOTATION,
    ROTATION_ANNOTATION,
    SYSTEM_NAMESPACE,
)
from pincompute.runtime.controller import Controller, not_status_only
from pincompute.runtime.events import EventRecorder
from pincompute.runtime.informer import FuncEventHandler, SharedInformer
from pincompute.runtime.manager import Manager
from pincompute.runtime.reconciler import Request, Result

from .budgetcache import BY_UID, BudgetCache
from .draining import BY_NODE, DrainPass, PassMemo, by_node, evict_pods, workload_pods
from .members import Members
from .metrics import ops_metrics
from .nodeapps import NodeApps
from .rotationplan import (
    NODE_STEPS,
    TERMINAL,
    Candidate,
    Limits,
    NodeAction,
    Phase,
    Spread,
    current_step,
    may_drain,
    node_phase,
    pick,
    rotation_phase,
)

PASS_CONCURRENCY = 32
"""Nodes a pass drains or releases at the same time."""
BASE_ANNOTATION = "pincompute.io/rotation-base"
"""On a NodePool being rotated: JSON ``{"rotation": name, "size": n}``, its size before."""


NODE_EVENT_BATCH = 0.5
"""Seconds a node's arrival or departure waits for others before a pass."""


def _annotations(obj: Mapping[str, Any]) -> Mapping[str, str]:
    return objects.meta(obj).get("annotations") or {}


def _ready(node: Mapping[str, Any]) -> bool:
    return objects.condition_true(node, "Ready")


def _picked(node: Mapping[str, Any]) -> tuple[float, str]:
    """When a node in progress was picked (first picked, first drained)."""
    raw = _annotations(node).get(ROTATION_ANNOTATION) or ""
    try:
        since = float(json.loads(raw).get("since", 0.0)) if raw else float("inf")
    except (ValueError, AttributeError):
        since = float("inf")
    return since, objects.name_of(node)


def _count(value: int | str | None, total: int, default: int) -> int:
    if value is None:
        return default
    if isinstance(value, str):
        return max(1, int(value.rstrip("%")) * total // 100)
    return value


class RotationReconciler:
    def __init__(self, *, host: KubeClient, rotations: SharedInformer, images: SharedInformer,
                 members: Members, recorder: EventRecorder, registry: CollectorRegistry,
                 poll: float) -> None:
        self.host = host
        self.rotations = rotations
        self.images = images
        self.members = members
        self.recorder = recorder
        self.metrics = ops_metrics(registry)
        self.poll = poll
        self._budgets: dict[str, BudgetCache] = {}
        """Member cluster → the cached budget refusals over its informers."""
        self._node_apps: dict[str, NodeApps] = {}
        """Member cluster → its nodes' pods per app (what a pick looks at)."""

    async def reconcile(self, request: Request) -> Result | None:
        rotation = self.rotations.get(request.name)
        if rotation is None or objects.is_deleting(rotation):
            return None
        status = dict(rotation.get("status") or {})
        spec = spec_view(RotationSpec, rotation)
        if spec.cluster is None:
            return None  # a staged rotation: its per-cluster children do the work (.stages)
        member = self.members.get(spec.cluster)
        if status.get("phase") in {p.value for p in TERMINAL}:
            # Over: the pools it held go back to their size (until every write landed).
            return None if member is None or await self._release_pools(
                member, objects.name_of(rotation)) else Result(requeue_after=self.poll)
        if member is None:
            return await self._wait(rotation, status, f"member cluster {spec.cluster} is not "
                                    "reachable")
        image = self.images.get(spec.target_image)
        if image is None or (image.get("status") or {}).get("phase") != "Ready":
            return await self._wait(rotation, status, f"node image {spec.target_image} does "
                                    "not exist or is not resolved yet")
        nodes_inf = member.informer(NODES)
        pods_inf = member.informer(PODS)
        pools_inf = member.informer(NODEPOOLS)
        pods_inf.add_indexer(BY_NODE, by_node)
        budgets = self._budgets.get(spec.cluster)
        if budgets is None or budgets.pods is not pods_inf:
            budgets = self._budgets[spec.cluster] = BudgetCache(
                pods=pods_inf, pinpods=member.informer(PINPODS),
                pinapps=member.informer(PINAPPS))
            self._node_apps[spec.cluster] = NodeApps(pods_inf)
        node_apps = self._node_apps[spec.cluster]
        if not (nodes_inf.has_synced and pools_inf.has_synced and budgets.has_synced):
            return Result(requeue_after=self.poll)
        name = objects.name_of(rotation)
        pools = {objects.name_of(p): p for p in pools_inf.list() if not objects.is_deleting(p)
                 and (spec.node_pools is None or objects.name_of(p) in spec.node_pools)}
        client = member.client
        by_pool: dict[str, list[dict[str, Any]]] = {p: [] for p in pools}
        for node in nodes_inf.list():
            pool = (objects.meta(node).get("labels") or {}).get(NODE_POOL_LABEL)
            if pool in by_pool:
                by_pool[pool].append(node)

        started: set[str] = set()

        def mine(node: Mapping[str, Any]) -> bool:
            if objects.name_of(node) in started:
                return True
            raw = _annotations(node).get(ROTATION_ANNOTATION) or ""
            return bool(raw) and json.loads(raw).get("rotation") == name

        if spec.abort:
            for nodes in by_pool.values():
                for node in nodes:
                    if mine(node) and NODE_DRAIN_ANNOTATION not in _annotations(node):
                        with contextlib.suppress(NotFound):
                            await client.patch(NODES, objects.name_of(node), {
                                "metadata": {"annotations": {ROTATION_ANNOTATION: None}},
                                "spec": {"unschedulable": None}})
        # 1. roll the pools: target image, size in hand
        unready_pools = []
        for pool_name, pool in pools.items():
            if not await self._take_pool(client, pool, by_pool[pool_name], name=name,
                                         target=spec.target_image, abort=spec.abort):
                unready_pools.append(pool_name)
        progress = self._progress(status, by_pool, target=spec.target_image)
        in_progress = [n for nodes in by_pool.values() for n in nodes if mine(n)]
        remaining = sum(total - done for _, done, total in progress)
        phase = rotation_phase(abort=spec.abort, paused=spec.paused, remaining=remaining,
                               in_progress=0 if spec.abort else len(in_progress))
        blocked: list[str] = []
        step = None
        if phase not in TERMINAL:
            steps = spec.order or []
            candidates = {objects.name_of(n): self._candidate(n, steps)
                          for nodes in by_pool.values() for n in nodes
                          if (objects.meta(n).get("labels") or {}).get(NODE_IMAGE_LABEL)
                          != spec.target_image}
            busy = [candidates[objects.name_of(n)] for n in in_progress
                    if objects.name_of(n) in candidates]
            busy_names = {c.name for c in busy}
            waiting = [c for n, c in candidates.items() if n not in busy_names and
                       NODE_DRAIN_ANNOTATION not in _annotations(nodes_inf.get(n) or {})]
            step = current_step([*waiting, *busy])
            if phase is Phase.RUNNING and not unready_pools:
                total_nodes = sum(len(nodes) for nodes in by_pool.values())
                limits = Limits(spec.parallelism, spec.max_parallel_per_pool or spec.parallelism,
                                spec.max_parallel_per_zone or spec.parallelism,
                                _count(spec.max_unavailable, total_nodes, spec.parallelism))
                not_ready = sum(1 for c in waiting if not _ready(nodes_inf.get(c.name) or {}))
                # Application-aware, unless told to ignore the budgets.
                spread = self._spread(in_progress, node_apps, budgets) \
                    if len(busy) < limits.parallelism and spec.respect_disruption_budgets \
                    else None
                for c in pick(waiting, busy, limits=limits, not_ready=not_ready,
                              spread=spread):
                    record = {"rotation": name, "since": time.time(), "surge": spec.surge}
                    with contextlib.suppress(NotFound):
                        await client.patch(NODES, c.name, {
                            "metadata": {"annotations": {ROTATION_ANNOTATION: json.dumps(
                                record)}}, "spec": {"unschedulable": True}})
                    started.add(c.name)
                    in_progress.append(nodes_inf.get(c.name) or {"metadata": {"name": c.name}})
            # Per pool, its nodes in progress marked to surge (as the provisioner reads the
            # marks; those picked just now carry this rotation's).
            marked: Counter[str] = Counter(
                (objects.meta(n).get("labels") or {}).get(NODE_POOL_LABEL, "")
                for n in in_progress if (spec.surge and objects.name_of(n) in started)
                or surge_since(n) is not None)
            blocked = await self._advance(client, rotation, in_progress, by_pool, pools,
                                          pods_inf, surge=spec.surge, marked=marked,
                                          respect=spec.respect_disruption_budgets,
                                          budgets=budgets)
        for pool in pools.values():
            await self._size(client, pool, name=name, done=phase in TERMINAL)
        message = (f"waiting for pools {', '.join(unready_pools)} to carry image "
                   f"{spec.target_image}" if unready_pools and phase is Phase.RUNNING
                   else f"drains wait for the disruption budgets of {', '.join(blocked)}"
                   if blocked else "")
        await self._status(rotation, status, phase=phase, progress=progress,
                           in_progress=sorted(objects.name_of(n) for n in in_progress
                                              if not spec.abort),
                           blocked=blocked, step=step, message=message)
        if phase is Phase.PAUSED:
            return None  # a change of its spec (resume, abort) brings it back
        # Running: the next pass. Finished: the next pass lets go of the pools (the status
        # write that says it finished does not bring it back).
        return Result(requeue_after=self.poll)

    # -- pools --

    async def _take_pool(self, client: KubeClient, pool: Mapping[str, Any],
                         nodes: list[dict[str, Any]], *, name: str, target: str,
                         abort: bool) -> bool:
        """Give ``pool`` the target image and remember its size; whether its new nodes
        will be made from the target image now."""
        if abort:
            return True
        annotations = _annotations(pool)
        patch: dict[str, Any] = {}
        if (pool.get("spec") or {}).get("nodeImage") != target:
            patch["spec"] = {"nodeImage": target}
        base = annotations.get(BASE_ANNOTATION)
        if not base or json.loads(base).get("rotation") != name:
            size = (pool.get("spec") or {}).get("desiredSize")
            if size is None:
                size = sum(1 for n in nodes if NODE_DRAIN_ANNOTATION not in _annotations(n))
            patch["metadata"] = {"annotations": {BASE_ANNOTATION: json.dumps(
                {"rotation": name, "size": size})}}
        if patch:
            patch.setdefault("metadata", {})["resourceVersion"] = \
                objects.meta(pool)["resourceVersion"]
            with contextlib.suppress(Conflict, NotFound):
                await client.patch(NODEPOOLS, objects.name_of(pool), patch)
            return False
        resolved = annotations.get(RESOLVED_IMAGE_ANNOTATION) or ""
        return bool(resolved) and json.loads(resolved).get("name") == target

    async def _release_pools(self, member: Any, name: str) -> bool:
        """Let go of the pools a finished rotation held; whether none is held any more."""
        pools = member.informer(NODEPOOLS)
        if not pools.has_synced:
            return False
        done = True
        for pool in pools.list():
            raw = _annotations(pool).get(BASE_ANNOTATION) or ""
            if raw and json.loads(raw).get("rotation") == name:
                done = False
                await self._size(member.client, pool, name=name, done=True)
        return done

    async def _size(self, client: KubeClient, pool: Mapping[str, Any], *, name: str,
                    done: bool) -> None:
        """Hold ``desiredSize`` at the base (the surge is the provisioner's, see
        :mod:`pincompute.model.surge`); the base forgotten when the rotation is over."""
        raw = _annotations(pool).get(BASE_ANNOTATION) or ""
        if not raw or json.loads(raw).get("rotation") != name:
            return
        base = json.loads(raw)["size"]
        patch: dict[str, Any] = {"metadata": {
            "resourceVersion": objects.meta(pool)["resourceVersion"]}}
        if (pool.get("spec") or {}).get("desiredSize") != base:
            patch["spec"] = {"desiredSize": base}
        if done:
            patch["metadata"]["annotations"] = {BASE_ANNOTATION: None}
        if len(patch) > 1 or done:
            with contextlib.suppress(Conflict, NotFound):  # a conflict: the next poll
                await client.patch(NODEPOOLS, objects.name_of(pool), patch)

    # -- nodes in progress --

    async def _advance(self, client: KubeClient, rotation: Mapping[str, Any],
                       in_progress: list[dict[str, Any]],
                       by_pool: Mapping[str, list[dict[str, Any]]],
                       pools: Mapping[str, Mapping[str, Any]], pods_inf: SharedInformer, *,
                       surge: bool, marked: Counter[str], respect: bool,
                       budgets: BudgetCache) -> list[str]:
        blocked: list[str] = []
        memo = PassMemo()  # what the apps' budgets said in this pass
        ranks: Counter[str] = Counter()
        capacity_of: dict[str, Callable[[int], bool]] = {}  # pool → may its rank drain
        draining: list[list[dict[str, Any]]] = []  # the pods of each node to evict from
        releasing: list[str] = []
        for node in sorted(in_progress, key=_picked):
            name = objects.name_of(node)
            pool = (objects.meta(node).get("labels") or {}).get(NODE_POOL_LABEL, "")
            leaving = NODE_DRAIN_ANNOTATION in _annotations(node)
            if not (leaving or not surge) and pool not in capacity_of:
                capacity_of[pool] = self._may_drain(by_pool.get(pool, []), pools.get(pool),
                                                    marked=marked[pool])
            capacity = leaving or not surge or capacity_of[pool](ranks[pool])
            ranks[pool] += not leaving
            pods = pods_inf.by_index(BY_NODE, name)
            phase = node_phase(leaving=leaving, capacity_ready=capacity,
                               workload_pods=len(workload_pods(pods)))
            action = NODE_STEPS[phase]
            if action is NodeAction.EVICT:
                draining.append(pods)
            elif action is NodeAction.RELEASE:
                releasing.append(name)
        # The nodes are worked on side by side: one after the other, each eviction and each
        # write waits a turn of an event loop that a whole region shares (at full size a
        # pass over 300 nodes took minutes, while drained nodes waited for their release).
        # One app's evictions still go one at a time (its lock in model.disruption.evict).
        limit = asyncio.Semaphore(PASS_CONCURRENCY)

        async def release(name: str) -> None:
            async with limit:
                with contextlib.suppress(NotFound):
                    await client.patch(NODES, name, {
                        "metadata": {"annotations": {NODE_DRAIN_ANNOTATION: objects.now()}},
                        "spec": {"unschedulable": True}})
            self.metrics.rotation_replaced.labels(rotation["spec"]["cluster"],
                                                  objects.name_of(rotation)).inc()

        async def drain(pods: list[dict[str, Any]]) -> DrainPass:
            async with limit:
                return await evict_pods(client, pods, respect_budgets=respect, memo=memo,
                                        decide=budgets.decide)

        done = await asyncio.gather(*(release(n) for n in releasing),
                                    *(drain(p) for p in draining), return_exceptions=True)
        for result in done:
            if isinstance(result, BaseException):
                raise result  # the rest of the pass is done; the next one retries
            if isinstance(result, DrainPass):
                for app in result.blocked_by:
                    if app not in blocked:
                        blocked.append(app)
                if result.blocked:
                    self.metrics.rotation_blocked.labels(
                        rotation["spec"]["cluster"], objects.name_of(rotation)).inc(
                            len(result.blocked))
        return blocked

    @staticmethod
    def _may_drain(nodes: list[dict[str, Any]], pool: Mapping[str, Any] | None, *,
                   marked: int) -> Callable[[int], bool]:
        """Whether the pool's node in progress of a rank may drain (the pool's figures
        counted once per pass, not once per node).  Of its ``marked`` nodes in
        progress, as many as ``maxSize`` leaves room for have a successor
        (:mod:`pincompute.model.surge`): the pool is then to have ``base`` plus those."""
        staying = [n for n in nodes if NODE_DRAIN_ANNOTATION not in _annotations(n)]
        starting = sum(1 for n in staying if not _ready(n)
                       and not (n.get("spec") or {}).get("unschedulable"))
        spec = (pool or {}).get("spec") or {}
        raw = _annotations(pool or {}).get(BASE_ANNOTATION) or ""
        if not raw:
            return lambda _rank: True  # not held yet: nothing surged to wait for
        # The provisioner's target: the base within minSize..maxSize.
        low, high = int(spec.get("minSize") or 0), int(spec.get("maxSize") or 0)
        base = pool_size(int(json.loads(raw)["size"]), min_size=low, max_size=high)
        desired = base + min(marked, surge_room(target=base, min_size=low, max_size=high))
        return lambda rank: may_drain(rank=rank, base=base, staying=len(staying),
                                      starting=starting, desired=desired)

    @staticmethod
    def _spread(in_progress: list[dict[str, Any]], node_apps: NodeApps,
                budgets: BudgetCache) -> Spread:
        """What an application-aware pick needs (:class:`.rotationplan.Spread`), read
        from the member's caches."""
        def room(uid: str) -> int:
            apps = budgets.pinapps.by_index(BY_UID, uid)
            budget = (apps[0].get("spec") or {}).get("disruptionBudget") if apps else None
            if not budget:
                return 10**9  # nothing holds its pods back
            spec = spec_view(PinAppSpec, apps[0])
            replicas = 0 if spec.stopped else spec.replicas
            return max(1, replicas - required_available(budget, replicas))

        load: Counter[str] = Counter()
        for node in in_progress:
            if NODE_DRAIN_ANNOTATION not in _annotations(node):
                load.update(node_apps.of(objects.name_of(node)))
        return Spread(apps_of=node_apps.of, room=room, load=load)

    @staticmethod
    def _candidate(node: Mapping[str, Any], steps: list[Any]) -> Candidate:
        labels = objects.meta(node).get("labels") or {}
        pool = labels.get(NODE_POOL_LABEL, "")
        index = len(steps)
        for i, step in enumerate(steps):
            if (step.node_pool is not None and step.node_pool == pool) or \
                    (step.node_selector is not None and selector_from_dict(
                        step.node_selector.model_dump(by_alias=True, exclude_none=True)
                    ).matches(labels)):
                index = i
                break
        return Candidate(objects.name_of(node), pool, labels.get(ZONE_LABEL, ""), index)

    # -- status --

    @staticmethod
    def _progress(status: Mapping[str, Any], by_pool: Mapping[str, list[dict[str, Any]]], *,
                  target: str) -> list[tuple[str, int, int]]:
        """(pool, done, total) per pool; a pool's total is fixed when first counted."""
        totals = {p["pool"]: int(p.get("total") or 0) for p in status.get("pools") or ()}
        out = []
        for pool, nodes in sorted(by_pool.items()):
            old = sum(1 for n in nodes
                      if (objects.meta(n).get("labels") or {}).get(NODE_IMAGE_LABEL) != target)
            total = max(totals.get(pool, old), old)
            out.append((pool, total - old, total))
        return out

    async def _wait(self, rotation: Mapping[str, Any], status: dict[str, Any],
                    message: str) -> Result:
        await self._status(rotation, status, phase=Phase(status.get("phase") or "Pending"),
                           progress=None, in_progress=None, blocked=[], step=None,
                           message=message)
        return Result(requeue_after=self.poll * 5)

    async def _status(self, rotation: Mapping[str, Any], old: dict[str, Any], *, phase: Phase,
                      progress: list[tuple[str, int, int]] | None,
                      in_progress: list[str] | None, blocked: list[str], step: int | None,
                      message: str) -> None:
        new = dict(old)
        new.update(phase=phase.value, blockedBy=blocked or None, message=message or None,
                   observedGeneration=objects.meta(rotation).get("generation"))
        if progress is not None:
            new["pools"] = [{"pool": p, "done": d, "total": t} for p, d, t in progress]
            new["totalNodes"] = sum(t for _, _, t in progress)
            new["replacedNodes"] = sum(d for _, d, _ in progress)
        if in_progress is not None:
            new["inProgress"] = in_progress
        if step is not None:
            new["currentStep"] = step
        if phase is not Phase.PENDING and not new.get("startTime"):
            new["startTime"] = objects.now()
        if phase in TERMINAL and not new.get("completionTime"):
            new["completionTime"] = objects.now()
        new = {k: v for k, v in new.items() if v is not None}
        if new == old:
            return
        self._events(rotation, old, new)
        updated = objects.deepcopy(rotation)
        updated["status"] = new
        with contextlib.suppress(NotFound, Conflict):  # a conflict: the next poll
            await self.host.update_status(ROTATIONS, updated)

    def _events(self, rotation: Mapping[str, Any], old: Mapping[str, Any],
                new: Mapping[str, Any]) -> None:
        done = f"{new.get('replacedNodes', 0)} of {new.get('totalNodes', 0)} nodes replaced"
        if new["phase"] != old.get("phase"):
            kind = "Warning" if new["phase"] in ("Aborted", "Failed") else "Normal"
            self.recorder.record(rotation, kind, f"Rotation{new['phase']}",
                                 f"{new['phase']}: {done}" + (
                                     f"; {new['message']}" if new.get("message") else ""))
        if new.get("blockedBy") and new.get("blockedBy") != old.get("blockedBy"):
            self.recorder.record(rotation, "Normal", "RotationBlocked",
                                 f"{new['message']} ({done})")
        if new.get("currentStep") != old.get("currentStep") and "currentStep" in new:
            self.recorder.record(rotation, "Normal", "RotationStep",
                                 f"step {new['currentStep']} ({done})")


def add_rotation_controller(manager: Manager, *, host: KubeClient, clusters: Members,
                            poll: float = 1.0, recorder: EventRecorder | None = None,
                            name: str = "rotations",
                            events_namespace: str = SYSTEM_NAMESPACE) -> Controller:
    """Run rotations from ``host`` on the member clusters of ``clusters``; ``poll`` is the
    pace at which a rotation in progress looks again (pod events are not watched)."""
    rotations = manager.informer(host, ROTATIONS)
    images = manager.informer(host, NODEIMAGES)
    reconciler = RotationReconciler(
        host=host, rotations=rotations, images=images, members=clusters, poll=poll,
        registry=manager.metrics.registry,
        recorder=recorder or EventRecorder(host, component="rotation-controller",
                                           host="pincompute",
                                           cluster_namespace=events_namespace))
    controller = manager.controller(name, reconciler)
    # Not on its own status writes: a pass looks at every node of the cluster, and one
    # after each write would run them back to back; it comes back every ``poll`` anyway.
    controller.for_(rotations, predicate=not_status_only)

    def of_image(image: dict[str, Any]) -> list[Request]:
        return [Request("", objects.name_of(r)) for r in rotations.list()
                if (r.get("spec") or {}).get("targetImage") == objects.name_of(image)]

    controller.watches(images, of_image)

    def handler_for(member: str) -> FuncEventHandler:
        def node_changed(_node: dict[str, Any]) -> None:
            active = Counter(objects.name_of(r) for r in rotations.list()
                             if (r.get("spec") or {}).get("cluster") == member)
            for rotation in active:  # nodes come and go by the hundred: one pass for a burst
                controller.enqueue(Request("", rotation), after=NODE_EVENT_BATCH)
        return FuncEventHandler(add=node_changed, delete=node_changed)

    clusters.watch(NODES, handler_for)
    return controller


__all__ = ["BASE_ANNOTATION", "RotationReconciler", "add_rotation_controller"]
