"""Response size: simplified objects vs the raw objects a real kube-apiserver returns.

For every PinCompute kind (and core Pods and Nodes), one typical object is written to a
real kube-apiserver (the test environment's, CRDs installed) the way PinCompute's
components write it — created by one client, its status written by a controller, a label
patched by another — so the stored object carries the API machinery a real cluster adds
(``managedFields`` per field manager, the service-account token volume of pods).  The raw
size is its JSON as the API server answers it; the simplified size is the gateway's
response for the same object (``pincompute.api.simplify``).  Baseline and figure come from
the same objects in the same run.

Run: ``python benchmarks/response_size.py [--quick]``; the last line is JSON: per kind the
raw and simplified bytes and the saving, and the mean and largest saving.
"""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

import orjson

from api_support import machine, pinapp
from pincompute import install as installer
from pincompute.api.crud import present
from pincompute.kube import objects
from pincompute.kube.errors import NotFound
from pincompute.kube.resource import NAMESPACES, NODES, PODS, Resource
from pincompute.kubeenv import ClusterSpec, KubeEnv
from pincompute.kubeenv.specs import NodePool as KwokPool
from pincompute.model import registry
from pincompute.model.crd import crd_for

NS = "sizes"
CONTAINER = {"name": "main", "image": "registry.local/job:2.0",
             "command": ["python3", "-u", "train.py", "--epochs", "3"],
             "env": [{"name": "DATA", "value": "/data"}],
             "resources": {"requests": {"cpu": "500m", "memory": "1Gi"}}}
JOB = {"completions": 4, "parallelism": 2,
       "template": {"spec": {"containers": [CONTAINER]}}}


def samples() -> dict[str, tuple[Resource, dict[str, Any]]]:
    app = pinapp(1)
    app["metadata"]["name"] = "web"
    return {
        "PinApp": (registry.PINAPPS, app),
        "PinPod": (registry.PINPODS, {"metadata": {"name": "solo"}, "spec": {
            "containers": [CONTAINER]}}),
        "PinJob": (registry.PINJOBS, {"metadata": {"name": "batch"}, "spec": JOB}),
        "PinTrainingJob": (registry.PINTRAININGJOBS, {"metadata": {"name": "fit"}, "spec": {
            "framework": "pytorch", "roles": {
                "master": {"replicas": 1, "template": {"spec": {"containers": [CONTAINER]}}},
                "worker": {"replicas": 2, "template": {"spec": {"containers": [CONTAINER]}}}}}}),
        "PinCronJob": (registry.PINCRONJOBS, {"metadata": {"name": "nightly"}, "spec": {
            "schedule": "0 3 * * *", "timeZone": "Europe/Paris", "jobTemplate": {"spec": JOB}}}),
        "PinScaler": (registry.PINSCALERS, {"metadata": {"name": "web"}, "spec": {
            "scaleTargetRef": {"name": "web"}, "minReplicas": 2, "maxReplicas": 10}}),
        "PinDaemon": (registry.PINDAEMONS, {"metadata": {"name": "agent"}, "spec": {
            "template": {"spec": {"containers": [CONTAINER]}}}}),
        "PinSidecar": (registry.PINSIDECARS, {"metadata": {"name": "logship"}, "spec": {
            "selector": {"matchLabels": {"logs": "ship"}}, "containers": [CONTAINER]}}),
        "Project": (registry.PROJECTS, {"metadata": {"name": "team-a"}, "spec": {
            "displayName": "Team A", "members": [{"user": "alice", "role": "admin"},
                                                  {"user": "bob", "role": "editor"}],
            "quota": {"ondemand": {"cpu": "64", "memory": "256Gi"}}}}),
        "MemberCluster": (registry.MEMBERCLUSTERS, {"metadata": {"name": "zone-a-1"}, "spec": {
            "zone": "zone-a", "region": "local", "connection": {"type": "Embedded"}}}),
        "NodeImage": (registry.NODEIMAGES, {"metadata": {"name": "general-2026"}, "spec": {
            "version": "2026.1.0", "labels": {"image": "general"}}}),
        "Rotation": (registry.ROTATIONS, {"metadata": {"name": "rotate-a"}, "spec": {
            "cluster": "zone-a-1", "targetImage": "general-2026", "parallelism": 2}}),
        "NodePool": (registry.NODEPOOLS, {"metadata": {"name": "general"}, "spec": {
            "instanceType": "m5.xlarge", "capacity": {"cpu": "4", "memory": "16Gi"},
            "minSize": 1, "maxSize": 10}}),
        "Pod": (PODS, {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web-0"},
                       "spec": {"schedulerName": "pincompute", "containers": [CONTAINER]}}),
    }


