"""An embedded region's member clusters: names, the record in the host, draining."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from pincompute import regionmembers
from pincompute.kube.backends.embedded import EmbeddedStore
from pincompute.kube.objects import get_condition
from pincompute.kube.protocol import KubeClient
from pincompute.kube.resource import NAMESPACES, PODS
from pincompute.model import registry
from pincompute.model.wellknown import CLUSTER_DRAINING_TAINT, DAEMON_POD_LABEL, SYSTEM_NAMESPACE
from pincompute.regionmembers import Leftovers, MemberRecord
from pincompute.runtime.informer import SharedInformer

pytestmark = pytest.mark.timeout(20)


def test_a_first_start_has_clusters_per_zone_in_each_zone() -> None:
    assert regionmembers.initial(zones=2, clusters_per_zone=2) == [
        MemberRecord("zone-a-1", "zone-a"), MemberRecord("zone-a-2", "zone-a"),
        MemberRecord("zone-b-1", "zone-b"), MemberRecord("zone-b-2", "zone-b")]
    assert [r.name for r in regionmembers.initial(zones=3, clusters_per_zone=1)] == [
        "zone-a-1", "zone-b-1", "zone-c-1"]
    for zones, per_zone in ((0, 1), (27, 1), (1, 0)):
        with pytest.raises(ValueError):
            regionmembers.initial(zones=zones, clusters_per_zone=per_zone)


def test_names(tmp_path: Path) -> None:
    (tmp_path / "members" / "zone-a-2").mkdir(parents=True)   # a removed cluster's kept data
    assert regionmembers.next_name("zone-a", taken={"zone-a-1"}, data_dir=tmp_path) == "zone-a-3"
    assert regionmembers.next_name("zone-b", taken={"zone-a-1"}, data_dir=tmp_path) == "zone-b-1"
    names = ["zone-a-10", "zone-b-1", "zone-a-2", "edge", "zone-a-1"]
    assert sorted(names, key=regionmembers.sort_key) == [
        "edge", "zone-a-1", "zone-a-2", "zone-a-10", "zone-b-1"]
    regionmembers.check_name("zone-a-1", zone="zone-a")
    for name, zone in (("host", "zone-a"), ("Zone_A", "zone-a"), ("zone-a-1", "Zone A"),
                       ("x" * 64, "zone-a")):
        with pytest.raises(ValueError):
            regionmembers.check_name(name, zone=zone)


def test_which_pods_keep_a_cluster_from_draining() -> None:
    def pod(namespace: str = "demo", phase: str = "Running", **labels: str) -> dict:
        return {"metadata": {"name": "p", "namespace": namespace, "labels": labels},
                "status": {"phase": phase}}

    assert regionmembers.is_workload_pod(pod())
    assert regionmembers.is_workload_pod(pod(phase="Pending"))
    assert not regionmembers.is_workload_pod(pod(phase="Succeeded"))
    assert not regionmembers.is_workload_pod(pod(phase="Failed"))
    assert not regionmembers.is_workload_pod(pod(namespace=SYSTEM_NAMESPACE))
    assert not regionmembers.is_workload_pod(pod(**{DAEMON_POD_LABEL: "true"}))


@pytest.fixture
async def store() -> AsyncIterator[EmbeddedStore]:
    store = await EmbeddedStore.open(bookmark_interval=60.0)
    registry.install(store)
    await store.client().create(NAMESPACES, {"metadata": {"name": "demo"}})
    yield store
    await store.close()


async def test_leftovers_follow_the_informers(store: EmbeddedStore) -> None:
    client = store.client()
    for name in ("a", "b"):
        await client.create(PODS, {"metadata": {"name": name}, "spec": {
            "containers": [{"name": "c", "image": "i"}]}}, namespace="demo")
    pods = SharedInformer(client, PODS)
    pods.start()
    left = Leftovers({pods: regionmembers.is_workload_pod})
    try:
        await left.wait_synced()
        assert len(left) == 2 and left.names() == ["pods/demo/a", "pods/demo/b"]
        assert left.describe(limit=1) == "2 objects (pods/demo/a, ...)"
        waiting = asyncio.ensure_future(left.wait_empty())
        await client.delete(PODS, "a", namespace="demo")
        b = await client.get(PODS, "b", namespace="demo")
        b["status"] = {"phase": "Succeeded"}   # finished: no longer counted
        await client.update_status(PODS, b)
        await asyncio.wait_for(waiting, 5)
        assert len(left) == 0
    finally:
        left.close()
        await pods.stop()


async def _host() -> tuple[EmbeddedStore, KubeClient]:
    store = await EmbeddedStore.open(bookmark_interval=60.0)
    registry.install(store, resources=registry.HOST_RESOURCES)
    return store, store.client()


async def test_the_record_and_draining_in_the_host(tmp_path: Path) -> None:
    store, host = await _host()
    try:
        assert not await regionmembers.any_registered(host)
        for record in (MemberRecord("zone-a-10", "zone-a"), MemberRecord("zone-a-2", "zone-a")):
            await host.create(registry.MEMBERCLUSTERS, regionmembers.membercluster(
                record, region="local", path=tmp_path / record.name))
        await host.create(registry.MEMBERCLUSTERS, {"metadata": {"name": "real"}, "spec": {
            "zone": "zone-b", "connection": {"type": "Kubeconfig", "kubeconfigPath": "/k"}}})
        assert await regionmembers.any_registered(host)
        # Only embedded members are the region's, in natural order.
        assert await regionmembers.registered(host) == [
            MemberRecord("zone-a-2", "zone-a"), MemberRecord("zone-a-10", "zone-a")]

        for _ in range(2):   # idempotent
            await regionmembers.mark_draining(host, "zone-a-2", message="going")
        mc = await host.get(registry.MEMBERCLUSTERS, "zone-a-2")
        assert mc["spec"]["taints"] == [{"key": CLUSTER_DRAINING_TAINT, "effect": "NoSchedule"}]
        assert regionmembers.draining(mc)
        condition = get_condition(mc, regionmembers.DRAINING)
        assert condition is not None and condition["status"] == "True"
        assert condition["reason"] == "Removing" and condition["message"] == "going"
        assert not regionmembers.draining(await host.get(registry.MEMBERCLUSTERS, "zone-a-10"))
    finally:
        await store.close()
