"""What the host-side ops controllers need of the region's member clusters.

The assembly hands host-side controllers the live cluster set
(:class:`pincompute.federation.clusterset.ClusterSet`); ``ops`` may not import the
federation, so it names the little it uses as protocols — a member's client and
its shared informers, the set's members by name, per-member watches and a
subscription to members coming — and the cluster set satisfies them as it is.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, Protocol

from pincompute.kube.protocol import KubeClient
from pincompute.kube.resource import Resource
from pincompute.runtime.informer import ResourceEventHandler, SharedInformer


class Member(Protocol):
    name: str
    client: KubeClient

    def informer(self, resource: Resource, *, namespace: str | None = None,
                 label_selector: str | None = None,
                 field_selector: str | None = None) -> SharedInformer: ...


class Members(Protocol):
    def get(self, name: str) -> Any: ...

    def __iter__(self) -> Iterator[Any]: ...

    def watch(self, resource: Resource, handler_for: Callable[[str], ResourceEventHandler], *,
              namespace: str | None = None, label_selector: str | None = None,
              field_selector: str | None = None) -> None: ...

    def subscribe(self, *, on_added: Callable[[Any], None] | None = None,
                  on_removed: Callable[[Any], None] | None = None,
                  on_state: Callable[[str], None] | None = None) -> Any: ...


__all__ = ["Member", "Members"]
