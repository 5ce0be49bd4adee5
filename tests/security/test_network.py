"""Network identity attacks: a pod takes another pod's address or the node's ports.

Each attack runs for real: pods are processes of a real node agent (process
runtime, as root, each pod its own uid), the attacker pod tries the binds
itself and reports the errno, and the victim is shown untouched — still
serving on its address, the node's forwarded host port and runtime API still
answering.  All traffic stays on loopback.  The protection is the bind guard
(:mod:`pincompute.node.bindguard`: cgroup eBPF programs on bind); the last
test covers the machine's address block registry
(:mod:`pincompute.node.blockregistry`) with two real regions.
"""

from __future__ import annotations

import errno
import ipaddress
import json
import os
import shutil
import socket
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from pincompute.kube.backends.embedded import EmbeddedStore
from pincompute.kube.objects import condition_true
from pincompute.kube.protocol import KubeClient
from pincompute.kube.resource import NAMESPACES, NODES, PODS
from pincompute.model.wellknown import SYSTEM_NAMESPACE
from pincompute.node import NodeAgent, NodeConfig, NodeIdentity, bindguard
from pincompute.node.blockregistry import STATE_DIR_ENV
from pincompute.node.runtimeapi import NodeClient
from pincompute.region import Region
from tests.waiting import eventually

from .conftest import require

PYTHON = "/usr/bin/python3" if os.access("/usr/bin/python3", os.X_OK) else "python3"
REFUSED = {errno.EPERM, errno.EADDRNOTAVAIL}

# A server answering every GET with its pod's name, on $PINCOMPUTE_POD_IP:8080.
SERVER = """
import http.server, os
class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.end_headers()
        self.wfile.write(os.environ["PINCOMPUTE_POD_NAME"].encode())
    def log_message(self, *args):
        pass
http.server.HTTPServer((os.environ["PINCOMPUTE_POD_IP"], 8080), Handler).serve_forever()
"""

# The attacker: bind each (host, port) as hard as it can (SO_REUSEADDR and SO_REUSEPORT,
# then listen), print the errno of each (0 if it got it) as JSON.
ATTACK = """
import json, socket, sys
results = []
for host, port in json.loads(sys.argv[1]):
    s = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        s.bind((host, port))
        s.listen()
        results.append(0)
    except OSError as e:
        results.append(e.errno)
print(json.dumps(results), flush=True)
"""


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def pod(name: str, containers: list[dict[str, Any]], **spec: Any) -> dict[str, Any]:
    for c in containers:
        c.setdefault("image", "local")
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
            "spec": {"nodeName": "n1", "containers": containers,
                     "terminationGracePeriodSeconds": 1, **spec}}


def server(name: str) -> dict[str, Any]:
    return pod(name, [{"name": "web", "command": [PYTHON, "-c", SERVER],
                       "readinessProbe": {"tcpSocket": {"port": 8080}, "periodSeconds": 1}}])


