"""The federation's live cluster set against real API servers: members registered by
kubeconfig (file or Secret) while the federation runs, and let go when removed."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
import yaml

from pincompute.federation.connectionstatus import CONDITION
from pincompute.federation.projects import DISCONNECTED, PROJECT_LABEL
from pincompute.install import SYSTEM_NAMESPACE
from pincompute.kube import NotFound, objects
from pincompute.kube.backends.kubernetes import KubernetesClient
from pincompute.kube.resource import NAMESPACES, SECRETS
from pincompute.kubeenv import KubeCluster, KubeEnv
from pincompute.model.registry import MEMBERCLUSTERS, PROJECTS

from .support import eventually, pincompute, start_controller, stop

pytestmark = pytest.mark.slow

SECRET = "clusterset-test-kubeconfig"
PROJECT = "late-members"


@pytest.fixture(scope="module")
def region(kube_env: KubeEnv) -> KubeEnv:
    assert pincompute("install", "--kubeconfig", str(kube_env.host.kubeconfig),
                      "--role", "host").returncode == 0
    for member in kube_env.members:
        assert pincompute("install", "--kubeconfig", str(member.kubeconfig), "--role",
                          "member", "--cluster", member.name).returncode == 0
    return kube_env


def _member(cluster: KubeCluster, connection: dict) -> dict:
    return {"metadata": {"name": cluster.name},
            "spec": {"zone": cluster.zone, "region": "test", "connection": connection}}


async def _unregister(host: KubernetesClient, name: str) -> None:
    """Delete a registration (an earlier test's, if any) and wait until it is gone."""
    try:
        await host.delete(MEMBERCLUSTERS, name)
    except NotFound:
        return

    async def gone() -> bool:
        try:
            await host.get(MEMBERCLUSTERS, name)
        except NotFound:
            return True
        return False

    await eventually(gone, timeout=30, what=f"MemberCluster {name} to go")


async def _ours(client: KubernetesClient, name: str) -> bool:
    try:
        ns = await client.get(NAMESPACES, name)
    except NotFound:
        return False
    return ((ns["metadata"].get("labels") or {}).get(PROJECT_LABEL) == name
            and not objects.is_deleting(ns))


async def _gone_or_going(client: KubernetesClient, name: str) -> bool:
    try:
        return objects.is_deleting(await client.get(NAMESPACES, name))
    except NotFound:
        return True


async def _clusters(host: KubernetesClient) -> dict[str, str]:
    project = await host.get(PROJECTS, PROJECT)
    return {n["cluster"]: n["phase"] for n in (project.get("status") or {}).get("namespaces", [])}


def _secret_data(kubeconfig: Path, *, server: str | None = None) -> dict[str, str]:
    text = kubeconfig.read_text()
    if server is not None:  # the same credentials, pointed somewhere nothing listens
        config = yaml.safe_load(text)
        config["clusters"][0]["cluster"]["server"] = server
        text = yaml.safe_dump(config)
    return {"kubeconfig": base64.b64encode(text.encode()).decode()}


async def test_members_registered_while_the_federation_runs_get_the_namespaces(
        region: KubeEnv, tmp_path: Path) -> None:
    a, b = region.members
    host = region.host.client()
    member_a, member_b = a.client(), b.client()
    log = tmp_path / "federation.log"
    proc = None
    try:
        # The federation starts with no member at all.
        await _unregister(host, a.name)
        await _unregister(host, b.name)
        proc = start_controller(log, "federation", "--kubeconfig", str(region.host.kubeconfig),
                                "--lease-duration", "4")
        await host.create(PROJECTS, {"metadata": {"name": PROJECT}, "spec": {}})
        await eventually(lambda: _ours(host, PROJECT), timeout=60,
                         what="the namespace in the host")

        # a is registered by a kubeconfig file while it runs.
        await host.create(MEMBERCLUSTERS, _member(a, {"type": "Kubeconfig",
                                                      "kubeconfigPath": str(a.kubeconfig)}))
        await eventually(lambda: _ours(member_a, PROJECT), timeout=60,
                         what="the namespace in member a")
        assert not await _ours(member_b, PROJECT)

        # b is registered through a Secret whose kubeconfig first points nowhere: it is
        # retried and reported, and the federation keeps serving the others.
        await host.create(SECRETS, {"metadata": {"name": SECRET},
                                    "data": _secret_data(b.kubeconfig,
                                                         server="https://127.0.0.1:1")},
                          namespace=SYSTEM_NAMESPACE)
        await host.create(MEMBERCLUSTERS, _member(b, {
            "type": "Kubeconfig", "kubeconfigSecretRef": {"name": SECRET}}))

        async def connected(status: str) -> dict | None:
            mc = await host.get(MEMBERCLUSTERS, b.name)
            condition = objects.get_condition(mc, CONDITION)
            return condition if condition and condition["status"] == status else None

        failed = await eventually(lambda: connected("False"), timeout=60,
                                  what="member b reported unreachable")
        assert failed["reason"] in ("Unreachable", "Timeout"), failed
        assert "127.0.0.1:1" in failed["message"]

        async def disconnected() -> bool:
            return (await _clusters(host)).get(b.name) == DISCONNECTED

        await eventually(disconnected, timeout=30, what="the project to report b")

        # The Secret is fixed (rotated): b connects and gets the namespace.
        secret = await host.get(SECRETS, SECRET, namespace=SYSTEM_NAMESPACE)
        secret["data"] = _secret_data(b.kubeconfig)
        await host.update(SECRETS, secret)
        await eventually(lambda: _ours(member_b, PROJECT), timeout=60,
                         what="the namespace in member b")
        assert (await eventually(lambda: connected("True"), timeout=30))["reason"] == \
            "Connected"

        async def everywhere() -> dict | None:
            clusters = await _clusters(host)
            return clusters if clusters == {"host": "Active", a.name: "Active",
                                            b.name: "Active"} else None

        await eventually(everywhere, timeout=30, what="the project Active everywhere")

        # b is removed: let go, no longer in the project's status, its namespace left be.
        await host.delete(MEMBERCLUSTERS, b.name)

        async def without_b() -> bool:
            return b.name not in await _clusters(host)

        await eventually(without_b, timeout=30, what="the project to forget b")

        # Deleting the project now waits only for the members still registered.
        await host.delete(PROJECTS, PROJECT)

        async def finalized() -> bool:
            try:
                await host.get(PROJECTS, PROJECT)
            except NotFound:
                return True
            return False

        await eventually(finalized, timeout=90, what="the project to be finalized")
        assert await _gone_or_going(member_a, PROJECT)
        assert await _ours(member_b, PROJECT)  # not ours to delete any more
    finally:
        code = stop(proc) if proc is not None else 0
        text = log.read_text() if log.exists() else ""
        for client in (member_a, member_b):
            try:
                await client.delete(NAMESPACES, PROJECT)
            except NotFound:
                pass
        for resource, name, ns in ((SECRETS, SECRET, SYSTEM_NAMESPACE),
                                   (MEMBERCLUSTERS, a.name, None),
                                   (MEMBERCLUSTERS, b.name, None)):
            try:
                await host.delete(resource, name, namespace=ns)
            except NotFound:
                pass
        await host.close()
        await member_a.close()
        await member_b.close()
    assert code == 0, text[-3000:]
    # Failing to reach b is reported (WARNING); nothing failed (no ERROR, no traceback).
    assert "Traceback" not in text and " ERROR " not in text, text[-5000:]
    assert f"member cluster {b.name} removed" in text, text[-3000:]
