"""The placement controller: host workloads get placements, kept through failures.

Theory of operation
-------------------
For every host workload the cluster scheduler places (PinApp, PinPod, PinJob,
PinTrainingJob, PinCronJob, PinDaemon, PinSidecar) that admission let in (condition
``Admitted`` True; the cluster-scoped platform kinds PinDaemon and PinSidecar belong
to no project and need no admission), the controller runs :meth:`ClusterScheduler.schedule` and
records the decision in the object's status: ``placements``,
``excludedClusters`` and a ``Scheduled`` condition whose reason is the state of
:mod:`.failover`'s table.  An unschedulable decision keeps the old placements
and says why.  ``status.placements`` is the contract with propagation, which
writes the shards; this controller never touches a member.

The scheduler's :class:`ClusterTable` is fed from a MemberCluster informer.
A cluster *signature* (spec, health, capacity figures) tells changes that
matter from heartbeats; each such change bumps an epoch and enqueues the
workloads placed there (an index on ``status.placements``) and those that owe
work (an index on the pending reasons), plus every PinDaemon and PinSidecar
(duplicated on every matching cluster).

When is a workload decided?  Never on a status write alone (the thrash the
sticky Locality division exists to avoid):

1. its generation is not the one its ``Scheduled`` condition observed (new
   spec, or never placed): decide;
2. it is placed on a cluster that is gone, or must be evacuated
   (:func:`~.failover.evacuation`) and the grace period has passed since the
   controller noticed: decide again without it (the filters exclude it) —
   *failover*; an Event names the clusters and counts.  Within the grace the
   reconcile is requeued for when it ends;
3. it is ``Unschedulable``: retry when the clusters changed since its last
   decision (the epoch), else after ``retry_interval``;
4. it is ``FailedOver``/``Rebalancing``: compute the ideal placement
   (``rebalance=True``, nothing reserved) and, once the last step's shards
   report ready and ``rebalance_interval`` has passed, move at most
   :func:`~.failover.move_budget` replicas toward it
   (:func:`~.failover.rebalance_step`) — an Event again; when current is ideal
   and no cluster is being evacuated or still carries its health taints
   (:func:`~.failover.recovering`: back, but not yet placeable), the reason
   returns to ``Scheduled``.
   Workloads that go whole to one cluster are not moved back (that would
   restart them); duplicated ones are simply decided again;
5. a duplicated workload (PinDaemon) is decided again whenever the clusters
   changed since its last decision: a cluster that came or recovered gets it;
6. admission took it back (``Admitted`` False — ``Preempted`` for a reserved
   workload's room): its placements are cleared (reason ``NotAdmitted``, an
   Event ``Withdrawn``) and its reservation forgotten, so propagation removes
   its shards gracefully; admitted again after its back-off, it is decided anew.

Shards report their replicas in ``status.clusters`` (written by the status
helper); each reconcile confirms them in the scheduler's assume cache.  After a
restart the assume cache is rebuilt from ``status.placements`` (reserved
without a decision), and grace periods start afresh (conservative).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from pincompute.kube import objects
from pincompute.kube.errors import Conflict, NotFound
from pincompute.kube.protocol import KubeClient
from pincompute.kube.resource import Resource
from pincompute.model.registry import (
    MEMBERCLUSTERS,
    PINAPPS,
    PINCRONJOBS,
    PINDAEMONS,
    PINJOBS,
    PINPODS,
    PINSIDECARS,
    PINTRAININGJOBS,
)
from pincompute.runtime.controller import Controller
from pincompute.runtime.events import EventRecorder
from pincompute.runtime.informer import SharedInformer
from pincompute.runtime.manager import Manager
from pincompute.runtime.reconciler import Request, Result

from .clusterscheduler import ClusterScheduler, Decision, RequestError
from .clusterscheduler.clustertable import health_problem
from .clusterscheduler.workload import current_placements
from .failover import (
    FAILED_OVER,
    NOT_ADMITTED,
    PENDING_REASONS,
    REBALANCING,
    UNSCHEDULABLE,
    Evacuation,
    Outcome,
    evacuation,
    grace_left,
    move_budget,
    moved,
    next_reason,
    rebalance_step,
    recovering,
)

PLACED_KINDS: tuple[Resource, ...] = (PINAPPS, PINPODS, PINJOBS, PINTRAININGJOBS,
                                      PINCRONJOBS, PINDAEMONS, PINSIDECARS)
"""The host kinds the cluster scheduler places."""
DUPLICATED_KINDS: frozenset[str] = frozenset({PINDAEMONS.plural, PINSIDECARS.plural})
"""Placed on every matching cluster, decided again whenever the clusters change."""
PLATFORM_KINDS: frozenset[str] = frozenset({"PinDaemon", "PinSidecar"})
"""Cluster-scoped, in no project: admission has nothing to charge, they are placed as they
are."""
SCHEDULED_CONDITION = "Scheduled"
ADMITTED_CONDITION = "Admitted"
QUEUED_CONDITION = "Queued"
BY_CLUSTER = "placement.cluster"
"""Index: the clusters of a workload's ``status.placements``."""
BY_PENDING = "placement.pending"
"""Index: ``pending`` for workloads whose Scheduled reason owes work."""
PENDING = "pending"
EMPTY: Mapping[str, Any] = {}


