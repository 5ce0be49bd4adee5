"""The reconciler against embedded host and member stores: usage records in, scaling out.

Usage records are written into the member cluster as a node agent writes them
(:class:`~pincompute.model.usage.NodeUsage`), and reach the scaler through the real
cluster set.  Safeguards: paused and stopped apps are left alone; a failing metric
source holds the current size and says so.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest

from pincompute.federation.clusterset import add_cluster_set
from pincompute.kube.backends.embedded import EmbeddedStore
from pincompute.kube.objects import get_condition
from pincompute.kube.protocol import KubeClient
from pincompute.kube.resource import CONFIGMAPS, EVENTS, NAMESPACES
from pincompute.model import registry
from pincompute.model.registry import MEMBERCLUSTERS, PINAPPS, PINSCALERS
from pincompute.model.usage import USAGE_NAMESPACE, NodeUsage, PodUsage
from pincompute.runtime.manager import Manager
from pincompute.scaler import add_scaler_controller
from pincompute.scaler.controller import ScalerReconciler
from tests.waiting import eventually

NS = "demo"


@dataclass
class Env:
    host: KubeClient
    member: KubeClient
    reconciler: ScalerReconciler


@pytest.fixture
async def env() -> AsyncIterator[Env]:
    host_store = await EmbeddedStore.open(path=None)
    registry.install(host_store, resources=registry.HOST_RESOURCES)
    member_store = await EmbeddedStore.open(path=None)
    registry.install(member_store, resources=registry.MEMBER_RESOURCES)
    host, member = host_store.client(), member_store.client()
    for client in (host, member):
        for ns in (NS, USAGE_NAMESPACE):
            await client.create(NAMESPACES, {"metadata": {"name": ns}})
    manager = Manager(name="test", shutdown_timeout=5.0)
    clusters = add_cluster_set(manager, host=host, embedded={"zone-a-1": member}.get,
                               connect_timeout=5.0, retry_base=0.05, retry_max=0.5)
    reconciler = add_scaler_controller(manager, host=host, members=clusters, interval=0.1)
    await host.create(MEMBERCLUSTERS, {"metadata": {"name": "zone-a-1"}, "spec": {
        "zone": "zone-a", "connection": {"type": "Embedded"}}})
    task = asyncio.create_task(manager.run())
    await manager.wait_started()
    await clusters.wait_synced()
    try:
        yield Env(host, member, reconciler)
    finally:
        manager.stop()
        await task
        await host_store.close()
        await member_store.close()


def app(replicas: int = 2, **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "pincompute.io/v1alpha1", "kind": "PinApp",
            "metadata": {"name": "web", "namespace": NS},
            "spec": {"replicas": replicas, **spec, "template": {"spec": {"containers": [
                {"name": "main", "image": "web:1",
                 "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}}}]}}}}


def scaler(**spec: Any) -> dict[str, Any]:
    return {"apiVersion": "pincompute.io/v1alpha1", "kind": "PinScaler",
            "metadata": {"name": "web", "namespace": NS},
            "spec": {"scaleTargetRef": {"name": "web"}, "minReplicas": 1, "maxReplicas": 10,
                     "cooldownSeconds": 0, **spec}}


async def report(member: KubeClient, node: str, *, cpu: list[int],
                 replace: bool = False) -> None:
    """What a node agent writes: its pods of app ``web`` using ``cpu`` millicores each."""
    usage = NodeUsage(node=node, time=time.time(), cpu=sum(cpu), pods=tuple(
        PodUsage(namespace=NS, name=f"web-{node}-{i}", app="web", app_kind="pinapp",
                 ready=True, running=True, cpu_request=100, memory_request=64 << 20,
                 cpu=c, memory=32 << 20, containers={"main": (c, 32 << 20)})
        for i, c in enumerate(cpu)))
    if replace:
        current = await member.get(CONFIGMAPS, usage.configmap()["metadata"]["name"],
                                   namespace=USAGE_NAMESPACE)
        current["data"] = usage.configmap()["data"]
        await member.update(CONFIGMAPS, current)
        return
    await member.create(CONFIGMAPS, usage.configmap(), namespace=USAGE_NAMESPACE)


async def status(host: KubeClient) -> dict[str, Any]:
    return (await host.get(PINSCALERS, "web", namespace=NS)).get("status") or {}


async def replicas(host: KubeClient) -> int:
    return int((await host.get(PINAPPS, "web", namespace=NS))["spec"]["replicas"])


CPU_50 = [{"type": "Resource", "resource": {"name": "cpu", "targetAverageUtilization": 50}}]


async def test_usage_records_in_a_member_scale_the_host_app(env: Env) -> None:
    await env.host.create(PINAPPS, app(2))
    await report(env.member, "n1", cpu=[150, 150])  # 150% of requests, target 50%
    await env.host.create(PINSCALERS, scaler(metrics=CPU_50))

    async def scaled() -> bool:
        return await replicas(env.host) == 6

    await eventually(scaled, what="2 -> 6 replicas (ceil(2 * 150/50))")

    async def recorded() -> dict[str, Any] | None:
        # the scaler writes the app's replicas first, then its own status
        s = await status(env.host)
        return s if s.get("lastScaleReason") else None

    s = await eventually(recorded, what="the scaling in the status")
    assert s["currentMetrics"][0]["current"] == "150"
    assert s["lastScaleReason"] == "metrics above target: 2 -> 6"
    assert s["currentReplicas"] in (2, 6)

    async def event() -> bool:
        items = (await env.host.list(EVENTS, namespace=NS)).items
        return any(e["reason"] == "SuccessfulRescale" and "New size: 6" in e["message"]
                   for e in items)

    await eventually(event, what="the SuccessfulRescale Event")


@pytest.mark.parametrize(("field", "reason"), [("paused", "AppPaused"),
                                               ("stopped", "AppStopped")])
async def test_a_paused_or_stopped_app_is_not_scaled(env: Env, field: str, reason: str) -> None:
    await env.host.create(PINAPPS, app(2, **{field: True}))
    await report(env.member, "n1", cpu=[300, 300])
    await env.host.create(PINSCALERS, scaler(metrics=CPU_50))

    async def held() -> Any:
        cond = get_condition(await env.host.get(PINSCALERS, "web", namespace=NS), "AbleToScale")
        return cond is not None and cond["reason"] == reason and cond["status"] == "False"

    await eventually(held, what=f"AbleToScale False {reason}")
    await asyncio.sleep(0.3)
    assert await replicas(env.host) == 2


async def test_a_failing_metric_source_holds_the_size_and_says_so(env: Env) -> None:
    await env.host.create(PINAPPS, app(4))
    await env.host.create(PINSCALERS, scaler(metrics=[{"type": "Prometheus", "prometheus": {
        "query": "sum(up)", "targetValue": "1", "serverAddress": "http://127.0.0.1:9"}}]))

    async def failing() -> Any:
        cond = get_condition(await env.host.get(PINSCALERS, "web", namespace=NS),
                             "ScalingActive")
        return cond is not None and cond["reason"] == "FailedGetMetric"

    await eventually(failing, what="ScalingActive False FailedGetMetric")
    s = await status(env.host)
    assert "unreachable" in s["currentMetrics"][0]["error"]
    assert s["desiredReplicas"] == 4
    await asyncio.sleep(0.3)
    assert await replicas(env.host) == 4  # no collapse to minReplicas


async def test_never_above_max_and_limited_says_why(env: Env) -> None:
    await env.host.create(PINAPPS, app(2))
    await report(env.member, "n1", cpu=[500, 500])
    await env.host.create(PINSCALERS, scaler(metrics=CPU_50, maxReplicas=3))

    async def at_max() -> bool:
        return await replicas(env.host) == 3

    await eventually(at_max, what="the maximum")

    async def limited() -> Any:
        cond = get_condition(await env.host.get(PINSCALERS, "web", namespace=NS),
                             "ScalingLimited")
        return cond is not None and cond["status"] == "True" and \
            cond["reason"] == "TooManyReplicas"

    await eventually(limited, what="ScalingLimited TooManyReplicas")


async def test_the_cooldown_holds_the_next_change_and_says_until_when(env: Env) -> None:
    await env.host.create(PINAPPS, app(2))
    await report(env.member, "n1", cpu=[100, 100])  # 100%: 2 -> 4
    await env.host.create(PINSCALERS, scaler(metrics=CPU_50, cooldownSeconds=600))

    async def at(n: int) -> bool:
        return await replicas(env.host) == n

    await eventually(lambda: at(4), what="the first scale-up")
    await report(env.member, "n1", cpu=[300, 300], replace=True)  # now 300%: wants more

    async def cooling() -> Any:
        obj = await env.host.get(PINSCALERS, "web", namespace=NS)
        cond = get_condition(obj, "AbleToScale")
        return cond is not None and cond["reason"] == "Cooldown" and \
            obj["status"]["desiredReplicas"] > 4

    await eventually(cooling, what="AbleToScale False Cooldown, desired above current")
    cond = get_condition(await env.host.get(PINSCALERS, "web", namespace=NS), "AbleToScale")
    assert cond is not None and "next change allowed at" in cond["message"]
    assert await replicas(env.host) == 4
