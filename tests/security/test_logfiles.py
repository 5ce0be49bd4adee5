"""Files a pod leaves for the root-run agent to read or write for it: its logging volume
(streamed by the node runtime API) and its config and discovery volumes (rewritten by the
agent when their objects change).

Each attack runs for real on a process node as root, the pod under its own uid; a root-only
secret outside the pod's tree must never be served, and the sentinel keeps its owner, mode
and content."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from pincompute.kube.protocol import KubeClient
from pincompute.kube.resource import CONFIGMAPS, PODS
from pincompute.model.wellknown import DISCOVERY_CONFIGMAP, DISCOVERY_KEY
from pincompute.node.runtimeapi import NodeAPIError, NodeClient
from tests.node.conftest import eventually, make_pod
from tests.node.test_agent import ready
from tests.security import test_filesystem as fs
from tests.security.test_filesystem import Agents, Sentinel

# The attack fixtures of the filesystem tier: a node agent as root, a validated member
# store, the sentinel.
agents, member, sentinel, node_root = fs.agents, fs.member, fs.sentinel, fs.node_root

SECRET = "root-only secret 7f3a\n"

PLANT = """
d=$PINCOMPUTE_ROOT/logging
ln -s "$SECRET_FILE" "$d/app.log"
ln "$SECRET_FILE" "$d/hard.log" 2>/dev/null && echo "hard link made"
mkfifo "$d/fifo.log"
echo mine > "$d/real.log"
disc=$PINCOMPUTE_ROOT/etc/pincompute/discovery
echo '{"web": "pwned"}' > "$disc/endpoints.json" 2>/dev/null && echo WROTE-FILE
ln -sfn /etc "$disc/..data" 2>/dev/null && echo WROTE-LINK
mv "$disc/..data" "$disc/old" 2>/dev/null && echo WROTE-MOVE
echo x > "$PINCOMPUTE_ROOT/config/key" 2>/dev/null && echo WROTE-CONFIG
echo planted
exec sleep 3600
"""


def secret_file(sentinel: Sentinel) -> Path:
    path = sentinel.dir / "shadow"
    path.write_text(SECRET)
    os.chmod(path, 0o600)
    sentinel.before = sentinel.state()
    return path


async def planted_pod(client: KubeClient, agents: Agents, sentinel: Sentinel
                      ) -> tuple[NodeClient, str, Path]:
    agent = await agents(client)
    secret = secret_file(sentinel)
    await client.create(CONFIGMAPS, {"metadata": {"name": "cfg"}, "data": {"key": "v1"}},
                        namespace="default")
    await client.create(PODS, make_pod("p", [{
        "name": "main", "image": "local", "command": ["sh", "-c", PLANT],
        "env": [{"name": "SECRET_FILE", "value": str(secret)}],
        "volumeMounts": [{"name": "logs", "mountPath": "/logging"},
                         {"name": "cfg", "mountPath": "/config"}]}],
        volumes=[{"name": "logs", "logging": {}}, {"name": "cfg", "configMap": {"name": "cfg"}}]),
        namespace="default")
    await eventually(ready(client, "p"))
    api = NodeClient(agent.api_endpoint, agent.api_token)

    async def output() -> str:
        text = b"".join([c async for c in api.logs("default", "p", "main")]).decode()
        return text if "planted" in text else ""

    worker = agent.find("default", "p")
    assert worker is not None and worker.sandbox is not None
    return api, await eventually(output), Path(worker.sandbox.extra["dir"])


async def fetch(api: NodeClient, name: str) -> tuple[int, bytes]:
    try:
        body = b"".join([c async for c in api.logs("default", "p", "main", file=name)])
    except NodeAPIError as exc:
        return exc.code, exc.message.encode()
    return 200, body


async def test_log_file_link_to_a_host_secret_is_refused(
        as_root: None, sentinel: Sentinel, member: KubeClient, agents: Agents) -> None:
    """A pod links ``app.log -> <root-only file>`` (and tries a hard link and a FIFO) in its
    logging volume, then someone streams its log files: the agent, root, must not read the
    host file for it."""
    api, _, pod_dir = await planted_pod(member, agents, sentinel)
    logs = pod_dir / "logging" / "logs"
    assert os.readlink(logs / "app.log") == str(sentinel.dir / "shadow")  # the attack ran
    assert (logs / "fifo.log").is_fifo()
    for name in ("app.log", "hard.log", "fifo.log", "../../../" + str(sentinel.dir / "shadow")):
        code, body = await fetch(api, name)
        assert code == 404, (name, code)
        assert SECRET.encode() not in body
    assert await fetch(api, "real.log") == (200, b"mine\n")
    listed = await api.log_files("default", "p", "main")
    assert [f["name"] for f in listed] == ["real.log"]
    assert sentinel.untouched()


async def test_pod_cannot_rewrite_its_config_or_discovery_volume(
        as_root: None, sentinel: Sentinel, member: KubeClient, agents: Agents) -> None:
    """The agent rewrites config and discovery volumes whenever their objects change: a pod
    that could plant a link there would steer root's writes.  They are root's, read-only to
    the pod; its attempts fail and later updates still land, inside the pod's tree."""
    api, out, _ = await planted_pod(member, agents, sentinel)
    assert "WROTE" not in out
    doc = {"web": [{"ip": "127.0.0.9", "ports": [], "zone": "", "node": "n1", "pod": "w"}]}
    await member.create(CONFIGMAPS, {"metadata": {"name": DISCOVERY_CONFIGMAP},
                                     "data": {DISCOVERY_KEY: json.dumps(doc)}},
                        namespace="default")
    cm = await member.get(CONFIGMAPS, "cfg", namespace="default")
    cm["data"]["key"] = "v2"
    await member.update(CONFIGMAPS, cm)

    async def updated() -> Any:
        result = await api.exec("default", "p", "main", [
            "sh", "-c", "cat $PINCOMPUTE_DISCOVERY_FILE; echo; cat $PINCOMPUTE_ROOT/config/key"])
        lines = result.stdout.decode().splitlines()
        return lines if len(lines) == 2 and lines[1] == "v2" else None

    lines = await eventually(updated, timeout=15)
    assert json.loads(lines[0]) == doc
    assert sentinel.untouched()

