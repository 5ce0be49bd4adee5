"""Installing PinCompute onto a real Kubernetes cluster.

A cluster of a region plays one of two roles (DESIGN §1): the *host* stores what
users submit and runs the federation control plane; a *member* runs workloads in
one zone.  Installing means making a cluster able to hold PinCompute's objects
and run its controllers:

* the CRDs of the kinds that role stores (generated from the pydantic models, so
  the real API server validates exactly what the embedded store validates);
* the ``pincompute-system`` namespace, where leases and controller identities live;
* a ServiceAccount and RBAC granting the controllers what they use, and no more
  (least privilege, issue 8):

  - a ClusterRole for what only works cluster-wide: PinCompute's own kinds, reading
    its CRDs, on members reading pods and nodes (the scheduler's view), and on the
    host the project controller's rights: creating (and deleting) namespaces and
    binding the workload role (below).  On a member those are a second account's,
    ``pincompute-federation``, which the federation reaches the member as;
  - a Role in ``pincompute-system`` only: leases, and on the host the Secrets that
    hold member kubeconfigs;
  - a *workload* ClusterRole (pods, configmaps, events) that grants nothing until a
    RoleBinding binds it in one namespace: install binds it in ``pincompute-system``,
    the project controller in each project namespace it creates.

  What RBAC cannot express is guarded in code: it cannot restrict ``delete`` on
  namespaces to those labelled ``pincompute.io/project``, nor a RoleBinding
  ``create`` to such namespaces, so both stay cluster-wide and the project
  controller acts only on namespaces that carry its label (tests/k8s/test_rbac.py).

Everything is written with server-side apply under one field manager, so
installing is idempotent and an upgrade is the same command.  The manifests are
plain data here; ``deploy/`` holds them rendered (kept equal by a test), with the
Deployments that run the controllers in-cluster.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from pincompute.federation.propagation import PROPAGATED_KINDS
from pincompute.kube.errors import ApiError, Forbidden, NotFound
from pincompute.kube.protocol import KubeClient
from pincompute.kube.resource import CONFIGMAPS, NAMESPACES, ROLE_BINDINGS, Resource
from pincompute.kube.wellknown import APP_NAME_LABEL, APP_PART_OF_LABEL
from pincompute.model import registry
from pincompute.model.crd import crd_for
from pincompute.model.kinds import RegionRole
from pincompute.model.wellknown import (
    CONTROLLER_SERVICE_ACCOUNT,
    HOST_WORKLOAD_ROLE,
    MEMBER_WORKLOAD_ROLE,
    PART_OF,
    SYSTEM_LABEL,
    SYSTEM_NAMESPACE,
    WORKLOAD_ROLEBINDING,
)

if TYPE_CHECKING:  # the real-cluster client, for server-side apply (not imported at run time)
    from pincompute.kube.backends.kubernetes import KubernetesClient

Role = RegionRole
SERVICE_ACCOUNT = CONTROLLER_SERVICE_ACCOUNT
FEDERATION_SERVICE_ACCOUNT = "pincompute-federation"
"""On a member: the account the federation reaches it as (``kubectl -n pincompute-system
create token pincompute-federation`` makes the kubeconfig its Secret on the host holds)."""
FIELD_MANAGER = "pincompute-install"
IMAGE = "pincompute:0.1.0"
CLUSTER_CONFIGMAP = "pincompute-cluster"
RENDERED_MEMBER_NAME = "member-1"  # deploy/member.yaml's placeholder: edit to the cluster's name
RUN_AS = 65532  # the conventional "nonroot" uid of distroless images
DEPLOY_DIR = Path(__file__).resolve().parents[2] / "deploy"

CRDS = Resource("apiextensions.k8s.io", "v1", "customresourcedefinitions",
                "CustomResourceDefinition", namespaced=False)
SERVICE_ACCOUNTS = Resource("", "v1", "serviceaccounts", "ServiceAccount",
                            status_subresource=False)
CLUSTER_ROLES = Resource("rbac.authorization.k8s.io", "v1", "clusterroles", "ClusterRole",
                         namespaced=False, status_subresource=False)
CLUSTER_ROLE_BINDINGS = Resource("rbac.authorization.k8s.io", "v1", "clusterrolebindings",
                                 "ClusterRoleBinding", namespaced=False,
                                 status_subresource=False)
ROLES = Resource("rbac.authorization.k8s.io", "v1", "roles", "Role", status_subresource=False)
DEPLOYMENTS = Resource("apps", "v1", "deployments", "Deployment")


def resources_for(role: Role) -> tuple[Resource, ...]:
    return registry.HOST_RESOURCES if role == "host" else registry.MEMBER_RESOURCES


_ALL = ["get", "list", "watch", "create", "update", "patch", "delete"]
_READ = ["get", "list", "watch"]
_RBAC = "rbac.authorization.k8s.io"


def workload_role(role: Role) -> str:
    """The ClusterRole the project controller binds in each of the role's project namespaces."""
    return HOST_WORKLOAD_ROLE if role == "host" else MEMBER_WORKLOAD_ROLE


