"""The REST gateway as a process part: wiring :mod:`pincompute.api` to a region.

Theory of operation
-------------------
The gateway package imports no controller and no assembly module; this assembly module
hands it what it needs and serves it with uvicorn:

- :meth:`Gateway.start` — in front of a running embedded :class:`~pincompute.region.Region`
  (``pincompute up``): the host store's client, the region's live cluster set as the member
  directory, the region manager's informer factory (the gateway reads the same caches as
  the controllers), and a cluster admin that adds and removes member clusters through the
  region (their stores live in its process).
- :meth:`Gateway.connect` — in front of a real host cluster by kubeconfig
  (``pincompute api --kubeconfig``): a manager of its own, without leader election (every
  gateway replica serves), runs the federation's cluster set for the member clusters; adding
  a member is creating its MemberCluster, which the federation's controllers act on.

Both create an admin token on first start and write it to ``admin_token_file`` with mode
0600 (created so, never widened); a later start reuses the token in the file while it is
still valid.  The server listens on 127.0.0.1 unless told otherwise, with TLS when given a
certificate and key.

Usage::

    async with Gateway.start(region, listen="127.0.0.1:0") as gw:
        print(gw.url, gw.admin_token)
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import uvicorn

from pincompute import regionmembers
from pincompute.api.app import create_app
from pincompute.api.context import ApiContext, ApiSettings
from pincompute.api.podaccess import NODE_API_TOKEN
from pincompute.controlplane import connect, member_probe
from pincompute.federation.clusterset import ClusterSet, add_cluster_set
from pincompute.kube.errors import NotFound
from pincompute.kube.protocol import KubeClient
from pincompute.kube.resource import PODS
from pincompute.model.registry import MEMBERCLUSTERS
from pincompute.region import Region
from pincompute.runtime.manager import Manager

DEFAULT_LISTEN = "127.0.0.1:8443"
ADMIN_USER = "admin"


def parse_listen(listen: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[v6]:PORT`` too) → ``(host, port)``; ``ValueError`` naming the
    problem."""
    host, sep, port = listen.rpartition(":")
    if not sep or not port.isdigit() or not host:
        raise ValueError(f"--listen: expected HOST:PORT, got {listen!r}")
    if not 0 <= int(port) <= 65535:
        raise ValueError(f"--listen: port {port} out of range")
    return host.strip("[]"), int(port)


class HostClusterAdmin:
    """Member clusters of a real host: removing one taints it draining (no new placements;
    the federation moves what it can), waits for its workloads to leave, then deletes its
    MemberCluster, as the embedded region does."""

    embedded = False

    def __init__(self, host: KubeClient, clusters: ClusterSet) -> None:
        self.host = host
        self.clusters = clusters

    async def add(self, *, zone: str, name: str | None, nodes: int | None) -> str:
        raise ValueError("only an embedded region opens embedded clusters")

    async def remove(self, name: str, *, drain: bool, timeout: float) -> None:
        handle = self.clusters.get(name)
        if drain and handle is not None:
            left = regionmembers.Leftovers({
                **{handle.informer(r): regionmembers.counts_all
                   for r in regionmembers.MEMBER_WORKLOADS},
                handle.informer(PODS): regionmembers.is_workload_pod})
            try:
                async with asyncio.timeout(timeout):
                    await left.wait_synced()
                    await regionmembers.mark_draining(
                        self.host, name, message="being removed from the region: waiting "
                        f"for {left.describe()} to leave" if left else "being removed")
                    await left.wait_empty()
            except TimeoutError:
                raise TimeoutError(f"member cluster {name}: {left.describe()} still there "
                                   f"after {timeout:g}s; it stays draining — remove it with "
                                   "drain=false to let go regardless") from None
            finally:
                left.close()
        with contextlib.suppress(NotFound):
            await self.host.delete(MEMBERCLUSTERS, name)


class RegionClusterAdmin(HostClusterAdmin):
    """Member clusters of an embedded region come and go through the region (members of
    other connection types as on a real host)."""

    embedded = True

    def __init__(self, region: Region) -> None:
        super().__init__(region.host.client, region.clusterset)
        self.region = region

    async def add(self, *, zone: str, name: str | None, nodes: int | None) -> str:
        member = await self.region.add_cluster(zone, name=name, nodes=nodes)
        return member.name

    async def remove(self, name: str, *, drain: bool, timeout: float) -> None:
        if name not in {m.name for m in self.region.members}:
            await super().remove(name, drain=drain, timeout=timeout)
            return
        await self.region.remove_cluster(name, drain=drain, timeout=timeout)


