"""PinCompute's controllers running against real API servers, leader-elected."""

from __future__ import annotations

from pathlib import Path

import pytest

from pincompute.kube import NotFound
from pincompute.kube.resource import LEASES, NAMESPACES, PODS
from pincompute.kubeenv import KubeEnv
from pincompute.model.registry import MEMBERCLUSTERS, NODEPOOLS, PROJECTS
from pincompute.model.wellknown import PROJECT_LABEL, SYSTEM_NAMESPACE

from .support import create_namespace, eventually, pincompute, start_controller, stop

pytestmark = pytest.mark.slow



@pytest.fixture(scope="module")
def region(kube_env: KubeEnv) -> KubeEnv:
    assert pincompute("install", "--kubeconfig", str(kube_env.host.kubeconfig),
                      "--role", "host").returncode == 0
    for member in kube_env.members:
        assert pincompute("install", "--kubeconfig", str(member.kubeconfig), "--role",
                          "member", "--cluster", member.name).returncode == 0
    return kube_env


async def _register_members(env: KubeEnv) -> None:
    client = env.host.client()
    try:
        for member in env.members:
            obj = {"metadata": {"name": member.name},
                   "spec": {"zone": member.zone, "region": "test",
                            "connection": {"type": "Kubeconfig",
                                           "kubeconfigPath": str(member.kubeconfig)}}}
            try:
                await client.create(MEMBERCLUSTERS, obj)
            except Exception as e:  # already registered by an earlier test
                if "already exists" not in str(e):
                    raise
    finally:
        await client.close()


async def test_two_federation_replicas_one_leader_projects_reach_every_cluster(
        region: KubeEnv, tmp_path: Path) -> None:
    await _register_members(region)
    host_config = str(region.host.kubeconfig)
    replicas = [start_controller(tmp_path / f"federation-{i}.log", "federation",
                                 "--kubeconfig", host_config, "--lease-duration", "4")
                for i in range(2)]
    host = region.host.client()
    members = {m.name: m.client() for m in region.members}
    try:
        await host.create(PROJECTS, {"metadata": {"name": "payments"}, "spec": {}})

        async def everywhere() -> bool:
            for client in (host, *members.values()):
                try:
                    ns = await client.get(NAMESPACES, "payments")
                except NotFound:
                    return False
                if (ns["metadata"].get("labels") or {}).get(PROJECT_LABEL) != "payments":
                    return False
            return True

        await eventually(everywhere, timeout=60, what="the project's namespaces")

        async def ready() -> bool:
            project = await host.get(PROJECTS, "payments")
            return any(c["type"] == "Ready" and c["status"] == "True"
                       for c in (project.get("status") or {}).get("conditions") or ())

        await eventually(ready, timeout=30, what="the project to be Ready")

        lease = await host.get(LEASES, "pincompute-federation", namespace=SYSTEM_NAMESPACE)
        leader = lease["spec"]["holderIdentity"]
        leader_pid = int(leader.rsplit("_", 1)[1])
        assert leader_pid in {p.pid for p in replicas}

        # The leader goes away: the other replica takes over and keeps converging.
        leading = next(p for p in replicas if p.pid == leader_pid)
        assert stop(leading) == 0
        first_member = next(iter(members.values()))
        await first_member.delete(NAMESPACES, "payments")

        async def taken_over() -> bool:
            lease = await host.get(LEASES, "pincompute-federation", namespace=SYSTEM_NAMESPACE)
            holder = lease["spec"].get("holderIdentity") or ""
            return bool(holder) and holder != leader

        await eventually(taken_over, timeout=30, what="the standby to take the lease")

        async def recreated() -> bool:
            try:
                ns = await first_member.get(NAMESPACES, "payments")
            except NotFound:
                return False
            return not ns["metadata"].get("deletionTimestamp")

        await eventually(recreated, timeout=60, what="the namespace to be recreated")

        # Deleting the project removes its namespaces from every cluster, then the project.
        await host.delete(PROJECTS, "payments")

        async def gone() -> bool:
            try:
                await host.get(PROJECTS, "payments")
                return False
            except NotFound:
                return True

        await eventually(gone, timeout=90, what="the project to be finalized")
    finally:
        for proc in replicas:
            stop(proc)
        await host.close()
        for client in members.values():
            await client.close()


