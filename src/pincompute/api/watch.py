"""Watch streams: newline-delimited JSON events from the informer caches.

Theory of operation
-------------------
``GET ...?watch=true`` answers a stream of lines ``{"type": "ADDED"|"MODIFIED"|"DELETED"|
"ERROR", "object": {...}}``.  Without a ``resourceVersion`` (or with ``"0"``) the stream is
served by the gateway's informer of the collection, not by a watch on the store: the watcher
joins the informer's :class:`WatchHub` — one informer handler for every watcher, grouped by
namespace — which first replays the cached objects of its namespace as ``ADDED`` and then
hands it every change that passes its label selector, into its bounded queue.  A thousand
watchers cost the store nothing, and an event costs only the checks of the watchers of its
namespace.

A watcher that falls more than ``watch_queue`` events behind is cut off (the stream ends,
the client re-watches), so a slow client cannot make the gateway hold unbounded memory.

With a ``resourceVersion`` the client resumes a previous stream.  When it is the version
the informer is at (a client that just listed from this gateway), the informer serves the
stream from there, without the replay.  An older one only the store's history can serve:
the stream is the host client's watch from that version, and a version too old for the
history is an ``ERROR`` event carrying a 410 ``Status`` (the Kubernetes answer; the client
relists).

Authorization holds for the whole stream, not only its start: before each write, and every
:data:`RECHECK` seconds on a quiet stream, the caller's token must still be valid and its
role still sufficient (``allowed``); a revoked token or a removed member ends the stream.

Objects are simplified and encoded once per version by the read cache, whoever watches.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

import orjson

from pincompute.kube.errors import ApiError
from pincompute.kube.protocol import ADDED, DELETED, MODIFIED, KubeClient
from pincompute.kube.selectors import LabelSelector
from pincompute.runtime.informer import SharedInformer

from .readcache import ReadCache
from .simplify import simplify

Obj = dict[str, Any]
_CUT = object()
RECHECK = 2.0
"""Seconds between checks that a quiet stream's caller may still watch."""


def _line(kind: str, body: bytes) -> bytes:
    return b'{"type":"' + kind.encode() + b'","object":' + body + b"}\n"


class Watcher:
    """One stream's filter and queue, fed by its informer's :class:`WatchHub`."""

    __slots__ = ("keep", "max_queue", "namespace", "overflow", "queue", "selector")

    def __init__(self, *, namespace: str | None, selector: LabelSelector,
                 keep: Callable[[Obj], bool] | None, max_queue: int) -> None:
        self.namespace, self.selector, self.keep = namespace, selector, keep
        self.max_queue = max_queue
        self.queue: asyncio.Queue[Any] = asyncio.Queue()
        self.overflow = False

    def matches(self, obj: Obj) -> bool:
        if self.selector.empty and self.keep is None:
            return True  # the hub has matched the namespace already
        if not self.selector.empty and not self.selector.matches(
                (obj.get("metadata") or {}).get("labels")):
            return False
        return self.keep is None or self.keep(obj)

    def push(self, kind: str, obj: Obj) -> None:
        if self.overflow:
            return
        if self.queue.qsize() >= self.max_queue:
            self.overflow = True
            self.queue.put_nowait(_CUT)
            return
        self.queue.put_nowait((kind, obj))


