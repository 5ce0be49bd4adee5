"""Volumes in the process runtime: emptyDir shared by a pod's containers, persistent data
that outlives the pod, bridge host ports."""

from __future__ import annotations

import httpx

from pincompute.kube.resource import CONFIGMAPS, PODS
from pincompute.node.volumes import env_name, owner_key

from .conftest import PYTHON, container_status, eventually, get_pod, make_pod
from .test_agent import gone, phase_is, ready


def test_names():
    assert env_name("cache-dir") == "PINCOMPUTE_VOLUME_CACHE_DIR"
    assert owner_key({"metadata": {"name": "p", "ownerReferences": [
        {"kind": "PinPod", "name": "db", "controller": True}]}}) == "pinpod-db"
    assert owner_key({"metadata": {"name": "p"}}) == "pod-p"


async def test_empty_dir_is_shared_by_the_pods_containers(cluster, make_agent):
    agent = await make_agent()
    mount = [{"name": "scratch", "mountPath": "/shared"}]
    await cluster.create(PODS, make_pod("pair", [
        {"name": "writer", "command": ["sh", "-c", "echo hello > shared/msg; sleep 60"],
         "volumeMounts": mount},
        {"name": "reader", "volumeMounts": mount,
         "command": ["sh", "-c", "until test -f shared/msg; do sleep 0.05; done; cat shared/msg"]},
    ], volumes=[{"name": "scratch", "emptyDir": {}}], restartPolicy="OnFailure"),
        namespace="default")

    async def read_it():
        pod = await get_pod(cluster, "pair")
        state = container_status(pod, "reader").get("state") or {}
        return (state.get("terminated") or {}).get("exitCode") == 0

    await eventually(read_it)
    worker = agent.find("default", "pair")
    out = b"".join([c async for c in agent.logs.read(worker.log_dir, "reader")])
    assert out == b"hello\n"


async def test_persistent_volume_outlives_its_pod(cluster, make_agent):
    await make_agent()
    # The owner must exist, or the store's garbage collector removes its pods.
    owner = await cluster.create(CONFIGMAPS, {"apiVersion": "v1", "kind": "ConfigMap",
                                              "metadata": {"name": "db"}}, namespace="default")

    def db(name: str, script: str) -> dict:
        return make_pod(name, [{"name": "main", "command": ["sh", "-c", script],
                                "volumeMounts": [{"name": "data", "mountPath": "/var/db"}]}],
                        volumes=[{"name": "data", "persistent": {"size": "1Gi"}}],
                        restartPolicy="Never", metadata={"ownerReferences": [{
                            "apiVersion": "v1", "kind": "ConfigMap", "name": "db",
                            "uid": owner["metadata"]["uid"], "controller": True}]})

    await cluster.create(PODS, db("db-1", "echo kept > var/db/file"), namespace="default")
    await eventually(phase_is(cluster, "db-1", "Succeeded"))
    await cluster.delete(PODS, "db-1", namespace="default")
    await eventually(gone(cluster, "db-1"))
    await cluster.create(PODS, db("db-2", "grep -q kept var/db/file"), namespace="default")
    pod = await eventually(phase_is(cluster, "db-2", "Succeeded", "Failed"))
    assert pod["status"]["phase"] == "Succeeded"


async def test_bridge_pods_are_reached_through_host_ports(cluster, make_agent):
    agent = await make_agent()
    server = [PYTHON, "-m", "http.server", "8080", "--bind", "$(PINCOMPUTE_POD_IP)"]
    await cluster.create(PODS, make_pod("web", [{
        "name": "web", "command": server,
        "ports": [{"containerPort": 8080, "hostPort": 18080}],
        "readinessProbe": {"tcpSocket": {"port": 8080}, "periodSeconds": 1}}],
        networkMode="bridge"), namespace="default")
    await eventually(ready(cluster, "web"))
    async with httpx.AsyncClient(trust_env=False) as http:
        resp = await http.get(f"http://{agent.networking.node_ip}:18080/")
    assert resp.status_code == 200
