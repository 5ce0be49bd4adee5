"""An embedded region end to end: a Pod written into a member cluster is placed on a node
by the pod scheduler and really runs (a real process, probed, reachable at its address)."""

from __future__ import annotations

import os
import socket
import stat
from pathlib import Path

import httpx
import pytest

from pincompute.kube import NotFound
from pincompute.kube.errors import Forbidden
from pincompute.kube.objects import condition_true
from pincompute.kube.resource import NAMESPACES, NODES, PODS
from pincompute.model.registry import PROJECTS
from pincompute.region import NODES_ROOT, DataDirLock, Region, node_base_dir

from .waiting import eventually

pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def test_a_pod_in_a_member_cluster_is_scheduled_and_runs(region_dir: Path) -> None:
    region = await Region.open(region_dir, zones=2, nodes_per_zone=2,
                               runtime="process", lease_duration=4,
                               node_options={"probe_scale": 0.2})
    await region.start()
    try:
        await region.ensure_project("demo")
        member = region.members[1]
        client = member.client

        async def namespace() -> bool:
            try:
                await client.get(NAMESPACES, "demo")
                return True
            except NotFound:
                return False

        await eventually(namespace, what="the project namespace in the member")
        nodes = (await client.list(NODES)).items
        assert sorted(n["metadata"]["name"] for n in nodes) == [
            f"{member.name}-general-0", f"{member.name}-general-1"]
        assert all(n["metadata"]["labels"]["topology.kubernetes.io/zone"] == member.zone
                   for n in nodes)

        port = free_port()
        await client.create(PODS, {"metadata": {"name": "web"}, "spec": {
            "schedulerName": "pincompute",
            "containers": [{
                "name": "web", "image": "python:3.11",
                # the system interpreter: the pod runs as its own uid, which may not
                # enter the developer's home where a virtualenv's python lives
                "command": ["python3", "-m", "http.server", str(port)],
                "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}},
                "readinessProbe": {"httpGet": {"path": "/", "port": port},
                                   "periodSeconds": 1},
            }]}}, namespace="demo")

        async def ready() -> dict | None:
            pod = await client.get(PODS, "web", namespace="demo")
            return pod if condition_true(pod, "Ready") else None

        pod = await eventually(ready, what="the pod to run and pass its readiness probe")
        # Beside the data directory, never in it: pods must not reach the stores.
        root_dir = region.provisioners[member.name].agent(pod["spec"]["nodeName"]).config.root_dir
        assert root_dir.is_relative_to(region_dir.parent)
        assert not root_dir.is_relative_to(region_dir) or os.geteuid() != 0
        assert pod["spec"]["nodeName"].startswith(member.name)
        assert pod["status"]["phase"] == "Running"
        async with httpx.AsyncClient() as http:
            answer = await http.get(f"http://{pod['status']['podIP']}:{port}/")
        assert answer.status_code == 200

        # Deleting it stops the process and the node finishes the deletion.
        await client.delete(PODS, "web", namespace="demo")

        async def gone() -> bool:
            try:
                await client.get(PODS, "web", namespace="demo")
                return False
            except NotFound:
                return True

        await eventually(gone, what="the pod's graceful deletion")
    finally:
        await region.close()


def test_the_data_directory_is_private_and_nodes_live_outside_it(region_dir: Path) -> None:
    """Pods (other uids) must not reach the stores, which hold every Secret (issue 8)."""
    region_dir.mkdir(mode=0o755)
    lock = DataDirLock.acquire(region_dir)
    try:
        assert stat.S_IMODE(region_dir.stat().st_mode) == 0o700
        assert stat.S_IMODE((region_dir / "LOCK").stat().st_mode) == 0o600
    finally:
        lock.release()
    assert node_base_dir(region_dir, runtime="sim") == region_dir / "nodes"
    base = node_base_dir(region_dir, runtime="process")
    if os.geteuid() == 0:
        assert base == region_dir.parent / "data-nodes"
        hidden = Path("/root/pincompute-data")  # root's home is not passable
        assert node_base_dir(hidden, runtime="process").parent == NODES_ROOT
    else:
        assert base == region_dir / "nodes"  # pods share the agent's uid anyway


async def _second_project(region_dir: Path, **options: object) -> str | None:
    """Open a process-runtime region as ``options`` say; create two projects; the error."""
    region = await Region.open(region_dir, zones=1, nodes_per_zone=0, runtime="process",
                               **options)  # type: ignore[arg-type]
    try:
        await region.host.client.create(PROJECTS, {"metadata": {"name": "alice"}, "spec": {}})
        try:
            await region.host.client.create(PROJECTS, {"metadata": {"name": "bob"},
                                                       "spec": {}})
        except Forbidden as exc:
            return str(exc)
        return None
    finally:
        await region.close()


async def test_a_region_without_root_refuses_a_second_project(region_dir: Path) -> None:
    error = await _second_project(region_dir, euid=1000)
    assert error is not None and "not running as root" in error and "--single-user" in error
    # Reopened, the first project is still the only one allowed — and it may be updated.
    region = await Region.open(region_dir, zones=1, nodes_per_zone=0, runtime="process",
                               euid=1000)
    try:
        assert region.shared_uid is not None
        alice = await region.host.client.get(PROJECTS, "alice")
        await region.host.client.update(PROJECTS, alice)
        assert [p["metadata"]["name"] for p in
                (await region.host.client.list(PROJECTS)).items] == ["alice"]
    finally:
        await region.close()


async def test_single_user_mode_allows_several_projects(region_dir: Path) -> None:
    assert await _second_project(region_dir, euid=1000, single_user=True) is None


async def test_isolation_off_counts_as_shared_uid(region_dir: Path) -> None:
    error = await _second_project(region_dir, euid=0, node_options={"isolation": "off"})
    assert error is not None and "isolation is off" in error


async def test_a_root_region_serves_several_projects(region_dir: Path) -> None:
    assert await _second_project(region_dir, euid=0) is None
