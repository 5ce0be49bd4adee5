"""The process runtime: tenant isolation (uid, files, signals), cgroup limits, OOMKilled, usage."""

from __future__ import annotations

import asyncio
import os
import textwrap
from pathlib import Path

import pytest

from pincompute.kube.resource import CONFIGMAPS, NODES, PODS
from pincompute.node.cgroups import CFS_PERIOD_US
from pincompute.node.probes import MAX_PROBE_OUTPUT
from pincompute.node.processruntime import limits_of
from pincompute.node.runtimeapi import NodeClient

from .conftest import container_status, eventually, get_pod, make_pod, py
from .test_agent import phase_is, ready

root_only = pytest.mark.skipif(os.geteuid() != 0, reason="per-pod uids need root")


def test_limits_are_read_from_the_container():
    limits = limits_of({"resources": {"limits": {"cpu": "500m", "memory": "64Mi"}}})
    assert (limits.cpu_millis, limits.cpu_request_millis, limits.memory_bytes) == (
        500, 500, 64 * 2**20)
    assert limits_of({}).memory_bytes is None
    # A node pool's default applies to containers declaring no memory limit only.
    assert limits_of({}, default_memory=2**30).memory_bytes == 2**30
    assert limits_of({"resources": {"limits": {"memory": "64Mi"}}},
                     default_memory=2**30).memory_bytes == 64 * 2**20


async def test_exec_probe_output_is_capped(cluster, make_agent):
    agent = await make_agent()
    await cluster.create(PODS, make_pod("talker", [{"name": "main", "command": ["sleep", "60"]}]),
                         namespace="default")
    await eventually(ready(cluster, "talker"))
    worker = agent.find("default", "talker")
    rec = worker.records["main"]
    probe = agent.runtime.exec_probe(worker.sandbox, rec.spec, rec.env)
    code, output = await probe(["sh", "-c", "head -c 5000000 /dev/zero; exit 3"], 10.0)
    assert code == 3
    assert len(output) == MAX_PROBE_OUTPUT  # read to the end, kept only the cap


@root_only
async def test_one_tenant_can_neither_read_nor_signal_another(cluster, make_agent):
    agent = await make_agent()
    writer = textwrap.dedent("""
        import os, time
        path = os.path.join(os.environ["PINCOMPUTE_VOLUME_DATA"], "secret.txt")
        with open(path, "w") as f:
            f.write("tenant-a secret")
        open(os.environ["HOME"] + "/written", "w").close()
        while True:
            time.sleep(0.1)
    """)
    await cluster.create(PODS, make_pod("a", [{
        "name": "main", "command": py(writer),
        "volumeMounts": [{"name": "data", "mountPath": "/data"}],
        "readinessProbe": {"exec": {"command": ["sh", "-c", "test -f $HOME/written"]},
                           "periodSeconds": 1}}],
        volumes=[{"name": "data", "emptyDir": {}}], namespace="team-a"), namespace="team-a")
    await cluster.create(PODS, make_pod("b", [{"name": "main", "command": ["sleep", "60"]}],
                                        namespace="team-b"), namespace="team-b")
    await eventually(ready(cluster, "a", "team-a"))
    await eventually(ready(cluster, "b", "team-b"))
    a = agent.find("team-a", "a")
    b = agent.find("team-b", "b")
    assert a.sandbox.uid != b.sandbox.uid
    assert 0 not in (a.sandbox.uid, b.sandbox.uid)
    pod_dir = Path(a.sandbox.extra["dir"])
    # The pod's directory is root's, passable by the pod's group only; its volume is the pod's.
    assert (pod_dir.stat().st_uid, pod_dir.stat().st_gid) == (0, a.sandbox.gid)
    assert pod_dir.stat().st_mode & 0o777 == 0o710
    data = (pod_dir / "volumes" / "data").stat()
    assert (data.st_uid, data.st_mode & 0o777) == (a.sandbox.uid, 0o700)
    secret = pod_dir / "volumes" / "data" / "secret.txt"
    assert secret.read_text() == "tenant-a secret"  # the agent (root) can; tenants cannot
    a_pid = a.records["main"].instance.pid

    probe = textwrap.dedent(f"""
        import os
        try:
            open({str(secret)!r}).read()
            print("read: allowed")
        except (PermissionError, FileNotFoundError):  # a private /tmp may hide it altogether
            print("read: denied")
        try:
            os.kill({a_pid}, 0)
            print("signal: allowed")
        except (PermissionError, ProcessLookupError):  # with pid namespaces: not even seen
            print("signal: denied")
        print("uid:", os.getuid())
    """)
    client = NodeClient(agent.api_endpoint, agent.api_token)
    result = await client.exec("team-b", "b", "main", py(probe))
    out = result.stdout.decode()
    assert "read: denied" in out, result
    assert "signal: denied" in out
    assert f"uid: {b.sandbox.uid}" in out
    # Within its own pod, a tenant does both (its own namespace numbers the main process 2).
    own_pid = 2 if agent.runtime.namespaces else a_pid
    own = await client.exec("team-a", "a", "main",
                            py(f"import os; print(open({str(secret)!r}).read()); "
                               f"os.kill({own_pid}, 0); print('ok')"))
    assert own.stdout.decode().split() == ["tenant-a", "secret", "ok"]


