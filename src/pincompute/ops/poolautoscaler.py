"""The pool autoscaler: on-demand node pools grow for pods that wait and shrink when idle.

Theory of operation
-------------------
The behaviour users know from the Kubernetes cluster autoscaler, for one member
cluster's NodePools.  Pools of the ``ondemand`` and ``preemptible`` tiers are
autoscaled between ``minSize`` and ``maxSize`` by writing ``desiredSize`` (the node
provisioner does the rest); ``reserved`` pools keep their size, and so does a
pool a Rotation is rotating (it holds the pool's size then).

Every ``interval`` seconds (and when a pool changes), :meth:`PoolAutoscaler.scan`:

* **Scale up.**  Pods the scheduler marked unschedulable (``PodScheduled`` False,
  ``Unschedulable``) are each given the autoscaled pool that would take them
  (:mod:`.shapes`: node selector and taints allow it, one node holds the pod),
  preferring the pod's own tier, then the shape that wastes least.  Per pool,
  the pods that fit in the free room of its running nodes are left to the
  scheduler; the new nodes needed are a first-fit estimate over the others, minus
  the pool's nodes already starting; they are added at most ``scale_up_per_minute``
  per cluster (a sliding window) and never past ``maxSize``.  A pod no pool can
  take gets a ``NoPoolFits`` Event saying why not.
* **Scale down.**  In a pool with no pod waiting for it and no node starting, a
  node running nothing but daemon pods is *idle*; idle for ``scale_down_delay``
  seconds, it is cordoned and given back (``desiredSize`` minus one, never below
  ``minSize``): the provisioner, shrinking the pool, removes cordoned empty nodes
  first.

Every decision is an Event on the pool with the numbers behind it (pods waiting,
nodes needed, limits met) and a metric (:mod:`.metrics`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import CollectorRegistry

from pincompute.kube import objects
from pincompute.kube.errors import Conflict, NotFound
from pincompute.kube.protocol import KubeClient
from pincompute.kube.resource import NODES, PODS
from pincompute.kube.wellknown import POD_SCHEDULED, REASON_UNSCHEDULABLE
from pincompute.model.registry import NODEPOOLS
from pincompute.model.wellknown import (
    NODE_DRAIN_ANNOTATION,
    RESERVED,
    RESOLVED_IMAGE_ANNOTATION,
    SYSTEM_NAMESPACE,
    TIER_LABEL,
)
from pincompute.runtime.events import EventRecorder
from pincompute.runtime.informer import SharedInformer
from pincompute.runtime.logging import get_logger
from pincompute.runtime.manager import Manager
from pincompute.runtime.reconciler import Request, Result

from .draining import BY_NODE, BY_POOL, by_node, by_pool, workload_pods
from .metrics import ops_metrics
from .ratelimit import Limit, RateLimits
from .rotation import BASE_ANNOTATION
from .shapes import (
    Shape,
    allocatable,
    fit_existing,
    may_land,
    minus,
    node_labels,
    node_shape,
    nodes_for,
    pod_shape,
    waste,
)

_log = get_logger(__name__)
BY_WAITING = "ops:unschedulable"
SCAN = Request("", "cluster")
"""The autoscaler's one work-queue key: a scan covers the whole cluster."""


def waiting_index(pod: Mapping[str, Any]) -> list[str]:
    """Index of pods the scheduler could not place (the autoscaler's demand)."""
    if (pod.get("spec") or {}).get("nodeName") or objects.is_deleting(pod) or \
            (pod.get("status") or {}).get("nominatedNodeName"):
        return []  # placed, going, or about to take room preemption frees
    condition = objects.get_condition(pod, POD_SCHEDULED)
    if condition and condition.get("status") == "False" and \
            condition.get("reason") == REASON_UNSCHEDULABLE:
        return ["waiting"]
    return []


@dataclass(frozen=True, kw_only=True, slots=True)
class AutoscalerConfig:
    cluster: str = ""
    interval: float = 10.0
    """Seconds between scans."""
    scale_up_per_minute: int = 10
    """Nodes added per ``scale_up_window`` in the cluster, at most."""
    scale_up_window: float = 60.0
    scale_down_delay: float = 600.0
    """Seconds a node stays idle before it is given back (cluster-autoscaler's 10 min)."""
    clock: Callable[[], float] = time.time


@dataclass(slots=True)
class Demand:
    shapes: list[Shape] = field(default_factory=list)
    example: str = ""


def autoscaled(pool: Mapping[str, Any]) -> bool:
    spec = pool.get("spec") or {}
    return (not objects.is_deleting(pool) and spec.get("tier", "ondemand") != RESERVED
            and BASE_ANNOTATION not in (objects.meta(pool).get("annotations") or {}))


