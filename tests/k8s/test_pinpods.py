"""The PinPod operator on a real member cluster, through ``pincompute controller member``:
a PinPod gets its one pod (sidecar as a native sidecar, persistent volume as a claim),
bound by PinCompute's scheduler to a kwok node and Running; an image change is made in
place on the live pod."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from pincompute.kube.objects import condition_true
from pincompute.kube.resource import NAMESPACES, PERSISTENT_VOLUME_CLAIMS, PODS
from pincompute.kubeenv import KubeEnv
from pincompute.model.registry import PINPODS

from .support import create_namespace, eventually, pincompute, start_controller, stop

pytestmark = pytest.mark.slow



async def test_a_pinpod_runs_on_a_kwok_node(kube_env: KubeEnv, tmp_path: Path) -> None:
    member = kube_env.members[0]
    assert pincompute("install", "--kubeconfig", str(member.kubeconfig), "--role", "member",
                      "--cluster", member.name).returncode == 0
    log = tmp_path / "member.log"
    proc = start_controller(log, "member", "--cluster", member.name,
                            "--kubeconfig", str(member.kubeconfig), "--lease-duration", "4")
    client = member.client()
    ns = "pinpods"
    try:
        await create_namespace(client, ns)
        await client.create(PINPODS, {"metadata": {"name": "db"}, "spec": {
            "containers": [
                {"name": "app", "image": "busybox:1.36", "command": ["sleep", "3600"],
                 "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}},
                 "volumeMounts": [{"name": "data", "mountPath": "/data"}]},
                {"name": "proxy", "image": "busybox:1.36", "type": "sidecar",
                 "command": ["sleep", "3600"]}],
            "volumes": [{"name": "data", "persistent": {"size": "1Gi"}}]}}, namespace=ns)

        async def running() -> dict[str, Any] | None:
            pp = await client.get(PINPODS, "db", namespace=ns)
            status = pp.get("status") or {}
            return pp if status.get("phase") == "Running" and status.get("nodeName") else None

        pp = await eventually(running, timeout=90, what="the PinPod Running on a kwok node")
        assert pp["status"]["nodeName"] in member.node_names
        assert pp["status"]["cluster"] == member.name
        pod = await client.get(PODS, "db", namespace=ns)
        assert pod["spec"]["nodeName"] == pp["status"]["nodeName"]
        assert [c["name"] for c in pod["spec"]["initContainers"]] == ["proxy"]
        assert pod["spec"]["initContainers"][0]["restartPolicy"] == "Always"
        claim = await client.get(PERSISTENT_VOLUME_CLAIMS, "db-data", namespace=ns)
        assert claim["metadata"]["ownerReferences"][0]["uid"] == pp["metadata"]["uid"]

        # An image change is made on the live pod (the only field kube lets change).
        uid = pod["metadata"]["uid"]
        await client.patch(PINPODS, "db", {"spec": {"containers": [
            {"name": "app", "image": "busybox:1.37", "command": ["sleep", "3600"],
             "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}},
             "volumeMounts": [{"name": "data", "mountPath": "/data"}]},
            {"name": "proxy", "image": "busybox:1.36", "type": "sidecar",
             "command": ["sleep", "3600"]}]}}, namespace=ns)

        async def updated() -> dict[str, Any] | None:
            pp = await client.get(PINPODS, "db", namespace=ns)
            last = (pp.get("status") or {}).get("lastUpdate") or {}
            return pp if last.get("type") == "UpdatedInPlace" else None

        pp = await eventually(updated, timeout=30, what="the image updated in place")
        assert pp["status"]["lastUpdate"]["containers"] == ["app"]
        pod = await client.get(PODS, "db", namespace=ns)
        assert pod["metadata"]["uid"] == uid
        assert pod["spec"]["containers"][0]["image"] == "busybox:1.37"
        assert condition_true(pp, "Ready") or pp["status"]["phase"] == "Running"
    finally:
        assert stop(proc) == 0, log.read_text()[-3000:]
        await client.delete(NAMESPACES, ns)
        await client.close()
