"""The federation on real clusters, end to end: a host PinApp is admitted, placed over
member-a and member-b by the cluster scheduler (from the health controller's resource
summaries), propagated as shards (``pincompute controller federation``), run by the member
operators on kwok nodes (``pincompute controller member``), and the host object reaches
aggregated readiness."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from pincompute.kube import NotFound, objects
from pincompute.kube.backends.kubernetes import KubernetesClient
from pincompute.kube.resource import NAMESPACES
from pincompute.kubeenv import KubeEnv
from pincompute.model.registry import MEMBERCLUSTERS, PINAPPS, PROJECTS
from pincompute.model.wellknown import PARENT_UID_LABEL

from .support import eventually, pincompute, start_controller, stop

pytestmark = pytest.mark.slow

PROJECT = "propagation"


async def _delete(client: KubernetesClient, resource: Any, name: str,
                  namespace: str | None = None) -> None:
    try:
        await client.delete(resource, name, namespace=namespace)
    except NotFound:
        pass


async def test_a_placed_pinapp_runs_in_two_real_members(kube_env: KubeEnv,
                                                        tmp_path: Path) -> None:
    a, b = kube_env.members
    assert pincompute("install", "--kubeconfig", str(kube_env.host.kubeconfig),
                      "--role", "host").returncode == 0
    for member in (a, b):
        assert pincompute("install", "--kubeconfig", str(member.kubeconfig), "--role",
                          "member", "--cluster", member.name).returncode == 0
    host, clients = kube_env.host.client(), {m.name: m.client() for m in (a, b)}
    procs = []
    try:
        for m in (a, b):
            try:
                await host.create(MEMBERCLUSTERS, {"metadata": {"name": m.name}, "spec": {
                    "zone": m.zone, "region": "test",
                    "connection": {"type": "Kubeconfig", "kubeconfigPath": str(m.kubeconfig)}}})
            except Exception:  # registered by an earlier test: fine
                pass
            procs.append(start_controller(tmp_path / f"member-{m.name}.log", "member",
                                          "--cluster", m.name, "--kubeconfig",
                                          str(m.kubeconfig), "--lease-duration", "4"))
        procs.append(start_controller(tmp_path / "federation.log", "federation",
                                      "--kubeconfig", str(kube_env.host.kubeconfig),
                                      "--lease-duration", "4"))
        await host.create(PROJECTS, {"metadata": {"name": PROJECT}, "spec": {}})

        async def namespaces() -> bool:
            for client in clients.values():
                try:
                    await client.get(NAMESPACES, PROJECT)
                except NotFound:
                    return False
            return True

        await eventually(namespaces, timeout=60, what="the project's namespace in members")
        # Spread over both clusters (hard): the placement controller decides 2 + 1.
        app = await host.create(PINAPPS, {"metadata": {"name": "web"}, "spec": {
            "replicas": 3, "placement": {"spread": [
                {"topology": "cluster", "minGroups": 2, "maxSkew": 1,
                 "whenUnsatisfiable": "DoNotSchedule"}]},
            "template": {"spec": {"containers": [
                {"name": "web", "image": "busybox:1.36", "command": ["sleep", "3600"],
                 "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}}}]}}}},
            namespace=PROJECT)

        async def shards() -> dict[str, int] | None:
            found = {}
            for name, client in clients.items():
                try:
                    shard = await client.get(PINAPPS, "web", namespace=PROJECT)
                except NotFound:
                    return None
                assert shard["metadata"]["labels"][PARENT_UID_LABEL] == app["metadata"]["uid"]
                found[name] = shard["spec"]["replicas"]
            return found

        placed = await eventually(shards, timeout=90, what="shards in both members")
        assert sorted(placed.values()) == [1, 2], placed
        obj = await host.get(PINAPPS, "web", namespace=PROJECT)
        assert objects.condition_true(obj, "Admitted") and objects.condition_true(obj, "Scheduled")

        async def ready() -> dict[str, Any] | None:
            obj = await host.get(PINAPPS, "web", namespace=PROJECT)
            s = obj.get("status") or {}
            return obj if (s.get("readyReplicas"), s.get("availableReplicas")) == (3, 3) \
                and objects.condition_true(obj, "Available") else None

        obj = await eventually(ready, timeout=120, what="aggregated readiness on the host")
        assert {c["cluster"]: c["readyReplicas"] for c in obj["status"]["clusters"]} == placed

        # Deleting the host object removes the shards first.
        await host.delete(PINAPPS, "web", namespace=PROJECT)

        async def gone() -> bool:
            for client in clients.values():
                try:
                    await client.get(PINAPPS, "web", namespace=PROJECT)
                    return False
                except NotFound:
                    pass
            return True

        await eventually(gone, timeout=60, what="the shards removed")
    finally:
        codes = [stop(p) for p in procs]
        await _delete(host, PINAPPS, "web", PROJECT)
        await _delete(host, PROJECTS, PROJECT)
        for m in (a, b):
            await _delete(host, MEMBERCLUSTERS, m.name)
        await host.close()
        for client in clients.values():
            await client.close()
    logs = {p.name: p.read_text() for p in tmp_path.glob("*.log")}
    assert codes == [0] * len(codes), {k: v[-2000:] for k, v in logs.items()}
    for name, text in logs.items():
        assert "Traceback" not in text, (name, text[-4000:])
