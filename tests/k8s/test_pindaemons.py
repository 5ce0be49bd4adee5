"""A PinDaemon on a real member cluster: `pincompute controller member` puts one pod on each
kwok node (bound directly, in the platform namespace) and counts them in the status."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from pincompute.kube.resource import PODS
from pincompute.kubeenv import KubeEnv
from pincompute.model.registry import PINDAEMONS
from pincompute.model.wellknown import DAEMON_POD_LABEL, SYSTEM_NAMESPACE

from .support import eventually, pincompute, start_controller, stop

pytestmark = pytest.mark.slow


async def test_a_pindaemon_puts_one_pod_on_each_kwok_node(kube_env: KubeEnv,
                                                          tmp_path: Path) -> None:
    member = kube_env.members[0]
    assert pincompute("install", "--kubeconfig", str(member.kubeconfig), "--role", "member",
                      "--cluster", member.name).returncode == 0
    proc = start_controller(tmp_path / "member.log", "member", "--cluster", member.name,
                            "--kubeconfig", str(member.kubeconfig), "--lease-duration", "4")
    client = member.client()
    try:
        await client.create(PINDAEMONS, {"metadata": {"name": "logship"}, "spec": {
            "template": {"spec": {"containers": [{
                "name": "ship", "image": "busybox:1.36",
                "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}}}]}}}})

        async def placed() -> list[dict[str, Any]] | None:
            pods = (await client.list(PODS, namespace=SYSTEM_NAMESPACE,
                                      label_selector=f"{DAEMON_POD_LABEL}=true")).items
            running = [p for p in pods if (p.get("status") or {}).get("phase") == "Running"]
            return pods if len(running) == len(member.node_names) == len(pods) else None

        pods = await eventually(placed, timeout=90, what="a running daemon pod on every node")
        assert sorted(p["spec"]["nodeName"] for p in pods) == sorted(member.node_names)

        async def counted() -> dict[str, Any] | None:
            status = (await client.get(PINDAEMONS, "logship")).get("status") or {}
            n = len(member.node_names)
            return status if (status.get("desiredNumberScheduled"),
                              status.get("updatedNumberScheduled")) == (n, n) else None

        await eventually(counted, timeout=60, what="the daemon's status")
    finally:
        assert stop(proc) == 0, (tmp_path / "member.log").read_text()[-3000:]
        await client.delete(PINDAEMONS, "logship")
        await client.close()
