"""``pincompute api`` in front of a real host cluster: a PinApp created through the REST API
is admitted, placed and propagated to real member clusters by the federation, run there by
the member operators on kwok nodes, and its pods are visible through the API."""

from __future__ import annotations

import os
import socket
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from pincompute import install as installer
from pincompute.kube import NotFound
from pincompute.kubeenv import KubeEnv
from pincompute.model.registry import MEMBERCLUSTERS, PINAPPS, PROJECTS
from pincompute.model.wellknown import PARENT_UID_LABEL

from .support import eventually, start_controller, stop

pytestmark = pytest.mark.slow

PROJECT = "gateway"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_gateway(kubeconfig: Path, *, port: int, work: Path) -> subprocess.Popen[str]:
    """``pincompute api`` as an operator runs it; its log goes to ``work/gateway.log``."""
    return subprocess.Popen(
        [sys.executable, "-m", "pincompute.cli.main", "api", "--kubeconfig", str(kubeconfig),
         "--listen", f"127.0.0.1:{port}", "--admin-token-file", str(work / "admin-token"),
         "--audit-log", str(work / "audit.log")],
        stdout=(work / "gateway.log").open("a"), stderr=subprocess.STDOUT, text=True,
        start_new_session=True)


async def test_pincompute_api_in_front_of_a_real_host(kube_env: KubeEnv,
                                                      tmp_path: Path) -> None:
    # One member runs the app (its zone only): enough to see propagation, half the load.
    a, b = kube_env.members
    host, clients = kube_env.host.client(), {m.name: m.client() for m in (a, b)}
    await installer.install(host, "host")
    await installer.install(clients[a.name], "member", cluster=a.name)
    port = free_port()
    token_file = tmp_path / "admin-token"
    gateway_log = tmp_path / "gateway.log"
    gateway = start_gateway(kube_env.host.kubeconfig, port=port, work=tmp_path)
    procs: list[subprocess.Popen[str]] = [gateway]
    try:
        for m in (a,):
            try:
                await host.create(MEMBERCLUSTERS, {"metadata": {"name": m.name}, "spec": {
                    "zone": m.zone, "region": "test",
                    "connection": {"type": "Kubeconfig", "kubeconfigPath": str(m.kubeconfig)}}})
            except Exception:  # registered by an earlier test: fine
                pass
            procs.append(start_controller(tmp_path / f"member-{m.name}.log", "member",
                                          "--cluster", m.name, "--kubeconfig",
                                          str(m.kubeconfig), "--lease-duration", "4"))
        procs.append(start_controller(tmp_path / "federation.log", "federation",
                                      "--kubeconfig", str(kube_env.host.kubeconfig),
                                      "--lease-duration", "4"))

        async def serving() -> bool:
            assert gateway.poll() is None, gateway_log.read_text()[-3000:]
            if not token_file.exists():
                return False
            try:
                async with httpx.AsyncClient() as c:
                    return (await c.get(f"http://127.0.0.1:{port}/readyz")).status_code == 200
            except httpx.TransportError:
                return False

        await eventually(serving, timeout=60, what="the gateway serving")
        assert stat.S_IMODE(os.stat(token_file).st_mode) == 0o600
        token = token_file.read_text().strip()
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30,
                                     headers={"Authorization": f"Bearer {token}"}) as api:
            r = await api.post("/api/v1/projects", json={"metadata": {"name": PROJECT},
                                                         "spec": {}})
            assert r.status_code == 201, r.text

            async def clusters() -> bool:
                r = await api.get("/api/v1/clusters")
                return a.name in {m["metadata"]["name"] for m in r.json()["items"]}

            await eventually(clusters, timeout=30, what="the member clusters listed")

            async def created() -> dict[str, Any] | None:
                r = await api.post(f"/api/v1/projects/{PROJECT}/pinapps", json={
                    "metadata": {"name": "web"}, "spec": {
                        "replicas": 2, "placement": {"zones": [a.zone]}, "template": {
                        "spec": {"containers": [{
                            "name": "web", "image": "busybox:1.36",
                            "command": ["sleep", "3600"],
                            "resources": {"requests": {"cpu": "100m",
                                                       "memory": "64Mi"}}}]}}}})
                # The project's namespace may not be there yet on the host.
                assert r.status_code in (201, 403, 404), r.text
                return r.json() if r.status_code == 201 else None

            app = await eventually(created, timeout=60, what="the PinApp created")
            r = await api.post(f"/api/v1/projects/{PROJECT}/pinapps",
                               json={"metadata": {"name": "bad"}, "spec": {"replicas": -1}})
            assert r.status_code == 422

            async def shard() -> str | None:
                for name, client in clients.items():
                    try:
                        obj = await client.get(PINAPPS, "web", namespace=PROJECT)
                    except NotFound:
                        continue
                    assert obj["metadata"]["labels"][PARENT_UID_LABEL] == \
                        app["metadata"]["uid"]
                    return name
                return None

            await eventually(shard, timeout=90, what="a shard in a real member cluster")

            async def pods() -> list[dict[str, Any]] | None:
                r = await api.get(f"/api/v1/projects/{PROJECT}/pinapps/web/pods")
                items = r.json().get("items", []) if r.status_code == 200 else []
                placed = [p for p in items if p["spec"].get("nodeName")]
                return placed if len(placed) == 2 else None

            placed = await eventually(pods, timeout=90, what="the app's pods on kwok nodes")
            for pod in placed:
                labels = pod["metadata"]["labels"]
                assert labels["pincompute.io/cluster"] == a.name
                assert labels["topology.kubernetes.io/zone"] == a.zone
                assert "managedFields" not in pod["metadata"]
            r = await api.post(f"/api/v1/projects/{PROJECT}/pinapps/web/scale",
                               json={"replicas": 3})
            assert r.status_code == 200
            assert (await host.get(PINAPPS, "web", namespace=PROJECT))["spec"]["replicas"] == 3
            r = await api.delete(f"/api/v1/projects/{PROJECT}/pinapps/web")
            assert r.status_code == 200

            # A real member added and removed through the API (nothing runs there: the
            # drain finds no workload and the MemberCluster goes).  An earlier test of the
            # tier may have left b registered (they share the clusters): start without it.
            try:
                await host.delete(MEMBERCLUSTERS, b.name)
            except NotFound:
                pass

            async def b_unregistered() -> bool:
                try:
                    await host.get(MEMBERCLUSTERS, b.name)
                except NotFound:
                    return True
                return False

            await eventually(b_unregistered, timeout=60, what=f"{b.name} unregistered")
            r = await api.post("/api/v1/clusters", json={
                "metadata": {"name": b.name}, "spec": {"zone": b.zone, "connection": {
                    "type": "Kubeconfig", "kubeconfigPath": str(b.kubeconfig)}}})
            assert r.status_code == 201, r.text
            r = await api.delete(f"/api/v1/clusters/{b.name}", params={"timeoutSeconds": 30})
            assert r.status_code == 200, r.text
            with pytest.raises(NotFound):
                await host.get(MEMBERCLUSTERS, b.name)
    finally:
        codes = [stop(p) for p in procs]
        for resource, name, ns in ((PINAPPS, "web", PROJECT), (PROJECTS, PROJECT, None)):
            try:
                await host.delete(resource, name, namespace=ns)
            except NotFound:
                pass
        try:
            await host.delete(MEMBERCLUSTERS, a.name)
        except NotFound:
            pass
        await host.close()
        for client in clients.values():
            await client.close()
    logs = {p.name: p.read_text() for p in tmp_path.glob("*.log")}
    assert codes == [0] * len(codes), {k: v[-2000:] for k, v in logs.items()}
    for name, text in logs.items():
        assert "Traceback" not in text, (name, text[-4000:])