def admitted(obj: Mapping[str, Any], *, require_admission: bool) -> bool:
    """Whether admission let the workload in (``Admitted`` True; without admission
    running, ``require_admission=False`` lets in one that carries neither condition).
    Cluster-scoped platform kinds (PinDaemon, PinSidecar) belong to no project: admission
    charges no quota for them and they are always let in."""
    if obj.get("kind") in PLATFORM_KINDS:
        return True
    cond = objects.get_condition(obj, ADMITTED_CONDITION)
    if cond is not None:
        return cond.get("status") == "True"
    if require_admission:
        return False
    return objects.get_condition(obj, QUEUED_CONDITION) is None


def _placed_clusters(obj: Mapping[str, Any]) -> list[str]:
    return list(current_placements(obj))


def _pending(obj: Mapping[str, Any]) -> list[str]:
    cond = objects.get_condition(obj, SCHEDULED_CONDITION)
    return [PENDING] if cond is not None and cond.get("reason") in PENDING_REASONS else []


@dataclass(slots=True)
class _Evacuating:
    why: Evacuation
    since: float


@dataclass(slots=True)
class _Memory:
    """What the controller remembers of one workload (all of it recoverable)."""

    uid: str
    epoch: int = -1
    """The cluster epoch of its last decision."""
    decided_at: float = float("-inf")
    stepped_at: float = float("-inf")
    balanced_epoch: int = -1
    """The cluster epoch at which its placement was found ideal (while clusters were out)."""


