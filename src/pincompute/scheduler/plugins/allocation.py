"""Shared arithmetic of the allocation scores: what a node's use would be with the pod on it.

Theory of operation
-------------------
LeastAllocated, MostAllocated and BalancedAllocation all look at, per resource,
``requested + pod request`` against ``allocatable`` on every node (assumed pods
included).  This module computes those two columns for the scored resources,
so the three plugins stay one formula each.  Resources are named as in pod specs
(``cpu``, ``memory``, ``nvidia.com/gpu``) with weights, by default cpu and
memory weighted 1 as kube-scheduler does.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from pincompute.scheduler import labels as L
from pincompute.scheduler.framework.interface import ClassContext, Deps
from pincompute.scheduler.nodetable import NodeTable, Rows
from pincompute.scheduler.podinfo import PodInfo

DEFAULT_RESOURCES: Mapping[str, float] = {"cpu": 1.0, "memory": 1.0}


def parse_resources(args: Mapping[str, Any]) -> dict[str, float]:
    raw = args.get("resources", DEFAULT_RESOURCES)
    out = {}
    for name, weight in dict(raw).items():
        if name not in ("cpu", "memory", L.GPU_RESOURCE):
            raise ValueError(f"unsupported resource {name!r} for allocation scoring")
        if float(weight) > 0:
            out[name] = float(weight)
    if not out:
        raise ValueError("allocation scoring needs at least one resource with a positive weight")
    return out


def used_and_allocatable(table: NodeTable, pod: PodInfo, rows: Rows, resource: str,
                         ) -> tuple[np.ndarray, np.ndarray]:
    if resource == "cpu":
        return table.req_cpu[rows] + pod.cpu, table.alloc_cpu[rows]
    if resource == "memory":
        return table.req_mem[rows] + pod.memory, table.alloc_mem[rows]
    return table.req_gpu[rows] + pod.gpu, table.alloc_gpu[rows]


def fractions(table: NodeTable, pod: PodInfo, rows: Rows, resource: str) -> np.ndarray:
    """``(requested + pod) / allocatable`` clipped to [0, 1]; 1 where nothing is allocatable."""
    used, alloc = used_and_allocatable(table, pod, rows, resource)
    frac = np.divide(used, alloc, out=np.ones(used.shape[0], dtype=np.float64),
                     where=alloc > 0)
    return np.minimum(frac, 1.0, out=frac)


def fraction_row(table: NodeTable, pod: PodInfo, row: int, resource: str) -> float:
    """Scalar :func:`fractions` for one row."""
    # (``.item``: a Python int straight from the array, a third of ``int(a[row])``'s cost)
    if resource == "cpu":
        used, alloc = table.req_cpu.item(row) + pod.cpu, table.alloc_cpu.item(row)
    elif resource == "memory":
        used, alloc = table.req_mem.item(row) + pod.memory, table.alloc_mem.item(row)
    else:
        used, alloc = table.req_gpu.item(row) + pod.gpu, table.alloc_gpu.item(row)
    if alloc <= 0:
        return 1.0
    frac = used / alloc
    return frac if frac < 1.0 else 1.0


def scored_resources(pod: PodInfo, resources: Mapping[str, float]) -> Mapping[str, float]:
    """The resources worth scoring for this pod (GPUs only for pods that request them)."""
    if pod.gpu or L.GPU_RESOURCE not in resources:
        return resources  # (the common case, once per decision: no copy)
    return {r: w for r, w in resources.items() if r != L.GPU_RESOURCE}


class AllocationScore:
    """Weighted per-resource allocation scores, 0..100; ``prefer_full`` picks the direction.

    LeastAllocated scores the room a node would have left (spreading), MostAllocated the
    share it would have used (bin packing).  Both depend on the node and its own pods only,
    so after a binding only that node's score is recomputed.
    """

    name = ""
    normalized = False
    prefer_full = False

    def __init__(self, resources: Mapping[str, float]) -> None:
        self.resources = dict(resources)

    def score_deps(self, pod: PodInfo, table: NodeTable) -> Deps:
        return Deps.NODE | Deps.LOCAL

    def score(self, ctx: ClassContext, pod: PodInfo, table: NodeTable, rows: Rows) -> np.ndarray:
        resources = scored_resources(pod, self.resources)
        total = None
        for resource, weight in resources.items():
            used = fractions(table, pod, rows, resource)
            part = (used if self.prefer_full else 1.0 - used) * (100.0 * weight)
            total = part if total is None else total + part
        assert total is not None
        return total / sum(resources.values())

    def score_row(self, pod: PodInfo, table: NodeTable, row: int) -> float:
        """Scalar twin of :meth:`score` for one row (numpy's call overhead dominates there)."""
        resources = scored_resources(pod, self.resources)
        total = 0.0
        for resource, weight in resources.items():
            used = fraction_row(table, pod, row, resource)
            total += (used if self.prefer_full else 1.0 - used) * (100.0 * weight)
        return total / sum(resources.values())