class PoolAutoscaler:
    def __init__(self, *, client: KubeClient, pods: SharedInformer, nodes: SharedInformer,
                 pools: SharedInformer, config: AutoscalerConfig, recorder: EventRecorder,
                 registry: CollectorRegistry) -> None:
        self.client = client
        self.pods = pods
        self.nodes = nodes
        self.pools = pools
        self.config = config
        self.recorder = recorder
        self.metrics = ops_metrics(registry)
        self.limits = RateLimits()
        self._idle: dict[str, float] = {}
        """Node → since when it has been idle."""
        self._told: set[str] = set()
        """Pods already told no pool fits them."""

    async def reconcile(self, request: Request) -> Result:
        """One scan of the whole cluster (the only key), then the next after ``interval``."""
        try:
            await self.scan()
        except (Conflict, NotFound) as exc:  # a pool changed meanwhile: the next scan
            _log.debug("autoscaler scan: %s", exc)
        return Result(requeue_after=self.config.interval)

    async def scan(self) -> None:
        pools = {objects.name_of(p): p for p in self.pools.list() if autoscaled(p)}
        waiting = self.pods.by_index(BY_WAITING, "waiting")
        self.metrics.unschedulable.labels(self.config.cluster).set(len(waiting))
        demand: dict[str, Demand] = {}
        for pod in waiting:
            choice = self._pool_for(pod, pools)
            if choice is None:
                continue
            entry = demand.setdefault(choice, Demand())
            entry.shapes.append(pod_shape(pod))
            entry.example = entry.example or f"{objects.namespace_of(pod)}/{objects.name_of(pod)}"
        for name, entry in sorted(demand.items()):
            await self._scale_up(pools[name], entry)
        for name, pool in sorted(pools.items()):
            if name not in demand:
                await self._scale_down(pool)

    # -- up --

    def _pool_for(self, pod: Mapping[str, Any], pools: Mapping[str, Mapping[str, Any]]
                  ) -> str | None:
        shape = pod_shape(pod)
        tier = (objects.meta(pod).get("labels") or {}).get(TIER_LABEL, "ondemand")
        fits = []
        for name, pool in pools.items():
            node = node_shape(pool)
            if shape.fits_in(node) and may_land(pod, pool, labels=node_labels(
                    pool, image_labels=_image_labels(pool))):
                fits.append(((pool.get("spec") or {}).get("tier", "ondemand") != tier,
                             waste(shape, node), name))
        if fits:
            return min(fits)[2]
        uid = objects.uid_of(pod)
        if uid not in self._told:
            self._told.add(uid)
            self.recorder.record(pod, "Warning", "NoPoolFits",
                                 f"no autoscaled node pool can take this pod ({shape.describe()}"
                                 f"): of {len(pools)} pools none has a node shape, labels and "
                                 "taints that fit it")
        return None

    async def _scale_up(self, pool: Mapping[str, Any], demand: Demand) -> None:
        name = objects.name_of(pool)
        spec = pool.get("spec") or {}
        staying = [n for n in self.nodes.by_index(BY_POOL, name) if NODE_DRAIN_ANNOTATION
                   not in (objects.meta(n).get("annotations") or {})]
        current = spec.get("desiredSize")
        current = len(staying) if current is None else int(current)
        starting = sum(1 for n in staying if not objects.condition_true(n, "Ready"))
        starting += max(0, current - len(staying))  # asked for, not registered yet
        # Room on the pool's running nodes first (the scheduler may not have retried yet).
        free = []
        for node in staying:
            if objects.condition_true(node, "Ready") and not (node.get("spec") or {}).get(
                    "unschedulable"):
                used = Shape(pods=0)
                for pod in self.pods.by_index(BY_NODE, objects.name_of(node)):
                    if not objects.is_deleting(pod):
                        used = used.plus(pod_shape(pod))
                free.append(minus(allocatable(node), used))
        left = fit_existing(demand.shapes, free)
        needed = nodes_for(left, node_shape(pool)) - starting
        if needed <= 0:
            return
        room = int(spec.get("maxSize", 0)) - current
        add = 0
        limit = Limit(f"scale-up/{self.config.cluster}", self.config.scale_up_per_minute,
                      self.config.scale_up_window)
        while add < min(needed, room):
            if not self.limits.acquire([limit], now=self.config.clock()).allowed:
                break
            add += 1
        why = (f"{len(demand.shapes)} pods wait for capacity (e.g. {demand.example}); "
               f"{needed} more nodes of {node_shape(pool).describe()} needed")
        if add:
            await self._resize(pool, current + add)
            self.metrics.scaled.labels(self.config.cluster, name, "up").inc(add)
            self.recorder.record(pool, "Normal", "ScaledUp",
                                 f"{why}: desiredSize {current} → {current + add}")
        if add < needed:
            if room <= add:
                self.recorder.record(pool, "Warning", "MaxSizeReached",
                                     f"{why}: the pool is at maxSize {spec.get('maxSize')}")
            else:
                self.recorder.record(pool, "Normal", "ScaleUpLimited",
                                     f"{why}: at most {self.config.scale_up_per_minute} nodes "
                                     f"per {self.config.scale_up_window:.0f}s in the cluster")
        for node in staying:
            self._idle.pop(objects.name_of(node), None)

    # -- down --

    async def _scale_down(self, pool: Mapping[str, Any]) -> None:
        name = objects.name_of(pool)
        spec = pool.get("spec") or {}
        now = self.config.clock()
        staying = [n for n in self.nodes.by_index(BY_POOL, name) if NODE_DRAIN_ANNOTATION
                   not in (objects.meta(n).get("annotations") or {})]
        current = spec.get("desiredSize")
        current = len(staying) if current is None else int(current)
        if any(not objects.condition_true(n, "Ready") and not (n.get("spec") or {}).get(
                "unschedulable") for n in staying) or len(staying) != current:
            self._idle.clear()  # still growing: no shrinking while nodes start
            return
        idle = []
        for node in staying:
            node_name = objects.name_of(node)
            busy = workload_pods(self.pods.by_index(BY_NODE, node_name))
            if busy or (node.get("spec") or {}).get("unschedulable"):
                self._idle.pop(node_name, None)
                continue
            since = self._idle.setdefault(node_name, now)
            if now - since >= self.config.scale_down_delay:
                idle.append((node_name, now - since))
        remove = min(len(idle), current - int(spec.get("minSize", 0)))
        if remove <= 0:
            return
        # Cordoned first: no pod lands there meanwhile, and the provisioner, shrinking the
        # pool, takes cordoned (not ready) empty nodes first: these.
        for node_name, _ in idle[:remove]:
            with contextlib.suppress(NotFound):
                await self.client.patch(NODES, node_name, {"spec": {"unschedulable": True}})
            self._idle.pop(node_name, None)
        await self._resize(pool, current - remove)
        self.metrics.scaled.labels(self.config.cluster, name, "down").inc(remove)
        self.recorder.record(pool, "Normal", "ScaledDown", (
            f"{len(idle)} nodes idle for {self.config.scale_down_delay:.0f}s or more "
            f"({', '.join(f'{n} {s:.0f}s' for n, s in idle[:5])}): desiredSize {current} → "
            f"{current - remove} (minSize {spec.get('minSize', 0)})"))

    async def _resize(self, pool: Mapping[str, Any], size: int) -> None:
        with contextlib.suppress(NotFound):
            await self.client.patch(NODEPOOLS, objects.name_of(pool), {
                "metadata": {"resourceVersion": objects.meta(pool)["resourceVersion"]},
                "spec": {"desiredSize": size}})


