"""One cluster of the environment: its files, its start-up sequence, its handle.

Theory of operation
-------------------
:func:`prepare_cluster` writes everything a cluster needs into its directory before
any process runs — the API server's serving certificate (signed by the environment's
CA), a service-account signing key pair, static tokens for the admin, the controller
manager and kwok, a kubeconfig for each, and kwok's stages — and returns a
:class:`KubeCluster` whose processes are built but not started.

:func:`start_cluster` then brings it up in dependency order, each step bounded by the
environment's deadline and watching the processes already running (a process that
exits fails the start at once, with its log tail): etcd until ``/health`` answers,
kube-apiserver until ``/readyz``, then the controller manager and kwok together.  It
creates the kwok Nodes, and the cluster is ready when the controller manager has made
the ``default`` service account (its controllers run) and kwok has turned every node
Ready.  Processes are started through the caller's ``spawn``, so the environment can
refuse a start while it is stopping and record each new pid.
"""

from __future__ import annotations

import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx

from .components import (
    APISERVER,
    CONTROLLER_MANAGER,
    ETCD,
    KWOK,
    ClusterPorts,
    component_processes,
)
from .errors import KubeEnvStartupError
from .kwok import node_manifests, node_names, node_ready, stages
from .pki import CertificateAuthority, kubeconfig, new_tokens, signing_key_pair, token_auth_file
from .processes import ComponentProcess, wait_for
from .specs import ClusterSpec
from .wellknown import KWOK_TYPE_LABEL, KWOK_TYPE_VALUE
from .workdir import ClusterFiles, write_file

if TYPE_CHECKING:
    from pincompute.kube.backends.kubernetes import KubernetesClient

__all__ = ["KubeCluster", "prepare_cluster", "start_cluster"]

#: Per-request timeout of the start-up probes.
_PROBE_TIMEOUT = 5.0
_KWOK_NODES = f"{KWOK_TYPE_LABEL}={KWOK_TYPE_VALUE}"


@dataclass(slots=True)
class KubeCluster:
    """A running cluster of the environment: where it is and how to talk to it."""

    spec: ClusterSpec
    dir: Path
    server: str
    token: str
    kubeconfig: Path
    ca_file: Path
    etcd_url: str = ""
    node_names: tuple[str, ...] = ()
    processes: dict[str, ComponentProcess] = field(default_factory=dict, repr=False)

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def role(self) -> str:
        return self.spec.role

    @property
    def zone(self) -> str | None:
        return self.spec.zone

    @property
    def log_dir(self) -> Path:
        return self.dir / "logs"

    @property
    def pids(self) -> dict[str, int]:
        return {name: p.pid for name, p in self.processes.items() if p.pid is not None}

    def client(self, **options: Any) -> KubernetesClient:
        """A protocol client of this cluster (admin credentials); the caller closes it."""
        from pincompute.kube.backends.kubernetes import connect

        return connect(str(self.kubeconfig), **options)


