"""Resource amounts as the cluster scheduler counts them: integer vectors.

Theory of operation
-------------------
Every amount the scheduler compares — a cluster tier's allocatable, allocated
and allocating figures, a replica's requests — is a vector of
:data:`DIMS` integers: CPU in millicores, memory in bytes, GPUs and pods.  A
replica asks for one pod.  Quantity strings repeat across thousands of workloads
and clusters, so their parse is memoised in bounded tables.

A pod template's requests follow the pod's: the sum over its containers (main
and sidecar containers all run at once), limits standing in for requests that
are not given, as Kubernetes defaults them.

In a cluster's allocatable figures an amount that is not reported means *not
limited* (:func:`allocatable_vector`): :data:`UNLIMITED` stands in for it, far
above any sum of requests but small enough that no product or sum of them
overflows int64 — except GPUs: a cluster that reports none has none.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Final

import numpy as np

from pincompute.kube.quantity import QuantityError, cpu_millis, to_int
from pincompute.kube.wellknown import GPU_RESOURCE

DIMS: Final = ("cpu", "memory", "gpu", "pods")
"""The dimensions of every vector, in order."""
CPU, MEMORY, GPU, PODS = range(4)
NDIMS: Final = len(DIMS)
UNLIMITED: Final = 1 << 52
"""An amount a cluster does not report (not limited)."""
MAX_REPLICAS: Final = 1 << 31
"""The most replicas a cluster is ever estimated to hold (no dimension limits it)."""

_CPU: dict[Any, int] = {}
_INT: dict[Any, int] = {}
_MEMO_MAX = 10_000


class RequestError(ValueError):
    """A workload's requests cannot be read (the message names the field)."""


def _memo(table: dict[Any, int], convert: Callable[[Any], int], value: Any, where: str) -> int:
    got = table.get(value)
    if got is None:
        try:
            got = convert(value)
        except QuantityError as e:
            raise RequestError(f"{where}: {e}") from None
        if len(table) < _MEMO_MAX:
            table[value] = got
    return got


def amount(dim: int, value: Any, where: str = "quantity") -> int:
    """One quantity in the unit of dimension ``dim``."""
    if dim == CPU:
        return _memo(_CPU, cpu_millis, value, where)
    return _memo(_INT, to_int, value, where)


def figures_vector(figures: Mapping[str, Any] | None, *, missing: int = UNLIMITED
                   ) -> np.ndarray:
    """A ResourceFigures/ResourceAmounts dict (``cpu``, ``memory``, ``gpu``, ``pods``) as
    a vector; a resource left out counts as ``missing``."""
    out = np.full(NDIMS, missing, dtype=np.int64)
    if figures:
        for dim, key in enumerate(DIMS):
            value = figures.get(key)
            if value is not None:
                out[dim] = amount(dim, value, key)
    return out


def allocatable_vector(figures: Mapping[str, Any] | None) -> np.ndarray:
    """Allocatable figures as a vector: unreported resources unlimited, GPUs none."""
    out = figures_vector(figures)
    if not figures or figures.get("gpu") is None:
        out[GPU] = 0
    return out


def container_requests(resources: Mapping[str, Any] | None, where: str) -> tuple[int, int, int]:
    """(cpu millis, memory bytes, gpus) a container requests (limits when no requests)."""
    if not resources:
        return 0, 0, 0
    req = resources.get("requests") or resources.get("limits")
    if not req:
        return 0, 0, 0
    cpu = req.get("cpu")
    mem = req.get("memory")
    gpu = req.get(GPU_RESOURCE)
    return (amount(CPU, cpu, f"{where}.cpu") if cpu is not None else 0,
            amount(MEMORY, mem, f"{where}.memory") if mem is not None else 0,
            amount(GPU, gpu, f"{where}.{GPU_RESOURCE}") if gpu is not None else 0)


def pod_vector(pod_spec: Mapping[str, Any], where: str = "spec") -> np.ndarray:
    """What one replica of a pod spec asks for: the sum over its containers, and one pod."""
    cpu = mem = gpu = 0
    for i, c in enumerate(pod_spec.get("containers") or ()):
        rc, rm, rg = container_requests(c.get("resources"),
                                        f"{where}.containers[{i}].resources.requests")
        cpu += rc
        mem += rm
        gpu += rg
    return np.array((cpu, mem, gpu, 1), dtype=np.int64)


def fits_replicas(free: np.ndarray, per_replica: np.ndarray) -> np.ndarray:
    """How many replicas of ``per_replica`` fit in each row of ``free`` (shape (n, DIMS))."""
    asked = per_replica > 0
    if not asked.any():
        return np.full(free.shape[0], MAX_REPLICAS, dtype=np.int64)
    counts = np.maximum(free[:, asked], 0) // per_replica[asked]
    return np.minimum(counts.min(axis=1), MAX_REPLICAS)


def describe(vector: np.ndarray) -> str:
    """``cpu=500m, memory=1Gi`` of the non-zero, limited dimensions (for reasons)."""
    parts = []
    for dim, key in enumerate(DIMS):
        value = int(vector[dim])
        if value and value < UNLIMITED:
            if dim == CPU:
                text = f"{value // 1000}" if value % 1000 == 0 else f"{value}m"
            elif dim == MEMORY:
                text = _bytes(value)
            else:
                text = str(value)
            parts.append(f"{key}={text}")
    return ", ".join(parts) or "nothing"


def _bytes(n: int) -> str:
    for suffix, size in (("Gi", 2**30), ("Mi", 2**20), ("Ki", 2**10)):
        if n % size == 0:
            return f"{n // size}{suffix}"
    return str(n)