class WatchHub:
    """One handler on an informer for all its watchers, grouped by namespace: an event
    costs a dictionary read plus the selector checks of the watchers of its namespace, and
    a new watcher costs nothing (its replay, when it wants one, reads only its namespace)."""

    def __init__(self, informer: SharedInformer) -> None:
        self.informer = informer
        self._by_namespace: dict[str | None, set[Watcher]] = {}
        self._registered = False

    def add(self, watcher: Watcher, *, replay: bool) -> None:
        """Start feeding ``watcher`` (the cached objects first if ``replay``); synchronous,
        so no event falls between the replay and the live events."""
        if not self._registered:
            # The informer replays its cache into a new handler: nobody listens yet.
            self.informer.add_event_handler(on_add=self._add, on_update=self._update,
                                            on_delete=self._delete)
            self._registered = True
        if replay:
            for obj in self.informer.list(namespace=watcher.namespace):
                if watcher.matches(obj):
                    watcher.push(ADDED, obj)
        self._by_namespace.setdefault(watcher.namespace, set()).add(watcher)

    def remove(self, watcher: Watcher) -> None:
        group = self._by_namespace.get(watcher.namespace)
        if group is not None:
            group.discard(watcher)
            if not group:
                del self._by_namespace[watcher.namespace]

    def __len__(self) -> int:
        return sum(len(g) for g in self._by_namespace.values())

    def _targets(self, obj: Obj) -> list[Watcher]:
        ns = (obj.get("metadata") or {}).get("namespace")
        out = list(self._by_namespace.get(ns, ()))
        if ns is not None:
            out.extend(self._by_namespace.get(None, ()))
        return out

    def _add(self, obj: Obj) -> None:
        for w in self._targets(obj):
            if w.matches(obj):
                w.push(ADDED, obj)

    def _update(self, old: Obj, new: Obj) -> None:
        for w in self._targets(new):
            was, now = w.matches(old), w.matches(new)
            if now:
                w.push(MODIFIED if was else ADDED, new)
            elif was:
                w.push(DELETED, new)

    def _delete(self, obj: Obj) -> None:
        for w in self._targets(obj):
            if w.matches(obj):
                w.push(DELETED, obj)


def hub_for(hubs: dict[int, WatchHub], informer: SharedInformer) -> WatchHub:
    hub = hubs.get(id(informer))
    if hub is None or hub.informer is not informer:
        hub = hubs[id(informer)] = WatchHub(informer)
    return hub


async def informer_stream(cache: ReadCache, hub: WatchHub, *,
                          namespace: str | None, selector: LabelSelector,
                          max_queue: int, timeout: float | None = None,
                          keep: Callable[[Obj], bool] | None = None,
                          on_open: Callable[[int], None] | None = None,
                          replay: bool = True,
                          allowed: Callable[[], bool] | None = None) -> AsyncIterator[bytes]:
    """The informer's events as NDJSON lines (the cached objects first, unless ``replay``
    is false), until ``timeout`` or cut off."""
    informer = hub.informer
    watcher = Watcher(namespace=namespace, selector=selector, keep=keep, max_queue=max_queue)
    queue = watcher.queue
    await informer.wait_synced()
    hub.add(watcher, replay=replay)
    if on_open is not None:
        on_open(1)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout if timeout else None
    try:
        while True:
            remaining = RECHECK if deadline is None else min(RECHECK, deadline - loop.time())
            if remaining <= 0:
                return
            try:
                async with asyncio.timeout(remaining):
                    item = await queue.get()
            except TimeoutError:
                if allowed is not None and not allowed():
                    return
                continue
            if item is _CUT or (allowed is not None and not allowed()):
                return
            kind, obj = item
            # Batch whatever else is queued into one write.
            chunk = [_line(kind, cache.encode(informer, obj))]
            while not queue.empty() and len(chunk) < 256:
                item = queue.get_nowait()
                if item is _CUT:
                    yield b"".join(chunk)
                    return
                chunk.append(_line(item[0], cache.encode(informer, item[1])))
            yield b"".join(chunk)
    finally:
        hub.remove(watcher)
        if on_open is not None:
            on_open(-1)


async def store_stream(client: KubeClient, informer: SharedInformer, *,
                       namespace: str | None, label_selector: str | None,
                       resource_version: str, timeout: float | None,
                       keep: Callable[[Obj], bool] | None = None) -> AsyncIterator[bytes]:
    """Resume from ``resource_version`` with the store's own watch (its history)."""
    stream = client.watch(informer.resource, namespace=namespace,
                          label_selector=label_selector, resource_version=resource_version,
                          allow_bookmarks=False, timeout_seconds=timeout)
    try:
        async for event in stream:
            if event.type not in (ADDED, MODIFIED, DELETED):
                continue
            if keep is not None and not keep(event.object):
                continue
            yield _line(event.type, orjson.dumps(simplify(event.object)))
    except ApiError as e:
        yield _line("ERROR", orjson.dumps(e.to_status()))
    finally:
        with contextlib.suppress(Exception):
            await stream.aclose()  # type: ignore[attr-defined]
