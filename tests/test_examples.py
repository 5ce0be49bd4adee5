"""Every file in ``examples/`` runs on ``pincompute up`` as written (issue 9).

Each example is applied to the HOST of an embedded region with real processes
exactly as ``pincompute up --example FILE`` does (``region.apply``): admitted,
placed, propagated as shards, run by the member operators, and its status folded
back.  The test waits until every object is ready or complete on the host, then
checks what the example promises.  The files are found in ``examples/``: a new
example is tested automatically, and one of a kind without a readiness rule in
:data:`READY` fails loudly.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from pincompute.kube.objects import condition_true
from pincompute.kube.resource import PODS
from pincompute.model import registry
from pincompute.model.wellknown import DAEMON_POD_LABEL, SYSTEM_NAMESPACE
from pincompute.node.runtimeapi.client import NodeClient
from pincompute.region import Region, load_documents

from .waiting import eventually

pytestmark = pytest.mark.slow

EXAMPLES = sorted((Path(__file__).parent.parent / "examples").glob("*.yaml"))
PROJECT = "demo"
Obj = dict[str, Any]


def _app_ready(obj: Obj) -> bool:
    status = obj.get("status") or {}
    want = int((obj.get("spec") or {}).get("replicas", 1))
    return condition_true(obj, "Available") and status.get("readyReplicas", 0) == want


def _job_complete(obj: Obj) -> bool:
    return (obj.get("status") or {}).get("phase") == "Succeeded"


def _daemon_ready(obj: Obj) -> bool:
    status = obj.get("status") or {}
    want = status.get("desiredNumberScheduled") or 0
    return want > 0 and status.get("numberReady") == want


def _everywhere(obj: Obj) -> bool:
    """Duplicated to every placed cluster and observed there by the member operator."""
    status = obj.get("status") or {}
    placed = {p["cluster"] for p in status.get("placements") or ()}
    ready = {c["cluster"] for c in status.get("clusters") or () if c.get("readyReplicas")}
    return bool(placed) and placed <= ready


READY: dict[str, Callable[[Obj], bool]] = {
    "PinApp": _app_ready,
    "PinJob": _job_complete,
    "PinTrainingJob": _job_complete,
    "PinDaemon": _daemon_ready,
    "PinSidecar": _everywhere,
}
"""Per kind: when an object of it is ready (or complete) on the host."""


async def _pod_logs(region: Region, pod: Obj, container: str) -> str:
    """A pod's container log, read through its node's runtime API, whichever member runs it."""
    node = pod["spec"]["nodeName"]
    for provisioner in region.provisioners.values():
        agent = provisioner.agent(node)
        if agent is None:
            continue
        client = NodeClient(agent.api_endpoint, agent.api_token)
        md = pod["metadata"]
        return b"".join([c async for c in client.logs(md["namespace"], md["name"],
                                                       container)]).decode()
    raise LookupError(f"no member has node {node}")


async def _member_pods(region: Region, namespace: str, selector: str | None = None
                       ) -> list[Obj]:
    pods: list[Obj] = []
    for member in region.members:
        pods += (await member.client.list(PODS, namespace=namespace,
                                          label_selector=selector)).items
    return pods


async def _one_pod(region: Region, namespace: str, name_prefix: str,
                   selector: str | None = None) -> Obj:
    """A pod of that name prefix in any member, ready (or already succeeded)."""
    async def find() -> Obj | None:
        pods = [p for p in await _member_pods(region, namespace, selector)
                if p["metadata"]["name"].startswith(name_prefix)
                and (condition_true(p, "Ready")
                     or (p.get("status") or {}).get("phase") == "Succeeded")]
        return pods[0] if pods else None
    return await eventually(find, timeout=30, what=f"a pod {name_prefix}*")


async def _check_pinapp(region: Region) -> None:
    # hello-web answers on its pods' own addresses in three zones.
    pods = [p for p in await _member_pods(region, PROJECT, "app=hello-web")
            if condition_true(p, "Ready")]
    assert len(pods) == 3
    for pod in pods:
        reader, writer = await asyncio.open_connection(pod["status"]["podIP"], 8080)
        writer.write(b"GET / HTTP/1.0\r\n\r\n")
        await writer.drain()
        assert (await reader.readline()).startswith(b"HTTP/1.0 200")
        writer.close()


async def _check_pintrainingjob(region: Region) -> None:
    master = await _one_pod(region, PROJECT, "linear-fit-master-0")
    log = await _pod_logs(region, master, "train")
    assert "learned w=3.000 b=2.000 from 3 ranks" in log, log


async def _check_logship(region: Region) -> None:
    # The sidecar was injected into the chatty app's pod and counts its lines.
    pod = await _one_pod(region, PROJECT, "chatty")
    assert "logship" in [c["name"] for c in pod["spec"]["containers"]]

    async def counted_in_pod() -> bool:
        out = await _pod_logs(region, pod, "logship")
        counts = [int(line.split()[1]) for line in out.splitlines()
                  if line.startswith("logship: ")]
        return bool(counts) and counts[-1] >= 2
    await eventually(counted_in_pod, timeout=30, what="the shipper to count the app's lines")

    # The collector runs on the host network of every node and counts lines sent to it.
    daemons = [p for p in await _member_pods(region, SYSTEM_NAMESPACE,
                                             f"{DAEMON_POD_LABEL}=true")
               if condition_true(p, "Ready")]
    assert daemons
    collector = daemons[0]
    ip = collector["status"]["podIP"]

    async def send() -> bool:
        try:
            _, writer = await asyncio.open_connection(ip, 5140)
        except OSError:
            return False
        writer.write(b"one\ntwo\nthree\n")
        await writer.drain()
        writer.close()
        await writer.wait_closed()
        return True
    await eventually(send, timeout=20, what="the collector to accept lines")

    async def counted_on_node() -> bool:
        return "3 lines" in await _pod_logs(region, collector, "collector")
    await eventually(counted_on_node, timeout=20, what="the collector to count 3 lines")


CHECKS: dict[str, Callable[[Region], Awaitable[None]]] = {
    "pinapp": _check_pinapp,
    "pintrainingjob": _check_pintrainingjob,
    "logship": _check_logship,
}
"""Per example file: what it promises beyond being ready (optional)."""


@pytest.mark.parametrize("example", EXAMPLES, ids=[p.stem for p in EXAMPLES])
async def test_the_example_runs_as_written(example: Path, region_dir: Path) -> None:
    documents = load_documents(example)
    unknown = sorted({d["kind"] for d in documents} - set(READY))
    assert not unknown, (f"{example.name}: no readiness rule for {unknown}; "
                         "add one to READY in tests/test_examples.py")
    region = await Region.open(region_dir, zones=3, nodes_per_zone=2, runtime="process",
                               lease_duration=4, health_port=None,
                               node_options={"probe_scale": 0.2})
    await region.start()
    try:
        await region.ensure_project(PROJECT)
        applied = await region.apply(documents, namespace=PROJECT)  # as `up --example` does
        assert len(applied) == len(documents)
        for doc in documents:
            resource = registry.lookup(doc["kind"])
            name = doc["metadata"]["name"]
            namespace = PROJECT if resource.namespaced else None
            last: list[Obj] = [{}]

            async def ready(resource: Any = resource, name: str = name,
                            namespace: str | None = namespace, kind: str = doc["kind"],
                            last: list[Obj] = last) -> bool:
                last[0] = await region.host.client.get(resource, name, namespace=namespace)
                return READY[kind](last[0])
            try:
                await eventually(ready, timeout=60, interval=0.2,
                                 what=f"{doc['kind']}/{name} ready")
            except pytest.fail.Exception:
                pytest.fail(f"{example.name}: {doc['kind']}/{name} not ready; its status: "
                            f"{last[0].get('status')}")
        check = CHECKS.get(example.stem)
        if check is not None:
            await check(region)
    finally:
        await region.close()
