"""Test support for the runtime tests: a recorder of informer events and a gated client.

The :class:`GatedClient` delegates every call to a real embedded-store client; it
only lets a test end watch streams and hold re-watches at chosen moments, so that
"the informer was disconnected while these writes happened" is deterministic.  The
store's own Gone, history and bookmarks stay real.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any, Literal

from pincompute.kube.objects import key_of
from pincompute.kube.protocol import (
    KubeClient,
    ObjectList,
    Preconditions,
    PropagationPolicy,
    WatchEvent,
)
from pincompute.kube.resource import Resource

Obj = dict[str, Any]


class Recorder:
    """An informer event handler that records ``(type, key)`` and lets tests await counts."""

    def __init__(self) -> None:
        self.events: list[tuple[str, str]] = []
        self.objects: list[tuple[str, Obj, Obj | None]] = []
        self._changed = asyncio.Event()

    def _record(self, kind: str, obj: Obj, old: Obj | None = None) -> None:
        self.events.append((kind, key_of(obj)))
        self.objects.append((kind, obj, old))
        self._changed.set()

    def on_add(self, obj: Obj) -> None:
        self._record("add", obj)

    def on_update(self, old: Obj, new: Obj) -> None:
        self._record("update", new, old)

    def on_delete(self, obj: Obj) -> None:
        self._record("delete", obj)

    async def wait_for(self, predicate: Callable[[list[tuple[str, str]]], bool],
                       timeout: float = 10.0) -> None:
        async with asyncio.timeout(timeout):
            while not predicate(self.events):
                self._changed.clear()
                await self._changed.wait()

    async def wait_count(self, n: int, timeout: float = 10.0) -> None:
        await self.wait_for(lambda ev: len(ev) >= n, timeout)


class GatedClient(KubeClient):
    """A real client with test controls over watch streams (see module doc)."""

    def __init__(self, inner: KubeClient) -> None:
        self.inner = inner
        self.info = inner.info
        self.gate = asyncio.Event()
        self.gate.set()
        self.watch_rvs: list[str | None] = []
        self.list_calls = 0
        self._listed = asyncio.Event()
        self.consumed: list[WatchEvent] = []
        self._consumed_changed = asyncio.Event()
        self._kills: list[asyncio.Event] = []

    def end_watches(self) -> None:
        """End every open watch stream (as a server timeout would)."""
        for kill in self._kills:
            kill.set()
        self._kills.clear()

    def disconnect(self) -> None:
        """End open streams and hold new watch calls until :meth:`reconnect`."""
        self.gate.clear()
        self.end_watches()

    def reconnect(self) -> None:
        self.gate.set()

    async def wait_consumed(self, predicate: Callable[[WatchEvent], bool],
                            timeout: float = 10.0) -> WatchEvent:
        """Wait until the consumer has *processed* (asked past) a matching event."""
        seen = 0
        async with asyncio.timeout(timeout):
            while True:
                for ev in self.consumed[seen:]:
                    if predicate(ev):
                        return ev
                seen = len(self.consumed)
                self._consumed_changed.clear()
                await self._consumed_changed.wait()

    async def wait_lists(self, n: int, timeout: float = 10.0) -> None:
        """Wait until ``list`` has been called ``n`` times in all."""
        async with asyncio.timeout(timeout):
            while self.list_calls < n:
                self._listed.clear()
                await self._listed.wait()

    async def get(self, resource: Resource, name: str, *,
                  namespace: str | None = None) -> dict[str, Any]:
        return await self.inner.get(resource, name, namespace=namespace)

    async def list(self, resource: Resource, *, namespace: str | None = None,
                   label_selector: str | None = None, field_selector: str | None = None,
                   limit: int | None = None, continue_token: str | None = None) -> ObjectList:
        self.list_calls += 1
        self._listed.set()
        return await self.inner.list(resource, namespace=namespace,
                                     label_selector=label_selector,
                                     field_selector=field_selector, limit=limit,
                                     continue_token=continue_token)

    async def watch(self, resource: Resource, *, namespace: str | None = None,
                    label_selector: str | None = None, field_selector: str | None = None,
                    resource_version: str | None = None, allow_bookmarks: bool = True,
                    timeout_seconds: float | None = None) -> AsyncIterator[WatchEvent]:
        await self.gate.wait()
        self.watch_rvs.append(resource_version)
        kill = asyncio.Event()
        self._kills.append(kill)
        stream = self.inner.watch(resource, namespace=namespace, label_selector=label_selector,
                                  field_selector=field_selector,
                                  resource_version=resource_version,
                                  allow_bookmarks=allow_bookmarks,
                                  timeout_seconds=timeout_seconds)
        it = aiter(stream)
        killed = asyncio.ensure_future(kill.wait())
        nxt: asyncio.Future[WatchEvent] | None = None
        try:
            while True:
                nxt = asyncio.ensure_future(anext(it))
                await asyncio.wait({nxt, killed}, return_when=asyncio.FIRST_COMPLETED)
                if killed.done():
                    return  # disconnected: whatever was in flight is lost, as on a network
                try:
                    event = nxt.result()
                except StopAsyncIteration:
                    return
                nxt = None
                yield event
                # The consumer asked for the next event: it has processed this one.
                self.consumed.append(event)
                self._consumed_changed.set()
        finally:
            killed.cancel()
            if nxt is not None and not nxt.done():
                nxt.cancel()
                await asyncio.gather(nxt, return_exceptions=True)
            aclose = getattr(stream, "aclose", None)
            if aclose is not None:
                await aclose()

    async def create(self, resource: Resource, obj: Mapping[str, Any], *,
                     namespace: str | None = None) -> dict[str, Any]:
        return await self.inner.create(resource, obj, namespace=namespace)

    async def update(self, resource: Resource, obj: Mapping[str, Any]) -> dict[str, Any]:
        return await self.inner.update(resource, obj)

    async def update_status(self, resource: Resource,
                            obj: Mapping[str, Any]) -> dict[str, Any]:
        return await self.inner.update_status(resource, obj)

    async def patch(self, resource: Resource, name: str, patch: Mapping[str, Any], *,
                    namespace: str | None = None,
                    subresource: Literal["status"] | None = None) -> dict[str, Any]:
        return await self.inner.patch(resource, name, patch, namespace=namespace,
                                      subresource=subresource)

    async def create_subresource(self, resource: Resource, name: str, subresource: str,
                                 body: Mapping[str, Any], *,
                                 namespace: str | None = None) -> dict[str, Any]:
        return await self.inner.create_subresource(resource, name, subresource, body,
                                                   namespace=namespace)

    async def delete(self, resource: Resource, name: str, *, namespace: str | None = None,
                     preconditions: Preconditions | None = None,
                     grace_period_seconds: int | None = None,
                     propagation_policy: PropagationPolicy | None = None) -> dict[str, Any]:
        return await self.inner.delete(resource, name, namespace=namespace,
                                       preconditions=preconditions,
                                       grace_period_seconds=grace_period_seconds,
                                       propagation_policy=propagation_policy)


def configmap(name: str, namespace: str = "default", *, labels: Mapping[str, str] | None = None,
              **data: str) -> Obj:
    md: dict[str, Any] = {"name": name, "namespace": namespace}
    if labels:
        md["labels"] = dict(labels)
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": md, "data": dict(data)}


class Notifier:
    """A list of things that happened, and a way to await a condition on it."""

    def __init__(self) -> None:
        self.items: list[Any] = []
        self._changed = asyncio.Event()

    def append(self, item: Any) -> None:
        self.items.append(item)
        self._changed.set()

    def notify(self) -> None:
        self._changed.set()

    async def wait_for(self, predicate: Callable[[list[Any]], bool],
                       timeout: float = 10.0) -> None:
        async with asyncio.timeout(timeout):
            while not predicate(self.items):
                self._changed.clear()
                await self._changed.wait()
