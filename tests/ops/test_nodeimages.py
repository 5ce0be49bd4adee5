"""Node images in an embedded region: resolved on the host, handed to the member pools
that name them, and new nodes made from them; running nodes keep their image."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from pincompute.kube.resource import NODES
from pincompute.model.registry import NODEIMAGES, NODEPOOLS
from pincompute.model.wellknown import (
    NODE_IMAGE_LABEL,
    NODE_POOL_LABEL,
    RESOLVED_IMAGE_ANNOTATION,
)
from pincompute.region import Region
from tests.waiting import eventually

from .conftest import FAST_NODES, pool

pytestmark = pytest.mark.slow


def image(name: str, **spec: Any) -> dict[str, Any]:
    return {"metadata": {"name": name}, "spec": spec}


async def test_images_resolve_and_decide_the_new_nodes_of_their_pools(region_dir: Path) -> None:
    region = await Region.open(region_dir, zones=1, nodes_per_cluster=1, runtime="sim",
                               lease_duration=3, node_options=FAST_NODES)
    await region.start()
    try:
        host = region.host.client
        member = region.members[0]
        await host.create(NODEIMAGES, image(
            "base-2024", version="2024.1", baseOS="ubuntu-24.04",
            labels={"os": "ubuntu", "team": "infra"},
            agent={"statusIntervalSeconds": 0.3, "diskFreeRatio": 0.01}))
        await host.create(NODEIMAGES, image(
            "gpu-2024", version="2024.1", type="gpu", parent="base-2024",
            labels={"accel": "nvidia", "team": "ml"},
            taints=[{"key": "pincompute.io/gpu", "effect": "NoSchedule"}],
            agent={"probeScale": 0.5}))
        await host.create(NODEIMAGES, image("broken", version="1", parent="nowhere"))

        async def status(name: str) -> dict[str, Any] | None:
            obj = await host.get(NODEIMAGES, name)
            s = obj.get("status") or {}
            return s if s.get("phase") else None

        gpu = await eventually(lambda: status("gpu-2024"), what="gpu-2024 resolved")
        assert gpu["phase"] == "Ready" and gpu["ancestors"] == ["base-2024"]
        assert gpu["resolved"]["labels"] == {"os": "ubuntu", "team": "ml", "accel": "nvidia"}
        assert gpu["resolved"]["baseOS"] == "ubuntu-24.04"
        broken = await eventually(lambda: status("broken"), what="broken resolved")
        assert broken["phase"] == "Invalid" and "nowhere does not exist" in broken["message"]

        await member.client.create(NODEPOOLS, pool("gpu", size=1, nodeImage="gpu-2024",
                                                   labels={"team": "research"}))

        async def gpu_node() -> dict[str, Any] | None:
            nodes = (await member.client.list(
                NODES, label_selector=f"{NODE_POOL_LABEL}=gpu")).items
            return nodes[0] if nodes else None

        node = await eventually(gpu_node, timeout=20, what="the gpu pool's node")
        labels = node["metadata"]["labels"]
        # the image's labels, the pool's winning; the image's taint
        assert (labels["accel"], labels["os"], labels["team"]) == ("nvidia", "ubuntu",
                                                                   "research")
        assert labels[NODE_IMAGE_LABEL] == "gpu-2024"
        assert any(t["key"] == "pincompute.io/gpu" for t in node["spec"].get("taints") or ())
        provisioner = region.provisioners[member.name]

        async def started() -> Any:
            return provisioner.agent(node["metadata"]["name"])

        agent = await eventually(started, what="the node's agent")  # registers first
        assert agent.config.status_interval == 0.3 and agent.config.probe_scale == 0.5
        assert agent.config.thresholds.disk_free_ratio == 0.01
        annotated = await member.client.get(NODEPOOLS, "gpu")
        resolved = json.loads(annotated["metadata"]["annotations"][RESOLVED_IMAGE_ANNOTATION])
        assert resolved["name"] == "gpu-2024"

        async def pool_status(updated: int) -> bool:
            s = (await member.client.get(NODEPOOLS, "gpu")).get("status") or {}
            return s.get("updatedNodes") == updated and s.get("currentSize") == 1

        await eventually(lambda: pool_status(1), what="1 node on the wanted image")
        # A new image for the pool reaches no running node (a Rotation rolls it).
        await host.create(NODEIMAGES, image("gpu-2025", version="2025.1", type="gpu",
                                            parent="gpu-2024", labels={"accel": "h100"}))
        await member.client.patch(NODEPOOLS, "gpu", {"spec": {"nodeImage": "gpu-2025"}})
        await eventually(lambda: pool_status(0), what="0 nodes on the wanted image")

        async def re_resolved() -> bool:
            obj = await member.client.get(NODEPOOLS, "gpu")
            raw = obj["metadata"]["annotations"][RESOLVED_IMAGE_ANNOTATION]
            return json.loads(raw)["name"] == "gpu-2025"

        await eventually(re_resolved, what="the pool re-annotated")
        still = await member.client.get(NODES, node["metadata"]["name"])
        assert still["metadata"]["labels"][NODE_IMAGE_LABEL] == "gpu-2024"
        assert still["metadata"]["labels"]["accel"] == "nvidia"
        counted = await eventually(lambda: status("gpu-2025"), what="gpu-2025 resolved")
        assert counted["pools"] == 1
    finally:
        await region.close()