@dataclass
class PlacementController:
    """Decides and records placements (see the module docstring)."""

    host: KubeClient
    scheduler: ClusterScheduler
    informers: dict[str, SharedInformer]
    clusters: SharedInformer
    recorder: EventRecorder
    require_admission: bool = True
    grace: float = 30.0
    rebalance_step: int = 2
    rebalance_interval: float = 10.0
    retry_interval: float = 30.0
    wait_ready: bool = True
    clock: Callable[[], float] = time.monotonic
    controllers: dict[str, Controller] = field(default_factory=dict)
    decisions: int = 0
    """Decisions this controller asked of the scheduler (for tests and metrics)."""
    epoch: int = 0
    """Bumped whenever a cluster changes in a way that matters."""
    _signatures: dict[str, bytes] = field(default_factory=dict)
    _evacuating: dict[str, _Evacuating] = field(default_factory=dict)
    _recovering: set[str] = field(default_factory=set)
    """Clusters back from an outage whose health taints are still on (see
    :func:`~.failover.recovering`): a rebalance waits for them instead of settling."""
    _memory: dict[tuple[str, str], _Memory] = field(default_factory=dict)

    # --- clusters -----------------------------------------------------------------------------

    def cluster_changed(self, obj: Mapping[str, Any]) -> None:
        name = objects.name_of(obj)
        self.scheduler.update_cluster(obj)
        spec = obj.get("spec") or EMPTY
        status = obj.get("status") or EMPTY
        signature = orjson.dumps(
            [spec, health_problem(obj), status.get("tiers"), status.get("allocatable"),
             status.get("allocated"), status.get("allocating")], option=orjson.OPT_SORT_KEYS)
        if self._signatures.get(name) == signature:
            return
        self._signatures[name] = signature
        why = evacuation(obj)
        if why is None:
            self._evacuating.pop(name, None)
        elif name not in self._evacuating or self._evacuating[name].why != why:
            self._evacuating[name] = _Evacuating(why, self.clock())
        if recovering(obj):
            self._recovering.add(name)
        else:
            self._recovering.discard(name)
        self._bump(name)

    def cluster_removed(self, obj: Mapping[str, Any]) -> None:
        name = objects.name_of(obj)
        self.scheduler.remove_cluster(name)
        self._signatures.pop(name, None)
        self._evacuating.pop(name, None)
        self._recovering.discard(name)
        self._bump(name)

    def _bump(self, cluster: str) -> None:
        self.epoch += 1
        for kind, informer in self.informers.items():
            controller = self.controllers.get(kind)
            if controller is None:
                continue
            keys = set(informer.index_keys(BY_CLUSTER, cluster))
            keys.update(informer.index_keys(BY_PENDING, PENDING))
            if kind in DUPLICATED_KINDS:
                keys.update(informer.keys())
            for key in keys:
                controller.enqueue(Request.from_key(key))

    # --- workloads ----------------------------------------------------------------------------

    def reconciler(self, resource: Resource) -> Callable[[Request], Any]:
        async def reconcile(request: Request) -> Result | None:
            return await self.reconcile(resource, request)
        return reconcile

    async def reconcile(self, resource: Resource, request: Request) -> Result | None:
        key = (resource.plural, request.key)
        obj = self.informers[resource.plural].get_by_key(request.key)
        memory = self._memory.get(key)
        if obj is None or objects.is_deleting(obj):
            if memory is not None:
                self.scheduler.forget(memory.uid)
                del self._memory[key]
            return None
        uid = objects.uid_of(obj)
        if memory is None or memory.uid != uid:
            if memory is not None:
                self.scheduler.forget(memory.uid)
            memory = self._memory[key] = _Memory(uid)
        if not admitted(obj, require_admission=self.require_admission):
            if (obj.get("status") or EMPTY).get("placements"):
                return await self._withdraw(resource, obj, memory)
            return None
        current = current_placements(obj)
        try:
            request_ = self.scheduler.requests.get(obj)
        except RequestError as e:
            # Only a new spec can fix it (and a new generation brings the key back).
            await self._write(resource, obj, None, outcome="unschedulable",
                              message=f"cannot place: {e}", memory=memory)
            return None
        if uid not in self.scheduler.assumed and current and request_.counted:
            # A restart: what the status says is placed is taken to be reserved.
            with self.scheduler.assumed.lock:
                self.scheduler.assumed.reserve(
                    uid, tier=request_.tier_index, per_replica=request_.per_replica,
                    placements=current,
                    whole=request_.whole if request_.mode == "Whole" else None)
        self._confirm(uid, obj)
        cond = objects.get_condition(obj, SCHEDULED_CONDITION)
        generation = objects.meta(obj).get("generation")
        now = self.clock()
        if cond is None or cond.get("observedGeneration") != generation:
            return await self._decide(resource, obj, memory, outcome="placed")
        # Failover: a placed cluster that is gone or must be evacuated.
        due: list[str] = []
        wait: float | None = None
        for cluster in current:
            if self.scheduler.table.row_of(cluster) is None:
                if memory.epoch != self.epoch:  # gone since the last decision
                    due.append(cluster)
                continue
            ev = self._evacuating.get(cluster)
            if ev is None:
                continue
            left = grace_left(since=ev.since, now=now, grace=self.grace, applies=ev.why.grace)
            if left > 0:
                wait = left if wait is None else min(wait, left)
            elif memory.decided_at < ev.since + (self.grace if ev.why.grace else 0.0):
                due.append(cluster)
        if due:
            return await self._decide(resource, obj, memory, outcome="failover", away=due)
        result = Result(requeue_after=wait) if wait is not None else None
        reason = cond.get("reason")
        if reason == NOT_ADMITTED:
            # Admitted again (after a preemption's back-off): placed anew.
            return await self._decide(resource, obj, memory, outcome="placed")
        if reason == UNSCHEDULABLE:
            if memory.epoch != self.epoch or now - memory.decided_at >= self.retry_interval:
                return await self._decide(resource, obj, memory, outcome="placed")
            return _sooner(result, memory.decided_at + self.retry_interval - now)
        if reason in (FAILED_OVER, REBALANCING):
            return _sooner(await self._rebalance(resource, obj, memory, reason, now), wait)
        if request_.mode == "Duplicated" and memory.epoch != self.epoch:
            # Every matching cluster runs it: a cluster that came or recovered gets it.
            return _sooner(await self._decide(resource, obj, memory, outcome="placed"), wait)
        return result

    async def _withdraw(self, resource: Resource, obj: Mapping[str, Any],
                        memory: _Memory) -> Result | None:
        """Admission took a placed workload back (``Preempted``): clear its placements, so
        propagation removes its shards (gracefully) and its room is free at once."""
        self.scheduler.forget(memory.uid)
        old = current_placements(obj)
        cond = objects.get_condition(obj, ADMITTED_CONDITION) or EMPTY
        why = cond.get("reason") or "not admitted"
        text = (f"removed from {', '.join(sorted(old)) or 'every cluster'}: no longer "
                f"admitted ({why})")
        result = await self._write(resource, obj, None, outcome="withdrawn", message=text,
                                   memory=memory, placements=[])
        if result is None:
            self.recorder.record(obj, "Normal", "Withdrawn", text)
        return result

    def _confirm(self, uid: str, obj: Mapping[str, Any]) -> None:
        for c in (obj.get("status") or EMPTY).get("clusters") or ():
            replicas = c.get("replicas")
            if c.get("cluster") and replicas is not None:
                self.scheduler.confirm(uid, c["cluster"], int(replicas))

    async def _decide(self, resource: Resource, obj: Mapping[str, Any], memory: _Memory, *,
                      outcome: Outcome, away: list[str] | None = None) -> Result | None:
        decision = self._schedule(obj, memory)
        if not decision.scheduled:
            return await self._write(resource, obj, decision, outcome="unschedulable",
                                     message=decision.message, memory=memory)
        old = current_placements(obj)
        new = decision.replicas()
        message = _describe(decision)
        if outcome == "failover":
            if new == old:
                # The workload tolerates what the cluster has: nothing moves.
                return None
            counted = any(p.replicas is not None for p in decision.placements)
            message = (f"failed over from {', '.join(sorted(away or ()))}: "
                       f"{_changes(old, new) if counted else _describe(decision)}")
            if all(p.replicas is None for p in decision.placements):
                text = f"removed from {_why(away or (), self._evacuating)}"
            else:
                text = (f"moved {moved(old, new)} replicas off "
                        f"{_why(away or (), self._evacuating)}: {_changes(old, new)}")
            self.recorder.record(obj, "Warning", "FailedOver", text)
        return await self._write(resource, obj, decision, outcome=outcome, message=message,
                                 memory=memory)

    def _schedule(self, obj: Mapping[str, Any], memory: _Memory, *, reserve: bool = True,
                  rebalance: bool = False) -> Decision:
        self.decisions += 1
        memory.epoch = self.epoch
        if reserve:
            memory.decided_at = self.clock()
        return self.scheduler.schedule(obj, reserve=reserve, rebalance=rebalance)

    async def _rebalance(self, resource: Resource, obj: Mapping[str, Any], memory: _Memory,
                         reason: str, now: float) -> Result | None:
        request = self.scheduler.requests.get(obj)
        if request.mode == "Whole":
            # Moving a job back would restart it: it stays where it failed over to.
            return await self._write(resource, obj, None, outcome="balanced",
                                     message="placed (not moved back: it runs whole on "
                                             "one cluster)", memory=memory)
        if request.mode == "Duplicated":
            return await self._decide(resource, obj, memory, outcome="placed")
        current = current_placements(obj)
        if not self._ready(obj, current):
            return Result(requeue_after=self.rebalance_interval)
        if now - memory.stepped_at < self.rebalance_interval:
            return Result(requeue_after=memory.stepped_at + self.rebalance_interval - now)
        if memory.balanced_epoch == self.epoch:
            return None  # already as good as it gets with these clusters: wait for a change
        ideal = self._schedule(obj, memory, reserve=False, rebalance=True)
        if not ideal.scheduled:
            return Result(requeue_after=self.retry_interval)
        target = ideal.replicas()
        if target == current:
            if self._evacuating or self._recovering:
                # Owed when they recover: the pending index brings it back on a change.
                memory.balanced_epoch = self.epoch
                return None
            return await self._write(resource, obj, None, outcome="balanced",
                                     message="placed as the scheduler would place it anew",
                                     memory=memory)
        step = rebalance_step(current, target,
                              max_moves=move_budget(obj, step=self.rebalance_step))
        with self.scheduler.assumed.lock:
            self.scheduler.assumed.reserve(memory.uid, tier=request.tier_index,
                                           per_replica=request.per_replica, placements=step)
        memory.stepped_at = now
        zones = {p.cluster: p.zone for p in ideal.placements}
        zones.update({p["cluster"]: p.get("zone") for p in
                      (obj.get("status") or EMPTY).get("placements") or ()})
        placements = [{"cluster": c, "zone": zones.get(c) or "", "replicas": n}
                      for c, n in sorted(step.items())]
        message = f"rebalancing toward {_counts(target)}: {_changes(current, step)}"
        self.recorder.record(obj, "Normal", "Rebalanced",
                             f"moved {moved(current, step)} replicas: "
                             f"{_changes(current, step)}")
        return await self._write(resource, obj, None, outcome="step", message=message,
                                 memory=memory, placements=placements,
                                 requeue=self.rebalance_interval)

    def _ready(self, obj: Mapping[str, Any], current: Mapping[str, int]) -> bool:
        """Whether the last step's shards report all their replicas ready."""
        if not self.wait_ready:
            return True
        ready = {c.get("cluster"): int(c.get("readyReplicas") or 0)
                 for c in (obj.get("status") or EMPTY).get("clusters") or ()}
        return all(ready.get(c, 0) >= n for c, n in current.items())

    async def _write(self, resource: Resource, obj: Mapping[str, Any],
                     decision: Decision | None, *, outcome: Outcome, message: str,
                     memory: _Memory, placements: list[dict[str, Any]] | None = None,
                     requeue: float | None = None) -> Result | None:
        cond = objects.get_condition(obj, SCHEDULED_CONDITION)
        reason = next_reason(cond.get("reason") if cond else None, outcome)
        updated = objects.deepcopy(dict(obj))
        status = updated.setdefault("status", {})
        if decision is not None:
            got = decision.status()
            if decision.scheduled:
                status["placements"] = got["placements"]
            status["excludedClusters"] = got["excludedClusters"]
        if placements is not None:
            status["placements"] = placements
        objects.set_condition(updated, SCHEDULED_CONDITION,
                              outcome not in ("unschedulable", "withdrawn"),
                              reason=reason, message=message,
                              observed_generation=objects.meta(obj).get("generation"))
        if updated.get("status") != obj.get("status"):
            try:
                await self.host.update_status(resource, updated)
            except Conflict:
                return Result(requeue=True)
            except NotFound:
                return None
        if outcome == "unschedulable":
            return Result(requeue_after=self.retry_interval)
        return Result(requeue_after=requeue) if requeue is not None else None


