"""The controller table: well-formed entries, and both assemblies build their managers from it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from pincompute import controllers
from pincompute.controllers import (
    BACKENDS,
    CONTROLLERS,
    SIDES,
    ControllerDescriptor,
    HostContext,
    MemberContext,
    NodeOptions,
    add_host_controllers,
    add_member_controllers,
    host,
    identity,
    leader_election,
    member,
    new_manager,
    node,
)
from pincompute.kube.backends.embedded import EmbeddedStore
from pincompute.kube.protocol import KubeClient
from pincompute.model import registry
from pincompute.model.wellknown import SYSTEM_NAMESPACE
from pincompute.region import Region
from pincompute.runtime.manager import Manager
from pincompute.scheduler import Scheduler


def test_every_entry_has_a_unique_name_a_side_and_backends() -> None:
    names = [entry.name for entry in CONTROLLERS]
    assert len(names) == len(set(names))
    for entry in CONTROLLERS:
        assert entry.side in SIDES
        assert entry.backends and entry.backends <= BACKENDS
        assert entry.description
        if entry.side == "node":
            assert entry.backends == {"embedded"}
    assert {e.side for e in CONTROLLERS} == set(SIDES)


def test_malformed_entries_are_refused() -> None:
    with pytest.raises(ValueError, match="side"):
        ControllerDescriptor(name="x", side="zone", setup=lambda ctx: None)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="backends"):
        ControllerDescriptor(name="x", side="member", setup=lambda ctx: None,
                             backends=frozenset({"cloud"}))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="embedded"):
        ControllerDescriptor(name="x", side="node", setup=lambda ctx: None,
                             backends=BACKENDS)


def test_leader_election_timings_follow_the_lease_duration() -> None:
    config = leader_election("lease-a", identity="me", lease_duration=6.0)
    assert (config.name, config.namespace, config.identity) == ("lease-a", SYSTEM_NAMESPACE, "me")
    assert config.lease_duration == 6.0
    assert config.renew_deadline == pytest.approx(4.0)
    assert config.retry_period == pytest.approx(0.8)
    default = leader_election("lease-b", identity="me")
    assert (default.lease_duration, default.renew_deadline) == (15.0, 10.0)


def test_identity(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("POD_NAME", raising=False)
    assert identity().endswith(f"_{__import__('os').getpid()}")
    monkeypatch.setenv("POD_NAME", "pincompute-federation-7d9f-abcde")
    assert identity() == "pincompute-federation-7d9f-abcde"
    stable = identity(data_dir=tmp_path)
    assert stable.startswith("pincompute-up@") and stable.endswith(f":{tmp_path}")
    assert stable == identity(data_dir=tmp_path)


@pytest.fixture
async def clients(tmp_path: Path) -> AsyncIterator[dict[str, KubeClient]]:
    stores = {}
    for name, kinds in (("host", registry.HOST_RESOURCES),
                        ("zone-a-1", registry.MEMBER_RESOURCES)):
        stores[name] = await EmbeddedStore.open(path=tmp_path / name)
        registry.install(stores[name], resources=kinds)
    try:
        yield {name: store.client() for name, store in stores.items()}
    finally:
        for store in stores.values():
            await store.close()


async def test_member_side_per_backend(clients: dict[str, KubeClient], tmp_path: Path) -> None:
    client = clients["zone-a-1"]
    real = Manager(name="m")
    made = add_member_controllers(real, client=client, cluster="zone-a-1", backend="kubernetes")
    assert list(made) == [e.name for e in CONTROLLERS
                          if e.side == "member" and "kubernetes" in e.backends]
    assert "node-lifecycle" not in made  # the kubelet's world on real clusters
    assert isinstance(made["scheduler"], Scheduler)
    # Every member entry is a controller of the manager, except the scheduler (its own loop).
    assert {c.name for c in real.controllers} == {
        e.name for e in CONTROLLERS if e.side == "member" and "kubernetes" in e.backends
    } - {"scheduler"}

    embedded = Manager(name="e")
    nodes = NodeOptions(runtime="sim", base_dir=tmp_path / "nodes")
    made = add_member_controllers(embedded, client=client, cluster="zone-a-1",
                                  backend="embedded", shared_manager=True, nodes=nodes)
    assert list(made) == [f"{e.name}-zone-a-1" for e in CONTROLLERS
                          if e.side in ("member", "node")]
    with pytest.raises(ValueError, match="NodeOptions"):
        add_member_controllers(Manager(), client=client, cluster="c", backend="embedded")


async def test_an_entry_gets_its_context(clients: dict[str, KubeClient], tmp_path: Path) -> None:
    seen: list[HostContext | MemberContext] = []
    table = (host("audit", seen.append, description="test"),
             member("pinapps", seen.append, description="test"),
             node("provisioner", seen.append, description="test"))
    manager = Manager()
    nodes = NodeOptions(runtime="process", base_dir=tmp_path, initial_size=2)
    made = add_host_controllers(manager, host=clients["host"],
                                embedded={"zone-a-1": clients["zone-a-1"]}.get,
                                backend="embedded", options={"audit": {"workers": 3}},
                                table=table)
    add_member_controllers(manager, client=clients["zone-a-1"], cluster="zone-a-1",
                           zone="zone-a", backend="embedded", shared_manager=True, nodes=nodes,
                           table=table)
    add_member_controllers(manager, client=clients["zone-a-1"], cluster="zone-a-1",
                           backend="kubernetes", table=table)
    h, m, n, real = seen
    assert isinstance(h, HostContext) and h.name == "audit" and h.options == {"workers": 3}
    assert h.host is clients["host"] and h.clusters is made["clusterset"]
    assert isinstance(m, MemberContext) and m.name == "pinapps-zone-a-1" and m.zone == "zone-a"
    assert isinstance(n, MemberContext) and isinstance(real, MemberContext)
    assert n.name == "provisioner-zone-a-1" and n.nodes is nodes and n.manager is manager
    assert real.name == "pinapps" and real.nodes is None and real.backend == "kubernetes"


async def test_the_region_builds_its_manager_from_the_table(tmp_path: Path) -> None:
    region = await Region.open(tmp_path / "data", zones=2, runtime="sim", nodes_per_zone=0,
                               lease_duration=3.0)
    try:
        manager = region.manager
        assert manager.elector is not None
        assert manager.elector.identity == identity(data_dir=region.data_dir)
        # An entry may add several controllers, named after it (propagation-<kind>).
        host_entries = {e.name for e in CONTROLLERS if e.side == "host"}
        assert {next(e for e in host_entries if c.name == e or c.name.startswith(f"{e}-"))
                for c in manager.controllers} == host_entries
        # Each member cluster's controllers run on a child manager of its own.
        assert manager.children == [m.manager for m in region.members]
        for m in region.members:
            assert m.manager is not None
            assert {c.name for c in m.manager.controllers} == {
                f"{e.name}-{m.name}" for e in CONTROLLERS
                if e.side in ("member", "node") and e.name != "scheduler"}
            schedulers = [r for r in m.manager._runnables if r.name.startswith("scheduler")]
            assert len(schedulers) == 1
    finally:
        await region.close()


def test_the_real_cluster_assembly_uses_the_table() -> None:
    # controlplane builds its managers with these (exercised against real API servers in
    # tests/k8s/test_controlplane.py); it must not wire controllers of its own.
    from pincompute import controlplane

    assert controlplane.add_host_controllers is controllers.add_host_controllers
    assert controlplane.add_member_controllers is controllers.add_member_controllers
    assert controlplane.new_manager is new_manager
    assert not hasattr(controlplane, "add_project_controller")
    assert not hasattr(controlplane, "Scheduler")
