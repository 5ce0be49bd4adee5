"""The scheduler's trimmed pods: what scheduling reads stays, the rest goes."""

from __future__ import annotations

import asyncio
import copy

import orjson

from pincompute.kube.protocol import KubeClient
from pincompute.kube.resource import NODES, PODS
from pincompute.scheduler import Scheduler
from pincompute.scheduler.podinfo import PodInfo
from pincompute.scheduler.trim import trim_pod

from .support import eventually, for_api, node, pod


def running(obj: dict) -> dict:
    obj = copy.deepcopy(obj)
    obj["metadata"]["managedFields"] = [{"manager": "kubelet", "operation": "Update"}]
    obj["spec"]["initContainers"] = [
        {"name": "proxy", "image": "envoy", "restartPolicy": "Always", "args": ["-c", "x"],
         "resources": {"requests": {"cpu": "50m", "memory": "32Mi"}}}]
    obj["spec"]["containers"][0].update(
        command=["python3"], env=[{"name": "A", "value": "1"}],
        readinessProbe={"httpGet": {"path": "/", "port": 80}})
    obj["status"] = {
        "phase": "Running", "podIP": "10.0.0.5", "podIPs": [{"ip": "10.0.0.5"}],
        "conditions": [{"type": "Ready", "status": "True"},
                       {"type": "PodScheduled", "status": "True"}],
        "containerStatuses": [{"name": "main", "ready": True, "restartCount": 0}],
        "nominatedNodeName": "n1"}
    return obj


def test_trimmed_pods_keep_what_decisions_read_and_drop_the_rest() -> None:
    full = running(pod("a", cpu="300m", memory="1Gi", labels={"app": "x"},
                       node_selector={"zone": "a"}, tolerations=[{"key": "k",
                                                                  "operator": "Exists"}]))
    before = copy.deepcopy(full)
    trimmed = trim_pod(full)
    assert full == before  # the informer's object is shared: never changed in place
    assert "managedFields" not in trimmed["metadata"]
    assert trimmed["metadata"]["labels"] == {"app": "x"}
    assert trimmed["spec"]["containers"] == [
        {"name": "main", "resources": {"requests": {"cpu": "300m", "memory": "1Gi"}}}]
    assert trimmed["spec"]["initContainers"] == [
        {"name": "proxy", "restartPolicy": "Always",
         "resources": {"requests": {"cpu": "50m", "memory": "32Mi"}}}]
    assert trimmed["spec"]["nodeSelector"] == {"zone": "a"}
    assert trimmed["status"] == {"phase": "Running", "conditions": full["status"]["conditions"],
                                 "nominatedNodeName": "n1"}
    a, b = PodInfo.from_pod(full), PodInfo.from_pod(trimmed)
    assert (a.cpu, a.memory, a.class_key, a.tolerations, a.node_selector) == \
        (b.cpu, b.memory, b.class_key, b.tolerations, b.node_selector)


def test_equal_parts_are_one_object_and_equal_classes_one_key() -> None:
    one, two = (trim_pod(running(pod(n, cpu="200m", labels={"app": "w"})))
                for n in ("a", "b"))
    for part in (("spec", "containers"), ("metadata", "labels"), ("status", "conditions")):
        assert one[part[0]][part[1]] is two[part[0]][part[1]]
    assert one["metadata"]["name"] != two["metadata"]["name"]
    assert PodInfo.from_pod(one).class_key is PodInfo.from_pod(two).class_key
    assert one["status"] is two["status"]


def test_strings_of_few_values_are_one_object_across_decoded_pods() -> None:
    # Decoding makes new string objects for every value; trimming shares the common ones.
    one, two = (trim_pod(orjson.loads(orjson.dumps(running(pod(n, node_name="n1")))))
                for n in ("a", "b"))
    assert one["metadata"]["namespace"] is two["metadata"]["namespace"]
    assert one["spec"]["nodeName"] is two["spec"]["nodeName"]
    assert one["status"]["phase"] is two["status"]["phase"]


async def test_a_standalone_scheduler_caches_trimmed_pods_and_still_binds(
        client: KubeClient) -> None:
    await client.create(NODES, node("n1"))
    sched = Scheduler(client, initial_backoff=0.01, max_backoff=0.05)
    task = asyncio.ensure_future(sched.run())
    try:
        await client.create(PODS, for_api(running(pod("p"))))

        async def bound() -> bool:
            return bool((await client.get(PODS, "p", namespace="default"))["spec"]
                        .get("nodeName"))

        await eventually(bound)
        cached = sched.pods_informer.get_by_key("default/p")
        assert cached is not None and cached["spec"]["nodeName"] == "n1"
        assert "image" not in cached["spec"]["containers"][0]
        assert "containerStatuses" not in cached.get("status", {})
        # The switch keeps whole pods (the old layout, for comparisons).
        whole = Scheduler(client, trim_pods=False)
        assert whole.pods_informer.transform is None
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