def _sooner(result: Result | None, after: float | None) -> Result | None:
    if after is None:
        return result
    after = max(0.0, after)
    if result is None or result.requeue_after is None:
        return Result(requeue_after=after) if result is None or not result.requeue else result
    return Result(requeue_after=min(result.requeue_after, after))


def _counts(placements: Mapping[str, int]) -> str:
    return ", ".join(f"{c}={n}" for c, n in sorted(placements.items())) or "nothing"


def _changes(old: Mapping[str, int], new: Mapping[str, int]) -> str:
    parts = []
    for c in sorted(set(old) | set(new)):
        d = new.get(c, 0) - old.get(c, 0)
        if d:
            parts.append(f"{c} {d:+d}")
    return ", ".join(parts) or "no change"


def _why(clusters: Any, evacuating: Mapping[str, _Evacuating]) -> str:
    out = []
    for c in sorted(clusters):
        ev = evacuating.get(c)
        out.append(f"{c} ({ev.why.reason}: {ev.why.message})" if ev else f"{c} (removed)")
    return ", ".join(out)


def _describe(decision: Decision) -> str:
    if decision.placements and all(p.replicas is None for p in decision.placements):
        return f"placed on: {', '.join(p.cluster for p in decision.placements)}"
    return f"placed: {_counts(decision.replicas())}"


