"""Shapes: what a pod asks for, what a pool's node offers, and how many nodes fit pods.

Theory of operation
-------------------
The pool autoscaler (:mod:`.poolautoscaler`) and the buffer (:mod:`.buffer`) reason
about capacity without the scheduler (a sibling package): a pod's requests
(cpu millis, memory bytes, gpus, one pod slot; containers summed, an init
container's larger request winning, as Kubernetes computes them), a pool's node
shape (its ``capacity``), whether a pod may land on a pool's nodes at all (its
node selector against the labels the pool's nodes get, its tolerations against
their taints) and a first-fit-decreasing estimate of how many new nodes hold a
set of pods — cluster-autoscaler's binpacking estimator in miniature.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pincompute.kube.quantity import cpu_millis, to_int
from pincompute.kube.tolerations import tolerates
from pincompute.kube.wellknown import GPU_RESOURCE
from pincompute.model.wellknown import NODE_POOL_LABEL, TIER_LABEL


@dataclass(frozen=True, slots=True)
class Shape:
    cpu: int = 0
    """Millicores."""
    memory: int = 0
    gpu: int = 0
    pods: int = 1

    def fits_in(self, other: Shape) -> bool:
        return (self.cpu <= other.cpu and self.memory <= other.memory
                and self.gpu <= other.gpu and self.pods <= other.pods)

    def plus(self, other: Shape) -> Shape:
        return Shape(self.cpu + other.cpu, self.memory + other.memory, self.gpu + other.gpu,
                     self.pods + other.pods)

    def describe(self) -> str:
        parts = [f"cpu {self.cpu}m", f"memory {self.memory // (1 << 20)}Mi"]
        if self.gpu:
            parts.append(f"gpu {self.gpu}")
        return ", ".join(parts)


def _requests(containers: Iterable[Mapping[str, Any]]) -> list[Shape]:
    out = []
    for c in containers:
        req = (c.get("resources") or {}).get("requests") or {}
        out.append(Shape(cpu_millis(req["cpu"]) if "cpu" in req else 0,
                         to_int(req["memory"]) if "memory" in req else 0,
                         to_int(req[GPU_RESOURCE]) if GPU_RESOURCE in req else 0, 0))
    return out


def pod_shape(pod: Mapping[str, Any]) -> Shape:
    spec = pod.get("spec") or {}
    total = Shape(pods=1)
    for s in _requests(spec.get("containers") or ()):
        total = total.plus(s)
    for s in _requests(spec.get("initContainers") or ()):
        total = Shape(max(total.cpu, s.cpu), max(total.memory, s.memory),
                      max(total.gpu, s.gpu), 1)
    return total


def node_shape(pool: Mapping[str, Any]) -> Shape:
    capacity = (pool.get("spec") or {}).get("capacity") or {}
    return Shape(cpu_millis(capacity.get("cpu", 0)), to_int(capacity.get("memory", 0)),
                 to_int(capacity.get("gpu", 0)), to_int(capacity.get("pods", 110)))


def allocatable(node: Mapping[str, Any]) -> Shape:
    """What a registered node offers (``status.allocatable``)."""
    alloc = (node.get("status") or {}).get("allocatable") or {}
    return Shape(cpu_millis(alloc.get("cpu", 0)), to_int(alloc.get("memory", 0)),
                 to_int(alloc.get(GPU_RESOURCE, 0)), to_int(alloc.get("pods", 110)))


def minus(a: Shape, b: Shape) -> Shape:
    return Shape(a.cpu - b.cpu, a.memory - b.memory, a.gpu - b.gpu, a.pods - b.pods)


def fit_existing(pods: Sequence[Shape], free: list[Shape]) -> list[Shape]:
    """Place ``pods`` into the room ``free`` (changed in place), first fit, largest first;
    returns the pods that found no room (cluster-autoscaler's "filter out schedulable":
    a pod the scheduler will place on a node there is no need to add a node for)."""
    left = []
    for pod in sorted(pods, key=lambda s: (s.cpu, s.memory, s.gpu), reverse=True):
        for i, room in enumerate(free):
            if pod.fits_in(room):
                free[i] = minus(room, pod)
                break
        else:
            left.append(pod)
    return left


def node_labels(pool: Mapping[str, Any], *, image_labels: Mapping[str, str] | None = None
                ) -> dict[str, str]:
    """The labels the pool's new nodes get (that a node selector can match)."""
    spec = pool.get("spec") or {}
    return {**(image_labels or {}), **(spec.get("labels") or {}),
            NODE_POOL_LABEL: (pool.get("metadata") or {}).get("name", ""),
            TIER_LABEL: spec.get("tier", "ondemand")}


def may_land(pod: Mapping[str, Any], pool: Mapping[str, Any], *,
             labels: Mapping[str, str]) -> bool:
    """Whether the pod's node selector and tolerations allow the pool's nodes."""
    spec = pod.get("spec") or {}
    for key, value in (spec.get("nodeSelector") or {}).items():
        if labels.get(key) != value:
            return False
    tolerations = spec.get("tolerations") or ()
    for taint in (pool.get("spec") or {}).get("taints") or ():
        if taint.get("effect") in ("NoSchedule", "NoExecute") and not any(
                tolerates(t, taint) for t in tolerations):
            return False
    return True


def nodes_for(pods: Sequence[Shape], node: Shape) -> int:
    """How many empty nodes of ``node`` hold ``pods`` (first fit, largest first); a pod
    larger than a node is not counted."""
    bins: list[Shape] = []
    for pod in sorted(pods, key=lambda s: (s.cpu, s.memory, s.gpu), reverse=True):
        if not pod.fits_in(node):
            continue
        for i, used in enumerate(bins):
            if used.plus(pod).fits_in(node):
                bins[i] = used.plus(pod)
                break
        else:
            bins.append(pod)
    return len(bins)


def waste(pod: Shape, node: Shape) -> float:
    """How much of a node the pod leaves unused, as a share (least waste first)."""
    shares = [1 - pod.cpu / node.cpu if node.cpu else 0.0,
              1 - pod.memory / node.memory if node.memory else 0.0]
    return sum(shares) / len(shares)


def chunks(buffer: Shape, node: Shape) -> tuple[int, Shape]:
    """``buffer`` as (count, each) placeholder pods, each no larger than a node."""
    count = max(1, math.ceil(max(buffer.cpu / node.cpu if node.cpu else 0,
                                 buffer.memory / node.memory if node.memory else 0)))
    return count, Shape(buffer.cpu // count, buffer.memory // count, buffer.gpu // count, 1)


__all__ = ["Shape", "allocatable", "chunks", "fit_existing", "may_land", "minus", "node_labels",
           "node_shape", "nodes_for", "pod_shape", "waste"]
