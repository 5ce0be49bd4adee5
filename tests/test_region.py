"""An embedded region end to end: a Pod written into a member cluster is placed on a node
by the pod scheduler and really runs (a real process, probed, reachable at its address)."""

from __future__ import annotations

import asyncio
import os
import socket
import stat
from pathlib import Path

import httpx
import pytest

from pincompute.kube import NotFound
from pincompute.kube.errors import Forbidden
from pincompute.kube.objects import condition_true, get_condition
from pincompute.kube.protocol import KubeClient
from pincompute.kube.resource import NAMESPACES, NODES, PODS
from pincompute.model.registry import MEMBERCLUSTERS, PROJECTS
from pincompute.model.wellknown import CLUSTER_DRAINING_TAINT
from pincompute.node.blockregistry import BlockRegistry
from pincompute.region import (
    NODES_ROOT,
    Cluster,
    DataDirLock,
    DrainTimeout,
    Region,
    node_base_dir,
)
from pincompute.regionmembers import DRAINING

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


# --- regions that grow ----------------------------------------------------------------------

async def _ready_nodes(client: KubeClient) -> list[str]:
    return sorted(n["metadata"]["name"] for n in (await client.list(NODES)).items
                  if condition_true(n, "Ready"))


async def test_clusters_per_zone_gives_several_member_clusters_with_nodes(
        region_dir: Path) -> None:
    region = await Region.open(region_dir, zones=3, clusters_per_zone=2, nodes_per_cluster=1,
                               runtime="sim", lease_duration=3)
    await region.start()
    try:
        names = ["zone-a-1", "zone-a-2", "zone-b-1", "zone-b-2", "zone-c-1", "zone-c-2"]
        assert [m.name for m in region.members] == names
        assert [m.zone for m in region.members] == [n[:6] for n in names]
        for m in region.members:
            assert m.path == region_dir / "members" / m.name
            assert await _ready_nodes(m.client) == [f"{m.name}-general-0"]
            mc = await region.host.client.get(MEMBERCLUSTERS, m.name)
            assert mc["spec"]["zone"] == m.zone
    finally:
        await region.close()


def _tasks_of(member: Cluster) -> list[str]:
    """Pending tasks of a member cluster: named after it, or watching its store."""
    def watches(task: asyncio.Task) -> bool:
        frame = getattr(task.get_coro(), "cr_frame", None)
        owner = frame.f_locals.get("self") if frame is not None else None
        return getattr(owner, "client", None) is member.client

    return [t.get_name() for t in asyncio.all_tasks()
            if not t.done() and (member.name in t.get_name() or watches(t))]