def add_placement_controller(manager: Manager, *, host: KubeClient, identity: str,
                             name: str = "placement", scheduler: ClusterScheduler | None = None,
                             require_admission: bool = True, grace: float = 30.0,
                             rebalance_step: int = 2, rebalance_interval: float = 10.0,
                             retry_interval: float = 30.0, wait_ready: bool = True,
                             workers: int = 2) -> PlacementController:
    """Wire the placement controller: one controller per placed kind, one scheduler.

    ``grace``: seconds a cluster may be unhealthy before its replicas move;
    ``rebalance_step``/``rebalance_interval``: at most that many replicas moved back per
    step (and within a PinApp's budget), steps that far apart and only once the last
    step's shards report ready (``wait_ready``); ``retry_interval``: how often an
    unschedulable workload is tried again when no cluster changed.
    """
    informers: dict[str, SharedInformer] = {}
    for resource in PLACED_KINDS:
        informer = manager.informer(host, resource)
        informer.add_indexer(BY_CLUSTER, _placed_clusters)
        informer.add_indexer(BY_PENDING, _pending)
        informers[resource.plural] = informer
    clusters = manager.informer(host, MEMBERCLUSTERS)
    placement = PlacementController(
        host=host, scheduler=scheduler or ClusterScheduler(), informers=informers,
        clusters=clusters,
        recorder=EventRecorder(host, component=f"{name}-controller", host=identity),
        require_admission=require_admission, grace=grace, rebalance_step=rebalance_step,
        rebalance_interval=rebalance_interval, retry_interval=retry_interval,
        wait_ready=wait_ready)
    for resource in PLACED_KINDS:
        controller = manager.controller(f"{name}-{resource.plural}",
                                        placement.reconciler(resource), workers=workers)
        controller.for_(informers[resource.plural])
        placement.controllers[resource.plural] = controller
    clusters.add_event_handler(on_add=placement.cluster_changed,
                               on_update=lambda _old, new: placement.cluster_changed(new),
                               on_delete=placement.cluster_removed)
    return placement


__all__ = ["ADMITTED_CONDITION", "PLACED_KINDS", "SCHEDULED_CONDITION", "PlacementController",
           "add_placement_controller", "admitted"]