def _crd_names(role: Role) -> list[str]:
    return sorted(f"{r.plural}.{r.group}" for r in resources_for(role))


def _cluster_rules(role: Role) -> list[dict[str, Any]]:
    """What the role's controllers may do in every namespace (a ClusterRoleBinding).

    PinCompute's own kinds and reading its CRDs; on members, reading pods and nodes
    (the scheduler's view of node usage: writing pods is granted per namespace, see
    :func:`_workload_rules`); on the host, the project controller's rights
    (:func:`_project_rules`), which on a member belong to the federation's own account.
    """
    kinds = resources_for(role)
    rules: list[dict[str, Any]] = [
        {"apiGroups": ["pincompute.io"],
         "resources": sorted({r.plural for r in kinds} | {f"{r.plural}/status" for r in kinds}
                             | {f"{r.plural}/finalizers" for r in kinds}),
         "verbs": _ALL},
    ]
    if role == "member":
        # Namespaces are read for their labels (PinSidecars select pods by project),
        # never written: creating and deleting them is the federation account's.
        return [*rules, _crd_rule(role),
                {"apiGroups": [""], "resources": ["pods", "nodes", "namespaces"],
                 "verbs": _READ},
                # Remediation and rotation cordon nodes and mark them (annotations).
                {"apiGroups": [""], "resources": ["nodes"], "verbs": ["patch", "update"]}]
    return [*rules, *_project_rules(role)]


def _crd_rule(role: Role) -> dict[str, Any]:
    return {"apiGroups": ["apiextensions.k8s.io"], "resources": ["customresourcedefinitions"],
            "resourceNames": _crd_names(role), "verbs": ["get"]}


def _project_rules(role: Role) -> list[dict[str, Any]]:
    """What the project controller needs in a cluster: its project namespaces and bindings.

    Namespace ``delete`` is cluster-wide because RBAC cannot say "namespaces labelled
    X": the project controller deletes only namespaces carrying its project label
    (checked in code, tested).  RoleBinding ``create`` is cluster-wide for the same
    reason (a create has no name to restrict); with ``bind`` on the workload
    ClusterRole only and no ``escalate``, these credentials can grant that role and
    nothing else — and the project controller binds it only in namespaces it owns.
    Namespaces cannot be updated: a foreign namespace cannot be relabelled ours.
    """
    return [
        _crd_rule(role),
        {"apiGroups": [""], "resources": ["namespaces"], "verbs": [*_READ, "create", "delete"]},
        {"apiGroups": [_RBAC], "resources": ["rolebindings"], "verbs": ["create"]},
        {"apiGroups": [_RBAC], "resources": ["rolebindings"],
         "resourceNames": [WORKLOAD_ROLEBINDING], "verbs": ["get", "delete"]},
        {"apiGroups": [_RBAC], "resources": ["clusterroles"],
         "resourceNames": [workload_role(role)], "verbs": ["bind"]},
    ]


def _propagation_rules() -> list[dict[str, Any]]:
    """What the federation needs in a member: its shards (:mod:`~pincompute.federation.
    propagation`): the propagated kinds, and reading the events and pods it folds into
    the host objects' histories; and reading the nodes and pods the cluster health
    controller sums into the member's resource summary (:mod:`~pincompute.federation.
    clusterhealth`)."""
    plurals = sorted(registry.KINDS[kind].resource.plural for kind in PROPAGATED_KINDS)
    return [{"apiGroups": ["pincompute.io"], "resources": plurals, "verbs": _ALL},
            {"apiGroups": [""], "resources": ["events", "pods", "nodes"], "verbs": _READ},
            *_operations_rules()]


