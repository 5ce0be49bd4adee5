"""Object builders, polling and a watch recorder shared by the conformance tests."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from typing import Any

import pytest

from pincompute.kube import BOOKMARK, Conflict, Invalid, KubeClient, NotFound, WatchEvent
from pincompute.kube.objects import deepcopy, owner_reference
from pincompute.kube.resource import CONFIGMAPS, PODS, Resource

from .widget import WIDGETS

HOLD = "conformance.pincompute.io/hold"
HOLD2 = "conformance.pincompute.io/hold-too"
# Objects a real cluster puts in every namespace by itself; the tests ignore them.
SYSTEM_NAMES = frozenset({"kube-root-ca.crt"})


# --- builders ----------------------------------------------------------------------------------

def _meta(name: str | None, ns: str, labels: Mapping[str, str] | None,
          finalizers: Iterable[str] | None, owners: Iterable[Mapping[str, Any]] | None,
          generate_name: str | None = None) -> dict[str, Any]:
    m: dict[str, Any] = {"namespace": ns}
    if name is not None:
        m["name"] = name
    if generate_name is not None:
        m["generateName"] = generate_name
    if labels:
        m["labels"] = dict(labels)
    if finalizers:
        m["finalizers"] = list(finalizers)
    if owners:
        m["ownerReferences"] = [owner_reference(o) if "metadata" in o else dict(o)
                                for o in owners]
    return m


def configmap(name: str | None, ns: str, *, data: Mapping[str, str] | None = None,
              labels: Mapping[str, str] | None = None, finalizers: Iterable[str] | None = None,
              owners: Iterable[Mapping[str, Any]] | None = None,
              generate_name: str | None = None) -> dict[str, Any]:
    obj: dict[str, Any] = {"apiVersion": "v1", "kind": "ConfigMap",
                           "metadata": _meta(name, ns, labels, finalizers, owners, generate_name)}
    if data is not None:
        obj["data"] = dict(data)
    return obj


def widget(name: str | None, ns: str, *, size: Any = 1, labels: Mapping[str, str] | None = None,
           finalizers: Iterable[str] | None = None,
           owners: Iterable[Mapping[str, Any]] | None = None,
           generate_name: str | None = None, **spec: Any) -> dict[str, Any]:
    return {"apiVersion": WIDGETS.api_version, "kind": "Widget",
            "metadata": _meta(name, ns, labels, finalizers, owners, generate_name),
            "spec": {"size": size, **spec}}


def pod(name: str, ns: str, *, node: str | None = None,
        labels: Mapping[str, str] | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {"containers": [{"name": "main", "image": "busybox:1.36"}],
                            "terminationGracePeriodSeconds": 30}
    if node is not None:
        spec["nodeName"] = node
    return {"apiVersion": "v1", "kind": "Pod", "metadata": _meta(name, ns, labels, None, None),
            "spec": spec}


# --- reading -----------------------------------------------------------------------------------

def rv(obj_or_event: Mapping[str, Any] | WatchEvent | str) -> int:
    """A resourceVersion as a number.

    Kubernetes calls resourceVersions opaque, but both backends issue them from one
    increasing counter (etcd's revision), and the suite checks that they increase.
    """
    if isinstance(obj_or_event, str):
        return int(obj_or_event)
    if isinstance(obj_or_event, WatchEvent):
        return int(obj_or_event.resource_version)
    return int(obj_or_event["metadata"]["resourceVersion"])


def names(items: Iterable[Mapping[str, Any]]) -> list[str]:
    """Names of the test's own objects, in the order given."""
    out = [o["metadata"]["name"] for o in items]
    return [n for n in out if n not in SYSTEM_NAMES]


def fields_of(exc: BaseException) -> list[str]:
    return [c.field for c in getattr(exc, "causes", ())]


def assert_invalid(exc_info: pytest.ExceptionInfo[Invalid], field: str, *,
                   prefix: bool = False) -> None:
    fields = fields_of(exc_info.value)
    ok = any(f.startswith(field) for f in fields) if prefix else field in fields
    assert ok, f"Invalid should name {field!r}, causes name {fields} ({exc_info.value})"


# --- writing -----------------------------------------------------------------------------------

async def mutate(client: KubeClient, resource: Resource, name: str, ns: str | None,
                 change: Callable[[dict[str, Any]], None], *, attempts: int = 50
                 ) -> dict[str, Any]:
    """Read-modify-write with a retry on Conflict, as every controller does."""
    for _ in range(attempts):
        obj = await client.get(resource, name, namespace=ns)
        change(obj)
        try:
            return await client.update(resource, obj)
        except Conflict:
            continue
    raise AssertionError(f"could not update {name} in {attempts} attempts")


async def remove_finalizer(client: KubeClient, resource: Resource, name: str, ns: str | None,
                           finalizer: str) -> None:
    def drop(obj: dict[str, Any]) -> None:
        obj["metadata"]["finalizers"] = [
            f for f in obj["metadata"].get("finalizers") or () if f != finalizer]

    with contextlib.suppress(NotFound):
        await mutate(client, resource, name, ns, drop)


async def exists(client: KubeClient, resource: Resource, name: str, ns: str | None) -> bool:
    try:
        await client.get(resource, name, namespace=ns)
    except NotFound:
        return False
    return True


async def eventually(check: Callable[[], Awaitable[Any]], *, timeout: float,
                     what: str = "condition", interval: float = 0.02) -> Any:
    """Poll ``check`` until it returns something truthy (asynchronous controllers)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        result = await check()
        if result:
            return result
        if loop.time() >= deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(interval)


async def gone(client: KubeClient, resource: Resource, name: str, ns: str | None, *,
               timeout: float) -> None:
    async def check() -> bool:
        return not await exists(client, resource, name, ns)

    await eventually(check, timeout=timeout, what=f"{resource.kind} {name} to be deleted")


# --- watching ----------------------------------------------------------------------------------

_END = object()


class EventStream:
    """Consumes a watch in a background task so a test can write and then read events.

    Every wait is bounded: a missing event fails the test instead of hanging it.
    Events about :data:`SYSTEM_NAMES` are dropped.
    """

    def __init__(self, stream: AsyncIterator[WatchEvent], timeout: float) -> None:
        self._stream = stream
        self._queue: asyncio.Queue[Any] = asyncio.Queue()
        self.timeout = timeout
        self.bookmarks: list[WatchEvent] = []
        self.ended = False
        self._task = asyncio.create_task(self._pump())

    async def _pump(self) -> None:
        try:
            async for ev in self._stream:
                if ev.type != BOOKMARK and ev.object.get("metadata", {}).get(
                        "name") in SYSTEM_NAMES:
                    continue
                self._queue.put_nowait(ev)
        except Exception as exc:
            self._queue.put_nowait(exc)
        else:
            self._queue.put_nowait(_END)

    async def _get(self, timeout: float) -> Any:
        try:
            async with asyncio.timeout(timeout):
                item = await self._queue.get()
        except TimeoutError:
            return None
        if isinstance(item, BaseException):
            raise item
        return item

    async def next(self, *, bookmarks: bool = False, timeout: float | None = None
                   ) -> WatchEvent:
        """The next event; BOOKMARKs are collected in :attr:`bookmarks` and skipped
        unless ``bookmarks`` is true."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + (timeout or self.timeout)
        while True:
            item = await self._get(max(0.0, deadline - loop.time()))
            if item is None:
                pytest.fail(f"no watch event within {timeout or self.timeout}s")
            if item is _END:
                self.ended = True
                pytest.fail("the watch ended while an event was expected")
            if item.type == BOOKMARK:
                self.bookmarks.append(item)
                if not bookmarks:
                    continue
            return item

    async def take(self, n: int, *, timeout: float | None = None) -> list[WatchEvent]:
        return [await self.next(timeout=timeout) for _ in range(n)]

    async def quiet(self, seconds: float) -> list[WatchEvent]:
        """Non-BOOKMARK events arriving within ``seconds`` (should usually be none)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        got: list[WatchEvent] = []
        while (left := deadline - loop.time()) > 0:
            item = await self._get(left)
            if item is None:
                break
            if item is _END:
                self.ended = True
                break
            if item.type == BOOKMARK:
                self.bookmarks.append(item)
            else:
                got.append(item)
        return got

    async def until_end(self, timeout: float) -> list[WatchEvent]:
        """Every event until the stream ends; fails if it has not ended by ``timeout``."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        got: list[WatchEvent] = []
        while True:
            item = await self._get(max(0.0, deadline - loop.time()))
            if item is None:
                pytest.fail(f"the watch did not end within {timeout}s")
            if item is _END:
                self.ended = True
                return got
            got.append(item)

    async def close(self) -> None:
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)
        aclose = getattr(self._stream, "aclose", None)
        if aclose is not None:
            with contextlib.suppress(Exception):
                await aclose()


@contextlib.asynccontextmanager
async def watching(stream: AsyncIterator[WatchEvent], *, timeout: float = 5.0
                   ) -> AsyncIterator[EventStream]:
    events = EventStream(stream, timeout)
    try:
        yield events
    finally:
        await events.close()


def summary(events: Iterable[WatchEvent]) -> list[tuple[str, str]]:
    return [(e.type, e.object["metadata"]["name"]) for e in events]


def copy(obj: Mapping[str, Any]) -> dict[str, Any]:
    return deepcopy(obj)


__all__ = [
    "CONFIGMAPS", "HOLD", "HOLD2", "PODS", "SYSTEM_NAMES", "WIDGETS", "EventStream",
    "assert_invalid", "configmap", "copy", "eventually", "exists", "fields_of", "gone", "mutate",
    "names", "pod", "remove_finalizer", "rv", "summary", "watching", "widget",
]
