"""The four components of a cluster and their command lines.

Theory of operation
-------------------
A cluster is four processes::

    etcd ──> kube-apiserver ──> kube-controller-manager   (GC, namespaces, service
                           └──> kwok                        accounts, node lifecycle…)
                                 (simulated nodes: heartbeats, pod phases)

:func:`component_processes` spells each one's flags, given the cluster's spec, its
files (:class:`~pincompute.kubeenv.workdir.ClusterFiles`) and its four loopback
ports (:class:`ClusterPorts`).  kwok is left out of a cluster without nodes.  The
flags trim the footprint, because the machine running the suite may have two cores:
the API server has no priority-and-fairness, no profiling and no endpoint reconciler;
the controller manager runs only the controllers the spec names, without leader
election; etcd does not fsync.  The API server authenticates static tokens and
authorises with RBAC.  kwok renews node leases every ten seconds (a quarter of
:data:`NODE_LEASE_SECONDS`) while the controller manager's node-monitor grace period
is twenty, so a silent node turns Unknown within about twenty seconds.

:data:`STOP_ORDER` is the order of shutdown: the API servers' clients first (so they
do not log a storm of errors), then the API servers, then etcd.
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

from .processes import ComponentProcess
from .specs import ClusterSpec
from .wellknown import KWOK_ANNOTATION, KWOK_ANNOTATION_VALUE
from .workdir import ClusterFiles

__all__ = [
    "APISERVER", "CONTROLLER_MANAGER", "ETCD", "KWOK", "NODE_LEASE_SECONDS",
    "NODE_MONITOR_GRACE", "POD_CIDR", "PORTS_PER_CLUSTER", "SERVICE_ACCOUNT_ISSUER",
    "SERVICE_CLUSTER_IP_RANGE", "STOP_ORDER", "ClusterPorts", "component_processes",
]

ETCD = "etcd"
APISERVER = "kube-apiserver"
CONTROLLER_MANAGER = "kube-controller-manager"
KWOK = "kwok"

#: Components stopped together, tier by tier.
STOP_ORDER: tuple[tuple[str, ...], ...] = ((KWOK, CONTROLLER_MANAGER), (APISERVER,), (ETCD,))

#: How often kwok renews a node's Lease is a quarter of this; the controller
#: manager's node-monitor grace period (20 s) must stay above the renew interval.
NODE_LEASE_SECONDS = 40
NODE_MONITOR_GRACE = "20s"
#: The API server's serving certificate names the first address of this range.
SERVICE_CLUSTER_IP_RANGE = "10.96.0.0/16"
SERVICE_ACCOUNT_ISSUER = "https://kubernetes.default.svc.cluster.local"
POD_CIDR = "10.244.0.0/16"


class ClusterPorts(NamedTuple):
    """The loopback ports of one cluster."""

    etcd: int
    etcd_peer: int
    apiserver: int
    controller_manager: int


PORTS_PER_CLUSTER = len(ClusterPorts._fields)


def component_processes(spec: ClusterSpec, *, bin_dir: Path, files: ClusterFiles,
                        ports: ClusterPorts) -> dict[str, ComponentProcess]:
    """The processes of the cluster ``spec``, by component name, in start order (not
    started)."""
    b, f, logs = bin_dir, files, files.logs
    etcd_url = f"http://127.0.0.1:{ports.etcd}"
    peer_url = f"http://127.0.0.1:{ports.etcd_peer}"
    procs = {
        ETCD: ComponentProcess(ETCD, [
            str(b / ETCD), f"--name={spec.name}", f"--data-dir={f.etcd_data}",
            f"--listen-client-urls={etcd_url}", f"--advertise-client-urls={etcd_url}",
            f"--listen-peer-urls={peer_url}", f"--initial-advertise-peer-urls={peer_url}",
            f"--initial-cluster={spec.name}={peer_url}",
            "--unsafe-no-fsync", "--log-level=warn", "--snapshot-count=5000",
        ], logs / "etcd.log"),
        APISERVER: ComponentProcess(APISERVER, [
            str(b / APISERVER), f"--etcd-servers={etcd_url}",
            "--bind-address=127.0.0.1", "--advertise-address=127.0.0.1",
            f"--secure-port={ports.apiserver}", f"--cert-dir={f.pki}",
            f"--tls-cert-file={f.serving_cert}", f"--tls-private-key-file={f.serving_key}",
            f"--client-ca-file={f.ca_cert}",
            f"--service-account-issuer={SERVICE_ACCOUNT_ISSUER}",
            f"--service-account-key-file={f.signing_pub}",
            f"--service-account-signing-key-file={f.signing_key}",
            f"--token-auth-file={f.tokens}",
            "--authorization-mode=RBAC", f"--service-cluster-ip-range={SERVICE_CLUSTER_IP_RANGE}",
            "--endpoint-reconciler-type=none", "--enable-priority-and-fairness=false",
            "--profiling=false",
        ], logs / "kube-apiserver.log"),
        CONTROLLER_MANAGER: ComponentProcess(CONTROLLER_MANAGER, [
            str(b / CONTROLLER_MANAGER), f"--kubeconfig={f.kcm_kubeconfig}",
            f"--authentication-kubeconfig={f.kcm_kubeconfig}",
            f"--authorization-kubeconfig={f.kcm_kubeconfig}",
            "--authentication-skip-lookup=true",
            "--bind-address=127.0.0.1", f"--secure-port={ports.controller_manager}",
            f"--cert-dir={f.kcm_certs}", f"--root-ca-file={f.ca_cert}",
            f"--service-account-private-key-file={f.signing_key}",
            "--leader-elect=false", "--profiling=false",
            f"--controllers={','.join(spec.controllers)}",
            "--node-monitor-period=2s", f"--node-monitor-grace-period={NODE_MONITOR_GRACE}",
            "--node-startup-grace-period=20s",
        ], logs / "kube-controller-manager.log"),
    }
    if spec.node_count:
        procs[KWOK] = ComponentProcess(KWOK, [
            str(b / KWOK), f"--kubeconfig={f.kwok_kubeconfig}",
            f"--config={f.kwok_stages}", "--manage-all-nodes=false",
            f"--manage-nodes-with-annotation-selector={KWOK_ANNOTATION}={KWOK_ANNOTATION_VALUE}",
            f"--node-lease-duration-seconds={NODE_LEASE_SECONDS}",
            f"--cidr={POD_CIDR}",
        ], logs / "kwok.log", env={"HOME": str(f.root)})
    return procs
