"""What a workload asks of its project's quota: all its pods' requests at once.

Theory of operation
-------------------
Admission charges a workload whole — every pod it will run at the same time —
so a gang (a training job, a job's parallel pods) is either admitted entirely or
waits entirely.  A :data:`Vector` is four integers, the dimensions a project's
quota names (:data:`DIMS`): CPU in millicores, memory in bytes, GPUs and pods.

Per kind (the same reading as the cluster scheduler's):

* PinApp: ``replicas`` x the template's requests (a stopped app: nothing);
* PinJob: ``min(parallelism, completions)`` x template, or with ``groups`` the
  sum of each group's ``replicas`` x its template (all groups run at once);
* PinCronJob: one of its jobs (what one run holds at a time);
* PinTrainingJob: the sum over its roles of ``replicas`` x the role's template;
* PinPod: the pod itself.

A pod's requests are the sum over its containers (main and sidecar containers
all run at once), limits standing in for requests that are not given, as
Kubernetes defaults them.  Parsing is memoised per quantity string.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Final

from pincompute.kube.quantity import QuantityError, cpu_millis, format_bytes, format_cpu, to_int
from pincompute.kube.wellknown import GPU_RESOURCE

Vector = tuple[int, int, int, int]
"""cpu millicores, memory bytes, gpus, pods."""
DIMS: Final = ("cpu", "memory", "gpu", "pods")
ZERO: Final[Vector] = (0, 0, 0, 0)
ADMITTED_KINDS: Final = frozenset({"PinApp", "PinJob", "PinCronJob", "PinTrainingJob", "PinPod"})
"""The host workloads admission charges."""

_MEMO: dict[tuple[int, Any], int] = {}
_MEMO_MAX = 10_000
EMPTY: Mapping[str, Any] = {}


class DemandError(ValueError):
    """A workload's requests cannot be read (the message names the field)."""


def amount(dim: int, value: Any, where: str) -> int:
    got = _MEMO.get((dim, value))
    if got is None:
        convert: Callable[[Any], int] = cpu_millis if dim == 0 else to_int
        try:
            got = convert(value)
        except QuantityError as exc:
            raise DemandError(f"{where}: {exc}") from None
        if len(_MEMO) < _MEMO_MAX:
            _MEMO[(dim, value)] = got
    return got


def pod_demand(spec: Mapping[str, Any], where: str = "spec") -> Vector:
    """One pod's requests (pods = 1)."""
    cpu = mem = gpu = 0
    for i, c in enumerate(spec.get("containers") or ()):
        res = c.get("resources") or EMPTY
        req = dict(res.get("limits") or EMPTY)
        req.update(res.get("requests") or EMPTY)
        at = f"{where}.containers[{i}].resources"
        if (v := req.get("cpu")) is not None:
            cpu += amount(0, v, f"{at}.cpu")
        if (v := req.get("memory")) is not None:
            mem += amount(1, v, f"{at}.memory")
        if (v := req.get(GPU_RESOURCE)) is not None:
            gpu += amount(2, v, f"{at}.{GPU_RESOURCE}")
    return cpu, mem, gpu, 1


def add(a: Vector, b: Vector) -> Vector:
    return a[0] + b[0], a[1] + b[1], a[2] + b[2], a[3] + b[3]


def sub(a: Vector, b: Vector) -> Vector:
    return a[0] - b[0], a[1] - b[1], a[2] - b[2], a[3] - b[3]


def scale(n: int, v: Vector) -> Vector:
    return n * v[0], n * v[1], n * v[2], n * v[3]


def _job(body: Mapping[str, Any], where: str) -> Vector:
    template = body["template"]["spec"]
    groups = body.get("groups")
    if groups:
        total = ZERO
        for i, g in enumerate(groups):
            spec = (g.get("template") or EMPTY).get("spec") or template
            total = add(total, scale(int(g.get("replicas", 1)),
                                     pod_demand(spec, f"{where}.groups[{i}].template.spec")))
        return total
    n = int(body.get("parallelism", 1))
    if body.get("completions") is not None:
        n = min(n, int(body["completions"]))
    return scale(n, pod_demand(template, f"{where}.template.spec"))


def workload_demand(obj: Mapping[str, Any]) -> Vector:
    """Everything ``obj`` runs at once (raises :class:`DemandError`)."""
    kind = obj.get("kind", "")
    spec = obj.get("spec") or EMPTY
    try:
        if kind == "PinApp":
            replicas = 0 if spec.get("stopped") else int(spec.get("replicas", 1))
            return scale(replicas, pod_demand(spec["template"]["spec"], "spec.template.spec"))
        if kind == "PinJob":
            return _job(spec, "spec")
        if kind == "PinCronJob":
            return _job(spec["jobTemplate"]["spec"], "spec.jobTemplate.spec")
        if kind == "PinTrainingJob":
            total = ZERO
            for name, role in (spec.get("roles") or EMPTY).items():
                if role:
                    total = add(total, scale(int(role.get("replicas", 1)), pod_demand(
                        role["template"]["spec"], f"spec.roles.{name}.template.spec")))
            return total
        if kind == "PinPod":
            return ZERO if spec.get("stopped") else pod_demand(spec)
    except (KeyError, TypeError) as exc:
        raise DemandError(f"spec: missing or malformed field {exc}") from None
    raise DemandError(f"admission does not charge kind {kind!r}")


def format_amount(dim: int, value: int) -> str:
    """One amount as a quantity (``4``, ``500m``, ``2Gi``)."""
    if dim == 0:
        return format_cpu(value)
    if dim == 1:
        return format_bytes(value)
    return str(value)


def figures(v: Vector) -> dict[str, str]:
    """A vector as status figures (``{"cpu": "4", "memory": "8Gi", ...}``)."""
    return {DIMS[d]: format_amount(d, v[d]) for d in range(4)}


__all__ = ["ADMITTED_KINDS", "DIMS", "ZERO", "DemandError", "Vector", "add", "amount", "figures",
           "format_amount", "pod_demand", "scale", "sub", "workload_demand"]
