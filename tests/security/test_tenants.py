"""Data between tenants: each attack runs for real, from one pod against another tenant's.

A real node agent with the ``process`` runtime, as root: pods run as their own
uids, in their own pid and mount namespaces.  Tenant A keeps something (a file
in its persistent volume, in ``/tmp`` and ``/dev/shm``, a Secret expanded into
its arguments); tenant B's pod tries to reach it through the node API's exec,
as a tenant would from inside its container, and fails — and what A left on the
host stays as it was.
"""

from __future__ import annotations

import os
import stat
import textwrap
import uuid
from pathlib import Path
from typing import Any

import pytest

from pincompute.kube.errors import NotFound
from pincompute.kube.protocol import KubeClient
from pincompute.kube.resource import PODS, SECRETS
from pincompute.node import NodeAgent
from pincompute.node.namespaces import probe
from pincompute.node.runtimeapi import NodeClient
from tests.node import conftest as node_fixtures
from tests.node.conftest import eventually, make_pod, py
from tests.node.test_agent import ready

from .conftest import require

# The node tier's fixtures: an embedded cluster, real node agents, their directory.
cluster = node_fixtures.cluster
make_agent = node_fixtures.make_agent
node_root = node_fixtures.node_root

FIRST_UID = 281_000


@pytest.fixture
def namespaces_available(as_root: None) -> None:
    why = probe()
    require(why is None, f"pod namespaces are not available here: {why}")


def idle(code: str = "") -> list[str]:
    """A container that runs ``code`` once, says so, then stays up."""
    body = textwrap.dedent(code) + "\nopen(os.environ['HOME'] + '/done', 'w').close()\n" \
        "while True:\n    time.sleep(0.2)\n"
    return py("import os, sys, time\n" + body)


def done_probe() -> dict[str, Any]:
    return {"exec": {"command": ["sh", "-c", "test -f $HOME/done"]}, "periodSeconds": 1}


async def start(cluster: KubeClient, name: str, namespace: str, command: list[str],
                **extra: Any) -> None:
    volumes = extra.pop("volumes", [])
    await cluster.create(PODS, make_pod(name, [{
        "name": "main", "command": command, "readinessProbe": done_probe(), **extra}],
        volumes=volumes, namespace=namespace), namespace=namespace)
    await eventually(ready(cluster, name, namespace), timeout=30)


async def run_in(agent: NodeAgent, namespace: str, pod: str, code: str) -> str:
    """What ``code`` prints, run by exec inside the pod's container (as a tenant would)."""
    client = NodeClient(agent.api_endpoint, agent.api_token)
    result = await client.exec(namespace, pod, "main", py("import os\n" + textwrap.dedent(code)))
    assert result.exit_code == 0, result
    return result.stdout.decode()


async def gone(cluster: KubeClient, name: str, namespace: str) -> None:
    await cluster.delete(PODS, name, namespace=namespace)

    async def deleted() -> bool:
        try:
            await cluster.get(PODS, name, namespace=namespace)
        except NotFound:
            return True
        return False

    await eventually(deleted, timeout=30)


async def test_a_pod_given_a_released_uid_cannot_read_the_previous_pods_volume(
        cluster: KubeClient, make_agent: Any, namespaces_available: None,
        node_root: Path) -> None:
    # One uid for the whole node: B is bound to get A's uid once A is gone.
    agent = await make_agent(uid_range=(FIRST_UID, 1), uid_quarantine=0.3)
    storage = node_root / "storage"
    await start(cluster, "a", "team-a", idle("""
        with open(os.environ["PINCOMPUTE_VOLUME_DATA"] + "/secret.txt", "w") as f:
            f.write("tenant-a secret")
        os.chmod(os.environ["PINCOMPUTE_VOLUME_DATA"] + "/secret.txt", 0o600)
    """), volumeMounts=[{"name": "data", "mountPath": "/data"}],
        volumes=[{"name": "data", "persistent": {}}])
    uid_a = agent.find("team-a", "a").sandbox.uid
    volume = storage / "persistent" / "team-a" / "pod-a" / "data"
    secret = volume / "secret.txt"
    assert secret.stat().st_uid == uid_a  # A's while it runs
    await gone(cluster, "a", "team-a")

    await start(cluster, "b", "team-b", idle())
    assert agent.find("team-b", "b").sandbox.uid == uid_a  # the attack's premise
    out = await run_in(agent, "team-b", "b", f"""
        for path in ({str(secret)!r}, {str(volume)!r}):
            try:
                open(path).read() if path.endswith(".txt") else os.listdir(path)
                print("allowed")
            except PermissionError:
                print("denied")
    """)
    assert out.split() == ["denied", "denied"]
    # A's data is intact, and nobody's but root's until A's owner runs again.
    assert secret.read_text() == "tenant-a secret"
    for path in (volume, secret):
        assert (path.stat().st_uid, path.stat().st_gid) == (0, 0)
    assert stat.S_IMODE(volume.stat().st_mode) == 0o700


