"""PinCompute's controllers as processes against real Kubernetes clusters.

``pincompute up`` assembles an embedded region in one process (``region.py``);
this module assembles the same controllers for the ``kubernetes`` backend, one
manager per role:

* **federation** runs on the host cluster: it reads the region's MemberCluster
  objects, connects to each member through the kubeconfig its connection names
  (a file, an inline document, or a Secret in ``pincompute-system``), and runs
  the federation controllers over host and members;
* **member** runs on one member cluster with that cluster's controllers.

Both are leader-elected on a Lease in ``pincompute-system``, so two replicas
(two processes, or a Deployment with two pods) are safe: one acts, one waits
with warm caches.  Before starting, each checks what an operator gets wrong —
an unreachable server, missing CRDs, missing permissions — and fails with one
line naming the problem and the fix (:class:`StartupError`).
"""

from __future__ import annotations

import base64
import os
import socket
from typing import Any

from .federation.projects import add_project_controller
from .install import SYSTEM_NAMESPACE, Role, missing_crds
from .kube.backends.kubernetes import KubeConfigError, KubernetesClient, config_from_text
from .kube.errors import ApiError, Forbidden, NotFound, Unavailable
from .kube.resource import LEASES, SECRETS
from .member.nodepools import add_nodepool_controller
from .model.registry import MEMBERCLUSTERS
from .runtime.leaderelection import LeaderElectionConfig
from .runtime.manager import Manager
from .scheduler import Scheduler


class StartupError(Exception):
    """The controller cannot start; the message is one line with the fix."""


def identity() -> str:
    return os.environ.get("POD_NAME") or f"{socket.gethostname()}_{os.getpid()}"


def connect(kubeconfig: str | None, *, context: str | None = None) -> KubernetesClient:
    try:
        return KubernetesClient.from_kubeconfig(kubeconfig, context=context)
    except KubeConfigError as e:
        raise StartupError(str(e)) from None


async def preflight(client: KubernetesClient, role: Role) -> None:
    """Reachable, installed, and allowed to work: or one line saying which is not."""
    try:
        missing = await missing_crds(client, role)
    except Unavailable as e:
        raise StartupError(f"{e.message}; is the cluster running and the kubeconfig's server "
                           "address right?") from None
    except Forbidden as e:
        raise StartupError(f"{client.server} refused to let these credentials read CRDs "
                           f"({e.message}); use the pincompute-controller service account or "
                           "an admin kubeconfig") from None
    except ApiError as e:
        raise StartupError(f"{client.server}: {e.message}") from None
    if missing:
        raise StartupError(f"PinCompute's CRDs are not installed on {client.server} "
                           f"({len(missing)} missing, e.g. {missing[0]}); run `pincompute "
                           f"install --kubeconfig <file> --role {role}` first")
    try:
        await client.list(LEASES, namespace=SYSTEM_NAMESPACE, limit=1)
    except Forbidden as e:
        raise StartupError(f"these credentials may not use Leases in {SYSTEM_NAMESPACE} on "
                           f"{client.server} ({e.message}); bind them to the "
                           "pincompute-controller ClusterRole (pincompute install does)") from None
    except NotFound:
        raise StartupError(f"namespace {SYSTEM_NAMESPACE} is missing on {client.server}; run "
                           f"`pincompute install --role {role}`") from None


async def member_clients(host: KubernetesClient) -> dict[str, KubernetesClient]:
    """Connect to every member cluster registered on the host."""
    clients = {}
    for mc in (await host.list(MEMBERCLUSTERS)).items:
        name = mc["metadata"]["name"]
        conn = (mc.get("spec") or {}).get("connection") or {}
        if conn.get("type") != "Kubeconfig":
            raise StartupError(f"member cluster {name} has connection type "
                               f"{conn.get('type', 'Embedded')}; a federation on real "
                               "clusters needs type Kubeconfig")
        context = conn.get("context")
        try:
            if conn.get("kubeconfigPath"):
                clients[name] = KubernetesClient.from_kubeconfig(
                    conn["kubeconfigPath"], context=context, allow_exec=False)
            elif conn.get("kubeconfig"):
                clients[name] = KubernetesClient(config_from_text(
                    conn["kubeconfig"], context=context, source=f"member cluster {name}"))
            else:
                ref = conn["kubeconfigSecretRef"]
                secret = await host.get(SECRETS, ref["name"],
                                        namespace=ref.get("namespace", SYSTEM_NAMESPACE))
                text = base64.b64decode((secret.get("data") or {})[ref.get("key",
                                                                           "kubeconfig")])
                clients[name] = KubernetesClient(config_from_text(
                    text.decode(), context=context, source=f"secret {ref['name']}"))
        except (KubeConfigError, KeyError, NotFound) as e:
            raise StartupError(f"member cluster {name}: cannot build a client: {e}") from None
    return clients


def _manager(name: str, client: KubernetesClient, *, lease: str,
             lease_duration: float) -> Manager:
    config = LeaderElectionConfig(name=lease, namespace=SYSTEM_NAMESPACE, identity=identity(),
                                  lease_duration=lease_duration,
                                  renew_deadline=lease_duration * 2 / 3,
                                  retry_period=lease_duration / 7.5)
    return Manager(name=name, leader_election=config, leader_election_client=client)


async def federation_manager(host: KubernetesClient, *,
                             lease_duration: float = 15.0) -> tuple[Manager, list[Any]]:
    """The host's manager; returns it with the clients it owns (to close after)."""
    await preflight(host, "host")
    members = await member_clients(host)
    for name, client in members.items():
        try:
            await preflight(client, "member")
        except StartupError as e:
            raise StartupError(f"member cluster {name}: {e}") from None
    manager = _manager("federation", host, lease="pincompute-federation",
                       lease_duration=lease_duration)
    add_project_controller(manager, host=host, members=members)
    return manager, [host, *members.values()]


async def member_manager(client: KubernetesClient, *, cluster: str,
                         lease_duration: float = 15.0) -> tuple[Manager, list[Any]]:
    """A member cluster's manager: the member operators (so far: node pools) and the pod
    scheduler, which on a real cluster is a secondary scheduler: it binds only pods
    whose ``spec.schedulerName`` is ``pincompute``, beside the cluster's own."""
    await preflight(client, "member")
    manager = _manager(f"member-{cluster}", client, lease=f"pincompute-member-{cluster}",
                       lease_duration=lease_duration)
    add_nodepool_controller(manager, client=client)
    Scheduler.attach(manager, client)
    return manager, [client]
