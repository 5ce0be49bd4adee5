"""The buffer: idle headroom kept in a pool as placeholder pods real pods displace at once.

Theory of operation
-------------------
A NodePool's ``spec.buffer`` (cpu, memory) is capacity to keep free, so a burst
starts without waiting for a new node — the cluster-autoscaler's
overprovisioning recipe.  This controller keeps, per pool, that much of
placeholder pods (:func:`placeholders`): pods of the lowest priority (tier
``preemptible``, ``priority`` :data:`PLACEHOLDER_PRIORITY`, never preempting
others) pinned to the pool (node selector, the pool's taints tolerated), running
a container that does nothing.  The buffer is split into as few pods as fit on
one node each.

Any real pod outranks them, so when it finds no room the scheduler preempts a
placeholder at once and the real pod takes its place.  The displaced placeholder
is deleted; this controller creates it again, it waits unschedulable, and the
pool autoscaler (:mod:`.poolautoscaler`) adds a node for it: the headroom is
restored behind the burst instead of in front of it.  A changed buffer replaces
the placeholders of the old size.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from typing import Any

from pincompute.kube import objects
from pincompute.kube.errors import AlreadyExists, Conflict, NotFound
from pincompute.kube.protocol import KubeClient, Preconditions
from pincompute.kube.quantity import format_bytes, format_cpu
from pincompute.kube.resource import PODS
from pincompute.model.registry import NODEPOOLS
from pincompute.model.wellknown import (
    NODE_POOL_LABEL,
    PREEMPTIBLE,
    SCHEDULER_NAME,
    SYSTEM_NAMESPACE,
    TIER_LABEL,
)
from pincompute.runtime.cache import index_by_label
from pincompute.runtime.controller import Controller
from pincompute.runtime.informer import SharedInformer
from pincompute.runtime.manager import Manager
from pincompute.runtime.reconciler import Request, Result

from .shapes import Shape, chunks, node_shape, pod_shape

BUFFER_LABEL = "pincompute.io/buffer"
"""On a placeholder pod: the pool whose buffer it holds."""
SIZE_LABEL = "pincompute.io/buffer-size"
"""On a placeholder pod: its requests (cpu millis x memory bytes), to spot a changed buffer."""
PLACEHOLDER_PRIORITY = -1_000
"""Below every real pod's priority (the preemptible tier's is 0)."""
BY_BUFFER = "ops:buffer"
by_buffer = index_by_label(BUFFER_LABEL)


def buffer_shape(pool: Mapping[str, Any]) -> Shape | None:
    buffer = (pool.get("spec") or {}).get("buffer") or {}
    if not buffer:
        return None
    probe = {"spec": {"containers": [{"resources": {"requests": {
        k: v for k, v in buffer.items() if k in ("cpu", "memory")}}}]}}
    shape = pod_shape(probe)
    return shape if shape.cpu or shape.memory else None


def placeholders(pool: Mapping[str, Any]) -> tuple[int, Shape]:
    """(count, each) of the pool's placeholder pods."""
    shape = buffer_shape(pool)
    if shape is None or objects.is_deleting(pool):
        return 0, Shape()
    return chunks(shape, node_shape(pool))


def size_label(shape: Shape) -> str:
    return f"{shape.cpu}x{shape.memory}"


def placeholder(pool: Mapping[str, Any], shape: Shape) -> dict[str, Any]:
    name = objects.name_of(pool)
    tolerations = [{"key": t["key"], "operator": "Exists", "effect": t["effect"]}
                   for t in (pool.get("spec") or {}).get("taints") or ()]
    return {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"generateName": f"buffer-{name}-", "namespace": SYSTEM_NAMESPACE,
                     "labels": {BUFFER_LABEL: name, SIZE_LABEL: size_label(shape),
                                TIER_LABEL: PREEMPTIBLE}},
        "spec": {
            "schedulerName": SCHEDULER_NAME, "priority": PLACEHOLDER_PRIORITY,
            "preemptionPolicy": "Never", "nodeSelector": {NODE_POOL_LABEL: name},
            "tolerations": tolerations, "terminationGracePeriodSeconds": 0,
            "restartPolicy": "Always",
            "containers": [{"name": "placeholder", "image": "pincompute/pause",
                            "command": ["sleep", "infinity"],
                            "resources": {"requests": {"cpu": format_cpu(shape.cpu),
                                                       "memory": format_bytes(shape.memory)}}}],
        }}


class BufferReconciler:
    def __init__(self, *, client: KubeClient, pools: SharedInformer,
                 pods: SharedInformer) -> None:
        self.client = client
        self.pools = pools
        self.pods = pods

    async def reconcile(self, request: Request) -> Result | None:
        pool = self.pools.get(request.name)
        count, shape = placeholders(pool) if pool is not None else (0, Shape())
        have = [p for p in self.pods.by_index(BY_BUFFER, request.name)
                if not objects.is_deleting(p)]
        wrong = [p for p in have if (objects.meta(p).get("labels") or {}).get(SIZE_LABEL)
                 != size_label(shape)]
        keep = [p for p in have if p not in wrong]
        extra = wrong + keep[count:]
        for pod in extra:
            with contextlib.suppress(NotFound, Conflict):
                await self.client.delete(PODS, objects.name_of(pod), namespace=SYSTEM_NAMESPACE,
                                         grace_period_seconds=0,
                                         preconditions=Preconditions(uid=objects.uid_of(pod)))
        if pool is not None:
            for _ in range(count - len(keep)):
                with contextlib.suppress(AlreadyExists):
                    await self.client.create(PODS, placeholder(pool, shape),
                                             namespace=SYSTEM_NAMESPACE)
        return None


def add_buffer_controller(manager: Manager, *, client: KubeClient,
                          name: str = "buffer") -> Controller:
    pools = manager.informer(client, NODEPOOLS)
    pods = manager.informer(client, PODS)
    pods.add_indexer(BY_BUFFER, by_buffer)
    controller = manager.controller(name, BufferReconciler(client=client, pools=pools,
                                                           pods=pods))
    controller.for_(pools)

    def to_pool(pod: dict[str, Any]) -> list[Request]:
        pool = (objects.meta(pod).get("labels") or {}).get(BUFFER_LABEL)
        return [Request("", pool)] if pool else []

    controller.watches(pods, to_pool)
    return controller


__all__ = ["BUFFER_LABEL", "PLACEHOLDER_PRIORITY", "BufferReconciler", "add_buffer_controller",
           "buffer_shape", "placeholder", "placeholders"]
