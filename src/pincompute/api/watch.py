"""Watch streams: newline-delimited JSON events from the informer caches.

Theory of operation
-------------------
``GET ...?watch=true`` answers a stream of lines ``{"type": "ADDED"|"MODIFIED"|"DELETED"|
"ERROR", "object": {...}}``.  Without a ``resourceVersion`` (or with ``"0"``) the stream is
served by the gateway's informer of the collection, not by a watch on the store: the watcher
registers a handler, which first replays the cached objects as ``ADDED`` (the informer's own
late-registration replay) and then hears every change, filtered by namespace and label
selector, into the watcher's bounded queue.  A thousand watchers cost the store nothing.

A watcher that falls more than ``watch_queue`` events behind is cut off (the stream ends,
the client re-watches), so a slow client cannot make the gateway hold unbounded memory.

With a ``resourceVersion`` the client resumes a previous stream, which only the store's
history can serve: the stream is the host client's watch from that version, and a version
too old for the history is an ``ERROR`` event carrying a 410 ``Status`` (the Kubernetes
answer; the client relists).

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


def _line(kind: str, body: bytes) -> bytes:
    return b'{"type":"' + kind.encode() + b'","object":' + body + b"}\n"


async def informer_stream(cache: ReadCache, informer: SharedInformer, *,
                          namespace: str | None, selector: LabelSelector,
                          max_queue: int, timeout: float | None = None,
                          keep: Callable[[Obj], bool] | None = None,
                          on_open: Callable[[int], None] | None = None
                          ) -> AsyncIterator[bytes]:
    """The informer's events as NDJSON lines (replay first), until ``timeout`` or cut off."""
    queue: asyncio.Queue[Any] = asyncio.Queue()
    overflow = False

    def matches(obj: Obj) -> bool:
        md = obj.get("metadata") or {}
        if namespace is not None and md.get("namespace") != namespace:
            return False
        if not selector.empty and not selector.matches(md.get("labels")):
            return False
        return keep is None or keep(obj)

    def push(kind: str, obj: Obj) -> None:
        nonlocal overflow
        if overflow:
            return
        if queue.qsize() >= max_queue:
            overflow = True
            queue.put_nowait(_CUT)
            return
        queue.put_nowait((kind, obj))

    def on_add(obj: Obj) -> None:
        if matches(obj):
            push(ADDED, obj)

    def on_update(old: Obj, new: Obj) -> None:
        was, now = matches(old), matches(new)
        if now:
            push(MODIFIED if was else ADDED, new)
        elif was:
            push(DELETED, new)

    def on_delete(obj: Obj) -> None:
        if matches(obj):
            push(DELETED, obj)

    await informer.wait_synced()
    registration = informer.add_event_handler(on_add=on_add, on_update=on_update,
                                              on_delete=on_delete)
    if on_open is not None:
        on_open(1)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout if timeout else None
    try:
        while True:
            if deadline is not None:
                remaining = deadline - loop.time()
                if remaining <= 0:
                    return
                try:
                    async with asyncio.timeout(remaining):
                        item = await queue.get()
                except TimeoutError:
                    return
            else:
                item = await queue.get()
            if item is _CUT:
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
        informer.remove_event_handler(registration)
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
