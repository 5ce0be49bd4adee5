from pincompute.kube.resource import NODES, PODS
from pincompute.node import NodeConfig, NodeIdentity
from pincompute.node.fleet import NodeFleet

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
    finally:
        await fleet.stop()