async def test_member_controller_counts_kwok_nodes(region: KubeEnv, tmp_path: Path) -> None:
    member = region.members[0]
    proc = start_controller(tmp_path / "member.log", "member", "--cluster", member.name,
                            "--kubeconfig", str(member.kubeconfig), "--lease-duration", "4")
    client = member.client()
    try:
        await client.create(NODEPOOLS, {"metadata": {"name": "general"}, "spec": {
            "instanceType": "kwok.standard-4", "capacity": {"cpu": "4", "memory": "16Gi"},
            "minSize": 1, "maxSize": 5}})

        async def counted() -> dict | None:
            status = (await client.get(NODEPOOLS, "general")).get("status") or {}
            return status if status.get("readyNodes") == 2 else None

        status = await eventually(counted, timeout=60, what="the pool's status")
        assert status["currentSize"] == 2
    finally:
        assert stop(proc) == 0, (tmp_path / "member.log").read_text()[-3000:]
        await client.delete(NODEPOOLS, "general")
        await client.close()


async def test_pod_scheduler_binds_to_kwok_nodes_as_a_secondary_scheduler(
        region: KubeEnv, tmp_path: Path) -> None:
    member = region.members[1]
    proc = start_controller(tmp_path / "member.log", "member", "--cluster", member.name,
                            "--kubeconfig", str(member.kubeconfig), "--lease-duration", "4")
    client = member.client()
    ns = "sched"
    try:
        await create_namespace(client, ns)

        def pod(name: str, cpu: str, scheduler: str = "pincompute") -> dict:
            return {"metadata": {"name": name, "labels": {"app": "web"}},
                    "spec": {"schedulerName": scheduler, "containers": [
                        {"name": "main", "image": "busybox:1.36",
                         "resources": {"requests": {"cpu": cpu, "memory": "64Mi"}}}]}}

        for i in range(4):
            await client.create(PODS, pod(f"web-{i}", "500m"), namespace=ns)
        await client.create(PODS, pod("huge", "64"), namespace=ns)
        await client.create(PODS, pod("not-ours", "100m", scheduler="someone-else"),
                            namespace=ns)

        async def bound() -> list[str] | None:
            pods = (await client.list(PODS, namespace=ns, label_selector="app=web")).items
            nodes = [p["spec"].get("nodeName") for p in pods if p["metadata"]["name"]
                     .startswith("web-")]
            return nodes if len(nodes) == 4 and all(nodes) else None

        nodes = await eventually(bound, timeout=60, what="pods bound by the pincompute scheduler")
        assert set(nodes) <= set(member.node_names)

        async def running() -> bool:
            pods = (await client.list(PODS, namespace=ns, label_selector="app=web")).items
            return all((p.get("status") or {}).get("phase") == "Running" for p in pods
                       if p["metadata"]["name"].startswith("web-"))

        await eventually(running, timeout=60, what="kwok to run the bound pods")

        async def unschedulable() -> dict | None:
            huge = await client.get(PODS, "huge", namespace=ns)
            for c in (huge.get("status") or {}).get("conditions") or ():
                if c["type"] == "PodScheduled" and c.get("reason") == "Unschedulable":
                    return c
            return None

        condition = await eventually(unschedulable, timeout=30, what="the Unschedulable reason")
        assert condition["message"].startswith(f"0/{len(member.node_names)} nodes are available")
        assert "Insufficient cpu" in condition["message"]
        other = await client.get(PODS, "not-ours", namespace=ns)
        assert not other["spec"].get("nodeName")  # another scheduler's pod is left alone
    finally:
        assert stop(proc) == 0, (tmp_path / "member.log").read_text()[-3000:]
        await client.delete(NAMESPACES, ns)
        await client.close()