def _image_labels(pool: Mapping[str, Any]) -> dict[str, str]:
    raw = (objects.meta(pool).get("annotations") or {}).get(RESOLVED_IMAGE_ANNOTATION)
    try:
        return dict((json.loads(raw) if raw else {}).get("labels") or {})
    except (ValueError, AttributeError):
        return {}


def add_pool_autoscaler(manager: Manager, *, client: KubeClient,
                        config: AutoscalerConfig | None = None,
                        name: str = "pool-autoscaler",
                        events_namespace: str = SYSTEM_NAMESPACE) -> PoolAutoscaler:
    """Run the autoscaler for the member cluster ``client`` in ``manager`` (leader only):
    a controller with one key, scanned every ``interval`` and when a pool changes."""
    config = config or AutoscalerConfig()
    pods = manager.informer(client, PODS)
    nodes = manager.informer(client, NODES)
    pools = manager.informer(client, NODEPOOLS)
    pods.add_indexer(BY_NODE, by_node)
    pods.add_indexer(BY_WAITING, waiting_index)
    nodes.add_indexer(BY_POOL, by_pool)
    autoscaler = PoolAutoscaler(
        client=client, pods=pods, nodes=nodes, pools=pools, config=config,
        registry=manager.metrics.registry,
        recorder=EventRecorder(client, component="pool-autoscaler", host=config.cluster
                               or "pincompute", cluster_namespace=events_namespace))

    controller = manager.controller(name, autoscaler)
    controller.watches(pools, lambda _pool: [SCAN])

    async def close_events() -> None:
        try:
            await asyncio.Event().wait()
        finally:
            await autoscaler.recorder.close()

    manager.add_runnable(close_events, name=f"{name}-events", needs_leader=False)
    return autoscaler


__all__ = ["AutoscalerConfig", "PoolAutoscaler", "add_pool_autoscaler", "autoscaled",
           "waiting_index"]
