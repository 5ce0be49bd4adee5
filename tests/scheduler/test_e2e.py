"""End to end: one embedded cluster, 20 nodes in two zones, 100 pods of every kind.

The scheduler runs as a component against the embedded store (informers in,
bindings and reports out), next to a fake node agent that finishes terminating
pods and a fake controller that recreates preempted pods.  Phases run one after
the other, each waiting for the scheduler to settle, so the unschedulable
messages can be checked word for word.

Cluster (cpu 4, memory 16Gi, 110 pods per node unless said):

* zone-a: ``a-00``..``a-07`` general, ``a-08`` cordoned, ``a-09`` GPU (4 GPUs,
  taint ``dedicated=gpu:NoSchedule``);
* zone-b: ``b-00``..``b-07`` general, ``b-08`` special pool (label and taint
  ``pool=special``), ``b-09`` GPU like ``a-09``.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

from pincompute.kube.objects import get_condition
from pincompute.kube.protocol import KubeClient
from pincompute.kube.resource import EVENTS, NODES, PODS
from pincompute.runtime import SharedInformer
from pincompute.scheduler import Scheduler
from pincompute.scheduler.resources import pod_requests

from .support import HOST, ZONE, FakeKubelet, eventually, for_api, gang, node, pod

GPU_TAINT = ("dedicated", "gpu", "NoSchedule")
SPECIAL = {"pool": "special"}
TOLERATE_SPECIAL = {"key": "pool", "operator": "Equal", "value": "special",
                    "effect": "NoSchedule"}
TOLERATE_GPU = {"key": "dedicated", "operator": "Exists"}


def cluster_nodes() -> list[dict[str, Any]]:
    out = []
    for zone in ("a", "b"):
        labels = {ZONE: f"zone-{zone}"}
        for i in range(8):
            out.append(node(f"{zone}-{i:02d}", memory="16Gi", labels=labels))
        if zone == "a":
            out.append(node("a-08", labels=labels, unschedulable=True))
        else:
            out.append(node("b-08", labels={**labels, **SPECIAL},
                            taints=[("pool", "special", "NoSchedule")]))
        out.append(node(f"{zone}-09", gpu=4, labels=labels, taints=[GPU_TAINT]))
    return out


async def create(client: KubeClient, body: dict[str, Any]) -> None:
    await client.create(PODS, for_api(body))


async def get(client: KubeClient, name: str) -> dict[str, Any]:
    return await client.get(PODS, name, namespace="default")


async def message(client: KubeClient, name: str) -> str:
    cond = get_condition(await get(client, name), "PodScheduled")
    return cond["message"] if cond else ""


async def placement(client: KubeClient) -> dict[str, str | None]:
    return {p["metadata"]["name"]: p["spec"].get("nodeName")
            for p in (await client.list(PODS, namespace="default")).items}


async def test_a_cluster_with_every_kind_of_pod(client: KubeClient) -> None:
    for n in cluster_nodes():
        await client.create(NODES, n)
    kubelet = FakeKubelet(client)
    kubelet.start()
    recreated: list[str] = []
    pending_creates: set[asyncio.Future[Any]] = set()

    def recreate(obj: dict[str, Any]) -> None:  # a controller keeping 8 fillers alive
        if obj["metadata"]["name"].startswith("filler-"):
            name = f"refill-{len(recreated)}"
            recreated.append(name)
            pending_creates.add(asyncio.ensure_future(create(client, pod(
                name, cpu="500m", tier="preemptible", node_selector=SPECIAL,
                tolerations=[TOLERATE_SPECIAL]))))

    controller = SharedInformer(client, PODS)
    controller.add_event_handler(on_delete=recreate)
    controller.start()
    sched = Scheduler(client, initial_backoff=0.01, max_backoff=0.05)
    task = asyncio.ensure_future(sched.run())
    try:
        await sched.pods_informer.wait_synced()
        await controller.wait_synced()

        # -- preemptible fillers occupy the special pool ------------------------------------
        for i in range(8):
            await create(client, pod(f"filler-{i}", cpu="500m", tier="preemptible",
                                     node_selector=SPECIAL, tolerations=[TOLERATE_SPECIAL],
                                     grace=10))
        await sched.wait_scheduled(8, timeout=20)
        assert set((await placement(client)).values()) == {"b-08"}

        # -- services: zone spread, host anti-affinity; a gang; preemptible batch -------------
        web_spread = {"maxSkew": 1, "topologyKey": ZONE, "whenUnsatisfiable": "DoNotSchedule",
                      "labelSelector": {"matchLabels": {"app": "web"}}}
        for i in range(40):
            await create(client, pod(f"web-{i:02d}", cpu="250m", labels={"app": "web"},
                                     spread=[web_spread]))
        db_anti = {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
            {"labelSelector": {"matchLabels": {"app": "db"}}, "topologyKey": HOST}]}}
        for i in range(6):
            await create(client, pod(f"db-{i}", cpu="500m", labels={"app": "db"},
                                     affinity=db_anti))
        g = gang("train-a", 4)
        for i in range(4):
            await create(client, pod(f"train-a-{i}", cpu="1", **g))
        for i in range(24):
            await create(client, pod(f"batch-{i:02d}", cpu="200m", tier="preemptible"))
        await sched.wait_scheduled(8 + 40 + 6 + 4 + 24, timeout=20)
        await sched.settle(timeout=20)
        where = await placement(client)
        zone_of = {n["metadata"]["name"]: n["metadata"]["labels"][ZONE] for n in cluster_nodes()}
        web_zones = Counter(zone_of[where[f"web-{i:02d}"]] for i in range(40))
        assert web_zones == {"zone-a": 20, "zone-b": 20}
        db_nodes = [where[f"db-{i}"] for i in range(6)]
        assert len(set(db_nodes)) == 6
        assert all(where[f"train-a-{i}"] for i in range(4))
        general = {f"{z}-{i:02d}" for z in "ab" for i in range(8)}
        assert {where[n] for n in where if not n.startswith("filler")} <= general

        # -- a reserved pod preempts preemptible fillers; their replacements must wait -------
        await create(client, pod("critical", cpu="3", tier="reserved", node_selector=SPECIAL,
                                 tolerations=[TOLERATE_SPECIAL]))
        await sched.wait_scheduled(8 + 40 + 6 + 4 + 24 + 1, timeout=20)
        await eventually(lambda: len(recreated) == 6, timeout=20)
        await asyncio.gather(*pending_creates)
        await sched.settle(timeout=20)
        assert (await get(client, "critical"))["spec"]["nodeName"] == "b-08"
        # The minimal victim set: 6 x 500m frees the 3 cpu; two fillers stay.
        assert len(kubelet.finished) == 6 and sched.evictions == 6
        assert all(name.startswith("filler-") for name in kubelet.finished)
        on_special = [n for n, w in (await placement(client)).items() if w == "b-08"]
        assert len(on_special) == 3 and "critical" in on_special
        refill = ("0/20 nodes are available: 1 Insufficient cpu, 1 node(s) were unschedulable, "
                  "16 node(s) didn't match Pod's node affinity/selector, 2 node(s) had "
                  "untolerated taint {dedicated: gpu}. preemption: 0/20 nodes are available: "
                  "1 No preemption victims found for incoming pod, 19 Preemption is not "
                  "helpful for scheduling.")
        for name in recreated:
            assert (await get(client, name))["spec"].get("nodeName") is None
            assert await message(client, name) == refill

        # -- a gang of 6 that does not fit releases what it reserved -----------------------
        g = gang("train-b", 6)
        for i in range(6):
            await create(client, pod(f"train-b-{i}", gpu=2, tolerations=[TOLERATE_GPU], **g))
        await eventually(lambda: sum(1 for qp in sched.queue.pods()
                                     if qp.info.group == "default/train-b") == 6, timeout=20)
        await sched.settle(timeout=20)
        assert not sched.table.groups.get("default/train-b")
        assert sched.table.req_gpu.sum() == 0
        assert await message(client, "train-b-4") == (
            "0/20 nodes are available: 1 node(s) had untolerated taint {pool: special}, "
            "1 node(s) were unschedulable, 18 Insufficient nvidia.com/gpu. preemption: not "
            "eligible: members of a pod group do not preempt.")
        for i in range(4):
            assert await message(client, f"train-b-{i}") == (
                'pod group "default/train-b" was rejected: member "train-b-4" is '
                "unschedulable")
        assert await message(client, "train-b-5") == (
            '0/20 nodes are available: pod group "default/train-b" was rejected and waits '
            "for the cluster to change.")

        # -- the released GPUs are really free ---------------------------------------------
        await create(client, pod("gpu-job", gpu=4, tolerations=[TOLERATE_GPU]))
        await eventually(lambda: sched.scheduled == 8 + 40 + 6 + 4 + 24 + 1 + 1, timeout=20)
        assert (await get(client, "gpu-job"))["spec"]["nodeName"] in ("a-09", "b-09")

        # -- a gang whose last member never comes times out and releases -------------------
        g = gang("train-c", 3, timeout=0.3)
        for i in range(3):
            await create(client, pod(f"train-c-{i}", cpu="1", gated=i == 2, **g))
        await eventually(lambda: len(sched.framework.waiting) == 2, timeout=20)
        assert len(sched.table.groups["default/train-c"]) == 2  # room held while waiting
        await eventually(lambda: not sched.table.groups.get("default/train-c"), timeout=20)
        await sched.settle(timeout=20)
        assert await message(client, "train-c-0") == (
            'pod group "default/train-c": 2 of minMember 3 members could be placed within '
            "0.3s")
        assert await message(client, "train-c-1") == (
            'pod group "default/train-c" was rejected: member "train-c-0" lost its '
            "reservation")

        # -- a pod no node can hold -----------------------------------------------------------
        await create(client, pod("huge", cpu="64"))
        huge = ("0/20 nodes are available: 1 node(s) had untolerated taint {pool: special}, "
                "1 node(s) were unschedulable, 16 Insufficient cpu, 2 node(s) had untolerated "
                "taint {dedicated: gpu}. preemption: 0/20 nodes are available: 16 No "
                "preemption victims found for incoming pod, 4 Preemption is not helpful for "
                "scheduling.")

        async def huge_reported() -> bool:
            return await message(client, "huge") == huge

        await eventually(huge_reported, timeout=20)
        await sched.settle(timeout=20)
        events = [e for e in (await client.list(EVENTS, namespace="default")).items
                  if e["involvedObject"]["name"] == "huge"]
        assert [(e["reason"], e["message"]) for e in events] == [("FailedScheduling", huge)]

        # -- the whole picture ---------------------------------------------------------------
        pods = (await client.list(PODS, namespace="default")).items
        assert len(pods) + len(kubelet.finished) == 100
        bound = [p for p in pods if p["spec"].get("nodeName")]
        assert len(bound) == 2 + 40 + 6 + 4 + 24 + 1 + 1
        capacity = {n["metadata"]["name"]: n["status"]["allocatable"] for n in cluster_nodes()}
        used: dict[str, list[int]] = {}
        for p in bound:
            cpu, mem, gpu = pod_requests(p["spec"])
            u = used.setdefault(p["spec"]["nodeName"], [0, 0, 0, 0])
            u[0] += cpu
            u[1] += mem
            u[2] += gpu
            u[3] += 1
        for name, (cpu, mem, gpu, count) in used.items():
            alloc = capacity[name]
            assert cpu <= int(alloc["cpu"]) * 1000 and mem <= 16 * 2**30
            assert gpu <= int(alloc.get("nvidia.com/gpu", "0")) and count <= 110
        assert not any(e.assumed for e in sched.table.pods.values())
        assert sched.table.overcommitted() == []
        assert not sched.framework.waiting
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await controller.stop()
        await kubelet.stop()
