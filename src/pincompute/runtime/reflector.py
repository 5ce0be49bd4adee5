"""The reflector: list, then watch, one collection, for as long as it runs.

Theory of operation
-------------------
As client-go's reflector does, a :class:`Reflector` keeps a *sink* told of every
object in a collection (a resource in one cluster, optionally narrowed by
namespace and selectors) and of every change to it:

1. **List** the collection in pages of ``page_size`` (``limit``/``continue``)
   and hand the pages to the sink between :meth:`~ReflectorSink.begin_list` and
   :meth:`~ReflectorSink.end_list`, which gets the list's resourceVersion.
   What was handed over in between *is* the collection at that resourceVersion:
   a sink that keeps a copy replaces it then (deleting what is no longer there).
   Pages are handed over as they arrive, so a sink that keeps less than the
   whole objects (the sim node fleet) never holds a whole list of them at once.
   A continue token that expires mid-list (Gone) cannot be resumed consistently:
   the list starts over (``begin_list`` again) in one unpaginated piece.
2. **Watch** from that resourceVersion; hand each ADDED/MODIFIED/DELETED to the
   sink (:meth:`~ReflectorSink.on_event`), in order.  A BOOKMARK only advances
   the resourceVersion, so a quiet collection does not fall out of the server's
   history; an ERROR event is raised as the error it carries.
3. When a watch stream ends (the server's timeout, or it dropped a slow
   watcher), **re-watch from the last resourceVersion seen**: nothing is missed
   and nothing is listed again.  Each watch asks the server to end it after
   ``watch_timeout`` (stretched at random up to twice that, so the watches of
   many reflectors do not all end together), as client-go refreshes its watches
   through proxies and load balancers.
4. When the server answers **Gone** (410: the resourceVersion is older than its
   history), go back to 1.

Other errors are retried with exponential back-off (:mod:`.backoff`; 0.2 s
doubling to 30 s, with jitter): the list, or the watch from where it was.  A
watch that ends at once with nothing in it also backs off (briefly), so a
server that closes every stream cannot make the loop spin.

The sink's methods run in the reflector's task; they must be quick and must not
block.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any, Protocol

from pincompute.kube.errors import ApiError, Gone, from_status
from pincompute.kube.protocol import BOOKMARK, ERROR, KubeClient, WatchEvent
from pincompute.kube.resource import Resource

from .backoff import Backoff, BackoffPolicy
from .logging import StructuredLogger, get_logger

Obj = dict[str, Any]

DEFAULT_PAGE_SIZE = 500
# Like client-go, end each watch after 5-10 minutes so connections through
# proxies and load balancers are refreshed and dead ones noticed.
DEFAULT_WATCH_TIMEOUT = 300.0
DEFAULT_BACKOFF = BackoffPolicy(initial=0.2, maximum=30.0, jitter=0.5)

_log = get_logger(__name__)


class ReflectorSink(Protocol):
    """What a reflector tells; objects passed in are the sink's to keep (read-only)."""

    def begin_list(self) -> None:
        """A list starts: pages of it follow."""

    def list_page(self, items: list[Obj]) -> None:
        """One page of the list, in key order."""

    def end_list(self, resource_version: str) -> None:
        """The pages since :meth:`begin_list` were the collection at ``resource_version``."""

    def on_event(self, event: WatchEvent) -> None:
        """An ADDED, MODIFIED or DELETED watch event (any other type: ignore it)."""


