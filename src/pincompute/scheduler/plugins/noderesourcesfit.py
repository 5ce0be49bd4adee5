"""NodeResourcesFit (Filter): the pod's requests fit in what the node has left.

Theory of operation
-------------------
For every node, ``requested + pod request <= allocatable`` for each resource
the pod asks for (cpu, memory, ``nvidia.com/gpu``), and one more pod fits under
the node's pod limit.  ``requested`` already includes *assumed* pods — decisions
not yet written to the API — so two decisions in a row never overcommit a
node.  It also includes the requests of pods *nominated* to the node (by a
preemption whose victims are still terminating) whose priority is at least the
pod's: that room is promised, and a pod that did not preempt for it must not
take it.

Rejections are resolvable (preemption may free room).  Reasons, as
kube-scheduler words them: ``Too many pods``, ``Insufficient cpu``,
``Insufficient memory``, ``Insufficient nvidia.com/gpu``; one node may count
under several.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from pincompute.scheduler import labels as L
from pincompute.scheduler.framework.handle import FrameworkHandle
from pincompute.scheduler.framework.interface import (
    ASSIGNED_POD_DELETE,
    ASSIGNED_POD_UPDATE,
    NODE_ADD,
    NODE_ALLOCATABLE,
    ClassContext,
    Deps,
)
from pincompute.scheduler.nodematch import row_index
from pincompute.scheduler.nodetable import NodeTable, Rows
from pincompute.scheduler.podinfo import PodInfo

NAME = "NodeResourcesFit"
TOO_MANY_PODS = "Too many pods"
INSUFFICIENT_CPU = "Insufficient cpu"
INSUFFICIENT_MEMORY = "Insufficient memory"
INSUFFICIENT_GPU = f"Insufficient {L.GPU_RESOURCE}"


def requested(table: NodeTable, pod: PodInfo, rows: Rows,
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(cpu, memory, gpu, pods) requested on ``rows`` that count against ``pod``.

    Includes nominated pods of at least the pod's priority (never the pod's own
    nomination).
    """
    cpu = table.req_cpu[rows]
    mem = table.req_mem[rows]
    gpu = table.req_gpu[rows]
    pods = table.req_pods[rows]
    if table.nominated_on:
        extra = table.nominated_extra(row_index(table, rows), pod.priority, exclude=pod.uid)
        if extra is not None:
            cpu = cpu + extra[0]
            mem = mem + extra[1]
            gpu = gpu + extra[2]
            pods = pods + extra[3]
    return cpu, mem, gpu, pods


class NodeResourcesFit:
    name = NAME
    unresolvable = False

    def filter_deps(self, pod: PodInfo, table: NodeTable) -> Deps:
        return Deps.NODE | Deps.LOCAL

    def filter(self, ctx: ClassContext, pod: PodInfo, table: NodeTable, rows: Rows) -> np.ndarray:
        cpu, mem, gpu, pods = requested(table, pod, rows)
        ok = pods < table.alloc_pods[rows]
        if pod.cpu:
            ok &= cpu + pod.cpu <= table.alloc_cpu[rows]
        if pod.memory:
            ok &= mem + pod.memory <= table.alloc_mem[rows]
        if pod.gpu:
            ok &= gpu + pod.gpu <= table.alloc_gpu[rows]
        return ok

    def filter_row(self, pod: PodInfo, table: NodeTable, row: int) -> bool:
        """Scalar twin of :meth:`filter` for one row (the class cache's small updates)."""
        cpu = table.req_cpu.item(row)
        mem = table.req_mem.item(row)
        gpu = table.req_gpu.item(row)
        pods = table.req_pods.item(row)
        if table.nominated_on and row in table.nominated_on:
            ncpu, nmem, ngpu, npods = table.nominated_row(row, pod.priority, pod.uid)
            cpu += ncpu
            mem += nmem
            gpu += ngpu
            pods += npods
        if pods >= table.alloc_pods.item(row):
            return False
        if pod.cpu and cpu + pod.cpu > table.alloc_cpu.item(row):
            return False
        if pod.memory and mem + pod.memory > table.alloc_mem.item(row):
            return False
        return not (pod.gpu and gpu + pod.gpu > table.alloc_gpu.item(row))

    def explain(self, ctx: ClassContext, pod: PodInfo, table: NodeTable,
                rows: np.ndarray) -> Mapping[str, int]:
        cpu, mem, gpu, pods = requested(table, pod, rows)
        out = {TOO_MANY_PODS: int((pods >= table.alloc_pods[rows]).sum())}
        if pod.cpu:
            out[INSUFFICIENT_CPU] = int((cpu + pod.cpu > table.alloc_cpu[rows]).sum())
        if pod.memory:
            out[INSUFFICIENT_MEMORY] = int((mem + pod.memory > table.alloc_mem[rows]).sum())
        if pod.gpu:
            out[INSUFFICIENT_GPU] = int((gpu + pod.gpu > table.alloc_gpu[rows]).sum())
        return {k: v for k, v in out.items() if v}

    def events(self) -> frozenset[str]:
        return frozenset((NODE_ADD, NODE_ALLOCATABLE, ASSIGNED_POD_DELETE, ASSIGNED_POD_UPDATE))


def new(args: Mapping[str, Any], handle: FrameworkHandle) -> NodeResourcesFit:
    return NodeResourcesFit()
