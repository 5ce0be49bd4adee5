"""Logs and exec through the gateway in front of real clusters (kube-apiserver + kwok).

The gateway (``pincompute api``'s :meth:`Gateway.connect`) finds a pod in a member
cluster registered by kubeconfig and reads its log through the API server's
``pods/log``.  kwok runs no containers: an unscheduled pod has an empty log, a pod on
a kwok node a log the API server cannot fetch (no kubelet: answered 502 naming the
pod and node), and exec is refused 501 with the reason, before any upgrade.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from pathlib import Path

import httpx
import pytest

from pincompute.gateway import Gateway
from pincompute.install import install
from pincompute.kube import NotFound
from pincompute.kube.resource import NODES, PODS
from pincompute.kubeenv import KubeEnv
from pincompute.model.registry import MEMBERCLUSTERS

from .support import create_namespace, eventually

pytestmark = pytest.mark.slow


def pod(name: str) -> dict:
    return {"metadata": {"name": name},
            "spec": {"containers": [{"name": "main", "image": "busybox"}],
                     "tolerations": [{"operator": "Exists"}]}}


async def test_logs_and_exec_of_pods_on_kubernetes_nodes(kube_env: KubeEnv,
                                                         tmp_path: Path) -> None:
    host, member = kube_env.host, kube_env.members[0]
    host_client, member_client = host.client(), member.client()
    # What `pincompute install` applies, in-process (a subprocess each costs ~9 s here).
    await asyncio.gather(install(host_client, "host"),
                         install(member_client, "member", cluster=member.name))
    ns = f"dbg-{secrets.token_hex(3)}"
    with contextlib.suppress(NotFound):
        await host_client.delete(MEMBERCLUSTERS, member.name)
    await eventually(lambda: _gone(host_client, member.name), timeout=30,
                     what="an earlier registration gone")
    await host_client.create(MEMBERCLUSTERS, {
        "metadata": {"name": member.name},
        "spec": {"zone": member.zone, "region": "test", "connection": {
            "type": "Kubeconfig", "kubeconfigPath": str(member.kubeconfig)}}})
    try:
        await create_namespace(member_client, ns)
        await member_client.create(PODS, pod("idle"), namespace=ns)
        await member_client.create(PODS, pod("busy"), namespace=ns)
        node = (await member_client.list(NODES)).items[0]["metadata"]["name"]
        await member_client.create_subresource(PODS, "busy", "binding", {
            "apiVersion": "v1", "kind": "Binding", "metadata": {"name": "busy"},
            "target": {"apiVersion": "v1", "kind": "Node", "name": node}}, namespace=ns)
        async with Gateway.connect(str(host.kubeconfig), listen="127.0.0.1:0",
                                   admin_token_file=tmp_path / "admin-token") as gw, \
                httpx.AsyncClient(base_url=gw.url, timeout=30, headers={
                    "Authorization": f"Bearer {gw.admin_token}"}) as c:
            base = f"/api/v1/projects/{ns}/pods"

            async def found() -> httpx.Response | None:
                r = await c.get(f"{base}/idle/logs")
                return r if r.status_code != 404 else None

            r = await eventually(found, timeout=60, what="the member's pods in the gateway")
            assert r.status_code == 200 and r.text == ""
            assert r.headers["x-pincompute-cluster"] == member.name
            r = await c.get(f"{base}/idle/logs", params={"container": "nope"})
            assert r.status_code == 400

            r = await c.get(f"{base}/busy/logs", params={"follow": "true"})
            assert r.status_code == 502, r.text
            assert "busy" in r.json()["message"] and node in r.json()["message"]

            async with httpx.AsyncClient(timeout=30) as http, http.stream(
                    "GET", f"{gw.url}{base}/busy/exec?command=true", headers={
                        "Authorization": f"Bearer {gw.admin_token}",
                        "Connection": "Upgrade", "Upgrade": "websocket",
                        "Sec-WebSocket-Version": "13",
                        "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="}) as resp:
                await resp.aread()
            assert resp.status_code == 501
            assert "embedded" in resp.json()["message"]

            # Insights read the host's Events through the same API.
            r = await c.get(f"/api/v1/projects/{ns}/events", params={"type": "Warning"})
            assert r.status_code == 200 and r.json()["kind"] == "EventList"
    finally:
        with contextlib.suppress(NotFound):
            await host_client.delete(MEMBERCLUSTERS, member.name)
        with contextlib.suppress(NotFound):
            await member_client.delete(PODS, "busy", namespace=ns, grace_period_seconds=0)
        await host_client.close()
        await member_client.close()


async def _gone(client, name: str) -> bool:
    try:
        await client.get(MEMBERCLUSTERS, name)
    except NotFound:
        return True
    return False
