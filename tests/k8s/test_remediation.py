"""Remediation against a real kube-apiserver with kwok nodes (it touches only Kubernetes
objects): a node with a failing probe is cordoned and drained through the real API, and,
belonging to no NodePool, given up on with an Event; the node is handed back after."""

from __future__ import annotations

import asyncio
import contextlib
import json

import pytest

from pincompute.kube.errors import NotFound
from pincompute.kube.resource import EVENTS, NODES, PODS
from pincompute.kubeenv import KubeEnv
from pincompute.model.wellknown import (
    PROBE_FAILURE_ANNOTATION,
    REMEDIATION_ANNOTATION,
)
from pincompute.ops.remediation import RemediationConfig, add_remediation_controller
from pincompute.ops.safeguards import SafeguardConfig
from pincompute.runtime.manager import Manager

from .support import create_namespace, eventually, pincompute

pytestmark = pytest.mark.slow


async def test_a_failing_node_is_cordoned_drained_and_given_up_on(kube_env: KubeEnv) -> None:
    member = kube_env.members[0]
    assert pincompute("install", "--kubeconfig", str(member.kubeconfig), "--role", "member",
                      "--cluster", member.name).returncode == 0  # CRDs, system namespace
    client = member.client()
    node = member.node_names[0]
    ns = "remediation-k8s"
    manager = Manager(name="remediation")
    config = RemediationConfig(
        cluster=member.name, grace=0.2, cordon_wait=0.2, drain_wait=0.2, startup_grace=0.0,
        retry=0.2, tick=0.2, bad_conditions=frozenset({"NeverSet"}),
        safeguards=SafeguardConfig(pool_max_unhealthy=1, zone_max_unhealthy=1,
                                   cluster_max_unhealthy=1))
    # Events about a Node go to "default": a real API server accepts them nowhere else.
    add_remediation_controller(manager, client=client, config=config,
                               events_namespace="default")
    task = asyncio.create_task(manager.run())
    try:
        await create_namespace(client, ns)
        await client.create(PODS, {"metadata": {"name": "victim", "namespace": ns}, "spec": {
            "nodeName": node, "terminationGracePeriodSeconds": 0,
            "tolerations": [{"operator": "Exists"}],
            "containers": [{"name": "main", "image": "busybox:1.36"}]}}, namespace=ns)
        await client.patch(NODES, node, {"metadata": {"annotations": {
            PROBE_FAILURE_ANNOTATION: "disk probe failed"}}})

        async def step() -> str | None:
            raw = ((await client.get(NODES, node))["metadata"].get("annotations") or {}).get(
                REMEDIATION_ANNOTATION)
            return json.loads(raw)["step"] if raw else None

        async def gave_up() -> bool:
            return await step() == "GaveUp"

        await eventually(gave_up, timeout=30, what="remediation to give up on the node")
        obj = await client.get(NODES, node)
        assert obj["spec"].get("unschedulable") is True

        async def drained() -> bool:
            try:
                await client.get(PODS, "victim", namespace=ns)
            except NotFound:
                return True
            return False

        await eventually(drained, timeout=30, what="the pod evicted")

        async def events() -> set[str] | None:
            found = {e["reason"] for e in (await client.list(EVENTS, namespace="default")).items
                     if e["involvedObject"].get("name") == node}
            wanted = {"RemediationCordoned", "RemediationDrained", "RemediationGaveUp"}
            return found if wanted <= found else None

        found = await eventually(events, timeout=20, what="the remediation Events")
        assert "RemediationGaveUp" in found
    finally:
        manager.stop()
        await task
        # hand the shared kwok node back as it was
        await client.patch(NODES, node, {"metadata": {"annotations": {
            PROBE_FAILURE_ANNOTATION: None, REMEDIATION_ANNOTATION: None}},
            "spec": {"unschedulable": None}})
        with contextlib.suppress(NotFound):
            await client.delete(PODS, "victim", namespace=ns, grace_period_seconds=0)
        await client.close()

