"""Propagation on an embedded region: shards per placement, moves, deletion, drift."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from pincompute.federation.propagation import TRANSITIONS, desired_shard, observe_shard
from pincompute.kube.errors import NotFound
from pincompute.kube.objects import condition_true
from pincompute.kube.resource import NODES, PODS
from pincompute.model import registry
from pincompute.model.registry import PINAPPS
from pincompute.model.wellknown import (
    PARENT_GENERATION_ANNOTATION,
    PARENT_UID_LABEL,
    PROPAGATION_FINALIZER,
)
from pincompute.region import Region, load_documents
from tests.waiting import eventually

from .simregion import NS, pinapp, place, region

__all__ = ["region"]
pytestmark = pytest.mark.timeout(60)
EXAMPLE = Path(__file__).parents[2] / "examples" / "pinapp.yaml"


def test_the_transition_table_is_complete() -> None:
    for desired in ("placed", "unplaced", "unplaced+ready", "deleting"):
        for observed in ("absent", "differs", "equal", "foreign"):
            assert (desired, observed) in TRANSITIONS
    assert TRANSITIONS[("unplaced", "equal")] == "hold"
    assert TRANSITIONS[("placed", "foreign")] == "none"


def test_a_shard_carries_its_share_and_parent() -> None:
    host = pinapp(replicas=5)
    host["metadata"].update(uid="u1", generation=3, annotations={"x": "y"})
    shard = desired_shard("PinApp", host, {"cluster": "c", "replicas": 2}, split=True)
    assert shard["spec"]["replicas"] == 2
    assert shard["metadata"]["labels"][PARENT_UID_LABEL] == "u1"
    assert shard["metadata"]["annotations"] == {"x": "y", PARENT_GENERATION_ANNOTATION: "3"}
    assert observe_shard(shard, None, "u1") == "absent"
    assert observe_shard(shard, shard, "u1") == "equal"
    assert observe_shard(shard, shard, "u2") == "foreign"
    edited = {**shard, "spec": {**shard["spec"], "replicas": 9}}
    assert observe_shard(shard, edited, "u1") == "differs"
    job = desired_shard("PinJob", {**host, "kind": "PinJob", "spec": {"parallelism": 4,
                                                                      "completions": 4}},
                        {"cluster": "c", "replicas": 2}, split=False)
    assert job["spec"] == {"parallelism": 4, "completions": 4}


async def _shard(region: Region, cluster: str, name: str = "web") -> dict | None:
    try:
        return await region.member(cluster).client.get(PINAPPS, name, namespace=NS)
    except NotFound:
        return None


async def _ready(region: Region, cluster: str, n: int) -> bool:
    shard = await _shard(region, cluster)
    return bool(shard) and (shard.get("status") or {}).get("readyReplicas") == n


async def test_shards_follow_placements_and_go_with_the_host_object(region: Region) -> None:
    host = region.host.client
    created = await host.create(PINAPPS, pinapp(replicas=3), namespace=NS)
    uid = created["metadata"]["uid"]
    await place(region, "web", {"zone-a-1": 2, "zone-b-1": 1})

    async def shards_there() -> bool:
        a, b = await _shard(region, "zone-a-1"), await _shard(region, "zone-b-1")
        return bool(a and b) and (a["spec"]["replicas"], b["spec"]["replicas"]) == (2, 1)

    await eventually(shards_there, what="shards with their shares", timeout=15)
    a = await _shard(region, "zone-a-1")
    assert a is not None and a["metadata"]["labels"][PARENT_UID_LABEL] == uid
    assert await _shard(region, "zone-c-1") is None
    assert PROPAGATION_FINALIZER in (await host.get(PINAPPS, "web", namespace=NS)
                                     )["metadata"]["finalizers"]

    # A share changes: the shard follows.
    await place(region, "web", {"zone-a-1": 1, "zone-b-1": 2})

    async def reshared() -> bool:
        a, b = await _shard(region, "zone-a-1"), await _shard(region, "zone-b-1")
        return bool(a and b) and (a["spec"]["replicas"], b["spec"]["replicas"]) == (1, 2)

    await eventually(reshared, what="the new shares", timeout=15)

    # Drift: a user scales a shard in the member; the federation writes it back.
    # (a patch: the member's operator writes the shard's status meanwhile, so a read-modify-
    # update could conflict)
    member = region.member("zone-b-1").client
    await member.patch(PINAPPS, "web", {"spec": {"replicas": 7}}, namespace=NS)

    async def reverted() -> bool:
        b = await _shard(region, "zone-b-1")
        return bool(b) and b["spec"]["replicas"] == 2

    await eventually(reverted, what="the drift reverted", timeout=15)

    # Aggregated status: totals and per-cluster entries.
    async def aggregated() -> dict | None:
        obj = await host.get(PINAPPS, "web", namespace=NS)
        s = obj.get("status") or {}
        return s if s.get("readyReplicas") == 3 and s.get("availableReplicas") == 3 else None

    status = await eventually(aggregated, what="aggregated readiness", timeout=30)
    # Steady state: nobody fights over the shards or the host object (no endless
    # writes once the pods have settled).
    async def versions() -> list[str]:
        objs = [await host.get(PINAPPS, "web", namespace=NS),
                *[await _shard(region, c) or {} for c in ("zone-a-1", "zone-b-1")]]
        return [o["metadata"]["resourceVersion"] for o in objs]

    async def settled() -> bool:
        before = await versions()
        await asyncio.sleep(0.7)
        return before == await versions()

    await eventually(settled, what="no more writes", timeout=15)
    assert {c["cluster"]: c["readyReplicas"] for c in status["clusters"]} == {
        "zone-a-1": 1, "zone-b-1": 2}

    # Deleting the host object removes its shards first (the finalizer).
    await host.delete(PINAPPS, "web", namespace=NS)

    async def all_gone() -> bool:
        try:
            await host.get(PINAPPS, "web", namespace=NS)
            return False
        except NotFound:
            return (await _shard(region, "zone-a-1") is None
                    and await _shard(region, "zone-b-1") is None)

    await eventually(all_gone, what="shards and host object gone", timeout=20)


async def _cordon(region: Region, cluster: str, unschedulable: bool) -> None:
    client = region.member(cluster).client
    await client.patch(NODES, f"{cluster}-general-0", {"spec": {"unschedulable": unschedulable}})


async def test_a_moved_placement_keeps_the_old_shard_until_the_new_one_is_ready(
        region: Region) -> None:
    host = region.host.client
    await host.create(PINAPPS, pinapp(replicas=1), namespace=NS)
    await place(region, "web", {"zone-a-1": 1})
    await eventually(lambda: _ready(region, "zone-a-1", 1), what="first shard ready",
                     timeout=20)
    # The new cluster's only node is cordoned: its shard cannot become ready yet.
    await _cordon(region, "zone-c-1", True)
    await place(region, "web", {"zone-c-1": 1})

    async def new_shard_created() -> bool:
        return await _shard(region, "zone-c-1") is not None

    await eventually(new_shard_created, what="the new shard", timeout=15)

    async def waiting_for_replacement() -> dict | None:  # (the status follows the shards)
        obj = await host.get(PINAPPS, "web", namespace=NS)
        entries = {c["cluster"]: c for c in (obj.get("status") or {}).get("clusters") or ()}
        return obj if "replacement" in entries.get("zone-a-1", {}).get("message", "") else None

    obj = await eventually(waiting_for_replacement, what="the old shard waiting", timeout=15)
    await asyncio.sleep(1.0)
    assert await _shard(region, "zone-a-1") is not None, "removed before its replacement"
    assert obj["status"]["availableReplicas"] == 1   # availability kept during the move

    await _cordon(region, "zone-c-1", False)
    await eventually(lambda: _ready(region, "zone-c-1", 1), what="new shard ready",
                     timeout=20)

    async def old_gone() -> bool:
        return await _shard(region, "zone-a-1") is None

    await eventually(old_gone, what="the old shard removed", timeout=20)


async def test_the_example_app_applied_to_the_host_runs_pods_in_the_members(
        region: Region) -> None:
    """``pincompute up --example examples/pinapp.yaml``: objects go to the host; once
    placed (by hand here: the placement controller is not this test's), pods run in
    every member and the host object is Available."""
    applied = await region.apply(load_documents(EXAMPLE))
    assert applied == ["pinapp/hello-web"]
    await place(region, "hello-web", {"zone-a-1": 1, "zone-b-1": 1, "zone-c-1": 1})

    async def running_everywhere() -> bool:
        for member in region.members:
            pods = await member.client.list(PODS, namespace=NS)
            if not any((p.get("status") or {}).get("phase") == "Running" for p in pods):
                return False
        obj = await region.host.client.get(PINAPPS, "hello-web", namespace=NS)
        return condition_true(obj, "Available")

    await eventually(running_everywhere, what="pods running in every member", timeout=40)


async def test_a_region_restarted_mid_way_converges(tmp_path: Path) -> None:
    data = tmp_path / "region"
    region = await Region.open(data, zones=3, nodes_per_cluster=1, runtime="sim",
                               disabled_controllers=("placement",),
                               lease_duration=3, health_port=None)
    await region.start()
    try:
        await region.ensure_project(NS)
        await region.host.client.create(PINAPPS, pinapp(replicas=3), namespace=NS)
        await place(region, "web", {"zone-a-1": 2, "zone-c-1": 1})
    finally:
        await region.close()   # whatever the federation had done by now
    region = await Region.open(data, zones=3, nodes_per_cluster=1, runtime="sim",
                               disabled_controllers=("placement",),
                               lease_duration=3, health_port=None)
    await region.start()
    try:
        async def converged() -> bool:
            obj = await region.host.client.get(PINAPPS, "web", namespace=NS)
            a, c = await _shard(region, "zone-a-1"), await _shard(region, "zone-c-1")
            return (bool(a and c) and (a["spec"]["replicas"], c["spec"]["replicas"]) == (2, 1)
                    and (obj.get("status") or {}).get("availableReplicas") == 3)

        await eventually(converged, what="shards and status after a restart", timeout=30)
        assert await _shard(region, "zone-b-1") is None
        pods = [p for m in region.members for p in await m.client.list(PODS, namespace=NS)]
        assert len(pods) == 3   # no duplicates
    finally:
        await region.close()


async def test_platform_kinds_applied_to_the_host_reach_every_member(tmp_path: Path) -> None:
    """A PinDaemon and a PinSidecar (cluster-scoped, no project, no admission) are placed
    on every cluster and propagated there whole; the host's status sums the shards'."""
    documents = [d for d in load_documents(EXAMPLE.parent / "logship.yaml")
                 if d["kind"] in ("PinDaemon", "PinSidecar")]
    region = await Region.open(tmp_path / "region", zones=3, nodes_per_cluster=1,
                               runtime="sim", lease_duration=3, health_port=None)
    await region.start()
    try:
        assert await region.apply(documents) == ["pindaemon/logship", "pinsidecar/logship"]
        members = sorted(m.name for m in region.members)
        for doc in documents:
            resource = registry.lookup(doc["kind"])

            async def everywhere(resource: Any = resource) -> bool:
                obj = await region.host.client.get(resource, "logship")
                status = obj.get("status") or {}
                ready = [c["cluster"] for c in status.get("clusters") or ()
                         if c.get("readyReplicas", c.get("numberReady"))]
                return sorted(ready) == members and len(status.get("placements") or ()) == 3

            await eventually(everywhere, what=f"{doc['kind']} ready in every member",
                             timeout=30)
            uid = (await region.host.client.get(resource, "logship"))["metadata"]["uid"]
            for member in region.members:
                shard = await member.client.get(resource, "logship")
                assert shard["metadata"]["labels"][PARENT_UID_LABEL] == uid
                assert shard["spec"] == (await region.host.client.get(resource, "logship")
                                         )["spec"]
        daemon = await region.host.client.get(registry.PINDAEMONS, "logship")
        assert daemon["status"]["numberReady"] == 3   # one node per member
    finally:
        await region.close()
