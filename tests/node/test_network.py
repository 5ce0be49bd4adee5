import ipaddress

import pytest

from pincompute.kube.backends.embedded import EmbeddedStore
from pincompute.kube.resource import LEASES, NAMESPACES, NODES
from pincompute.node.network import (
    NODE_LEASE_NAMESPACE,
    AddressBlock,
    NetworkError,
    Networking,
    claim_pod_cidr,
)


def pod(uid, mode=None, namespace="team-a", ports=()):
    spec = {"containers": [{"name": "c", "ports": list(ports)}]}
    if mode:
        spec["networkMode"] = mode
    return {"metadata": {"uid": uid, "name": uid, "namespace": namespace}, "spec": spec}


def test_block_hands_out_distinct_addresses_and_takes_them_back():
    block = AddressBlock(ipaddress.IPv4Network("127.64.3.0/29"))
    assert block.node_ip == "127.64.3.1"
    ips = [block.allocate(str(i)) for i in range(5)]
    assert ips == [f"127.64.3.{i}" for i in range(2, 7)]
    assert block.allocate("0") == "127.64.3.2"  # idempotent
    with pytest.raises(NetworkError):
        block.allocate("extra")
    block.release("1")
    assert block.allocate("extra") == "127.64.3.3"


def test_modes():
    net = Networking(AddressBlock(ipaddress.IPv4Network("127.64.3.0/24")),
                     dedicated_interfaces=1)
    assert net.setup(pod("r")).mode == "routable"
    with pytest.raises(NetworkError) as err:
        net.setup(pod("h", "host"))
    assert err.value.reason == "HostNetworkForbidden"
    assert net.setup(pod("sys", "host", namespace="kube-system")).ip == "127.64.3.1"
    assert net.setup(pod("d1", "dedicated")).mode == "dedicated"
    with pytest.raises(NetworkError) as err:
        net.setup(pod("d2", "dedicated"))
    assert err.value.reason == "OutOfDedicatedInterfaces"
    net.teardown("d1")
    net.setup(pod("d2", "dedicated"))
    bridge = net.setup(pod("b1", "bridge", ports=[{"containerPort": 80, "hostPort": 8080}]))
    assert bridge.host_ports == ((8080, 80, "TCP"),)
    with pytest.raises(NetworkError) as err:
        net.setup(pod("b2", "bridge", ports=[{"containerPort": 81, "hostPort": 8080}]))
    assert err.value.reason == "HostPortConflict"


async def test_nodes_claim_distinct_blocks_and_keep_theirs():
    store = await EmbeddedStore.open(path=None)
    client = store.client()
    await client.create(NAMESPACES, {"metadata": {"name": NODE_LEASE_NAMESPACE}})
    nodes = [await client.create(NODES, {"metadata": {"name": f"n{i}"}}) for i in range(20)]
    cidrs = [await claim_pod_cidr(client, n, pool="127.64.0.0/19", prefix=24) for n in nodes]
    assert len(set(cidrs)) == 20
    assert await claim_pod_cidr(client, nodes[3], pool="127.64.0.0/19", prefix=24) == cidrs[3]
    leases = (await client.list(LEASES, namespace=NODE_LEASE_NAMESPACE)).items
    assert len(leases) == 20
    await store.close()
