"""The embedded backend's :class:`~pincompute.kube.protocol.KubeClient`.

A thin async face over :class:`~.store.EmbeddedStore`: each call runs the
store's synchronous operation (atomic on the event loop) and then awaits the
write's durability before returning, so an acknowledged write survives a crash.
Reads wait too, for the commit of anything they saw, so no caller is ever
answered with state a crash could take back — as etcd serves only committed data.
Each caller awaits a future of its own, so a caller cancelled while waiting
cancels nothing the other writers share (the write itself stays committed).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator, Mapping
from typing import TYPE_CHECKING, Any, Literal

from pincompute.kube.errors import MethodNotAllowed
from pincompute.kube.protocol import (
    BOOKMARK,
    ClientInfo,
    KubeClient,
    ObjectList,
    Preconditions,
    PropagationPolicy,
    WatchEvent,
)
from pincompute.kube.resource import Resource

if TYPE_CHECKING:
    from .commit import Waiter
    from .store import EmbeddedStore


async def _durable(result: tuple[dict[str, Any], Waiter]) -> dict[str, Any]:
    obj, waiter = result
    if waiter is not None:
        await waiter
    return obj


class EmbeddedClient(KubeClient):
    def __init__(self, store: EmbeddedStore) -> None:
        self.store = store
        self.info = ClientInfo(backend="embedded",
                               server=str(store.path) if store.path else "memory")

    async def get(self, resource: Resource, name: str, *,
                  namespace: str | None = None) -> dict[str, Any]:
        return await _durable((self.store.get(resource, name, namespace),
                               self.store.read_barrier()))

    async def list(self, resource: Resource, *, namespace: str | None = None,
                   label_selector: str | None = None, field_selector: str | None = None,
                   limit: int | None = None, continue_token: str | None = None) -> ObjectList:
        items, rv, token, remaining = self.store.list(
            resource, namespace=namespace, label_selector=label_selector,
            field_selector=field_selector, limit=limit, continue_token=continue_token)
        barrier = self.store.read_barrier()
        if barrier is not None:
            await barrier
        return ObjectList(items=items, resource_version=rv, continue_token=token,
                          remaining_item_count=remaining)

    async def watch(self, resource: Resource, *, namespace: str | None = None,
                    label_selector: str | None = None, field_selector: str | None = None,
                    resource_version: str | None = None, allow_bookmarks: bool = True,
                    timeout_seconds: float | None = None) -> AsyncIterator[WatchEvent]:
        store = self.store
        watcher = store.open_watch(resource, namespace=namespace, label_selector=label_selector,
                                   field_selector=field_selector,
                                   resource_version=resource_version,
                                   allow_bookmarks=allow_bookmarks)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_seconds if timeout_seconds is not None else None
        buffer = watcher.buffer
        try:
            while True:
                while buffer:
                    yield watcher.take()
                if watcher.closed:
                    return
                wait = store.bookmark_interval
                if deadline is not None:
                    wait = min(wait, deadline - loop.time())
                    if wait <= 0:
                        return
                watcher.wake.clear()
                try:
                    async with asyncio.timeout(wait):
                        await watcher.wake.wait()
                except TimeoutError:
                    if allow_bookmarks and not buffer and not watcher.closed and (
                            deadline is None or loop.time() < deadline):
                        rv = str(store.committed_resource_version)
                        yield WatchEvent(BOOKMARK, {
                            "apiVersion": resource.api_version, "kind": resource.kind,
                            "metadata": {"resourceVersion": rv}})
        finally:
            store.close_watch(resource, watcher)

    async def create(self, resource: Resource, obj: Mapping[str, Any], *,
                     namespace: str | None = None) -> dict[str, Any]:
        # (as _durable, inline: the write paths are hot, a coroutine apiece costs)
        created, waiter = self.store.create(resource, obj, namespace)
        if waiter is not None:
            await waiter
        return created

    async def update(self, resource: Resource, obj: Mapping[str, Any]) -> dict[str, Any]:
        return await _durable(self.store.update(resource, obj))

    async def update_status(self, resource: Resource,
                            obj: Mapping[str, Any]) -> dict[str, Any]:
        return await _durable(self.store.update(resource, obj, status=True))

    async def patch(self, resource: Resource, name: str, patch: Mapping[str, Any], *,
                    namespace: str | None = None,
                    subresource: Literal["status"] | None = None) -> dict[str, Any]:
        patched, waiter = self.store.patch(resource, name, patch, namespace,
                                           status=subresource == "status")
        if waiter is not None:
            await waiter
        return patched

    async def create_subresource(self, resource: Resource, name: str, subresource: str,
                                 body: Mapping[str, Any], *,
                                 namespace: str | None = None) -> dict[str, Any]:
        result, waiter = self.store.create_subresource(resource, name, subresource, body,
                                                       namespace)
        if waiter is not None:
            await waiter
        return result

    async def read_subresource(self, resource: Resource, name: str, subresource: str, *,
                               namespace: str | None = None,
                               params: Mapping[str, str] | None = None,
                               stream: bool = False) -> AsyncGenerator[bytes, None]:
        # The object first: a missing one is NotFound here as on a real server.
        await self.get(resource, name, namespace=namespace)
        raise MethodNotAllowed(
            f"the embedded store does not serve {resource.plural}/{subresource}: "
            "container logs and exec are served by each node's runtime API")

    async def delete(self, resource: Resource, name: str, *, namespace: str | None = None,
                     preconditions: Preconditions | None = None,
                     grace_period_seconds: int | None = None,
                     propagation_policy: PropagationPolicy | None = None) -> dict[str, Any]:
        return await _durable(self.store.delete(
            resource, name, namespace, preconditions=preconditions,
            grace_period_seconds=grace_period_seconds, propagation_policy=propagation_policy))
