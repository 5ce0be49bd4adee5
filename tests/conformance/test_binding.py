"""``pods/binding``: how a scheduler assigns a pod to a node, on every backend."""

from __future__ import annotations

import pytest

from pincompute.kube import Conflict, NotFound
from pincompute.kube.resource import PODS

from .helpers import pod


def binding(name: str, node: str, *, uid: str | None = None) -> dict:
    md: dict = {"name": name}
    if uid is not None:
        md["uid"] = uid
    return {"apiVersion": "v1", "kind": "Binding", "metadata": md,
            "target": {"apiVersion": "v1", "kind": "Node", "name": node}}


async def test_binding_assigns_an_unbound_pod_once(client, ns):
    made = await client.create(PODS, pod("p", ns))
    try:
        await client.create_subresource(PODS, "p", "binding",
                                        binding("p", "node-1", uid=made["metadata"]["uid"]),
                                        namespace=ns)
        bound = await client.get(PODS, "p", namespace=ns)
        assert bound["spec"]["nodeName"] == "node-1"
        scheduled = [c for c in bound["status"].get("conditions", [])
                     if c["type"] == "PodScheduled"]
        assert scheduled and scheduled[0]["status"] == "True"
        # A second binding, even to the same node, is refused: the first one won.
        with pytest.raises(Conflict):
            await client.create_subresource(PODS, "p", "binding", binding("p", "node-2"),
                                            namespace=ns)
        assert (await client.get(PODS, "p", namespace=ns))["spec"]["nodeName"] == "node-1"
    finally:
        await client.delete(PODS, "p", namespace=ns, grace_period_seconds=0)


async def test_binding_checks_the_uid_and_the_pod(client, ns):
    await client.create(PODS, pod("q", ns))
    try:
        with pytest.raises(Conflict):
            await client.create_subresource(
                PODS, "q", "binding",
                binding("q", "node-1", uid="00000000-0000-0000-0000-000000000000"),
                namespace=ns)
        assert not (await client.get(PODS, "q", namespace=ns))["spec"].get("nodeName")
        with pytest.raises(NotFound):
            await client.create_subresource(PODS, "missing", "binding",
                                            binding("missing", "node-1"), namespace=ns)
    finally:
        await client.delete(PODS, "q", namespace=ns, grace_period_seconds=0)