def _operations_rules() -> list[dict[str, Any]]:
    """What the host's operations controllers need in a member (:mod:`pincompute.ops`): the
    node-image controller annotates NodePools with their resolved image; a Rotation gives
    pools their new image and size, cordons and marks nodes, and evicts pods (each only
    within its app's disruption budget, read from PinPods and PinApps)."""
    return [{"apiGroups": ["pincompute.io"], "resources": ["nodepools"],
             "verbs": [*_READ, "patch", "update"]},
            {"apiGroups": ["pincompute.io"], "resources": ["pinpods", "pinapps"],
             "verbs": _READ},
            {"apiGroups": [""], "resources": ["nodes"], "verbs": ["patch", "update"]},
            {"apiGroups": [""], "resources": ["pods"], "verbs": ["delete"]}]


def _workload_rules(role: Role) -> list[dict[str, Any]]:
    """What the controllers may do inside one of PinCompute's namespaces (bound per namespace:
    the system namespace by install, each project's namespaces by the project controller)."""
    rules: list[dict[str, Any]] = [
        {"apiGroups": [""], "resources": ["configmaps"], "verbs": _ALL},
        {"apiGroups": [""], "resources": ["events"], "verbs": [*_READ, "create", "patch"]},
        {"apiGroups": ["events.k8s.io"], "resources": ["events"], "verbs": ["create", "patch"]},
    ]
    if role == "member":
        rules.append({"apiGroups": [""],
                      "resources": ["pods", "pods/status", "pods/binding", "pods/eviction",
                                    # a PinPod's persistent volumes; a PinJob's headless
                                    # Service (its groups' stable names)
                                    "persistentvolumeclaims", "services"],
                      "verbs": _ALL})
    return rules


def _system_rules(role: Role) -> list[dict[str, Any]]:
    """What the controllers may do in ``pincompute-system`` only (a Role there)."""
    rules: list[dict[str, Any]] = [
        {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"],
         "verbs": [*_READ, "create", "update", "patch"]},
    ]
    if role == "host":
        # Member cluster kubeconfigs: the connector reads Secrets of this namespace only.
        rules.append({"apiGroups": [""], "resources": ["secrets"], "verbs": _READ})
    return rules


def _binding(kind: str, name: str, *, role_kind: str, role_name: str,
             namespace: str | None = None,
             account: str = CONTROLLER_SERVICE_ACCOUNT) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": name}
    if namespace is not None:
        metadata["namespace"] = namespace
    return {"apiVersion": f"{_RBAC}/v1", "kind": kind, "metadata": metadata,
            "roleRef": {"apiGroup": _RBAC, "kind": role_kind, "name": role_name},
            "subjects": [{"kind": "ServiceAccount", "name": account,
                          "namespace": SYSTEM_NAMESPACE}]}