class Reflector:
    """Keeps a :class:`ReflectorSink` current with one collection (see the module doc)."""

    def __init__(self, client: KubeClient, resource: Resource, sink: ReflectorSink, *,
                 namespace: str | None = None, label_selector: str | None = None,
                 field_selector: str | None = None, page_size: int | None = DEFAULT_PAGE_SIZE,
                 watch_timeout: float | None = DEFAULT_WATCH_TIMEOUT,
                 backoff: BackoffPolicy = DEFAULT_BACKOFF,
                 log: StructuredLogger | None = None) -> None:
        self.client = client
        self.resource = resource
        self.sink = sink
        self.namespace = namespace
        self.label_selector = label_selector
        self.field_selector = field_selector
        self.page_size = page_size
        self.watch_timeout = watch_timeout
        self.backoff = backoff
        self._log = log if log is not None else _log.bind(resource=str(resource))
        self._resource_version = ""

    @property
    def resource_version(self) -> str:
        """The last resourceVersion seen (list, event or bookmark); "" before the first list."""
        return self._resource_version

    async def run(self) -> None:
        """List and watch until cancelled."""
        backoff = Backoff(self.backoff)
        while True:
            try:
                rv = await self._list()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                reraise_if_cancelling()
                delay = backoff.next_delay()
                self._log.warning("list failed, retrying in %.2fs: %s", delay, exc,
                                  exc_info=not isinstance(exc, ApiError))
                await asyncio.sleep(delay)
                continue
            backoff.reset()
            await self._watch_from(rv)
            # _watch_from returns only when the resourceVersion is too old: relist.

    # -- list --

    async def _list(self) -> str:
        sink = self.sink
        sink.begin_list()
        rv = ""
        token: str | None = None
        while True:
            try:
                page = await self.client.list(
                    self.resource, namespace=self.namespace, label_selector=self.label_selector,
                    field_selector=self.field_selector, limit=self.page_size,
                    continue_token=token)
            except Gone:
                if token is None:
                    raise
                # The continue token outlived the server's snapshot; a paginated
                # list cannot be resumed consistently, so take it in one piece.
                page = await self.client.list(
                    self.resource, namespace=self.namespace, label_selector=self.label_selector,
                    field_selector=self.field_selector)
                sink.begin_list()
                sink.list_page(page.items)
                rv = page.resource_version
                break
            sink.list_page(page.items)
            # Every page of a list shares the snapshot's resourceVersion; keep the
            # first so a store without snapshots still watches from a point no later
            # than anything listed.
            if not rv:
                rv = page.resource_version
            token = page.continue_token
            if not token:
                break
        self._resource_version = rv
        sink.end_list(rv)
        return rv

    # -- watch --

    async def _watch_from(self, rv: str) -> None:
        backoff = Backoff(self.backoff)
        on_event = self.sink.on_event
        while True:
            got_any = False
            try:
                async with _closing(self._stream(rv)) as stream:
                    async for event in stream:
                        got_any = True
                        etype = event.type
                        if etype == BOOKMARK:
                            rv = event.resource_version or rv
                        elif etype == ERROR:
                            raise error_from_event(event)
                        else:
                            on_event(event)
                            rv = event.resource_version or rv
                        self._resource_version = rv
            except Gone:
                self._log.info("resourceVersion %s is too old, relisting", rv)
                return
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                reraise_if_cancelling()
                delay = backoff.next_delay()
                self._log.warning("watch failed, re-watching in %.2fs: %s", delay, exc,
                                  exc_info=not isinstance(exc, ApiError))
                await asyncio.sleep(delay)
                continue
            if got_any:
                backoff.reset()
            else:
                # A stream that ends at once with nothing in it: do not spin.
                delay = backoff.next_delay(jitter=False)
                await asyncio.sleep(min(delay, 1.0) * random.uniform(0.05, 0.1))

    def _stream(self, rv: str) -> AsyncIterator[WatchEvent]:
        # The client's own iterator, not a generator around it: one layer less per event.
        timeout = (self.watch_timeout * random.uniform(1.0, 2.0)
                   if self.watch_timeout is not None else None)
        return self.client.watch(
            self.resource, namespace=self.namespace, label_selector=self.label_selector,
            field_selector=self.field_selector, resource_version=rv, allow_bookmarks=True,
            timeout_seconds=timeout)


class _NotClosing(contextlib.AbstractAsyncContextManager[AsyncIterator[WatchEvent]]):
    """A watch stream that has nothing to close (not an async generator)."""

    def __init__(self, stream: AsyncIterator[WatchEvent]) -> None:
        self.stream = stream

    async def __aenter__(self) -> AsyncIterator[WatchEvent]:
        return self.stream

    async def __aexit__(self, *exc: object) -> None:
        return None


def _closing(stream: AsyncIterator[WatchEvent],
             ) -> contextlib.AbstractAsyncContextManager[AsyncIterator[WatchEvent]]:
    """Close the stream when the watch ends (async generators hold the server's watch)."""
    if isinstance(stream, AsyncGenerator):
        return contextlib.aclosing(stream)
    return _NotClosing(stream)


def error_from_event(event: WatchEvent) -> ApiError:
    """The error an ERROR watch event carries (a Status object)."""
    status = event.object or {}
    code = status.get("code")
    err = from_status(status, code=code if isinstance(code, int) else None)
    if code == 410:
        return Gone(err.message)
    return err


def reraise_if_cancelling() -> None:
    """Honour a cancellation that a client turned into another error while cleaning up.

    Without this, a stream whose ``finally`` raises during cancellation would make
    a retry loop swallow the cancellation and run forever.
    """
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError


__all__ = ["DEFAULT_BACKOFF", "DEFAULT_PAGE_SIZE", "DEFAULT_WATCH_TIMEOUT", "Reflector",
           "ReflectorSink", "error_from_event", "reraise_if_cancelling"]
