import orjson

from pincompute.kube.backends.embedded import EmbeddedStore
from pincompute.kube.resource import NAMESPACES, NODES, PODS
from pincompute.node import NodeConfig, NodeIdentity
from pincompute.node.fleet import Interner, NodeFleet, trim
from tests.runtime.support import GatedClient
from tests.waiting import is_true

from .conftest import eventually, make_pod


async def test_a_fleet_routes_pods_to_their_nodes(cluster):
    fleet = NodeFleet(cluster, [NodeConfig(identity=NodeIdentity(name=f"sim-{i}"),
                                           runtime="sim", record_events=False)
                                for i in range(5)])
    await fleet.start()
    try:
        assert len((await cluster.list(NODES)).items) == 5
        for i in range(20):
            await cluster.create(PODS, make_pod(f"p{i}", [{"name": "m"}], node=f"sim-{i % 5}"),
                                 namespace="default")
        await cluster.create(PODS, make_pod("stranger", [{"name": "m"}], node="not-ours"),
                             namespace="default")

        async def all_running():
            pods = (await cluster.list(PODS, namespace="default")).items
            return sum((p.get("status") or {}).get("phase") == "Running" for p in pods) == 20

        await eventually(all_running)
        assert fleet.pod_count() == 20
        assert all(len(a.workers) == 4 for a in fleet.agents.values())
        # A node leaves: the fleet forgets its pods, and only its pods.
        await fleet.remove("sim-0")
        assert sorted(fleet.agents) == ["sim-1", "sim-2", "sim-3", "sim-4"]
        assert len(fleet._known) == 16 and "sim-0" not in fleet._on_node
        assert sorted(len(uids) for uids in fleet._on_node.values()) == [4, 4, 4, 4]
        await cluster.delete(PODS, "p1", namespace="default", grace_period_seconds=0)
        await eventually(lambda: is_true(len(fleet._known) == 15))
        assert len(fleet._on_node["sim-1"]) == 3
    finally:
        await fleet.stop()


async def test_a_fleet_relists_after_gone_and_stops_pods_that_vanished():
    # A tiny history, so the pod watch resumed after a few writes is too old.
    store = await EmbeddedStore.open(path=None, history_size=2)
    client = store.client()
    await client.create(NAMESPACES, {"metadata": {"name": "default"}})
    gated = GatedClient(client)
    fleet = NodeFleet(gated, [NodeConfig(identity=NodeIdentity(name="sim-0"), runtime="sim",
                                         record_events=False)])
    await fleet.start()
    try:
        for name in ("gone", "kept"):
            await client.create(PODS, make_pod(name, [{"name": "m"}], node="sim-0"),
                                namespace="default")

        async def running(n):
            pods = (await client.list(PODS, namespace="default")).items
            return sum((p.get("status") or {}).get("phase") == "Running" for p in pods) == n

        await eventually(lambda: running(2))
        assert fleet.pod_count() == 2 and fleet.relists == 1

        gated.disconnect()
        # Removed at once (grace 0) while the fleet is not watching; then enough pod
        # writes (to a pod on a node outside the fleet) to leave its resourceVersion behind.
        await client.delete(PODS, "gone", namespace="default", grace_period_seconds=0)
        await client.create(PODS, make_pod("filler", [{"name": "m"}], node="elsewhere"),
                            namespace="default")
        for i in range(6):
            await client.patch(PODS, "filler", {"metadata": {"labels": {"i": str(i)}}},
                               namespace="default")
        gated.reconnect()

        async def relisted():
            return fleet.relists == 2 and fleet.pod_count() == 1

        await eventually(relisted)
        (worker,) = fleet.agents["sim-0"].workers.values()
        assert worker.name == "kept"
    finally:
        await fleet.stop()
        await store.close()


def test_trimmed_pods_share_what_pods_have_in_common():
    # Two decodes of equal pods: new objects everywhere, as from the store.
    def decoded(name):
        pod = make_pod(name, [{"name": "m", "image": "x"}, {"name": "s", "image": "y"}],
                       node="sim-0")
        pod["status"] = {"phase": "Running", "podIP": f"10.0.0.{len(name)}",
                         "startTime": "2026-01-01T00:00:00Z",
                         "conditions": [{"type": "Ready", "status": "True"}],
                         "containerStatuses": [{"name": "m", "restartCount": 0, "ready": True},
                                               {"name": "s", "restartCount": 0}]}
        return orjson.loads(orjson.dumps(pod))

    intern = Interner()
    one, two = trim(decoded("a"), intern), trim(decoded("bb"), intern)
    assert one["status"]["containerStatuses"] == [{"name": "m", "restartCount": 0},
                                                  {"name": "s", "restartCount": 0}]
    for part, key in (("spec", "containers"), ("status", "containerStatuses"),
                      ("status", "conditions"), ("status", "phase"), ("status", "startTime"),
                      ("spec", "nodeName"), ("metadata", "namespace")):
        assert one[part][key] is two[part][key], (part, key)
    assert one["status"]["podIP"] != two["status"]["podIP"]
