"""PinCompute's controllers as processes against real Kubernetes clusters.

``pincompute up`` assembles an embedded region in one process (``region.py``);
this module assembles the same controllers — the same table,
:mod:`pincompute.controllers` — for the ``kubernetes`` backend, one manager per
role:

* **federation** runs on the host cluster: its cluster set follows the region's
  MemberCluster objects, connecting to each member (also those registered later)
  through the kubeconfig its connection names (a file, an inline document, or a
  Secret in ``pincompute-system``), and it runs the federation controllers over
  host and members;
* **member** runs on one member cluster with that cluster's controllers.

Both are leader-elected on a Lease in ``pincompute-system``, so two replicas
(two processes, or a Deployment with two pods) are safe: one acts, one waits
with warm caches.  Before starting, each checks what an operator gets wrong —
an unreachable server, missing CRDs, missing permissions — and fails with one
line naming the problem and the fix (:class:`StartupError`).  A member cluster
that is unreachable or not installed does not stop the federation: the cluster
set retries it with back-off and reports it in the MemberCluster's ``Connected``
condition.
"""

from __future__ import annotations

from pincompute.controllers import (
    FEDERATION_LEASE,
    add_host_controllers,
    add_member_controllers,
    identity,
    member_lease,
    new_manager,
)
from pincompute.federation.connection import ConnectError
from pincompute.install import Role, missing_crds
from pincompute.kube.backends.kubernetes import KubeConfigError, KubernetesClient
from pincompute.kube.errors import ApiError, Forbidden, NotFound, Unavailable
from pincompute.kube.protocol import KubeClient
from pincompute.kube.resource import LEASES
from pincompute.model.wellknown import SYSTEM_NAMESPACE
from pincompute.runtime.manager import Manager


class StartupError(Exception):
    """The controller cannot start; the message is one line with the fix."""


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
                           f"{client.server} ({e.message}); use the pincompute-controller "
                           f"service account, which `pincompute install --role {role}` binds "
                           f"to the Role pincompute-{role}-controller there") from None
    except NotFound:
        raise StartupError(f"namespace {SYSTEM_NAMESPACE} is missing on {client.server}; run "
                           f"`pincompute install --role {role}`") from None


async def member_probe(client: KubeClient) -> None:
    """A member is usable when it answers and has PinCompute's member CRDs installed."""
    missing = await missing_crds(client, "member")
    if missing:
        raise ConnectError(f"PinCompute's CRDs are not installed ({len(missing)} missing, e.g. "
                           f"{missing[0]}); run `pincompute install --kubeconfig <file> "
                           "--role member --cluster <name>`", reason="NotInstalled")


async def federation_manager(host: KubernetesClient, *, lease_duration: float = 15.0
                             ) -> tuple[Manager, list[KubernetesClient]]:
    """The host's manager; returns it with the clients it owns (to close after).

    Member clients are the cluster set's: it closes them when the manager stops.
    """
    await preflight(host, "host")
    manager = new_manager("federation", client=host, lease=FEDERATION_LEASE,
                          identity=identity(), lease_duration=lease_duration)
    add_host_controllers(manager, host=host, probe=member_probe, backend="kubernetes")
    return manager, [host]


async def member_manager(client: KubernetesClient, *, cluster: str,
                         lease_duration: float = 15.0) -> tuple[Manager, list[KubernetesClient]]:
    """A member cluster's manager: the member-side controllers of the table (the member
    operators and the pod scheduler, which on a real cluster is a secondary scheduler: it
    binds only pods whose ``spec.schedulerName`` is ``pincompute``, beside the cluster's
    own)."""
    await preflight(client, "member")
    manager = new_manager(f"member-{cluster}", client=client, lease=member_lease(cluster),
                          identity=identity(), lease_duration=lease_duration)
    add_member_controllers(manager, client=client, cluster=cluster, backend="kubernetes")
    return manager, [client]
