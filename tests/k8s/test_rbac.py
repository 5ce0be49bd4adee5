"""Least privilege on real clusters: the controllers run as the ServiceAccount ``pincompute
install`` makes, with a token from the TokenRequest API, and nothing else.

They WORK with exactly those rights — projects get namespaces and workload RoleBindings in
the host and every member (reached through a kubeconfig Secret in ``pincompute-system``),
and the member controller schedules a pod in a project namespace — and are REFUSED outside
them: Secrets outside ``pincompute-system``, pods, ConfigMaps and Leases in namespaces
PinCompute does not own, relabelling a namespace, granting themselves more than their
workload role.  What RBAC cannot express (deleting namespaces, binding the workload role
in a namespace) is refused by the project controller's own checks: a foreign namespace
is neither bound nor deleted.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import yaml

from pincompute.federation.connectionstatus import CONDITION
from pincompute.install import FEDERATION_SERVICE_ACCOUNT, SERVICE_ACCOUNTS, workload_role
from pincompute.kube import NotFound, objects
from pincompute.kube.backends.kubernetes import KubernetesClient, connect
from pincompute.kube.errors import Forbidden
from pincompute.kube.resource import CONFIGMAPS, LEASES, NAMESPACES, PODS, ROLE_BINDINGS, SECRETS
from pincompute.kubeenv import KubeCluster, KubeEnv
from pincompute.model.registry import MEMBERCLUSTERS, PROJECTS
from pincompute.model.wellknown import (
    CONTROLLER_SERVICE_ACCOUNT,
    PROJECT_LABEL,
    SYSTEM_NAMESPACE,
    WORKLOAD_ROLEBINDING,
)

from .support import eventually, pincompute, start_controller, stop

pytestmark = pytest.mark.slow

PROJECT = "rbac-tenant"
FOREIGN = "rbac-foreign"  # a namespace of that name exists, unlabelled, in member 0


def _service_account_kubeconfig(cluster: KubeCluster, token: str, path: Path) -> Path:
    """The cluster's kubeconfig with the admin token swapped for the controllers' token."""
    config = yaml.safe_load(cluster.kubeconfig.read_text())
    for user in config["users"]:
        user["user"] = {"token": token}
    path.write_text(yaml.safe_dump(config))
    return path


async def _token(cluster: KubeCluster, account: str) -> str:
    admin = cluster.client()
    try:
        request = await admin.create_subresource(
            SERVICE_ACCOUNTS, account, "token",
            {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
             "spec": {"expirationSeconds": 3600}}, namespace=SYSTEM_NAMESPACE)
    finally:
        await admin.close()
    return str(request["status"]["token"])


@pytest.fixture(scope="module")
def region(kube_env: KubeEnv) -> KubeEnv:
    for cluster, role in ((kube_env.host, "host"),
                          *((m, "member") for m in kube_env.members)):
        args = ["--cluster", cluster.name] if role == "member" else []
        result = pincompute("install", "--kubeconfig", str(cluster.kubeconfig),
                            "--role", role, *args)
        assert result.returncode == 0, result.stderr
    return kube_env


@pytest.fixture
async def accounts(region: KubeEnv, tmp_path: Path) -> AsyncIterator[dict[str, Path]]:
    """cluster name → a kubeconfig of its ``pincompute-controller`` ServiceAccount, and
    ``<member>/federation`` → one of the member's ``pincompute-federation`` account."""
    made = {}
    for c in (region.host, *region.members):
        made[c.name] = _service_account_kubeconfig(
            c, await _token(c, CONTROLLER_SERVICE_ACCOUNT), tmp_path / f"{c.name}.sa")
    for m in region.members:
        made[f"{m.name}/federation"] = _service_account_kubeconfig(
            m, await _token(m, FEDERATION_SERVICE_ACCOUNT), tmp_path / f"{m.name}.federation")
    yield made


async def _forbidden(what: str, call: object) -> None:
    assert asyncio.iscoroutine(call)
    with pytest.raises(Forbidden):
        await call
        pytest.fail(f"{what} was allowed")


async def _gone(client: KubernetesClient, resource: object, name: str) -> bool:
    try:
        await client.get(resource, name)  # type: ignore[arg-type]
    except NotFound:
        return True
    return False


