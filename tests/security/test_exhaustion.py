"""One tenant must not stop the region: resource exhaustion attacks, run for real.

Each attack runs in a pod of the ``process`` runtime on a real node agent as
root (cgroups, per-pod uids), bounded in time and size so that, were the
protection missing, the test fails without taking the machine down.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import tempfile
import time
from pathlib import Path

import httpx
import pytest

from pincompute.kube.errors import ApiError
from pincompute.kube.objects import condition_true, get_condition
from pincompute.kube.resource import CONFIGMAPS, EVENTS, PODS
from pincompute.model.registry import MEMBERCLUSTERS
from pincompute.node.runtimeapi import NodeClient
from pincompute.region import Region
from pincompute.regionhealth import CONDITION as STORE_READ_ONLY
from tests.node import conftest as node_fixtures
from tests.node.conftest import container_status, eventually, get_pod, make_pod, py
from tests.node.test_agent import ready
from tests.waiting import is_true

from .conftest import require

pytestmark = pytest.mark.usefixtures("as_root")

# The node tier's fixtures: an embedded cluster and real node agents in a directory of
# their own (every process they start is gone at teardown).
cluster = node_fixtures.cluster
node_root = node_fixtures.node_root
make_agent = node_fixtures.make_agent


def phase_is(cluster, name, *phases):
    async def check():
        pod = await get_pod(cluster, name)
        return pod if (pod.get("status") or {}).get("phase") in phases else None
    return check


async def logs_of(agent, pod: str, container: str = "main") -> str:
    client = NodeClient(agent.api_endpoint, agent.api_token)
    return b"".join([c async for c in client.logs("default", pod, container)]).decode()


def need_cgroups(agent, controller: str | None = None) -> None:
    cgroups = agent.runtime.cgroups
    require(cgroups is not None, f"no writable cgroups here: {agent.degraded}")
    if controller == "pids":
        require(cgroups.has_pids, "the pids cgroup controller is not available")


# --- processes and memory ----------------------------------------------------------------

FORK_BOMB = r"""
import os, time
made = refused = 0
for _ in range(400):                 # bounded: at most 400 children, each gone in 30 s
    try:
        pid = os.fork()
    except OSError:                  # EAGAIN: the pod's pids limit
        refused += 1
        continue
    if pid == 0:
        time.sleep(30)
        os._exit(0)
    made += 1
