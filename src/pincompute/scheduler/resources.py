"""Resource quantities as the scheduler counts them: integers, parsed once.

Theory of operation
-------------------
The scheduler compares requests with allocatable room in numpy columns of
integers: CPU in millicores, memory in bytes, GPUs (``nvidia.com/gpu``) and pods
in units.  Quantity strings ("100m", "64Mi") repeat across thousands of pods and
nodes, so their parse is memoised (a bounded table per unit, so a stream of
distinct values cannot grow it without end).  A malformed quantity raises
:class:`PodSpecError` naming the field, which the scheduler reports on the pod.

A pod's effective requests follow Kubernetes: the sum of the containers'
requests, plus sidecars (init containers with ``restartPolicy: Always``), or the
largest regular init container (with the sidecars started before it) if that is
larger, plus ``spec.overhead``; limits stand in for requests that are not given.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from pincompute.kube.quantity import QuantityError, cpu_millis, to_int

from . import labels as L

_CPU: dict[Any, int] = {}
_INT: dict[Any, int] = {}
_MEMO_MAX = 10_000


class PodSpecError(ValueError):
    """The pod's spec cannot be scheduled as written (the message says which field)."""


def _memo(table: dict[Any, int], convert: Callable[[Any], int], value: Any,
          where: str) -> int:
    got = table.get(value)
    if got is None:
        try:
            got = convert(value)
        except QuantityError as e:
            raise PodSpecError(f"{where}: {e}") from None
        if len(table) < _MEMO_MAX:
            table[value] = got
    return got


def cpu_quantity(value: Any, where: str) -> int:
    """A CPU quantity in millicores; ``where`` names the field in the error."""
    return _memo(_CPU, cpu_millis, value, where)


def unit_quantity(value: Any, where: str) -> int:
    """Any other quantity (bytes, GPUs, pods) as an integer; ``where`` names the field."""
    return _memo(_INT, to_int, value, where)


def resource_vector(resources: Mapping[str, Any] | None, where: str) -> tuple[int, int, int]:
    """(cpu millis, memory bytes, gpus) of a ResourceList."""
    return _vector(resources, where, -1)


def _vector(resources: Mapping[str, Any] | None, where: str,
            index: int) -> tuple[int, int, int]:
    """:func:`resource_vector`; with ``index`` >= 0 the field is ``where[index]``'s requests."""
    if not resources:
        return 0, 0, 0
    cpu = resources.get("cpu")
    mem = resources.get("memory")
    gpu = resources.get(L.GPU_RESOURCE)
    # Quantities parsed before need no field name: it is only made for a parse.
    c = 0 if cpu is None else _CPU.get(cpu)
    m = 0 if mem is None else _INT.get(mem)
    g = 0 if gpu is None else _INT.get(gpu)
    if c is None or m is None or g is None:
        at = where if index < 0 else f"{where}[{index}].resources.requests"
        c = cpu_quantity(cpu, f"{at}.cpu") if cpu is not None else 0
        m = unit_quantity(mem, f"{at}.memory") if mem is not None else 0
        g = unit_quantity(gpu, f"{at}.{L.GPU_RESOURCE}") if gpu is not None else 0
    return c, m, g


def pod_requests(spec: Mapping[str, Any]) -> tuple[int, int, int]:
    """The pod's effective requests (cpu millis, memory bytes, gpus), as Kubernetes sums them."""
    cpu = mem = gpu = 0
    for i, c in enumerate(spec.get("containers") or ()):
        res = c.get("resources")
        if res:
            rc, rm, rg = _vector(res.get("requests") or _limits_as_requests(res),
                                 "spec.containers", i)
            cpu += rc
            mem += rm
            gpu += rg
    inits = spec.get("initContainers")
    if inits:
        side_cpu = side_mem = side_gpu = 0
        init_cpu = init_mem = init_gpu = 0
        for i, c in enumerate(inits):
            res = c.get("resources") or {}
            rc, rm, rg = _vector(res.get("requests") or _limits_as_requests(res),
                                 "spec.initContainers", i)
            if c.get("restartPolicy") == "Always":
                # A sidecar keeps running beside everything started after it.
                side_cpu += rc
                side_mem += rm
                side_gpu += rg
            else:
                init_cpu = max(init_cpu, side_cpu + rc)
                init_mem = max(init_mem, side_mem + rm)
                init_gpu = max(init_gpu, side_gpu + rg)
        cpu = max(cpu + side_cpu, init_cpu)
        mem = max(mem + side_mem, init_mem)
        gpu = max(gpu + side_gpu, init_gpu)
    overhead = spec.get("overhead")
    if overhead:
        oc, om, og = resource_vector(overhead, "spec.overhead")
        cpu += oc
        mem += om
        gpu += og
    return cpu, mem, gpu


def _limits_as_requests(res: Mapping[str, Any]) -> Mapping[str, Any] | None:
    # Kubernetes defaults requests to limits when only limits are given.
    return res.get("limits")
