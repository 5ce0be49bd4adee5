"""The PinApp operator on a real member cluster, through ``pincompute controller member``:
a PinApp's PinPods become pods bound to kwok nodes, and the app reports its replicas
ready and available."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from pincompute.kube.resource import NAMESPACES, PODS
from pincompute.kubeenv import KubeEnv
from pincompute.model.registry import PINAPPS, PINPODS

from .support import create_namespace, eventually, pincompute, start_controller, stop

pytestmark = pytest.mark.slow



async def test_a_pinapp_reaches_its_replicas_on_kwok_nodes(kube_env: KubeEnv,
                                                           tmp_path: Path) -> None:
    member = kube_env.members[0]
    assert pincompute("install", "--kubeconfig", str(member.kubeconfig), "--role", "member",
                      "--cluster", member.name).returncode == 0
    log = tmp_path / "member.log"
    proc = start_controller(log, "member", "--cluster", member.name,
                            "--kubeconfig", str(member.kubeconfig), "--lease-duration", "4")
    client = member.client()
    ns = "pinapps"
    try:
        await create_namespace(client, ns)
        await client.create(PINAPPS, {"metadata": {"name": "web"}, "spec": {
            "replicas": 3, "template": {"spec": {"containers": [
                {"name": "web", "image": "busybox:1.36", "command": ["sleep", "3600"],
                 "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}}}]}}}},
            namespace=ns)

        async def available() -> dict[str, Any] | None:
            app = await client.get(PINAPPS, "web", namespace=ns)
            status = app.get("status") or {}
            return app if (status.get("readyReplicas"), status.get("availableReplicas"),
                           status.get("updatedReplicas")) == (3, 3, 3) else None

        app = await eventually(available, timeout=120, what="3 replicas available")
        assert app["status"]["currentRevision"] == app["status"]["updateRevision"]
        pinpods = (await client.list(PINPODS, namespace=ns)).items
        pods = (await client.list(PODS, namespace=ns)).items
        assert len(pinpods) == 3 and len(pods) == 3
        assert {p["spec"]["nodeName"] for p in pods} <= set(member.node_names)
        assert all(p["metadata"]["ownerReferences"][0]["uid"] == app["metadata"]["uid"]
                   for p in pinpods)
    finally:
        assert stop(proc) == 0, log.read_text()[-3000:]
        await client.delete(NAMESPACES, ns)
        await client.close()
