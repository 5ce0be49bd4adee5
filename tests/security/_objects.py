"""Valid objects of every PinCompute kind, rich enough to mutate: the seeds of the attacks."""

from __future__ import annotations

import copy
from typing import Any

from pincompute.model import registry

POD_SPEC: dict[str, Any] = {
    "containers": [{
        "name": "main", "image": "busybox", "command": ["sh"], "args": ["-c", "sleep 1"],
        "workingDir": "/work", "env": [{"name": "A", "value": "b"}],
        "ports": [{"containerPort": 8080, "name": "http"}],
        "resources": {"requests": {"cpu": "100m", "memory": "64Mi"},
                      "limits": {"cpu": "1", "memory": "128Mi"}},
        "volumeMounts": [{"name": "data", "mountPath": "/data"}],
        "readinessProbe": {"httpGet": {"path": "/", "port": "http"}},
    }],
    "volumes": [{"name": "data", "emptyDir": {"sizeLimit": "1Gi"}}],
    "nodeSelector": {"pincompute.io/pool": "general"},
    "terminationGracePeriodSeconds": 10,
}
TEMPLATE = {"metadata": {"labels": {"app": "web"}}, "spec": POD_SPEC}

SPECS: dict[str, dict[str, Any]] = {
    "PinPod": POD_SPEC,
    "PinApp": {"template": TEMPLATE, "replicas": 2},
    "PinScaler": {"scaleTargetRef": {"name": "web"}, "maxReplicas": 10},
    "PinJob": {"template": TEMPLATE, "completions": 3, "parallelism": 2},
    "PinTrainingJob": {"framework": "pytorch", "roles": {
        "master": {"replicas": 1, "template": TEMPLATE},
        "worker": {"replicas": 2, "template": TEMPLATE}}},
    "PinCronJob": {"schedule": "*/5 * * * *", "jobTemplate": {"spec": {"template": TEMPLATE}}},
    "PinDaemon": {"template": TEMPLATE},
    "PinSidecar": {"selector": {"matchLabels": {"mesh": "on"}},
                   "containers": [{"name": "proxy", "image": "envoy:1.30"}]},
    "Project": {"members": [{"user": "ana", "role": "admin"}],
                "quota": {"ondemand": {"cpu": "10", "memory": "20Gi"}}},
    "MemberCluster": {"zone": "zone-a", "region": "local"},
    "NodePool": {"instanceType": "sim.large", "maxSize": 10,
                 "capacity": {"cpu": "8", "memory": "32Gi", "pods": 110}},
    "NodeImage": {"version": "2024.06.1", "parent": "base"},
    "Rotation": {"cluster": "zone-a-1", "targetImage": "general-2024-07",
                 "order": [{"nodePool": "general"}]},
}


def make(kind: str, spec: Any = None, *, name: str = "demo",
         namespace: str = "team") -> dict[str, Any]:
    """An object of ``kind`` (default: its seed spec)."""
    resource = registry.KINDS[kind].resource
    metadata: dict[str, Any] = {"name": name}
    if resource.namespaced:
        metadata["namespace"] = namespace
    return {"apiVersion": resource.api_version, "kind": kind, "metadata": metadata,
            "spec": copy.deepcopy(SPECS[kind]) if spec is None else spec}