def _pod(name: str) -> dict:
    return {"metadata": {"name": name},
            "spec": {"schedulerName": "pincompute", "containers": [
                {"name": "main", "image": "busybox:1.36",
                 "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}}}]}}


async def test_controllers_work_with_exactly_the_installed_rights(
        region: KubeEnv, accounts: dict[str, Path], tmp_path: Path) -> None:
    host_admin = region.host.client()
    admins = {m.name: m.client() for m in region.members}
    first = region.members[0]
    member0 = admins[first.name]
    fed_log, member_log = tmp_path / "federation.log", tmp_path / "member.log"
    procs = []
    try:
        # Members are reached as their pincompute-federation accounts, whose tokens are
        # kept in Secrets of pincompute-system (the only Secrets the federation may read).
        for m in region.members:
            await _unregister(host_admin, m.name)
            await _put_secret(host_admin, f"rbac-{m.name}", accounts[f"{m.name}/federation"])
            await host_admin.create(MEMBERCLUSTERS, {
                "metadata": {"name": m.name},
                "spec": {"zone": m.zone, "region": "test", "connection": {
                    "type": "Kubeconfig", "kubeconfigSecretRef": {"name": f"rbac-{m.name}"}}}})
        # A registration pointing at a Secret elsewhere is refused, not read.
        await _unregister(host_admin, "rbac-elsewhere")
        await host_admin.create(MEMBERCLUSTERS, {
            "metadata": {"name": "rbac-elsewhere"},
            "spec": {"zone": "z", "region": "test", "connection": {
                "type": "Kubeconfig",
                "kubeconfigSecretRef": {"name": "admin", "namespace": "kube-system"}}}})
        with contextlib.suppress(Exception):
            await member0.create(NAMESPACES, {"metadata": {"name": FOREIGN}})

        procs.append(start_controller(fed_log, "federation", "--kubeconfig",
                                      str(accounts[region.host.name]), "--lease-duration", "4"))
        procs.append(start_controller(member_log, "member", "--cluster", first.name,
                                      "--kubeconfig", str(accounts[first.name]),
                                      "--lease-duration", "4"))
        await host_admin.create(PROJECTS, {"metadata": {"name": PROJECT}, "spec": {}})
        await host_admin.create(PROJECTS, {"metadata": {"name": FOREIGN}, "spec": {}})

        async def refused() -> dict | None:
            mc = await host_admin.get(MEMBERCLUSTERS, "rbac-elsewhere")
            condition = objects.get_condition(mc, CONDITION)
            return condition if condition and condition["status"] == "False" else None

        condition = await eventually(refused, timeout=60, what="rbac-elsewhere refused")
        assert condition["reason"] == "SecretNamespaceRefused", condition
        await host_admin.delete(MEMBERCLUSTERS, "rbac-elsewhere")

        # The project: a labelled namespace and the workload RoleBinding everywhere.
        clusters = [(region.host, host_admin, "host"),
                    *((m, admins[m.name], "member") for m in region.members)]

        async def provisioned() -> bool:
            for _, client, role in clusters:
                try:
                    ns = await client.get(NAMESPACES, PROJECT)
                    binding = await client.get(ROLE_BINDINGS, WORKLOAD_ROLEBINDING,
                                               namespace=PROJECT)
                except NotFound:
                    return False
                assert (ns["metadata"].get("labels") or {}).get(PROJECT_LABEL) == PROJECT
                assert binding["roleRef"]["name"] == workload_role(role)  # type: ignore[arg-type]
                assert binding["subjects"] == [{"kind": "ServiceAccount",
                                                "name": CONTROLLER_SERVICE_ACCOUNT,
                                                "namespace": SYSTEM_NAMESPACE}]
            return True

        await eventually(provisioned, timeout=90, what="project namespaces and bindings")

        async def ready() -> bool:
            project = await host_admin.get(PROJECTS, PROJECT)
            return any(c["type"] == "Ready" and c["status"] == "True"
                       for c in (project.get("status") or {}).get("conditions") or ())

        await eventually(ready, timeout=30, what="the project to be Ready")

        # The foreign namespace is reported, never bound: no rights there for anyone.
        async def conflict() -> bool:
            project = await host_admin.get(PROJECTS, FOREIGN)
            return any(c["type"] == "Ready" and c.get("reason") == "NamespaceConflict"
                       for c in (project.get("status") or {}).get("conditions") or ())

        await eventually(conflict, timeout=30, what="the foreign namespace reported")
        with pytest.raises(NotFound):
            await member0.get(ROLE_BINDINGS, WORKLOAD_ROLEBINDING, namespace=FOREIGN)

        # The member controller (a secondary scheduler) binds a pod in the project's
        # namespace; the same kind of pod in `default` it may not bind.
        await eventually(lambda: _has_default_account(member0, PROJECT), timeout=30,
                         what="the default service account")
        await member0.create(PODS, _pod("outside"), namespace="default")
        await member0.create(PODS, _pod("inside"), namespace=PROJECT)

        async def bound() -> str | None:
            pod = await member0.get(PODS, "inside", namespace=PROJECT)
            return pod["spec"].get("nodeName")

        assert await eventually(bound, timeout=60, what="the project pod bound") \
            in first.node_names
        await asyncio.sleep(3)  # the scheduler had every chance at the other one
        outside = await member0.get(PODS, "outside", namespace="default")
        assert not outside["spec"].get("nodeName")

        # Deleting the projects: ours go everywhere, the foreign namespace stays.
        await host_admin.delete(PROJECTS, FOREIGN)
        await host_admin.delete(PROJECTS, PROJECT)
        for name in (FOREIGN, PROJECT):
            await eventually(lambda n=name: _gone(host_admin, PROJECTS, n), timeout=120,
                             what=f"project {name} finalized")
        foreign = await member0.get(NAMESPACES, FOREIGN)
        assert not foreign["metadata"].get("deletionTimestamp")
    finally:
        codes = [stop(p) for p in procs]
        for name in ("outside",):
            with contextlib.suppress(NotFound):
                await member0.delete(PODS, name, namespace="default", grace_period_seconds=0)
        with contextlib.suppress(NotFound):
            await member0.delete(NAMESPACES, FOREIGN)
        for m in region.members:
            for resource, name, ns in ((MEMBERCLUSTERS, m.name, None),
                                       (SECRETS, f"rbac-{m.name}", SYSTEM_NAMESPACE)):
                with contextlib.suppress(NotFound):
                    await host_admin.delete(resource, name, namespace=ns)
        with contextlib.suppress(NotFound):
            await host_admin.delete(MEMBERCLUSTERS, "rbac-elsewhere")
        await host_admin.close()
        for client in admins.values():
            await client.close()
    federation, member = fed_log.read_text(), member_log.read_text()
    assert codes == [0, 0], (federation + member)[-5000:]
    # The pod in `default` was refused by RBAC, not overlooked ...
    assert ('cannot create resource "pods/binding" in API group "" in the namespace '
            '"default"') in member, member[-3000:]
    # ... and nothing the controllers needed was: every refusal is about `default`.
    refusals = [line for line in (federation + member).splitlines() if "forbidden" in line]
    assert all('namespace "default"' in line for line in refusals), [
        line for line in refusals if 'namespace "default"' not in line][:5]
    assert "Traceback" not in federation + member, (federation + member)[-5000:]


async def test_controller_credentials_are_refused_outside_pincompute(
        region: KubeEnv, accounts: dict[str, Path]) -> None:
    host = connect(str(accounts[region.host.name]))
    member = connect(str(accounts[region.members[0].name]))
    federation = connect(str(accounts[f"{region.members[0].name}/federation"]))
    try:
        # Allowed, to show the credentials work: what install grants.
        await host.list(SECRETS, namespace=SYSTEM_NAMESPACE)
        await member.list(LEASES, namespace=SYSTEM_NAMESPACE)
        await member.list(PODS)  # the scheduler's view of every node's pods

        # Refused by RBAC: Secrets outside pincompute-system, cluster-wide or not.
        await _forbidden("reading a Secret in kube-system",
                         host.get(SECRETS, "anything", namespace="kube-system"))
        await _forbidden("listing Secrets cluster-wide", host.list(SECRETS))
        await _forbidden("a member reading Secrets even in pincompute-system",
                         member.list(SECRETS, namespace=SYSTEM_NAMESPACE))
        # Pods, ConfigMaps and Leases where PinCompute does not own the namespace.
        await _forbidden("creating a Pod in default",
                         member.create(PODS, _pod("escape"), namespace="default"))
        await _forbidden("deleting a Pod in kube-system",
                         member.delete(PODS, "anything", namespace="kube-system"))
        # On a member, namespaces and bindings are the federation's account's only, and
        # that account has no say over pods or Secrets.
        await _forbidden("the member controller creating a namespace", member.create(
            NAMESPACES, {"metadata": {"name": "rbac-not-ours"}}))
        await _forbidden("the member controller deleting a namespace",
                         member.delete(NAMESPACES, "default"))
        await _forbidden("the federation creating a Pod on a member", federation.create(
            PODS, _pod("escape"), namespace=SYSTEM_NAMESPACE))
        await _forbidden("the federation reading a member's Secrets",
                         federation.list(SECRETS, namespace=SYSTEM_NAMESPACE))
        for client in (host, member, federation):
            await _forbidden("writing a ConfigMap in kube-system", client.create(
                CONFIGMAPS, {"metadata": {"name": "pwn"}, "data": {}}, namespace="kube-system"))
            await _forbidden("taking a Lease in kube-system", client.create(
                LEASES, {"metadata": {"name": "kube-scheduler-x"}, "spec": {}},
                namespace="kube-system"))
            # A namespace cannot be relabelled into a project the controllers would adopt.
            await _forbidden("labelling kube-system as a project", client.patch(
                NAMESPACES, "kube-system",
                {"metadata": {"labels": {PROJECT_LABEL: "kube-system"}}}))
            # No escalation: binding any role but the workload role is refused.
            await _forbidden("binding cluster-admin", client.create(ROLE_BINDINGS, {
                "metadata": {"name": "pwn"},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                            "name": "cluster-admin"},
                "subjects": [{"kind": "ServiceAccount", "name": CONTROLLER_SERVICE_ACCOUNT,
                              "namespace": SYSTEM_NAMESPACE}]}, namespace="default"))
    finally:
        await host.close()
        await member.close()
        await federation.close()


async def test_controller_pods_pass_the_restricted_pod_security_standard(
        region: KubeEnv) -> None:
    # The API server's PodSecurity admission judges the Deployments' pod templates: a
    # namespace enforcing `restricted` admits them (non-root, read-only root filesystem,
    # no capabilities, no privilege escalation, RuntimeDefault seccomp).
    from pincompute.install import deployment

    client = region.members[0].client()
    ns = "rbac-restricted"
    try:
        await client.create(NAMESPACES, {"metadata": {"name": ns, "labels": {
            "pod-security.kubernetes.io/enforce": "restricted"}}})
        await client.create(SERVICE_ACCOUNTS, {"metadata": {"name": CONTROLLER_SERVICE_ACCOUNT}},
                            namespace=ns)
        for role in ("host", "member"):
            template = deployment(role)["spec"]["template"]  # type: ignore[arg-type]
            spec = {**template["spec"], "containers": [
                {**c, "env": [e for e in c["env"] if "valueFrom" not in e]}
                for c in template["spec"]["containers"]]}
            await client.create(PODS, {"metadata": {"name": f"controller-{role}"},
                                       "spec": spec}, namespace=ns)
        # The same pod with root and a capability is refused there: the check is real.
        bad = deployment("member")["spec"]["template"]["spec"]
        bad = {**bad, "securityContext": {}, "containers": [
            {**c, "env": [], "securityContext": {"capabilities": {"add": ["NET_ADMIN"]}}}
            for c in bad["containers"]]}
        await _forbidden("a root pod with NET_ADMIN in a restricted namespace", client.create(
            PODS, {"metadata": {"name": "controller-bad"}, "spec": bad}, namespace=ns))
    finally:
        with contextlib.suppress(NotFound):
            await client.delete(NAMESPACES, ns)
        await client.close()


async def _has_default_account(client: KubernetesClient, namespace: str) -> bool:
    try:
        await client.get(SERVICE_ACCOUNTS, "default", namespace=namespace)
    except NotFound:
        return False
    return True


async def _put_secret(host: KubernetesClient, name: str, kubeconfig: Path) -> None:
    data = {"kubeconfig": base64.b64encode(kubeconfig.read_bytes()).decode()}
    with contextlib.suppress(NotFound):
        await host.delete(SECRETS, name, namespace=SYSTEM_NAMESPACE)
    await host.create(SECRETS, {"metadata": {"name": name}, "data": data},
                      namespace=SYSTEM_NAMESPACE)


async def _unregister(host: KubernetesClient, name: str) -> None:
    try:
        await host.delete(MEMBERCLUSTERS, name)
    except NotFound:
        return
    await eventually(lambda: _gone(host, MEMBERCLUSTERS, name), timeout=30,
                     what=f"MemberCluster {name} to go")
