"""examples/logship.yaml on an embedded region with real processes: the log shipper runs
once per node (PinDaemon, host network) and inside the app's pod (PinSidecar), and both
count lines.

This is the member side alone: the example's objects are written straight into one
member cluster (each is its own shard there) and the app's one pod is made by hand
(``pod_for`` and ``create_pod``, which injects the sidecar).  The example as ``pincompute
up`` runs it, through the host and the federation, is tests/test_examples.py."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from pincompute.kube.objects import condition_true
from pincompute.kube.protocol import KubeClient
from pincompute.kube.resource import NODES, PODS
from pincompute.member.operator import create_pod
from pincompute.member.podtemplate import pod_for
from pincompute.model import registry
from pincompute.model.wellknown import DAEMON_POD_LABEL, SYSTEM_NAMESPACE
from pincompute.region import Region, load_documents

from .waiting import eventually

pytestmark = pytest.mark.slow

EXAMPLE = Path(__file__).parent.parent / "examples" / "logship.yaml"


async def _logs(region: Region, cluster: str, pod: dict[str, Any], container: str) -> str:
    agent = region.provisioners[cluster].agent(pod["spec"]["nodeName"])
    worker = agent.find(pod["metadata"]["namespace"], pod["metadata"]["name"])
    if worker is None:
        return ""
    return b"".join([c async for c in agent.logs.read(worker.log_dir, container)]).decode()


async def _ready(client: KubeClient, name: str, namespace: str) -> dict[str, Any] | None:
    pod = await client.get(PODS, name, namespace=namespace)
    return pod if condition_true(pod, "Ready") else None


async def test_the_log_shipper_runs_per_node_and_per_pod(region_dir: Path) -> None:
    docs = {d["kind"]: d for d in load_documents(EXAMPLE)}
    assert set(docs) == {"PinDaemon", "PinSidecar", "PinApp"}
    region = await Region.open(region_dir, zones=1, nodes_per_zone=1, runtime="process",
                               lease_duration=4, node_options={"probe_scale": 0.2})
    await region.start()
    try:
        await region.ensure_project("demo")
        member = region.members[0]
        client = member.client
        await client.create(registry.lookup("PinDaemon"), docs["PinDaemon"])
        await client.create(registry.lookup("PinSidecar"), docs["PinSidecar"])

        # Per node: one collector on the host network; lines sent to the node count.
        async def collector() -> dict[str, Any] | None:
            pods = (await client.list(PODS, namespace=SYSTEM_NAMESPACE,
                                      label_selector=f"{DAEMON_POD_LABEL}=true")).items
            return pods[0] if len(pods) == 1 and condition_true(pods[0], "Ready") else None
        daemon_pod = await eventually(collector, timeout=60, what="the logship collector")
        node = await client.get(NODES, daemon_pod["spec"]["nodeName"])
        node_ip = next(a["address"] for a in node["status"]["addresses"]
                       if a["type"] == "InternalIP")
        assert daemon_pod["status"]["podIP"] == node_ip  # host network

        async def send() -> bool:
            try:
                _, writer = await asyncio.open_connection(node_ip, 5140)
            except OSError:
                return False
            writer.write(b"one\ntwo\nthree\n")
            await writer.drain()
            writer.close()
            await writer.wait_closed()
            return True
        await eventually(send, timeout=20, what="the collector to accept lines")

        async def counted_on_node() -> bool:
            return "3 lines" in await _logs(region, member.name, daemon_pod, "collector")
        await eventually(counted_on_node, timeout=20, what="the collector to count 3 lines")

        # Per pod: the app's pod gets the shipper, which counts the app's log lines.
        app = await client.create(registry.lookup("PinApp"), docs["PinApp"], namespace="demo")
        pod = pod_for(app["spec"]["template"], name="chatty-0", namespace="demo", owner=app,
                      backend="embedded")
        await create_pod(client, pod)
        pod = await eventually(lambda: _ready(client, "chatty-0", "demo"), timeout=60,
                               what="the app pod with its shipper")
        assert [c["name"] for c in pod["spec"]["containers"]] == ["logship", "main"]

        async def counted_in_pod() -> bool:
            out = await _logs(region, member.name, pod, "logship")
            counts = [int(line.split()[1]) for line in out.splitlines()
                      if line.startswith("logship: ")]
            return bool(counts) and counts[-1] >= 2
        await eventually(counted_in_pod, timeout=30, what="the shipper to count the app's lines")
    finally:
        await region.close()
