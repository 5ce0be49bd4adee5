"""Workload and Project objects for the admission tests."""

from __future__ import annotations

import itertools
from typing import Any

_uids = itertools.count()


def pod_spec(cpu: str = "1", memory: str = "1Gi", gpu: int | None = None) -> dict[str, Any]:
    requests: dict[str, Any] = {"cpu": cpu, "memory": memory}
    if gpu is not None:
        requests["nvidia.com/gpu"] = str(gpu)
    return {"containers": [{"name": "main", "image": "busybox",
                            "resources": {"requests": requests}}]}


def app(name: str, *, project: str = "team", tier: str = "ondemand", replicas: int = 1,
        cpu: str = "1", memory: str = "1Gi", created: str = "2026-01-01T00:00:00Z",
        generation: int = 1) -> dict[str, Any]:
    return {"kind": "PinApp", "apiVersion": "pincompute.io/v1alpha1",
            "metadata": {"name": name, "namespace": project, "uid": f"uid-{next(_uids)}",
                         "creationTimestamp": created, "generation": generation},
            "spec": {"tier": tier, "replicas": replicas,
                     "template": {"spec": pod_spec(cpu, memory)}}}


def training(name: str, *, project: str = "team", tier: str = "reserved",
             workers: int = 4, cpu: str = "2") -> dict[str, Any]:
    return {"kind": "PinTrainingJob",
            "metadata": {"name": name, "namespace": project, "uid": f"uid-{next(_uids)}",
                         "creationTimestamp": "2026-01-01T00:00:00Z", "generation": 1},
            "spec": {"tier": tier, "framework": "pytorch", "roles": {
                "master": {"replicas": 1, "template": {"spec": pod_spec(cpu)}},
                "worker": {"replicas": workers, "template": {"spec": pod_spec(cpu)}}}}}


def quota(**tiers: dict[str, Any]) -> dict[str, Any]:
    return dict(tiers)