@dataclass(eq=False)
class Gateway:
    """A serving gateway: its URL, its context, the admin token."""

    ctx: ApiContext
    url: str
    admin_token: str
    admin_token_file: Path | None
    server: uvicorn.Server
    _task: asyncio.Task[None]

    @classmethod
    @contextlib.asynccontextmanager
    async def start(cls, region: Region, *, listen: str = "127.0.0.1:0",
                    admin_token_file: Path | None = None,
                    settings: ApiSettings | None = None, tls_cert: Path | None = None,
                    tls_key: Path | None = None) -> AsyncIterator[Gateway]:
        """Serve the API of a running embedded region until the block ends.

        ``admin_token_file`` defaults to ``<data dir>/admin-token``; the audit log to
        ``<data dir>/audit.log``.
        """
        settings = settings or ApiSettings(audit_path=region.data_dir / "audit.log")
        ctx = ApiContext(host=region.host.client, members=region.clusterset,
                         informers=region.manager.informers, settings=settings,
                         cluster_admin=RegionClusterAdmin(region),
                         extras={NODE_API_TOKEN: region.node_api_token})
        # /metrics shows the region's controllers too (PinScaler, the controller runtime)
        ctx.extras["registries"] = [region.manager.metrics.registry]
        token_file = admin_token_file or region.data_dir / "admin-token"
        async with cls._serve(ctx, listen=listen, token_file=token_file, tls_cert=tls_cert,
                              tls_key=tls_key) as gw:
            yield gw

    @classmethod
    @contextlib.asynccontextmanager
    async def connect(cls, kubeconfig: str | None, *, context: str | None = None,
                      listen: str = DEFAULT_LISTEN, admin_token_file: Path | None = None,
                      settings: ApiSettings | None = None, tls_cert: Path | None = None,
                      tls_key: Path | None = None) -> AsyncIterator[Gateway]:
        """Serve the API in front of a real host cluster (``pincompute api``)."""
        host = connect(kubeconfig, context=context)
        manager = Manager(name="gateway")
        clusters = add_cluster_set(manager, host=host, probe=member_probe)
        ctx = ApiContext(host=host, members=clusters, informers=manager.informers,
                         settings=settings or ApiSettings(),
                         cluster_admin=HostClusterAdmin(host, clusters))
        run = asyncio.create_task(manager.run(), name="gateway manager")
        try:
            started = asyncio.ensure_future(manager.wait_started())
            await asyncio.wait((started, run), return_when=asyncio.FIRST_COMPLETED)
            if run.done():
                started.cancel()
                run.result()
                raise RuntimeError("the gateway's manager stopped while starting")
            async with cls._serve(ctx, listen=listen, token_file=admin_token_file,
                                  tls_cert=tls_cert, tls_key=tls_key) as gw:
                yield gw
        finally:
            manager.stop()
            with contextlib.suppress(Exception):
                await run
            await host.close()

    @classmethod
    @contextlib.asynccontextmanager
    async def _serve(cls, ctx: ApiContext, *, listen: str, token_file: Path | None,
                     tls_cert: Path | None, tls_key: Path | None) -> AsyncIterator[Gateway]:
        if (tls_cert is None) != (tls_key is None):
            raise ValueError("TLS needs both a certificate and its key")
        host, port = parse_listen(listen)
        await ctx.start()
        try:
            token = await ensure_admin_token(ctx, token_file)
            app = create_app(ctx)
            # httptools: the C HTTP parser (uvicorn's h11 fallback is pure Python).
            config = uvicorn.Config(app, host=host, port=port, lifespan="off", http="httptools",
                                    log_level="warning", access_log=False,
                                    ssl_certfile=str(tls_cert) if tls_cert else None,
                                    ssl_keyfile=str(tls_key) if tls_key else None,
                                    timeout_graceful_shutdown=2)
            server = uvicorn.Server(config)
            task = asyncio.create_task(server.serve(), name="gateway server")
            while not server.started:
                if task.done():
                    task.result()
                    raise RuntimeError(f"the gateway could not listen on {listen}")
                await asyncio.sleep(0.01)
            bound = server.servers[0].sockets[0].getsockname()
            scheme = "https" if tls_cert else "http"
            shown = f"[{bound[0]}]" if ":" in bound[0] else bound[0]
            gw = cls(ctx=ctx, url=f"{scheme}://{shown}:{bound[1]}", admin_token=token,
                     admin_token_file=token_file, server=server, _task=task)
            try:
                yield gw
            finally:
                server.should_exit = True
                with contextlib.suppress(Exception):
                    await task
        finally:
            await ctx.stop()


async def ensure_admin_token(ctx: ApiContext, path: Path | None) -> str:
    """The platform admin's token: the one in ``path`` if still valid, else a new one
    written there (mode 0600)."""
    if path is not None and path.exists():
        existing = path.read_text().strip()
        info = ctx.tokens.lookup(existing)
        if info is not None and info.admin:
            return existing
    token, _ = await ctx.tokens.create(user=ADMIN_USER, admin=True, created_by="system:gateway",
                                       description="the platform admin's token")
    if path is not None:
        write_private(path, token + "\n")
    return token


def write_private(path: Path, text: str) -> None:
    """Write a file readable by its owner only (created 0600; an old file is replaced)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, path)