def manifests(role: Role, *, cluster: str | None = None) -> list[dict[str, Any]]:
    """Everything ``install`` applies for ``role``, in the order it applies it.

    A member's ``cluster`` name is recorded in the ConfigMap ``pincompute-cluster``,
    which its in-cluster controller Deployment reads.
    """
    name = f"pincompute-{role}-controller"
    workload = workload_role(role)
    objects: list[dict[str, Any]] = [crd_for(r) for r in resources_for(role)]
    objects += [
        {"apiVersion": "v1", "kind": "Namespace",
         "metadata": {"name": SYSTEM_NAMESPACE, "labels": {SYSTEM_LABEL: "true"}}},
        {"apiVersion": "v1", "kind": "ServiceAccount",
         "metadata": {"name": SERVICE_ACCOUNT, "namespace": SYSTEM_NAMESPACE}},
        {"apiVersion": f"{_RBAC}/v1", "kind": "ClusterRole",
         "metadata": {"name": name}, "rules": _cluster_rules(role)},
        _binding("ClusterRoleBinding", name, role_kind="ClusterRole", role_name=name),
        {"apiVersion": f"{_RBAC}/v1", "kind": "ClusterRole",
         "metadata": {"name": workload}, "rules": _workload_rules(role)},
        {"apiVersion": f"{_RBAC}/v1", "kind": "Role",
         "metadata": {"name": name, "namespace": SYSTEM_NAMESPACE},
         "rules": _system_rules(role)},
        _binding("RoleBinding", name, role_kind="Role", role_name=name,
                 namespace=SYSTEM_NAMESPACE),
        # The system namespace is PinCompute's: the workload role applies there too
        # (platform daemons' pods, the cluster ConfigMap).
        _binding("RoleBinding", WORKLOAD_ROLEBINDING, role_kind="ClusterRole",
                 role_name=workload, namespace=SYSTEM_NAMESPACE),
        # Events about cluster-scoped objects (Nodes, NodePools, Rotations: remediation,
        # rotation) must be written in "default": writing Events there and nothing else.
        {"apiVersion": f"{_RBAC}/v1", "kind": "Role",
         "metadata": {"name": f"{name}-events", "namespace": "default"},
         "rules": [{"apiGroups": [""], "resources": ["events"],
                    "verbs": ["get", "list", "watch", "create", "patch"]}]},
        _binding("RoleBinding", f"{name}-events", role_kind="Role",
                 role_name=f"{name}-events", namespace="default"),
    ]
    if role == "member":
        # The federation reaches this member as its own account, with the project
        # controller's rights only (the member's controllers cannot make namespaces or
        # bindings).  The member's kubeconfig Secret on the host holds its token.
        federation = f"pincompute-{role}-federation"
        objects += [
            {"apiVersion": "v1", "kind": "ServiceAccount",
             "metadata": {"name": FEDERATION_SERVICE_ACCOUNT, "namespace": SYSTEM_NAMESPACE}},
            {"apiVersion": f"{_RBAC}/v1", "kind": "ClusterRole",
             "metadata": {"name": federation},
             "rules": [*_project_rules(role), *_propagation_rules()]},
            _binding("ClusterRoleBinding", federation, role_kind="ClusterRole",
                     role_name=federation, account=FEDERATION_SERVICE_ACCOUNT),
            # The nodes' usage records (ConfigMaps of the system namespace, model.usage):
            # PinScaler on the host folds them per app, the gateway's `top` shows them.
            {"apiVersion": f"{_RBAC}/v1", "kind": "Role",
             "metadata": {"name": federation, "namespace": SYSTEM_NAMESPACE},
             "rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": _READ}]},
            _binding("RoleBinding", federation, role_kind="Role", role_name=federation,
                     namespace=SYSTEM_NAMESPACE, account=FEDERATION_SERVICE_ACCOUNT),
        ]
    if role == "member" and cluster:
        objects.append({"apiVersion": "v1", "kind": "ConfigMap",
                        "metadata": {"name": CLUSTER_CONFIGMAP, "namespace": SYSTEM_NAMESPACE},
                        "data": {"name": cluster}})
    return objects


def deployment(role: Role) -> dict[str, Any]:
    """The in-cluster Deployment running the role's controllers (two leader-elected replicas)."""
    name = "pincompute-federation" if role == "host" else "pincompute-member"
    args = (["controller", "federation"] if role == "host"
            else ["controller", "member", "--cluster", "$(PINCOMPUTE_CLUSTER_NAME)"])
    env = [{"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
           {"name": "PYTHONDONTWRITEBYTECODE", "value": "1"}]
    if role == "member":
        env.append({"name": "PINCOMPUTE_CLUSTER_NAME",
                    "valueFrom": {"configMapKeyRef": {"name": CLUSTER_CONFIGMAP,
                                                      "key": "name"}}})
    labels = {APP_NAME_LABEL: name, APP_PART_OF_LABEL: PART_OF}
    return {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "namespace": SYSTEM_NAMESPACE, "labels": labels},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {APP_NAME_LABEL: name}},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "serviceAccountName": SERVICE_ACCOUNT,
                    # Restricted pod security: nothing the controllers do needs root, a
                    # capability or a writable image; /tmp is the only writable path.
                    "securityContext": {"runAsNonRoot": True, "runAsUser": RUN_AS,
                                        "runAsGroup": RUN_AS, "fsGroup": RUN_AS,
                                        "seccompProfile": {"type": "RuntimeDefault"}},
                    "containers": [{
                        "name": "controller", "image": IMAGE,
                        "command": ["pincompute"], "args": args,
                        "env": env,
                        "resources": {"requests": {"cpu": "100m", "memory": "256Mi"},
                                      "limits": {"memory": "1Gi"}},
                        "securityContext": {"allowPrivilegeEscalation": False,
                                            "readOnlyRootFilesystem": True,
                                            "runAsNonRoot": True,
                                            "capabilities": {"drop": ["ALL"]},
                                            "seccompProfile": {"type": "RuntimeDefault"}},
                        "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
                    }],
                    "volumes": [{"name": "tmp", "emptyDir": {"sizeLimit": "64Mi"}}],
                },
            },
        },
    }


