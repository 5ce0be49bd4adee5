"""What the gateway is handed: the clusters, the caches, and its own services.

Theory of operation
-------------------
The gateway imports no controller and no assembly module, so the assembly
(``pincompute.gateway``) hands it everything it reaches clusters through:

- ``host``: the host cluster's :class:`~pincompute.kube.protocol.KubeClient`; every write goes
  there;
- ``informers``: an :class:`~pincompute.runtime.informer.InformerFactory` for host reads
  (the embedded region's own manager factory, so the gateway shares the controllers' caches;
  or one of its own);
- ``members``: a :class:`MemberDirectory` — the federation's live cluster set fits it as is
  (``names()``, ``get(name)`` → a handle with ``name``, ``client`` and ``informer(...)``);
- ``cluster_admin``: optionally, how to add and remove member clusters of an embedded region
  (their stores live in the region's process; on real clusters a MemberCluster object is
  enough).

:class:`ApiContext` adds the gateway's own services — tokens, audit, rate limits, the read
cache — and is reachable from every handler as ``request.app.state.ctx`` (dependency
:func:`get_ctx`).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from fastapi import Request

from pincompute.kube.protocol import KubeClient
from pincompute.kube.resource import SECRETS, Resource
from pincompute.model import registry
from pincompute.model.wellknown import SYSTEM_NAMESPACE
from pincompute.runtime.informer import InformerFactory, SharedInformer

from .audit import AuditLog
from .metrics import ApiMetrics
from .ratelimit import RateLimiter
from .readcache import ReadCache
from .tokens import TOKEN_SELECTOR, TokenStore


class MemberHandleLike(Protocol):
    """A ready member cluster: its name, client and shared informers."""

    name: str
    client: KubeClient

    def informer(self, resource: Resource, *, namespace: str | None = None,
                 label_selector: str | None = None,
                 field_selector: str | None = None) -> SharedInformer: ...


class MemberDirectory(Protocol):
    """The region's member clusters (the federation's ClusterSet satisfies it)."""

    def names(self) -> list[str]: ...

    def get(self, name: str) -> MemberHandleLike | None: ...


class ClusterAdmin(Protocol):
    """Adds and removes member clusters: through the embedded region (its stores are in its
    process), or on a real host by draining and deleting MemberClusters."""

    embedded: bool
    """Whether ``add`` can open embedded clusters (only an embedded region can)."""

    async def add(self, *, zone: str, name: str | None, nodes: int | None) -> str: ...

    async def remove(self, name: str, *, drain: bool, timeout: float) -> None: ...


@dataclass(frozen=True, kw_only=True, slots=True)
class ApiSettings:
    """Tunables of one gateway."""

    max_body_bytes: int = 3 * 1024 * 1024
    """Larger request bodies are refused with 413 (kube-apiserver's limit)."""
    requests_per_second: int = 200
    """Per identity, all requests (burst: one second's worth)."""
    mutations_per_second: int = 100
    """Per project, mutating requests."""
    unauthenticated_per_second: int = 20
    """Per client address, requests without a valid token."""
    audit_path: Path | None = None
    """Append-only JSON-lines audit log (``None``: kept in memory only)."""
    audit_memory: int = 100_000
    """Audit records kept in memory for queries."""
    watch_queue: int = 10_000
    """Events buffered per watcher; a watcher further behind is cut off (it re-watches)."""
    default_limit: int = 500
    """``limit`` when a list does not give one... of ``0``: everything."""


HOST_READ_RESOURCES: tuple[Resource, ...] = registry.HOST_RESOURCES
"""The host kinds the gateway serves from caches (workloads and platform kinds)."""


@dataclass(eq=False)
class ApiContext:
    """Everything the gateway's handlers reach the region through."""

    host: KubeClient
    members: MemberDirectory
    informers: InformerFactory
    settings: ApiSettings = field(default_factory=ApiSettings)
    cluster_admin: ClusterAdmin | None = None
    owns_informers: bool = False
    """Whether :meth:`start`/:meth:`stop` start and stop ``informers`` (not when shared)."""
    extras: dict[str, Any] = field(default_factory=dict)
    """Room for services other parts of the gateway add (logs, exec, ...)."""
    tokens: TokenStore = field(init=False)
    read_cache: ReadCache = field(init=False)
    metrics: ApiMetrics = field(init=False)
    audit: AuditLog = field(init=False)
    limiter: RateLimiter = field(init=False)
    _started: bool = field(default=False, init=False)

    def __post_init__(self) -> None:
        s = self.settings
        self.read_cache = ReadCache()
        self.metrics = ApiMetrics()
        self.audit = AuditLog(path=s.audit_path, memory=s.audit_memory)
        self.limiter = RateLimiter(per_identity=s.requests_per_second,
                                   per_project_mutations=s.mutations_per_second,
                                   per_anonymous=s.unauthenticated_per_second,
                                   rejected=self.metrics.rate_limited)
        self.tokens = TokenStore(self.host, self.informers.informer(
            self.host, SECRETS, namespace=SYSTEM_NAMESPACE, label_selector=TOKEN_SELECTOR))
        for resource in HOST_READ_RESOURCES:
            self.host_informer(resource)

    def host_informer(self, resource: Resource) -> SharedInformer:
        """The host's shared informer of a kind (every namespace)."""
        return self.informers.informer(self.host, resource)

    def member_informer(self, cluster: str, resource: Resource) -> SharedInformer | None:
        """A ready member's shared informer of a kind, ``None`` if the member is not ready."""
        handle = self.members.get(cluster)
        return handle.informer(resource) if handle is not None else None

    async def start(self, *, timeout: float = 60.0) -> None:
        """Start the informers (when owned), wait for the host caches, open the audit log."""
        if self.owns_informers:
            self.informers.start()
        async with asyncio.timeout(timeout):
            for inf in [self.tokens.informer,
                        *(self.host_informer(r) for r in HOST_READ_RESOURCES)]:
                if not inf.running:
                    inf.start()
                if not await inf.wait_synced():
                    raise RuntimeError(f"the gateway's informer {inf.name} stopped")
        await self.audit.start()
        self._started = True

    @property
    def ready(self) -> bool:
        """Whether every host cache has listed (``/readyz``)."""
        return self._started and all(self.host_informer(r).has_synced
                                     for r in HOST_READ_RESOURCES)

    async def stop(self) -> None:
        await self.audit.stop()
        self.limiter.close()
        if self.owns_informers:
            await self.informers.stop()


def get_ctx(request: Request) -> ApiContext:
    """The dependency handlers take the context by."""
    ctx: ApiContext = request.app.state.ctx
    return ctx