print(f"made={made} refused={refused}", flush=True)
time.sleep(60)
"""


async def test_fork_bomb_is_stopped_by_the_pids_limit(cluster, make_agent):
    agent = await make_agent(pod_pids_limit=32)
    need_cgroups(agent, "pids")
    await cluster.create(PODS, make_pod("bomb", [{"name": "main", "command": py(FORK_BOMB)}]),
                         namespace="default")

    async def reported():
        with contextlib.suppress(httpx.HTTPError):
            text = await logs_of(agent, "bomb")
            return text if "made=" in text else None
        return None

    text = await eventually(reported, timeout=30)
    made = int(text.split("made=")[1].split()[0])
    refused = int(text.split("refused=")[1].split()[0])
    assert made < 32 and refused > 0, text
    # The node stays responsive: its API answers, and a new pod on it starts.
    async with httpx.AsyncClient(trust_env=False, timeout=5) as http:
        began = time.monotonic()
        assert (await http.get(agent.api_endpoint + "/healthz")).status_code == 200
        assert time.monotonic() - began < 2
    await cluster.create(PODS, make_pod("bystander", [{"name": "main",
                                                       "command": ["sleep", "60"]}]),
                         namespace="default")
    await eventually(ready(cluster, "bystander"), timeout=20)
    # And the host can still start processes.
    proc = await asyncio.create_subprocess_exec("true")
    assert await proc.wait() == 0


async def test_runaway_pod_without_memory_limit_is_oom_killed(cluster, make_agent):
    agent = await make_agent(default_memory_limit="64Mi")
    need_cgroups(agent)
    # Bounded: stops by itself at 512 MiB should no limit hold it.
    hog = ("b = []\nfor _ in range(64):\n    b.append(bytearray(8 << 20)); "
           "b[-1][::4096] = b'x' * 2048\nprint('survived', flush=True)")
    await cluster.create(PODS, make_pod("runaway", [{"name": "main", "command": py(hog)}],
                                        restartPolicy="Never"), namespace="default")
    pod = await eventually(phase_is(cluster, "runaway", "Failed", "Succeeded"), timeout=30)
    term = container_status(pod, "main")["state"]["terminated"]
    assert term["reason"] == "OOMKilled", term
    # A pod that declares its own limit keeps it.
    limits = agent.runtime.default_memory_limit
    assert limits == 64 * 2**20


# --- disk ----------------------------------------------------------------------------------

async def test_writing_past_the_emptydir_size_limit_evicts_the_pod(cluster, make_agent,
                                                                   node_root):
    agent = await make_agent(eviction_interval=0.2)
    outside = node_root / "outside.txt"
    outside.write_text("host data\n")
    os.chmod(outside, 0o644)
    before = outside.stat()
    # Writes 8 MiB into a 1 MiB volume, then a link pointing out (never followed).
    writer = ("import os\nd = os.environ['PINCOMPUTE_VOLUME_SCRATCH']\n"
              f"os.symlink({str(outside)!r}, os.path.join(d, 'link'))\n"
              "with open(os.path.join(d, 'fill'), 'wb') as f:\n"
              "    for _ in range(8): f.write(os.urandom(1 << 20)); f.flush()\n"
              "import time; time.sleep(60)")
    await cluster.create(PODS, make_pod("filler", [{
        "name": "main", "command": py(writer),
        "volumeMounts": [{"name": "scratch", "mountPath": "/scratch"}]}],
        volumes=[{"name": "scratch", "emptyDir": {"sizeLimit": "1Mi"}}]), namespace="default")
    pod = await eventually(phase_is(cluster, "filler", "Failed"), timeout=30)
    status = pod["status"]
    assert status["reason"] == "Evicted"
    assert 'EmptyDir volume "scratch"' in status["message"] and '"1Mi"' in status["message"]
    # The volume is gone with the sandbox; the file the link named is untouched.
    await eventually(lambda: is_true(not (agent.runtime.pods_dir / pod["metadata"]["uid"])
                                     .exists()), timeout=15)
    after = outside.stat()
    assert outside.read_text() == "host data\n"
    assert (after.st_uid, after.st_mode) == (before.st_uid, before.st_mode)


async def test_filling_the_node_disk_evicts_the_biggest_pod_before_the_stores_are_hit(
        cluster, make_agent):
    with _tmpfs(64) as disk:
        root = disk / "node"
        root.mkdir(mode=0o711)
        agent = await make_agent(root_dir=root, storage_dir=disk / "storage",
                                 eviction_interval=0.2, disk_reserve_bytes=40 * 2**20)
        # 32 MiB in a volume without a limit: free space falls under the reserve.
        writer = ("import os, time\nd = os.environ['PINCOMPUTE_VOLUME_SCRATCH']\n"
                  "with open(os.path.join(d, 'fill'), 'wb') as f:\n"
                  "    for _ in range(32):\n"
                  "        try: f.write(b'x' * (1 << 20)); f.flush()\n"
                  "        except OSError: break\n"
                  "time.sleep(60)")
        await cluster.create(PODS, make_pod("hog", [{
            "name": "main", "command": py(writer),
            "volumeMounts": [{"name": "scratch", "mountPath": "/scratch"}]}],
            volumes=[{"name": "scratch", "emptyDir": {}}]), namespace="default")
        pod = await eventually(phase_is(cluster, "hog", "Failed"), timeout=30)
        assert pod["status"]["reason"] == "Evicted"
        assert "ephemeral-storage" in pod["status"]["message"]
        # The sandbox goes, the space comes back, and the pressure with it.
        async def relieved():
            await agent.update_conditions()
            return agent.report.disk_pressure is None
        await eventually(relieved, timeout=20)
        await agent.stop()


# --- events and probes ---------------------------------------------------------------------

async def test_chatty_failing_probe_makes_one_event_with_a_count(cluster, make_agent):
    await make_agent()
    # Each attempt prints 20 KB that differ every time, then fails.
    chatty = "head -c 15000 /dev/urandom | od -An -x; exit 1"
    await cluster.create(PODS, make_pod("chatty", [{
        "name": "main", "command": ["sleep", "60"],
        "livenessProbe": {"exec": {"command": ["sh", "-c", chatty]},
                          "periodSeconds": 1, "failureThreshold": 1}}]), namespace="default")

    async def restarted_thrice():
        pod = await get_pod(cluster, "chatty")
        return container_status(pod, "main").get("restartCount", 0) >= 3

    await eventually(restarted_thrice, timeout=40)

    async def one_event():
        events = [e for e in (await cluster.list(EVENTS, namespace="default")).items
                  if e["reason"] == "Unhealthy"
                  and e["involvedObject"]["name"] == "chatty"]
        return events if events and events[0]["count"] >= 3 else None

    events = await eventually(one_event, timeout=15)
    assert len(events) == 1, [e["message"][:80] for e in events]
    assert len(events[0]["message"]) < 400  # the probe's output is capped in the message


# --- the runtime API -----------------------------------------------------------------------

async def _connect(agent, source: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    server = agent.api_server
    return await asyncio.open_connection(server.host, server.port, local_addr=(source, 0))


async def test_slowloris_client_does_not_block_other_clients(cluster, make_agent):
    agent = await make_agent()
    agent.api_server.header_timeout = 1.0
    slow = [await _connect(agent, "127.0.0.20") for _ in range(20)]
    for _, writer in slow:
        writer.write(b"GET /pods HTTP/1.1\r\n")  # ... and the rest a byte at a time, never

    async def drip() -> None:
        for _ in range(10):
            for _, writer in slow:
                with contextlib.suppress(ConnectionError):
                    writer.write(b"X")
            await asyncio.sleep(0.3)

    dripping = asyncio.ensure_future(drip())
    try:
        async with httpx.AsyncClient(trust_env=False, timeout=5) as http:
            began = time.monotonic()
            assert (await http.get(agent.api_endpoint + "/healthz")).status_code == 200
            assert time.monotonic() - began < 1.0
        # The slow ones are cut off after the header timeout, with 408.
        reader, _ = slow[0]
        async with asyncio.timeout(5):
            answer = await reader.read()
        assert answer.startswith(b"HTTP/1.1 408")
    finally:
        dripping.cancel()
        for _, writer in slow:
            writer.close()


async def test_too_many_connections_are_refused(cluster, make_agent):
    agent = await make_agent()
    server = agent.api_server
    server.max_per_client = 5
    server.max_connections = 8
    held = [await _connect(agent, "127.0.0.30") for _ in range(5)]
    await asyncio.sleep(0.1)
    reader, writer = await _connect(agent, "127.0.0.30")
    async with asyncio.timeout(5):
        assert (await reader.read()).startswith(b"HTTP/1.1 503")
    writer.close()
    # Another client is still served, until the total is reached too.
    more = [await _connect(agent, "127.0.0.31") for _ in range(3)]
    await asyncio.sleep(0.1)
    reader, writer = await _connect(agent, "127.0.0.32")
    async with asyncio.timeout(5):
        assert (await reader.read()).startswith(b"HTTP/1.1 503")
    writer.close()
    assert server.refused == 2
    for _, w in held + more:
        w.close()
    await eventually(lambda: is_true(server.open_connections == 0), timeout=15)
    async with httpx.AsyncClient(trust_env=False, timeout=5) as http:
        assert (await http.get(agent.api_endpoint + "/healthz")).status_code == 200


async def test_the_runtime_api_token_file_is_private_from_its_creation(cluster, make_agent,
                                                                      node_root):
    root = node_root / "tok"
    root.mkdir()
    planted = root / "api-token"
    planted.write_text("old")
    os.chmod(planted, 0o644)
    fd = os.open(planted, os.O_RDONLY)  # a reader holding the old file open
    try:
        agent = await make_agent(root_dir=root)
        st = (root / "api-token").stat()
        assert st.st_mode & 0o777 == 0o600
        assert (root / "api-token").read_text() == agent.api_token
        assert os.read(fd, 100) == b"old"  # the open file never sees the token
    finally:
        os.close(fd)


# --- the store -----------------------------------------------------------------------------

async def test_a_full_disk_makes_the_store_read_only_loudly_and_it_recovers(caplog,
                                                                          region_dir):
    member_dir = region_dir / "members" / "zone-a-1"
    member_dir.mkdir(parents=True)
    # The member's store on a small disk of its own, which another tenant of it fills.
    with _tmpfs(16, at=member_dir):
        region = await Region.open(region_dir, zones=1, nodes_per_zone=0, runtime="sim")
        await region.start()
        member = region.members[0]
        filler = member_dir / "filler"
        try:
            _fill(filler)
            with pytest.raises(ApiError):
                for i in range(1000):
                    await member.client.create(CONFIGMAPS, {
                        "metadata": {"name": f"c{i}"}, "data": {"x": "y" * 8000}},
                        namespace="pincompute-system")
            assert not member.store.healthy
            assert "STORE READ-ONLY" in caplog.text
            assert str(member.path) in (member.store.read_only_reason or "")
            async with httpx.AsyncClient(trust_env=False, timeout=5) as http:
                answer = await http.get(region.health.url + "/readyz")
                assert answer.status_code == 503
                assert member.name in answer.text
                assert (await http.get(region.health.url + "/healthz")).status_code == 200

            async def flagged():
                mc = await region.host.client.get(MEMBERCLUSTERS, member.name)
                return condition_true(mc, STORE_READ_ONLY)
            await eventually(flagged, timeout=15)
        finally:
            await region.close()
        # Space back, restart: the store resumes, the condition clears, /readyz is 200.
        filler.unlink()
        region = await Region.open(region_dir, zones=1, nodes_per_zone=0, runtime="sim")
        await region.start()
        try:
            member = region.members[0]
            assert member.store.healthy
            await member.client.create(CONFIGMAPS, {"metadata": {"name": "after"}},
                                       namespace="pincompute-system")
            async with httpx.AsyncClient(trust_env=False, timeout=5) as http:
                assert (await http.get(region.health.url + "/readyz")).status_code == 200

            async def cleared():
                mc = await region.host.client.get(MEMBERCLUSTERS, member.name)
                cond = get_condition(mc, STORE_READ_ONLY)
                return cond is not None and cond["status"] == "False"
            await eventually(cleared, timeout=15)
        finally:
            await region.close()


# --- helpers -------------------------------------------------------------------------------

@contextlib.contextmanager
def _tmpfs(mib: int, *, at: Path | None = None):
    """A tmpfs of ``mib`` MiB (a small disk to fill) at ``at`` or a new directory."""
    where = at if at is not None else Path(tempfile.mkdtemp(prefix="pincompute-disk-"))
    os.chmod(where, 0o711)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={mib}m,mode=0711", "tmpfs",
                           str(where)], capture_output=True, text=True, check=False)
    require(done.returncode == 0, f"cannot mount a tmpfs: {done.stderr.strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)
        if at is None:
            with contextlib.suppress(OSError):
                where.rmdir()


def _fill(path: Path) -> None:
    """Write zeros until the filesystem is full (unbuffered: nothing left to flush)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with contextlib.suppress(OSError):
            while True:
                os.write(fd, b"\0" * 65536)
    finally:
        os.close(fd)