def prepare_cluster(spec: ClusterSpec, *, cluster_dir: Path, bin_dir: Path,
                    ports: ClusterPorts, ca: CertificateAuthority) -> KubeCluster:
    """Write the files of cluster ``spec`` into ``cluster_dir`` (which must not exist) and
    return its handle, processes built but not started."""
    f = ClusterFiles(cluster_dir)
    f.pki.mkdir(parents=True)
    write_file(f.marker, b"")
    server = f"https://127.0.0.1:{ports.apiserver}"
    # Serving certificate for the API server, signed by the environment's CA.
    serving = ca.serving_certificate(cn=f"kube-apiserver-{spec.name}")
    write_file(f.serving_cert, serving.cert_pem)
    write_file(f.serving_key, serving.key_pem, private=True)
    ca_pem = ca.cert_pem
    write_file(f.ca_cert, ca_pem)
    # Service-account token signing key pair.
    sa_private, sa_public = signing_key_pair()
    write_file(f.signing_key, sa_private, private=True)
    write_file(f.signing_pub, sa_public)
    # Static tokens: one identity per component (all cluster-admins).
    tokens = new_tokens()
    write_file(f.tokens, token_auth_file(tokens), private=True)
    write_file(f.kubeconfig, kubeconfig(spec.name, server, ca_pem, tokens["admin"]),
               private=True)
    write_file(f.kcm_kubeconfig, kubeconfig(spec.name, server, ca_pem, tokens["kcm"]),
               private=True)
    write_file(f.kwok_kubeconfig, kubeconfig(spec.name, server, ca_pem, tokens["kwok"]),
               private=True)
    write_file(f.kwok_stages, stages(bin_dir))
    return KubeCluster(spec=spec, dir=cluster_dir, server=server, token=tokens["admin"],
                       kubeconfig=f.kubeconfig, ca_file=f.ca_cert,
                       etcd_url=f"http://127.0.0.1:{ports.etcd}", node_names=node_names(spec),
                       processes=component_processes(spec, bin_dir=bin_dir, files=f,
                                                     ports=ports))


async def start_cluster(c: KubeCluster, *, deadline: float,
                        spawn: Callable[[ComponentProcess], Awaitable[None]]) -> None:
    """Start the processes of ``c`` with ``spawn`` and return once the cluster is ready;
    raise :class:`KubeEnvStartupError` if it is not by ``deadline`` (monotonic)."""
    p = c.processes
    etcd_url = c.etcd_url
    ssl_ctx = ssl.create_default_context(cafile=str(c.ca_file))
    async with httpx.AsyncClient(verify=ssl_ctx, timeout=_PROBE_TIMEOUT, headers={
            "Authorization": f"Bearer {c.token}"}) as http:
        await spawn(p[ETCD])

        async def etcd_healthy() -> bool:
            r = await http.get(f"{etcd_url}/health")
            return r.status_code == 200 and r.json().get("health") == "true"

        await wait_for(etcd_healthy, what=f"{c.name}: etcd /health", watch=[p[ETCD]],
                       deadline=deadline)
        await spawn(p[APISERVER])

        async def api_ready() -> bool:
            return (await http.get(f"{c.server}/readyz")).status_code == 200

        await wait_for(api_ready, what=f"{c.name}: kube-apiserver /readyz",
                       watch=[p[APISERVER], p[ETCD]], deadline=deadline)
        rest = [proc for name, proc in p.items() if name not in (ETCD, APISERVER)]
        for proc in rest:
            await spawn(proc)
        for node in node_manifests(c.spec):
            r = await http.post(f"{c.server}/api/v1/nodes", json=node)
            if r.status_code not in (200, 201, 409):
                raise KubeEnvStartupError(f"{c.name}: creating node "
                                          f"{node['metadata']['name']}: {r.status_code} "
                                          f"{r.text[:500]}")
        all_procs = list(p.values())

        async def controllers_running() -> bool:
            # The serviceaccount controller makes this as soon as it runs.
            r = await http.get(f"{c.server}/api/v1/namespaces/default/serviceaccounts/default")
            return r.status_code == 200

        await wait_for(controllers_running,
                       what=f"{c.name}: kube-controller-manager (default service account)",
                       watch=[p[CONTROLLER_MANAGER], *all_procs], deadline=deadline)
        if c.node_names:
            async def nodes_ready() -> bool:
                r = await http.get(f"{c.server}/api/v1/nodes",
                                   params={"labelSelector": _KWOK_NODES})
                if r.status_code != 200:
                    return False
                ready = {n["metadata"]["name"] for n in r.json().get("items") or ()
                         if node_ready(n)}
                return ready >= set(c.node_names)

            await wait_for(nodes_ready, what=f"{c.name}: kwok nodes Ready",
                           watch=[p[KWOK], *all_procs], deadline=deadline)
