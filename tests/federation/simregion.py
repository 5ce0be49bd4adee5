"""A small embedded region (sim runtime, three zones) for the propagation tests.

Placements are written into host status by hand (:func:`place`): the placement
controller is not what these tests are about.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from pincompute.kube.errors import Conflict
from pincompute.model.registry import PINAPPS
from pincompute.region import Region

NS = "demo"


@pytest.fixture
async def region(tmp_path: Path) -> AsyncIterator[Region]:
    # Placements are written by hand in these tests: the placement controller is off.
    region = await Region.open(tmp_path / "region", zones=3, nodes_per_cluster=1,
                               disabled_controllers=("placement",),
                               runtime="sim", lease_duration=3, health_port=None)
    await region.start()
    try:
        await region.ensure_project(NS)
        yield region
    finally:
        await region.close()


def pinapp(name: str = "web", *, replicas: int = 3, image: str = "web:1",
           **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "pincompute.io/v1alpha1", "kind": "PinApp",
            "metadata": {"name": name, "namespace": NS},
            "spec": {"replicas": replicas, **spec, "template": {"spec": {"containers": [
                {"name": "main", "image": image,
                 "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}}}]}}}}


def zone_of(cluster: str) -> str:
    return cluster.rsplit("-", 1)[0]


async def place(region: Region, name: str, shares: Mapping[str, int | None], *,
                resource: Any = PINAPPS) -> None:
    """Write ``status.placements`` of a host object (retrying on conflicts)."""
    for _ in range(20):
        obj = await region.host.client.get(resource, name, namespace=NS)
        obj.setdefault("status", {})["placements"] = [
            {"cluster": c, "zone": zone_of(c), **({"replicas": r} if r is not None else {})}
            for c, r in shares.items()]
        try:
            await region.host.client.update_status(resource, obj)
            return
        except Conflict:
            continue
    raise AssertionError("could not write placements")
