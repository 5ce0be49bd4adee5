"""Builders for the cluster scheduler tests: MemberClusters and workloads, validated by the
model (so the dicts have the shape the store would hold), and a scheduler over them."""

from __future__ import annotations

import itertools
from typing import Any

from pincompute.federation.clusterscheduler import ClusterScheduler, ClusterTable, Profile
from pincompute.model.app import PinAppSpec
from pincompute.model.jobs import PinJobSpec
from pincompute.model.platform import MemberClusterSpec, MemberClusterStatus
from pincompute.model.pod import PinPodSpec
from pincompute.model.training import PinTrainingJobSpec

_uids = itertools.count()


def member(name: str, zone: str = "z1", *, cpu: str | int = "64", memory: str = "256Gi",
           pods: int = 1000, gpu: int | None = None, tiers: tuple[str, ...] = ("ondemand",),
           allocated: dict[str, Any] | None = None, labels: dict[str, str] | None = None,
           status: dict[str, Any] | None = None, largest: dict[str, Any] | None = None,
           **spec: Any) -> dict[str, Any]:
    """A MemberCluster with one pool per tier in ``tiers``, each of the given size."""
    alloc: dict[str, Any] = {"cpu": cpu, "memory": memory, "pods": pods}
    if gpu is not None:
        alloc["gpu"] = gpu
    summary: dict[str, Any] = {"allocatable": alloc}
    if allocated:
        summary["allocated"] = allocated
    if largest:
        summary["largestNode"] = largest
    st = status if status is not None else {"tiers": {t: dict(summary) for t in tiers}}
    return {
        "apiVersion": "pincompute.io/v1alpha1", "kind": "MemberCluster",
        "metadata": {"name": name, "labels": labels or {}},
        "spec": MemberClusterSpec.model_validate({"zone": zone, **spec}).to_dict(),
        "status": MemberClusterStatus.model_validate(st).to_dict(),
    }


def template(cpu: str = "1", memory: str = "1Gi", gpu: int | None = None) -> dict[str, Any]:
    requests: dict[str, Any] = {"cpu": cpu, "memory": memory}
    if gpu:
        requests["nvidia.com/gpu"] = gpu
    return {"spec": {"containers": [{"name": "main", "image": "busybox",
                                     "resources": {"requests": requests}}]}}


def _obj(kind: str, spec: dict[str, Any], *, uid: str | None, name: str | None,
         placements: dict[str, int] | None, generation: int = 1) -> dict[str, Any]:
    uid = uid or f"uid-{next(_uids)}"
    obj: dict[str, Any] = {
        "apiVersion": "pincompute.io/v1alpha1", "kind": kind,
        "metadata": {"name": name or uid, "namespace": "proj", "uid": uid,
                     "generation": generation},
        "spec": spec,
    }
    if placements is not None:
        obj["status"] = {"placements": [{"cluster": c, "replicas": n}
                                        for c, n in placements.items()]}
    return obj


def app(replicas: int = 3, *, placement: dict[str, Any] | None = None, tier: str = "ondemand",
        cpu: str = "1", memory: str = "1Gi", gpu: int | None = None, uid: str | None = None,
        placements: dict[str, int] | None = None, generation: int = 1) -> dict[str, Any]:
    spec = PinAppSpec.model_validate({"replicas": replicas, "tier": tier,
                                      "placement": placement or {},
                                      "template": template(cpu, memory, gpu)}).to_dict()
    return _obj("PinApp", spec, uid=uid, name=None, placements=placements,
                generation=generation)


def job(parallelism: int = 4, *, placement: dict[str, Any] | None = None, cpu: str = "1",
        memory: str = "1Gi", uid: str | None = None, tier: str = "ondemand",
        placements: dict[str, int] | None = None) -> dict[str, Any]:
    spec = PinJobSpec.model_validate({"parallelism": parallelism, "tier": tier,
                                      "placement": placement or {},
                                      "template": template(cpu, memory)}).to_dict()
    return _obj("PinJob", spec, uid=uid, name=None, placements=placements)


def training(workers: int = 3, *, placement: dict[str, Any] | None = None,
             worker_cpu: str = "4", master_cpu: str = "2", uid: str | None = None
             ) -> dict[str, Any]:
    spec = PinTrainingJobSpec.model_validate({
        "framework": "pytorch", "placement": placement or {},
        "roles": {"master": {"replicas": 1, "template": template(master_cpu)},
                  "worker": {"replicas": workers, "template": template(worker_cpu)}},
    }).to_dict()
    return _obj("PinTrainingJob", spec, uid=uid, name=None, placements=None)


def pod(*, cpu: str = "1", uid: str | None = None) -> dict[str, Any]:
    spec = PinPodSpec.model_validate({**template(cpu)["spec"]}).to_dict()
    return _obj("PinPod", spec, uid=uid, name=None, placements=None)


def scheduler(*clusters: dict[str, Any], profile: Profile | None = None,
              cls: type[ClusterScheduler] = ClusterScheduler) -> ClusterScheduler:
    table = ClusterTable()
    for mc in clusters:
        table.upsert(mc)
    return cls(table, profile=profile)


def excluded(decision: Any) -> dict[str, tuple[str | None, str]]:
    return {e.cluster: (e.plugin, e.reason) for e in decision.excluded}
