"""Node remediation: unhealthy nodes are cordoned, drained, replaced, or given up on.

Theory of operation
-------------------
One controller per member cluster, over its Node objects (so it runs on embedded
and real clusters alike).  The node informer's event handler keeps a
:class:`~.census.Census` of every node's signals (:mod:`.signals`) by pool, zone
and cluster; each node's reconcile reads its step from the remediation
annotation, classifies what it sees and takes the action of the escalation table
(:mod:`.escalation`):

* **cordon** — ``spec.unschedulable``: no new pods;
* **drain** — evict its pods, each only if its PinApp's disruption budget allows
  (:mod:`.draining`; a refusal waits and says which app holds it);
* **replace** — the node leaves its pool (the drain mark the node provisioner acts
  on: it stops the node and removes it) and, the pool being held at its size
  (``desiredSize``, set to the current size if it had none), a new node of the
  same pool starts;
* **recover** — the node is healthy again: uncordoned; its attempts are
  remembered for ``flap_window``;
* **give up** — after ``max_attempts`` attempts the node stays cordoned, a Warning
  Event and the pool's ``RemediationFailed`` condition alert a person.

Cordon, drain and replace first pass the :mod:`.safeguards`: every breaker of the
node's pool, zone and cluster must be Closed, and a step's first action must fit
the rate limits.  Each action and each refusal is an Event with the numbers
behind it and a metric (:mod:`.metrics`).  A periodic tick re-evaluates every
breaker, so a storm that passes re-arms after its cooldown and the nodes it held
back are looked at again.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import CollectorRegistry

from pincompute.kube import objects
from pincompute.kube.errors import Conflict, NotFound
from pincompute.kube.protocol import KubeClient
from pincompute.kube.resource import NODES, PODS
from pincompute.kube.wellknown import ZONE_LABEL
from pincompute.model.platform import NodePoolSpec
from pincompute.model.registry import NODEPOOLS
from pincompute.model.views import spec_view
from pincompute.model.wellknown import (
    NODE_DRAIN_ANNOTATION,
    NODE_POOL_LABEL,
    REMEDIATION_ANNOTATION,
    SYSTEM_NAMESPACE,
)
from pincompute.runtime.controller import Controller
from pincompute.runtime.events import EventRecorder
from pincompute.runtime.informer import SharedInformer
from pincompute.runtime.manager import Manager
from pincompute.runtime.reconciler import Request, Result

from .breaker import BreakerState
from .census import Census, scopes_of
from .draining import BY_NODE, BY_POOL, by_node, by_pool, evict_pods
from .escalation import Action, Delays, Step, decide, delay, seen
from .metrics import BREAKER_VALUES, ops_metrics
from .ratelimit import RateLimits
from .safeguards import Refusal, SafeguardConfig, Safeguards, describe_transition
from .signals import BAD_CONDITIONS, node_signals

FAILED_CONDITION = "RemediationFailed"
"""On a NodePool: remediation gave up on some of its nodes (they wait for a person)."""


@dataclass(frozen=True, kw_only=True, slots=True)
class RemediationConfig:
    cluster: str = ""
    grace: float = 30.0
    """Seconds a node shows a signal before remediation acts (transient blips pass)."""
    cordon_wait: float = 60.0
    """Seconds a cordoned node may stay unhealthy before it is drained."""
    drain_wait: float = 120.0
    """Seconds a drained node may stay unhealthy before it is replaced."""
    startup_grace: float = 300.0
    """A younger node is not judged by its Ready condition (readiness gate)."""
    max_attempts: int = 3
    """Attempts within ``flap_window`` before remediation gives up on a node."""
    flap_window: float = 3600.0
    retry: float = 1.0
    """Seconds before a refused or unfinished step is tried again."""
    tick: float = 1.0
    """Seconds between re-evaluations of every breaker."""
    bad_conditions: frozenset[str] = BAD_CONDITIONS
    safeguards: SafeguardConfig = field(default_factory=SafeguardConfig)
    clock: Callable[[], float] = time.time


@dataclass(slots=True)
class Record:
    """What remediation did to a node (the annotation's JSON)."""

    step: Step = Step.HEALTHY
    since: float = 0.0
    attempts: int = 0
    last_attempt: float = 0.0
    cordoned: bool = False
    """Remediation set ``spec.unschedulable`` (and so may lift it)."""
    reason: str = ""

    @classmethod
    def of(cls, node: Mapping[str, Any]) -> Record:
        raw = (objects.meta(node).get("annotations") or {}).get(REMEDIATION_ANNOTATION)
        try:
            data = json.loads(raw) if raw else {}
            return cls(Step(data.get("step", "Healthy")), float(data.get("since", 0)),
                       int(data.get("attempts", 0)), float(data.get("lastAttempt", 0)),
                       bool(data.get("cordoned", False)), str(data.get("reason", "")))
        except (ValueError, TypeError, AttributeError):
            return cls()  # unreadable: start over (a person may have edited it)

    def dump(self) -> str:
        return json.dumps({"step": self.step.value, "since": self.since,
                           "attempts": self.attempts, "lastAttempt": self.last_attempt,
                           "cordoned": self.cordoned, "reason": self.reason}, sort_keys=True)


class RemediationReconciler:
    def __init__(self, *, client: KubeClient, nodes: SharedInformer, pods: SharedInformer,
                 pools: SharedInformer, config: RemediationConfig, limits: RateLimits,
                 recorder: EventRecorder, registry: CollectorRegistry) -> None:
        self.client = client
        self.nodes = nodes
        self.pods = pods
        self.pools = pools
        self.config = config
        self.census = Census()
        self.safeguards = Safeguards(cluster=config.cluster, census=self.census,
                                     config=config.safeguards, limits=limits)
        self.recorder = recorder
        self.metrics = ops_metrics(registry)
        self.delays = Delays(config.grace, config.cordon_wait, config.drain_wait)
        self.controller: Controller | None = None
        self._loaded = asyncio.Event()
        self._refused: dict[str, str] = {}
        """Node → its last refusal's message (an Event only when it changes)."""
        self._gave_up: dict[str, str] = {}
        """Node → pool, for nodes given up on."""

    # -- the census, fed by the informer --

    def observe(self, node: Mapping[str, Any]) -> None:
        name = objects.name_of(node)
        if NODE_DRAIN_ANNOTATION in (objects.meta(node).get("annotations") or {}):
            self.census.forget(name)  # leaving its pool: no longer counted
        else:
            labels = objects.meta(node).get("labels") or {}
            signals = node_signals(node, now=self.config.clock(),
                                   startup_grace=self.config.startup_grace,
                                   bad_conditions=self.config.bad_conditions)
            self.census.observe(name, scopes=scopes_of(pool=labels.get(NODE_POOL_LABEL),
                                                       zone=labels.get(ZONE_LABEL)),
                                unhealthy=signals.unhealthy, now=self.config.clock())
        self.metrics.unhealthy.labels(self.config.cluster).set(self.census.unhealthy_total)

    # -- breakers --

    async def tick(self) -> None:
        """Re-evaluate every breaker now and then (see the module docstring)."""
        await self.safeguards.load(self.client)
        self._loaded.set()
        while True:
            await self.evaluate(self.census.scopes())
            await asyncio.sleep(self.config.tick)

    async def evaluate(self, scopes: Collection[str]) -> None:
        transitions = self.safeguards.evaluate(scopes, now=self.config.clock())
        if not transitions:
            return
        record = await self.safeguards.save(self.client, now=self.config.clock())
        for t in transitions:
            self.metrics.breaker.labels(self.config.cluster, t.scope).set(BREAKER_VALUES[t.new])
            reason = {BreakerState.OPEN: "BreakerTripped", BreakerState.COOLING:
                      "BreakerCoolingDown", BreakerState.CLOSED: "BreakerRearmed"}[t.new]
            kind = "Warning" if t.new is BreakerState.OPEN else "Normal"
            self.recorder.record(record, kind, reason, describe_transition(t))
            if t.scope.startswith("pool/") and (pool := self.pools.get(t.scope[5:])):
                self.recorder.record(pool, kind, reason, describe_transition(t))
            if t.new is BreakerState.CLOSED and self.controller is not None:
                for name in self.census.unhealthy_in(t.scope):
                    self.controller.enqueue(Request("", name))

    # -- reconcile --

    async def reconcile(self, request: Request) -> Result | None:
        await self._loaded.wait()
        node = self.nodes.get(request.name)
        if node is None:
            self.census.forget(request.name)
            self._refused.pop(request.name, None)
            if (pool := self._gave_up.pop(request.name, None)) is not None:
                await self._pool_condition(pool)
            return None
        self.observe(node)
        now = self.config.clock()
        labels = objects.meta(node).get("labels") or {}
        scopes = scopes_of(pool=labels.get(NODE_POOL_LABEL), zone=labels.get(ZONE_LABEL))
        await self.evaluate(scopes)
        record = Record.of(node)
        if record.step is not Step.GAVE_UP and request.name in self._gave_up:
            del self._gave_up[request.name]  # a person handed it back
            await self._pool_condition(labels.get(NODE_POOL_LABEL, ""))
        if NODE_DRAIN_ANNOTATION in (objects.meta(node).get("annotations") or {}) and \
                record.step is not Step.REPLACING:
            return None  # leaving for another reason (scale-down, rotation)
        signals = node_signals(node, now=now, startup_grace=self.config.startup_grace,
                               bad_conditions=self.config.bad_conditions)
        if record.attempts and now - record.last_attempt > self.config.flap_window:
            record.attempts = 0  # quiet long enough: a new problem, not a flap
        step, since = record.step, record.since
        entry = self.census.get(request.name)
        if step is Step.HEALTHY and signals.unhealthy:
            step, since = Step.SUSPECT, entry.since if entry is not None else now
        observed = seen(unhealthy=signals.unhealthy, manual=signals.manual, step=step,
                        in_step=now - since, attempts=record.attempts, delays=self.delays)
        action = decide(step, observed, attempts=record.attempts,
                        max_attempts=self.config.max_attempts)
        why = "; ".join(signals.problems)
        if action in (Action.CORDON, Action.DRAIN, Action.REPLACE):
            starting = action is not Action.DRAIN or step is Step.CORDONED
            refusal = self.safeguards.check(scopes, zone=labels.get(ZONE_LABEL, ""), now=now,
                                            rate_limited=starting)
            if refusal is not None:
                self._refuse(node, action, refusal)
                return Result(requeue_after=refusal.retry_after)
            self._refused.pop(request.name, None)
            if starting:  # it counted against the rate limits: a restart must see it
                await self.safeguards.save(self.client, now=now)
        if action is Action.CORDON:
            record = Record(Step.CORDONED, now, record.attempts + 1, now, cordoned=not (
                node.get("spec") or {}).get("unschedulable"), reason=why)
            await self._write(node, record, unschedulable=True)
            self.metrics.reaction.labels(self.config.cluster).observe(max(now - since, 0.0))
            self._act(node, "cordon", "RemediationCordoned",
                      f"cordoned after {now - since:.1f}s unhealthy ({why}); attempt "
                      f"{record.attempts} of {self.config.max_attempts}; {self._numbers(scopes)}")
            return Result(requeue_after=max(self._delay(record), 0.05))
        if action is Action.DRAIN:
            return await self._drain(node, record, why=why)
        if action is Action.REPLACE:
            return await self._replace(node, record, why=why)
        if action is Action.RECOVER:
            await self._write(node, Record(Step.HEALTHY, now, record.attempts,
                                           record.last_attempt),
                              unschedulable=False if record.cordoned else None)
            self._act(node, "recover", "RemediationRecovered",
                      f"healthy again after {record.step.value.lower()}: uncordoned "
                      f"(attempt {record.attempts} of {self.config.max_attempts})")
            return None
        if action is Action.GIVE_UP:
            await self._write(node, Record(Step.GAVE_UP, now, record.attempts, now,
                                           cordoned=True, reason=why), unschedulable=True)
            self._gave_up[request.name] = labels.get(NODE_POOL_LABEL, "")
            self._act(node, "give-up", "RemediationGaveUp",
                      f"gave up after {record.attempts} attempts within "
                      f"{self.config.flap_window:.0f}s ({why}): the node stays cordoned; "
                      f"clear annotation {REMEDIATION_ANNOTATION} to hand it back",
                      warning=True)
            await self._pool_condition(labels.get(NODE_POOL_LABEL, ""))
            return None
        if step is Step.GAVE_UP and request.name not in self._gave_up:
            self._gave_up[request.name] = labels.get(NODE_POOL_LABEL, "")
            await self._pool_condition(labels.get(NODE_POOL_LABEL, ""))
        if action is Action.WAIT and signals.unhealthy:
            left = delay(step, attempts=record.attempts, delays=self.delays) - (now - since)
            return Result(requeue_after=max(left, 0.05))
        return None

    # -- actions --

    async def _drain(self, node: Mapping[str, Any], record: Record, *, why: str) -> Result:
        now = self.config.clock()
        name = objects.name_of(node)
        result = await evict_pods(self.client, self.pods.by_index(BY_NODE, name))
        if result.drained:
            await self._write(node, Record(Step.DRAINED, now, record.attempts,
                                           record.last_attempt, record.cordoned, why))
            self._act(node, "drain", "RemediationDrained",
                      f"drained: every pod left within its app's disruption budget ({why})")
            return Result(requeue_after=max(self._delay(Record(
                Step.DRAINED, now, record.attempts)), 0.05))
        if record.step is not Step.DRAINING:
            await self._write(node, Record(Step.DRAINING, now, record.attempts,
                                           record.last_attempt, record.cordoned, why))
            self._act(node, "drain", "RemediationDraining",
                      f"draining {result.remaining} pods ({why})")
        if result.blocked:
            self.metrics.refusals.labels(self.config.cluster, "BudgetExceeded").inc(
                len(result.blocked))
            self._refuse_message(node, "RemediationDrainBlocked",
                                 f"{len(result.blocked)} of {result.remaining} pods wait for "
                                 f"their disruption budget: {result.blocked[0]}")
        return Result(requeue_after=self.config.retry)

    async def _replace(self, node: Mapping[str, Any], record: Record, *, why: str
                       ) -> Result | None:
        now = self.config.clock()
        pool_name = (objects.meta(node).get("labels") or {}).get(NODE_POOL_LABEL, "")
        pool = self.pools.get(pool_name) if pool_name else None
        if pool is None:
            self.metrics.refusals.labels(self.config.cluster, "NoPool").inc()
            await self._write(node, Record(Step.GAVE_UP, now, record.attempts, now,
                                           record.cordoned, why))
            self._act(node, "give-up", "RemediationGaveUp",
                      f"cannot replace: the node belongs to no NodePool ({why}); it stays "
                      "cordoned", warning=True)
            return None
        if spec_view(NodePoolSpec, pool).desired_size is None:
            # Hold the pool at its size, so the node that leaves gets a successor.
            staying = sum(1 for n in self.nodes.by_index(BY_POOL, pool_name)
                          if NODE_DRAIN_ANNOTATION not in (objects.meta(n).get("annotations")
                                                           or {}))
            with contextlib.suppress(Conflict, NotFound):
                await self.client.patch(NODEPOOLS, pool_name, {"spec": {"desiredSize": max(
                    spec_view(NodePoolSpec, pool).min_size, min(
                        staying, spec_view(NodePoolSpec, pool).max_size))}})
        record = Record(Step.REPLACING, now, record.attempts, record.last_attempt,
                        record.cordoned, why)
        with contextlib.suppress(NotFound):
            await self.client.patch(NODES, objects.name_of(node), {
                "metadata": {"annotations": {REMEDIATION_ANNOTATION: record.dump(),
                                             NODE_DRAIN_ANNOTATION: objects.now()}},
                "spec": {"unschedulable": True}})
        self._act(node, "replace", "RemediationReplacing",
                  f"replacing: the node leaves pool {pool_name} and a new one starts ({why})")
        return None

    async def _write(self, node: Mapping[str, Any], record: Record, *,
                     unschedulable: bool | None = None) -> None:
        patch: dict[str, Any] = {"metadata": {"annotations": {
            REMEDIATION_ANNOTATION: record.dump()}}}
        if unschedulable is not None:
            patch["spec"] = {"unschedulable": unschedulable or None}
        with contextlib.suppress(NotFound):
            await self.client.patch(NODES, objects.name_of(node), patch)

    def _delay(self, record: Record) -> float:
        return delay(record.step, attempts=record.attempts, delays=self.delays)

    def _numbers(self, scopes: tuple[str, ...]) -> str:
        parts = []
        for scope in scopes:
            unhealthy, total = self.census.counts(scope)
            parts.append(f"{scope} {unhealthy}/{total} unhealthy")
        return ", ".join(parts)

    def _act(self, node: Mapping[str, Any], action: str, reason: str, message: str, *,
             warning: bool = False) -> None:
        self.metrics.actions.labels(self.config.cluster, action).inc()
        self.recorder.record(node, "Warning" if warning else "Normal", reason, message)
        if action == "give-up":
            self.metrics.gave_up.labels(self.config.cluster).set(len(self._gave_up))

    def _refuse(self, node: Mapping[str, Any], action: Action, refusal: Refusal) -> None:
        self.metrics.refusals.labels(self.config.cluster, refusal.reason).inc()
        self._refuse_message(node, "RemediationRefused",
                             f"not {action.value.rstrip('e')}ing now: {refusal.message}")

    def _refuse_message(self, node: Mapping[str, Any], reason: str, message: str) -> None:
        name = objects.name_of(node)
        if self._refused.get(name) != message:
            self._refused[name] = message
            self.recorder.record(node, "Warning", reason, message)

    async def _pool_condition(self, pool_name: str) -> None:
        pool = self.pools.get(pool_name) if pool_name else None
        if pool is None:
            return
        nodes = sorted(n for n, p in self._gave_up.items() if p == pool_name)
        updated = objects.deepcopy(pool)
        if nodes:
            changed = objects.set_condition(
                updated, FAILED_CONDITION, True, reason="GaveUp",
                message=f"remediation gave up on {len(nodes)} nodes: {', '.join(nodes)}")
        else:
            changed = objects.set_condition(updated, FAILED_CONDITION, False,
                                            reason="NoneGivenUp", message="")
        self.metrics.gave_up.labels(self.config.cluster).set(len(self._gave_up))
        if changed:
            with contextlib.suppress(NotFound, Conflict):  # a conflict: the next event retries
                await self.client.update_status(NODEPOOLS, updated)


def add_remediation_controller(manager: Manager, *, client: KubeClient,
                               config: RemediationConfig | None = None,
                               limits: RateLimits | None = None,
                               recorder: EventRecorder | None = None,
                               name: str = "remediation",
                               events_namespace: str = SYSTEM_NAMESPACE) -> RemediationReconciler:
    """Run remediation for the member cluster ``client`` in ``manager``.  ``limits`` may
    be shared by the clusters of one process (the per-zone rate limit spans them)."""
    config = config or RemediationConfig()
    nodes = manager.informer(client, NODES)
    pods = manager.informer(client, PODS)
    pools = manager.informer(client, NODEPOOLS)
    pods.add_indexer(BY_NODE, by_node)
    nodes.add_indexer(BY_POOL, by_pool)
    reconciler = RemediationReconciler(
        client=client, nodes=nodes, pods=pods, pools=pools, config=config,
        limits=limits or RateLimits(), registry=manager.metrics.registry,
        recorder=recorder or EventRecorder(client, component="remediation-controller",
                                           host=config.cluster or "pincompute",
                                           cluster_namespace=events_namespace))
    nodes.add_event_handler(on_add=reconciler.observe,
                            on_update=lambda _old, new: reconciler.observe(new),
                            on_delete=lambda node: reconciler.census.forget(
                                objects.name_of(node)))
    controller = manager.controller(name, reconciler)
    controller.for_(nodes)
    reconciler.controller = controller
    manager.add_runnable(reconciler.tick, name=f"{name}-breakers")

    async def close_events() -> None:
        try:
            await asyncio.Event().wait()
        finally:
            await reconciler.recorder.close()

    manager.add_runnable(close_events, name=f"{name}-events", needs_leader=False)
    return reconciler


__all__ = ["FAILED_CONDITION", "Record", "RemediationConfig", "RemediationReconciler",
           "add_remediation_controller"]
