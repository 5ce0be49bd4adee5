"""A member cluster as the cluster set holds it: its state, and once ready, its handle.

A :class:`MemberHandle` is what controllers get from the cluster set: the
member's client and its own :class:`~pincompute.runtime.informer.InformerFactory`,
so everything watched in that cluster starts and stops together.  A handle is
valid until the member is let go (removed, or rebuilt after its connection
changed); :meth:`MemberHandle.close` then stops its informers and closes the
client if it is the set's (embedded stores are the region's and stay open).

A :class:`MemberState` says where a registered member stands: ``Connecting`` (the
first attempt, or after a change), ``Ready``, or ``Failed`` with a reason and the
number of failed attempts in a row.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Literal

from pincompute.kube.protocol import KubeClient
from pincompute.kube.resource import NAMESPACES, Resource
from pincompute.runtime.informer import InformerFactory, SharedInformer

Phase = Literal["Connecting", "Ready", "Failed"]
Probe = Callable[[KubeClient], Awaitable[None]]
"""Checks a new member's client before its informers start; raises to refuse it."""


async def list_namespaces(client: KubeClient) -> None:
    """The default probe: the server answers and these credentials may read."""
    await client.list(NAMESPACES, limit=1)


@dataclass(frozen=True, slots=True)
class MemberState:
    """Where a registered member stands."""

    phase: Phase
    reason: str
    message: str
    attempts: int = 0
    """Failed attempts in a row."""


class MemberHandle:
    """A ready member: its client and its informers (valid until it is let go)."""

    def __init__(self, name: str, client: KubeClient, *, fingerprint: str, owned: bool,
                 informers: InformerFactory) -> None:
        self.name = name
        self.client = client
        self.fingerprint = fingerprint
        self.owned = owned
        self.informers = informers
        self.closed = False

    def __repr__(self) -> str:
        return f"<MemberHandle {self.name} closed={self.closed}>"

    def informer(self, resource: Resource, *, namespace: str | None = None,
                 label_selector: str | None = None,
                 field_selector: str | None = None) -> SharedInformer:
        """This member's shared informer for a collection (started; created if new).

        Collections declared with :meth:`ClusterSet.watch` have listed by the time the
        member is ready; one first asked for here has not: wait for it before trusting
        its cache.
        """
        return self.informers.informer(self.client, resource, namespace=namespace,
                                       label_selector=label_selector,
                                       field_selector=field_selector)

    async def close(self) -> None:
        """Stop the informers, then close the client if it is ours."""
        if self.closed:
            return
        self.closed = True
        await self.informers.stop()
        if self.owned:
            await self.client.close()
