"""Objects the gateway's tests submit."""

from __future__ import annotations

from typing import Any


def pinapp(name: str, *, replicas: int = 1, labels: dict[str, str] | None = None
           ) -> dict[str, Any]:
    return {"apiVersion": "pincompute.io/v1alpha1", "kind": "PinApp",
            "metadata": {"name": name, "labels": labels or {}},
            "spec": {"replicas": replicas, "template": {"spec": {"containers": [{
                "name": "main", "image": "busybox", "command": ["sleep", "3600"],
                "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}}}]}}}}


def pinjob(name: str, *, completions: int = 1) -> dict[str, Any]:
    return {"metadata": {"name": name},
            "spec": {"completions": completions, "parallelism": 1,
                     "template": {"spec": {"containers": [{
                         "name": "main", "image": "busybox", "command": ["true"],
                         "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}}}]}}}}