async def test_a_region_grows_and_shrinks_while_it_runs_and_resumes_as_left(
        region_dir: Path) -> None:
    region = await Region.open(region_dir, zones=1, nodes_per_cluster=1, runtime="sim",
                               lease_duration=3)
    await region.start()
    try:
        await region.ensure_project("demo")
        added = await region.add_cluster("zone-a")
        other = await region.add_cluster("zone-b", nodes=2)   # a new zone too
        assert (added.name, other.name) == ("zone-a-2", "zone-b-1")
        assert [m.name for m in region.members] == ["zone-a-1", "zone-a-2", "zone-b-1"]
        with pytest.raises(ValueError, match="already exists"):
            await region.add_cluster("zone-a", name="zone-a-1")
        with pytest.raises(ValueError, match="host"):
            await region.add_cluster("zone-a", name="host")
        # Whole clusters at once: nodes Ready, connected, the project's namespace there.
        assert await _ready_nodes(added.client) == ["zone-a-2-general-0"]
        assert await _ready_nodes(other.client) == ["zone-b-1-general-0", "zone-b-1-general-1"]

        async def connected() -> bool:
            mc = await region.host.client.get(MEMBERCLUSTERS, added.name)
            return condition_true(mc, "Connected")

        await eventually(connected, what="the new MemberCluster Connected")

        async def namespace() -> bool:
            try:
                await added.client.get(NAMESPACES, "demo")
                return True
            except NotFound:
                return False

        await eventually(namespace, what="the project's namespace in the new cluster")

        # A workload runs there: draining waits for it, then gives up, leaving the cluster
        # registered, tainted and Draining.
        await added.client.create(PODS, {"metadata": {"name": "work"}, "spec": {
            "schedulerName": "pincompute",
            "containers": [{"name": "main", "image": "app",
                            "resources": {"requests": {"cpu": "100m"}}}]}}, namespace="demo")

        async def running() -> bool:
            pod = await added.client.get(PODS, "work", namespace="demo")
            return pod["status"].get("phase") == "Running"

        await eventually(running, what="the pod running in the new cluster")
        with pytest.raises(DrainTimeout, match="pods/demo/work"):
            await region.remove_cluster(added.name, timeout=0.5)
        mc = await region.host.client.get(MEMBERCLUSTERS, added.name)
        assert {"key": CLUSTER_DRAINING_TAINT, "effect": "NoSchedule"} in mc["spec"]["taints"]
        draining = get_condition(mc, DRAINING)
        assert draining is not None and draining["status"] == "True"
        assert "pods/demo/work" in draining["message"]
        assert added in region.members and added.name in region.clusterset
        assert _tasks_of(added)   # (the check below sees a live cluster's tasks)

        # Once it has left, the removal goes through: nodes drained, controllers stopped,
        # deregistered, let go by the cluster set, store closed, data kept.
        removal = asyncio.ensure_future(region.remove_cluster(added.name, timeout=30))
        await asyncio.sleep(0.2)
        assert not removal.done()
        await added.client.delete(PODS, "work", namespace="demo")
        await asyncio.wait_for(removal, 30)
        assert [m.name for m in region.members] == ["zone-a-1", "zone-b-1"]
        assert added.name not in region.provisioners
        with pytest.raises(NotFound):
            await region.host.client.get(MEMBERCLUSTERS, added.name)
        assert added.name not in region.clusterset
        assert region.clusterset.state(added.name) is None
        assert added.manager is not None and added.manager not in region.manager.children
        assert not any(i.running for i in added.manager.informers.informers)
        assert _tasks_of(added) == []
        assert (added.path / "store.db").exists()
        with pytest.raises(LookupError):
            await region.remove_cluster(added.name)

        async def project_forgets_it() -> bool:
            project = await region.host.client.get(PROJECTS, "demo")
            clusters = {n["cluster"] for n in project["status"].get("namespaces") or ()}
            return clusters == {"host", "zone-a-1", "zone-b-1"}

        await eventually(project_forgets_it, what="the project to forget the removed cluster")
        # A new cluster in the zone does not pick up the kept data: it gets a fresh name.
        again = await region.add_cluster("zone-a", nodes=0)
        assert again.name == "zone-a-3"
        # drain=False takes the nodes away without waiting; data deleted on request.
        await region.remove_cluster(again.name, drain=False, delete_data=True)
        assert not again.path.exists()
        assert region.running
    finally:
        await region.close()

    # Restarted — with other flags — it resumes with the clusters it had.
    region = await Region.open(region_dir, zones=3, clusters_per_zone=2, runtime="sim",
                               lease_duration=3)
    await region.start()
    try:
        assert [m.name for m in region.members] == ["zone-a-1", "zone-b-1"]
        assert await _ready_nodes(region.member("zone-b-1").client) == [
            "zone-b-1-general-0", "zone-b-1-general-1"]

        async def all_connected() -> bool:
            mcs = (await region.host.client.list(MEMBERCLUSTERS)).items
            return len(mcs) == 2 and all(condition_true(mc, "Connected") for mc in mcs)

        await eventually(all_connected, what="both members Connected after the restart")
    finally:
        await region.close()


async def test_a_process_cluster_added_and_removed_gives_back_its_address_block(
        region_dir: Path) -> None:
    region = await Region.open(region_dir, zones=1, nodes_per_cluster=0, runtime="process",
                               lease_duration=3, node_options={"probe_scale": 0.2})
    await region.start()
    try:
        def blocks() -> set[str]:
            return {c.cluster for c in BlockRegistry().claims()
                    if c.owner == str(region.data_dir)}

        assert blocks() == {"zone-a-1"}
        added = await region.add_cluster("zone-a", nodes=1)
        assert blocks() == {"zone-a-1", "zone-a-2"}
        assert await _ready_nodes(added.client) == ["zone-a-2-general-0"]
        await region.remove_cluster(added.name)
        assert blocks() == {"zone-a-1"}
        assert region.provisioners.keys() == {"zone-a-1"}
        assert _tasks_of(added) == []
    finally:
        await region.close()


async def test_a_cluster_left_draining_is_still_draining_after_a_restart(
        region_dir: Path) -> None:
    region = await Region.open(region_dir, zones=1, nodes_per_cluster=1, runtime="sim",
                               lease_duration=3)
    # Added before the start: it starts with the region.
    added = await region.add_cluster("zone-b")
    await region.start()
    try:
        assert await _ready_nodes(added.client) == ["zone-b-1-general-0"]
        await added.client.create(NAMESPACES, {"metadata": {"name": "work"}})
        await added.client.create(PODS, {"metadata": {"name": "stays"}, "spec": {
            "schedulerName": "pincompute", "containers": [{"name": "main", "image": "app"}]}},
            namespace="work")
        with pytest.raises(DrainTimeout):
            await region.remove_cluster("zone-b-1", timeout=0.3)
    finally:
        await region.close()

    region = await Region.open(region_dir, runtime="sim", lease_duration=3)
    await region.start()
    try:
        assert [m.name for m in region.members] == ["zone-a-1", "zone-b-1"]
        mc = await region.host.client.get(MEMBERCLUSTERS, "zone-b-1")
        assert {"key": CLUSTER_DRAINING_TAINT, "effect": "NoSchedule"} in mc["spec"]["taints"]
        # Forced: the pod goes with the node.
        await region.remove_cluster("zone-b-1", drain=False, timeout=30)
        assert [m.name for m in region.members] == ["zone-a-1"]
        assert [mc["metadata"]["name"] for mc in
                (await region.host.client.list(MEMBERCLUSTERS)).items] == ["zone-a-1"]
    finally:
        await region.close()