def rendered() -> dict[str, str]:
    """``deploy/`` file name → content, for the files this module owns."""
    files = {}
    for role in ("host", "member"):
        docs = [m for m in manifests(role, cluster=RENDERED_MEMBER_NAME)
                if m["kind"] != "CustomResourceDefinition"]
        docs.append(deployment(role))
        files[f"{role}.yaml"] = (
            f"# PinCompute on a {role} cluster: namespace, RBAC and the controllers.\n"
            f"# CRDs: `pincompute install --role {role}` or kubectl apply -f deploy/crds/.\n"
            + (f"# Set ConfigMap {CLUSTER_CONFIGMAP}'s name to this member cluster's name.\n"
               if role == "member" else "")
            + "# Generated by `pincompute install --render deploy`; do not edit.\n"
            + yaml.safe_dump_all(docs, sort_keys=False))
    return files


def write_rendered(directory: Path = DEPLOY_DIR) -> list[str]:
    changed = []
    for name, text in rendered().items():
        path = directory / name
        if not path.exists() or path.read_text() != text:
            path.write_text(text)
            changed.append(name)
    return changed


_RESOURCES = {"CustomResourceDefinition": CRDS, "Namespace": NAMESPACES, "ConfigMap": CONFIGMAPS,
              "ServiceAccount": SERVICE_ACCOUNTS, "ClusterRole": CLUSTER_ROLES,
              "ClusterRoleBinding": CLUSTER_ROLE_BINDINGS, "Role": ROLES,
              "RoleBinding": ROLE_BINDINGS, "Deployment": DEPLOYMENTS}


class InstallError(Exception):
    """Installing failed; the message is one line saying what and how to fix it."""


async def install(client: KubernetesClient, role: Role, *, cluster: str | None = None,
                  progress: Callable[[str], None] | None = None,
                  established_timeout: float = 60.0) -> list[str]:
    """Apply the role's manifests with server-side apply; wait until the CRDs serve."""
    done = []
    for obj in manifests(role, cluster=cluster):
        kind, name = obj["kind"], obj["metadata"]["name"]
        resource = _RESOURCES[kind]
        try:
            await client.apply(resource, obj, force=True)
        except Forbidden as e:
            raise InstallError(
                f"the credentials of {client.info.server} may not write {kind} {name} "
                f"({e.message}); install needs cluster-admin rights") from None
        except ApiError as e:
            raise InstallError(f"applying {kind} {name} failed: {e.message}") from None
        done.append(f"{kind.lower()}/{name}")
        if progress is not None:
            progress(f"{kind.lower()}/{name}")
    crds = [m["metadata"]["name"] for m in manifests(role)
            if m["kind"] == "CustomResourceDefinition"]
    try:
        async with asyncio.timeout(established_timeout):
            for name in crds:
                while True:  # polling another server: there is no local event to wait on
                    if await _established(client, name):
                        break
                    await asyncio.sleep(0.2)
    except TimeoutError:
        raise InstallError(f"CRDs were applied but not Established within "
                           f"{established_timeout:.0f} s") from None
    return done


async def _established(client: KubeClient, name: str) -> bool:
    try:
        crd = await client.get(CRDS, name)
    except NotFound:
        return False
    return any(c.get("type") == "Established" and c.get("status") == "True"
               for c in (crd.get("status") or {}).get("conditions") or ())


async def missing_crds(client: KubeClient, role: Role) -> list[str]:
    """The role's CRDs absent from the cluster (a controller refuses to start without them)."""
    missing = []
    for resource in resources_for(role):
        name = f"{resource.plural}.{resource.group}"
        try:
            await client.get(CRDS, name)
        except NotFound:
            missing.append(name)
    return missing