def _cgroups_or_skip(agent):
    if agent.runtime.cgroups is None:
        pytest.skip(f"no writable cgroups here: {agent.degraded}")
    return agent.runtime.cgroups


async def test_memory_limit_kill_is_reported_as_oomkilled(cluster, make_agent):
    agent = await make_agent()
    _cgroups_or_skip(agent)
    hog = "b = []\nwhile True: b.append(bytearray(8 << 20)); b[-1][::4096] = b'x' * 2048"
    await cluster.create(PODS, make_pod("hog", [{
        "name": "main", "command": py(hog),
        "resources": {"limits": {"memory": "48Mi"}}}], restartPolicy="Never"),
        namespace="default")
    pod = await eventually(phase_is(cluster, "hog", "Failed", "Succeeded"))
    term = container_status(pod, "main")["state"]["terminated"]
    assert term["reason"] == "OOMKilled"
    assert term["exitCode"] == 137


async def test_cpu_and_memory_limits_are_written_to_the_cgroup(cluster, make_agent):
    agent = await make_agent()
    _cgroups_or_skip(agent)
    await cluster.create(PODS, make_pod("limited", [{
        "name": "main", "command": ["sleep", "60"],
        "resources": {"requests": {"cpu": "100m"},
                      "limits": {"cpu": "200m", "memory": "64Mi"}}}]), namespace="default")
    await eventually(ready(cluster, "limited"))
    group = agent.find("default", "limited").records["main"].instance.cgroup
    if group.version == "v1":
        assert (group.dirs["cpu"] / "cpu.cfs_quota_us").read_text().strip() == str(
            200 * CFS_PERIOD_US // 1000)
        assert (group.dirs["cpu"] / "cpu.shares").read_text().strip() == "102"
        assert int((group.dirs["memory"] / "memory.limit_in_bytes").read_text()) == 64 * 2**20
    pid = agent.find("default", "limited").records["main"].instance.pid
    assert pid in group.pids()


async def test_usage_reads_real_cpu_and_memory(cluster, make_agent):
    agent = await make_agent()
    burn = "x = bytearray(32 << 20)\nx[::4096] = b'y' * 8192\nwhile True: pass"
    await cluster.create(PODS, make_pod("burner", [{
        "name": "main", "command": py(burn)}]), namespace="default")
    await eventually(ready(cluster, "burner"))
    worker = agent.find("default", "burner")
    worker.usage()  # first sample: the rate needs two

    async def busy():
        await asyncio.sleep(0.3)
        u = worker.usage().get("main")
        return u if u and u["cpuMillis"] > 200 and u["memoryBytes"] > 16 * 2**20 else None

    usage = await eventually(busy)
    assert usage["cpuSeconds"] > 0


async def test_isolation_off_runs_degraded_and_says_so(cluster, make_agent):
    agent = await make_agent(isolation="off")
    assert agent.degraded
    node = await cluster.get(NODES, "n1")
    conds = {c["type"]: c for c in node["status"]["conditions"]}
    assert conds["IsolationDegraded"]["status"] == "True"
    assert conds["Ready"]["status"] == "True"
    await cluster.create(PODS, make_pod("p", [{"name": "main", "command": ["sleep", "60"]}]),
                         namespace="default")
    await eventually(ready(cluster, "p"))
    assert agent.find("default", "p").sandbox.uid is None
    assert (await get_pod(cluster, "p"))["status"]["phase"] == "Running"


async def test_a_signal_reaches_each_process_once(monkeypatch):
    """Through the cgroup when it holds the processes, else the process group — never both
    (a SIGTERM handler that ran twice logged its shutdown twice)."""
    import signal as signals
    from types import SimpleNamespace

    from pincompute.node.processruntime import ProcessInstance

    sent: list[tuple[str, int]] = []
    monkeypatch.setattr("os.killpg", lambda pid, sig: sent.append(("group", sig)))

    class Cgroup:
        def __init__(self, members: int) -> None:
            self.members = members

        def kill_all(self, sig: int) -> int:
            sent.append(("cgroup", sig))
            return self.members

    running = asyncio.get_running_loop().create_future()
    ProcessInstance.signal(SimpleNamespace(exited=running, pid=4242, cgroup=Cgroup(2)),
                           signals.SIGTERM)
    assert sent == [("cgroup", signals.SIGTERM)]
    sent.clear()
    ProcessInstance.signal(SimpleNamespace(exited=running, pid=4242, cgroup=Cgroup(0)),
                           signals.SIGTERM)
    assert sent == [("cgroup", signals.SIGTERM), ("group", signals.SIGTERM)]
    sent.clear()
    ProcessInstance.signal(SimpleNamespace(exited=running, pid=4242, cgroup=None),
                           signals.SIGKILL)
    assert sent == [("group", signals.SIGKILL)]


@root_only
async def test_config_files_are_readable_by_the_pod_but_not_its_to_change(cluster, make_agent):
    agent = await make_agent()
    await cluster.create(CONFIGMAPS, {"apiVersion": "v1", "kind": "ConfigMap",
                                      "metadata": {"name": "settings"},
                                      "data": {"color": "blue"}}, namespace="default")
    script = ("cat etc/settings/color; echo; "
              "(echo red > etc/settings/color) 2>/dev/null && echo changed || echo refused; "
              "exec sleep 60")
    await cluster.create(PODS, make_pod("cfg", [{
        "name": "main", "command": ["sh", "-c", script],
        "volumeMounts": [{"name": "settings", "mountPath": "/etc/settings"}]}],
        volumes=[{"name": "settings", "configMap": {"name": "settings"}}]), namespace="default")
    await eventually(ready(cluster, "cfg"))
    worker = agent.find("default", "cfg")

    async def output():
        out = b"".join([c async for c in agent.logs.read(worker.log_dir, "main")]).decode()
        return out.split() if len(out.split()) == 2 else None

    assert await eventually(output) == ["blue", "refused"]
    config = Path(worker.sandbox.extra["dir"]) / "config" / "settings"
    st = (config / "color").stat()
    assert (st.st_uid, st.st_gid, st.st_mode & 0o777) == (0, worker.sandbox.gid, 0o440)


async def test_the_node_names_the_protections_its_pods_have(cluster, make_agent):
    agent = await make_agent()
    node = await cluster.get(NODES, "n1")
    cond = {c["type"]: c for c in node["status"]["conditions"]}["IsolationDegraded"]
    active = cond["message"].rsplit("active protections: ", 1)[1].split(", ")
    assert "uid" in active
    assert ("pid-namespace" in active) == ("mount-namespace" in active) == \
        agent.runtime.namespaces
    assert ("cgroups" in active) == (agent.runtime.cgroups is not None)