def status_for(kind: str) -> dict[str, Any]:
    now = objects.now()
    condition = {"type": "Ready", "status": "True", "lastTransitionTime": now,
                 "reason": "AsExpected", "message": "all replicas are ready"}
    if kind == "Pod":
        return {"phase": "Pending", "conditions": [
            {"type": "PodScheduled", "status": "False", "lastTransitionTime": now,
             "reason": "Unschedulable", "message": "0/1 nodes are available"}]}
    return {"observedGeneration": 1, "conditions": [condition]}


async def measure(client: Any, kind: str, resource: Resource, obj: dict[str, Any]
                  ) -> tuple[int, int]:
    ns = NS if resource.namespaced else None
    created = await client.create(resource, obj, namespace=ns)
    with_status = objects.deepcopy(created)
    with_status["status"] = status_for(kind)
    await client.update_status(resource, with_status)
    await client.patch(resource, created["metadata"]["name"],
                       {"metadata": {"labels": {"reviewed": "true"}}}, namespace=ns)
    raw = await client.get(resource, created["metadata"]["name"], namespace=ns)
    return len(orjson.dumps(raw)), len(orjson.dumps(present(resource, raw)))


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.parse_args()
    print(f"machine: {machine()}")
    spec = ClusterSpec("sizes", role="host", node_pools=(KwokPool("general", nodes=1),))
    sizes: dict[str, dict[str, Any]] = {}
    async with KubeEnv.start(clusters=(spec,)) as env:
        client = env.host.client(qps=1000, burst=1000)
        await installer.install(client, "host")
        # NodePools are member-side: their CRD alone beside the host's.
        crd = await client.create(installer.CRDS, crd_for(registry.NODEPOOLS))
        for _ in range(300):
            crd = await client.get(installer.CRDS, crd["metadata"]["name"])
            if objects.condition_true(crd, "Established"):
                break
            await asyncio.sleep(0.1)
        await client.create(NAMESPACES, {"metadata": {"name": NS}})
        for _ in range(300):  # pods need the namespace's default service account
            try:
                await client.get(Resource("", "v1", "serviceaccounts", "ServiceAccount"),
                                 "default", namespace=NS)
                break
            except NotFound:
                await asyncio.sleep(0.1)
        for kind, (resource, obj) in samples().items():
            raw, simple = await measure(client, kind, resource, obj)
            sizes[kind] = {"raw": raw, "simplified": simple,
                           "saving_pct": round(100 * (raw - simple) / raw, 1)}
        node = (await client.list(NODES)).items[0]
        raw, simple = len(orjson.dumps(node)), len(orjson.dumps(present(NODES, node)))
        sizes["Node"] = {"raw": raw, "simplified": simple,
                         "saving_pct": round(100 * (raw - simple) / raw, 1)}
        await client.close()
    print(f"{'kind':<16}{'raw bytes':>10}{'simplified':>12}{'saving':>8}")
    for kind, s in sizes.items():
        print(f"{kind:<16}{s['raw']:>10}{s['simplified']:>12}{s['saving_pct']:>7.1f}%")
    savings = [s["saving_pct"] for s in sizes.values()]
    mean = round(sum(savings) / len(savings), 1)
    print(f"mean saving {mean}%, largest {max(savings)}%")
    print(orjson.dumps({"kinds": sizes, "mean_saving_pct": mean,
                        "max_saving_pct": max(savings)}).decode())


if __name__ == "__main__":
    asyncio.run(main())