@pytest.fixture
def state_dir(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A registry of address blocks for this test only."""
    path = Path(tempfile.mkdtemp(prefix="pincompute-state-"))
    monkeypatch.setenv(STATE_DIR_ENV, str(path))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
async def node(as_root: None, state_dir: Path) -> AsyncIterator[tuple[KubeClient, NodeAgent]]:
    """A real node agent (process runtime) on an embedded cluster, its bind guard on."""
    require(bindguard.available(), f"the bind guard needs cgroup eBPF: {bindguard.probe()}")
    root = Path(tempfile.mkdtemp(prefix="pincompute-net-attack-"))
    root.chmod(0o711)
    store = await EmbeddedStore.open(path=None)
    client = store.client()
    await client.create(NAMESPACES, {"metadata": {"name": "default"}})
    agent = NodeAgent(client, NodeConfig(identity=NodeIdentity(name="n1"), runtime="process",
                                         root_dir=root / "n1", storage_dir=root / "storage",
                                         probe_scale=0.2, shutdown_grace=1.0))
    await agent.start()
    try:
        assert not any("bind guard" in d for d in agent.degraded), agent.degraded
        yield client, agent
    finally:
        await agent.stop()
        await store.close()
        shutil.rmtree(root, ignore_errors=True)


async def ready(client: KubeClient, name: str) -> dict[str, Any]:
    async def check() -> dict[str, Any] | None:
        p = await client.get(PODS, name, namespace="default")
        return p if condition_true(p, "Ready") else None
    return await eventually(check, timeout=20, what=f"{name} to be ready")


async def attack(client: KubeClient, agent: NodeAgent, targets: list[tuple[str, int]],
                 name: str = "attacker") -> list[int]:
    """Run the attacker pod against ``targets``; the errno of each bind (0: it got it)."""
    await client.create(PODS, pod(name, [{
        "name": "main", "command": [PYTHON, "-c", ATTACK, json.dumps(targets)]}],
        restartPolicy="Never"), namespace="default")

    async def finished() -> dict[str, Any] | None:
        p = await client.get(PODS, name, namespace="default")
        return p if (p.get("status") or {}).get("phase") in ("Succeeded", "Failed") else None

    done = await eventually(finished, timeout=20, what=f"{name} to finish")
    assert done["status"]["phase"] == "Succeeded", done["status"]
    worker = agent.find("default", name)
    assert worker is not None and agent.logs is not None
    out = b"".join([c async for c in agent.logs.read(worker.log_dir, "main")])
    return list(json.loads(out))


async def answer(url: str) -> str:
    async with httpx.AsyncClient(trust_env=False, timeout=5) as http:
        resp = await http.get(url)
    assert resp.status_code == 200
    return resp.text


async def test_pod_cannot_bind_another_pods_address_and_port(node) -> None:
    client, agent = node
    await client.create(PODS, server("victim"), namespace="default")
    victim_ip = (await ready(client, "victim"))["status"]["podIP"]
    other_port = free_port(victim_ip)

    got = await attack(client, agent, [(victim_ip, 8080), (victim_ip, other_port),
                                       (f"::ffff:{victim_ip}", other_port)])

    assert set(got) <= REFUSED, got
    # The victim still serves, on its own address, the same process.
    assert await answer(f"http://{victim_ip}:8080/") == "victim"
    victim = await client.get(PODS, "victim", namespace="default")
    assert victim["status"]["containerStatuses"][0]["restartCount"] == 0


async def test_exec_session_cannot_bind_another_pods_address(node) -> None:
    """A command run in a pod through the runtime API (``pincompute exec``) is the pod too."""
    client, agent = node
    await client.create(PODS, server("victim"), namespace="default")
    await client.create(PODS, pod("box", [{"name": "main", "command": ["sleep", "600"]}]),
                        namespace="default")
    victim_ip = (await ready(client, "victim"))["status"]["podIP"]
    await ready(client, "box")
    assert agent.api_endpoint is not None

    result = await NodeClient(agent.api_endpoint, agent.api_token).exec(
        "default", "box", "main",
        [PYTHON, "-c", ATTACK, json.dumps([(victim_ip, free_port(victim_ip)),
                                           ("0.0.0.0", 0)])])

    assert result.exit_code == 0, result.stderr
    refused, _ = json.loads(result.stdout)
    assert refused in REFUSED
    assert await answer(f"http://{victim_ip}:8080/") == "victim"


async def test_pod_cannot_bind_a_host_port_it_did_not_declare(node) -> None:
    client, agent = node
    node_ip = agent.networking.node_ip
    host_port = free_port(node_ip)
    await client.create(PODS, pod("exposed", [{
        "name": "web", "command": [PYTHON, "-c", SERVER],
        "ports": [{"containerPort": 8080, "hostPort": host_port}],
        "readinessProbe": {"tcpSocket": {"port": 8080}, "periodSeconds": 1}}],
        networkMode="bridge"), namespace="default")
    await ready(client, "exposed")
    undeclared = free_port(node_ip)
    assert agent.api_server is not None
    api_port = agent.api_server.port

    got = await attack(client, agent, [
        (node_ip, undeclared),            # a host port nobody declared
        (node_ip, host_port),             # another pod's declared host port
        (node_ip, api_port),              # the node's runtime API
        ("127.0.0.1", free_port()),       # the machine's own loopback address
        ("::1", 0),                       # and its IPv6 one
    ])

    assert set(got) <= REFUSED, got
    # The host side is untouched: the forwarded port reaches its pod, the API answers.
    assert await answer(f"http://{node_ip}:{host_port}/") == "exposed"
    with socket.create_connection((node_ip, api_port), timeout=5):
        pass


async def test_pod_binding_the_wildcard_lands_on_its_own_address(node) -> None:
    client, agent = node
    port = free_port()
    # One replica binds 0.0.0.0, the other the dual-stack "::" (python -m http.server's
    # default): both ask for every address and the same port.
    for name, bind in (("wild-4", ["--bind", "0.0.0.0"]), ("wild-6", [])):
        await client.create(PODS, pod(name, [{
            "name": "web", "command": [PYTHON, "-m", "http.server", str(port), *bind],
            "readinessProbe": {"httpGet": {"port": port, "path": "/"}, "periodSeconds": 1}}]),
            namespace="default")
    ips = [(await ready(client, name))["status"]["podIP"] for name in ("wild-4", "wild-6")]

    assert ips[0] != ips[1]
    for ip in ips:
        await answer(f"http://{ip}:{port}/")
    # Neither holds the port on any other address: not the machine's, not the node's.
    for other in ("127.0.0.1", agent.networking.node_ip):
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection((other, port), timeout=5).close()


async def test_two_regions_on_one_machine_get_disjoint_address_blocks(
        as_root: None, state_dir: Path) -> None:
    parents = [Path(tempfile.mkdtemp(prefix="pincompute-region-")) for _ in range(2)]
    regions: list[Region] = []
    try:
        for parent in parents:
            parent.chmod(0o711)
            region = await Region.open(parent / "data", zones=2, nodes_per_zone=1,
                                       runtime="process", lease_duration=4)
            regions.append(region)
            await region.start()
        blocks = []
        for region in regions:
            for member in region.members:
                nodes = (await member.client.list(NODES)).items
                assert nodes, f"{member.name} has no node"
                blocks += [ipaddress.IPv4Network(n["spec"]["podCIDR"]) for n in nodes]
        assert len(blocks) == 4
        assert not any(a.overlaps(b) for i, a in enumerate(blocks) for b in blocks[i + 1:]), \
            blocks
    finally:
        for region in regions:
            await region.close()
        for parent in parents:
            shutil.rmtree(parent, ignore_errors=True)


async def test_a_second_region_with_the_same_node_names_leaves_the_first_ones_pods_alone(
        as_root: None, state_dir: Path) -> None:
    """Both regions name their nodes ``zone-a-1-general-0``: the machine-wide things a node
    keeps (cgroups, pod uids, bind guards) must not be taken for the other's leftovers."""
    parents = [Path(tempfile.mkdtemp(prefix="pincompute-region-")) for _ in range(2)]
    regions: list[Region] = []
    try:
        parents[0].chmod(0o711)
        first = await Region.open(parents[0] / "data", zones=1, nodes_per_zone=1,
                                  runtime="process", lease_duration=4)
        regions.append(first)
        await first.start()
        member = first.members[0]
        await member.client.create(PODS, {"metadata": {"name": "sleeper"}, "spec": {
            "schedulerName": "pincompute", "containers": [{
                "name": "main", "image": "local", "command": ["sleep", "600"]}]}},
            namespace=SYSTEM_NAMESPACE)

        async def running() -> dict[str, Any] | None:
            p = await member.client.get(PODS, "sleeper", namespace=SYSTEM_NAMESPACE)
            return p if (p.get("status") or {}).get("phase") == "Running" else None

        await eventually(running, timeout=20, what="the first region's pod to run")
        agent = next(iter(first.provisioners[member.name].all_agents().values()))
        worker = agent.find(SYSTEM_NAMESPACE, "sleeper")
        assert worker is not None
        uid = agent.runtime.uids.allocate(worker.uid)  # type: ignore[union-attr]

        parents[1].chmod(0o711)
        second = await Region.open(parents[1] / "data", zones=1, nodes_per_zone=1,
                                   runtime="process", lease_duration=4)
        regions.append(second)
        await second.start()
        await second.close()
        regions.remove(second)

        pod = await member.client.get(PODS, "sleeper", namespace=SYSTEM_NAMESPACE)
        status = pod["status"]["containerStatuses"][0]
        assert "running" in status["state"] and status["restartCount"] == 0, status
        assert (agent.runtime.uids.registry / str(uid)).exists()  # type: ignore[union-attr]
    finally:
        for region in regions:
            await region.close()
        for parent in parents:
            shutil.rmtree(parent, ignore_errors=True)