async def test_a_pod_cannot_read_another_pods_tmp_or_dev_shm(
        cluster: KubeClient, make_agent: Any, namespaces_available: None) -> None:
    agent = await make_agent()
    mark = f"tenant-a-{uuid.uuid4().hex[:8]}"
    await start(cluster, "a", "team-a", idle(f"""
        for d in ("/tmp", "/dev/shm"):
            with open(d + "/{mark}", "w") as f:
                f.write("tenant-a secret")
            os.chmod(d + "/{mark}", 0o644)  # even readable by all
    """))
    own = await run_in(agent, "team-a", "a", f"print(open('/tmp/{mark}').read())")
    assert own.strip() == "tenant-a secret"  # A's own exec sees it
    await start(cluster, "b", "team-b", idle())
    out = await run_in(agent, "team-b", "b", f"""
        for d in ("/tmp", "/dev/shm"):
            try:
                open(d + "/{mark}").read()
                print("read")
            except FileNotFoundError:
                print("absent")
    """)
    assert out.split() == ["absent", "absent"]
    # Nothing of A's reached the host's /tmp or /dev/shm either.
    assert not Path(f"/tmp/{mark}").exists() and not Path(f"/dev/shm/{mark}").exists()


async def test_a_pod_cannot_see_another_pods_secret_arguments_in_proc(
        cluster: KubeClient, make_agent: Any, namespaces_available: None) -> None:
    agent = await make_agent()
    token = f"s3cr3t-{uuid.uuid4().hex}"
    await cluster.create(SECRETS, {"apiVersion": "v1", "kind": "Secret",
                                   "metadata": {"name": "api", "namespace": "team-a"},
                                   "stringData": {"token": token}}, namespace="team-a")
    await start(cluster, "a", "team-a", [*idle(), "--token=$(TOKEN)"],
                env=[{"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "api",
                                                                      "key": "token"}}}])
    # The premise: the expanded argument is on A's command line (the host sees it).
    a_pid = agent.find("team-a", "a").records["main"].instance.pid
    assert token in Path(f"/proc/{a_pid}/cmdline").read_text()
    await start(cluster, "b", "team-b", idle())
    out = await run_in(agent, "team-b", "b", f"""
        needle = {token[::-1]!r}[::-1]  # not written out: this command line is in /proc too
        seen = 0
        for pid in filter(str.isdigit, os.listdir("/proc")):
            try:
                seen += 1
                if needle in open(f"/proc/{{pid}}/cmdline").read():
                    print("found")
            except OSError:
                pass
        print("processes", seen)
    """)
    assert "found" not in out
    assert int(out.split()[-1]) <= 6  # only B's own: two inits, its command, the exec


async def test_a_tenant_cannot_list_other_tenants_names_under_storage(
        cluster: KubeClient, make_agent: Any, namespaces_available: None,
        node_root: Path) -> None:
    agent = await make_agent()
    storage = node_root / "storage"
    await start(cluster, "a", "team-a", idle(),
                volumeMounts=[{"name": "data", "mountPath": "/data"},
                              {"name": "files", "mountPath": "/files"}],
                volumes=[{"name": "data", "persistent": {}},
                         {"name": "files", "shared": {"share": "team-a-files"}}])
    await start(cluster, "b", "team-b", idle())
    listed = [storage / "persistent", storage / "persistent" / "team-a", storage / "shares",
              storage / "shares" / "team-a"]
    out = await run_in(agent, "team-b", "b", f"""
        for path in {[str(p) for p in listed]!r}:
            try:
                print(os.listdir(path))
            except PermissionError:
                print("denied")
    """)
    assert out.split() == ["denied"] * len(listed)
    # Traversable, not listable, root's: the names are the agent's to know.
    for path in listed:
        st = path.stat()
        assert (st.st_uid, stat.S_IMODE(st.st_mode)) == (0, 0o711), path
    assert "team-a-files" in os.listdir(storage / "shares" / "team-a")  # the share exists


async def test_a_volume_is_handed_back_even_when_the_agent_stops_under_its_pod(
        cluster: KubeClient, make_agent: Any, namespaces_available: None,
        node_root: Path) -> None:
    """No teardown ran for A: the agent stopped (its uids are released) while A was up."""
    agent = await make_agent(uid_range=(FIRST_UID, 1), uid_quarantine=0.3)
    await start(cluster, "a", "team-a", idle("""
        open(os.environ["PINCOMPUTE_VOLUME_DATA"] + "/secret.txt", "w").write("tenant-a")
    """), volumeMounts=[{"name": "data", "mountPath": "/data"}],
        volumes=[{"name": "data", "persistent": {}}])
    volume = node_root / "storage" / "persistent" / "team-a" / "pod-a" / "data"
    assert volume.stat().st_uid == FIRST_UID
    await agent.stop()
    for path in (volume, volume / "secret.txt"):
        assert (path.stat().st_uid, path.stat().st_gid) == (0, 0)
    assert (volume / "secret.txt").read_text() == "tenant-a"
