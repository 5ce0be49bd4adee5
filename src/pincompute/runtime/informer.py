"""Shared informers: a local, indexed, always-current copy of one collection.

Theory of operation
-------------------
An informer keeps a :class:`~pincompute.runtime.cache.Cache` of one collection
(a resource in one cluster, optionally narrowed by namespace and selectors) equal
to the server's, and tells registered handlers about every change.  A
:class:`~pincompute.runtime.reflector.Reflector` runs the list/watch loop (list,
watch from the list's resourceVersion, re-watch when a stream ends, relist on
Gone, back off on errors); the informer is its sink:

- the pages of a list are collected and then *replace* the cache, which emits
  synthetic events for the difference between what the cache held and what the
  list returned: a delete for every object that vanished in a gap, an add for
  every new one, an update for every changed one (and a delete plus an add when
  a name was reused by a new uid).  Handlers therefore see a consistent story
  even across gaps; only intermediate states inside a gap are lost, which
  level-triggered reconcilers do not need;
- each watch event is applied to the cache and dispatched to the handlers.

Handlers are plain (synchronous) callables run in the informer's task, in event
order; they must be quick — typically "put a key in a work queue" — and must not
block.  A handler that raises is logged and the others still run.  A handler
added after the first list is replayed the current contents as adds, so late
registration sees the same story as early registration.

The cache hands out shared objects: see the *sharing rule* in
:mod:`pincompute.runtime.cache` — **copy before you change**.

An :class:`InformerFactory` shares one informer per (client, resource,
namespace, label selector, field selector): every controller in a manager that
needs pods of one cluster reads the same cache and costs the API one watch.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from pincompute.kube.objects import key_of, uid_of
from pincompute.kube.protocol import ADDED, DELETED, MODIFIED, KubeClient, WatchEvent
from pincompute.kube.resource import Resource

from .backoff import BackoffPolicy
from .cache import Cache, IndexFunc
from .logging import get_logger
from .metrics import RuntimeMetrics
from .reflector import DEFAULT_BACKOFF, DEFAULT_PAGE_SIZE, DEFAULT_WATCH_TIMEOUT, Reflector

Obj = dict[str, Any]

BACKOFF_INITIAL = DEFAULT_BACKOFF.initial
BACKOFF_MAX = DEFAULT_BACKOFF.maximum

_log = get_logger(__name__)


class ResourceEventHandler(Protocol):
    """What an informer calls; objects passed in are shared and read-only."""

    def on_add(self, obj: Obj) -> None: ...

    def on_update(self, old: Obj, new: Obj) -> None: ...

    def on_delete(self, obj: Obj) -> None: ...


@dataclass(eq=False, slots=True)
class FuncEventHandler:
    """A :class:`ResourceEventHandler` from up to three functions."""

    add: Callable[[Obj], None] | None = None
    update: Callable[[Obj, Obj], None] | None = None
    delete: Callable[[Obj], None] | None = None

    def on_add(self, obj: Obj) -> None:
        if self.add is not None:
            self.add(obj)

    def on_update(self, old: Obj, new: Obj) -> None:
        if self.update is not None:
            self.update(old, new)

    def on_delete(self, obj: Obj) -> None:
        if self.delete is not None:
            self.delete(obj)


class HandlerRegistration:
    """A handler's registration on an informer; :meth:`remove` unregisters it."""

    __slots__ = ("handler", "informer")

    def __init__(self, informer: SharedInformer, handler: ResourceEventHandler) -> None:
        self.informer = informer
        self.handler = handler

    @property
    def has_synced(self) -> bool:
        # Replay to a late handler is synchronous, so it has synced when the informer has.
        return self.informer.has_synced

    def remove(self) -> None:
        self.informer.remove_event_handler(self)


class _Sink:
    """An informer's private methods as its reflector's sink.

    Bound methods stored as attributes, so the reflector calls straight into the
    informer: no extra call per event.
    """

    __slots__ = ("begin_list", "end_list", "list_page", "on_event")

    def __init__(self, informer: SharedInformer) -> None:
        self.begin_list = informer._begin_list
        self.list_page = informer._list_page
        self.end_list = informer._end_list
        self.on_event = informer._apply


class SharedInformer:
    """List-then-watch one collection into an indexed cache and notify handlers."""

    def __init__(self, client: KubeClient, resource: Resource, *,
                 namespace: str | None = None, label_selector: str | None = None,
                 field_selector: str | None = None, page_size: int | None = DEFAULT_PAGE_SIZE,
                 watch_timeout: float | None = DEFAULT_WATCH_TIMEOUT,
                 detect_mutations: bool | None = None,
                 metrics: RuntimeMetrics | None = None,
                 backoff_initial: float = BACKOFF_INITIAL,
                 backoff_max: float = BACKOFF_MAX,
                 transform: Callable[[Obj], Obj] | None = None) -> None:
        self.client = client
        # Applied to every object before it is cached or handed to a handler (client-go's
        # SetTransform): an informer whose consumers read a few fields keeps only those.
        self.transform = transform
        self.resource = resource
        self.namespace = namespace
        self.label_selector = label_selector
        self.field_selector = field_selector
        self.page_size = page_size
        self.watch_timeout = watch_timeout
        self.cache = Cache(detect_mutations=detect_mutations)
        self._handlers: list[HandlerRegistration] = []
        self._synced = asyncio.Event()
        self._stopped = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._listed: list[Obj] = []
        self.relists = 0
        self.events = 0
        parts = [str(resource)]
        if namespace:
            parts.append(f"ns={namespace}")
        if label_selector:
            parts.append(f"labels={label_selector}")
        if field_selector:
            parts.append(f"fields={field_selector}")
        self.name = " ".join(parts)
        self._log = _log.bind(informer=self.name)
        # Series are per resource, summed over clusters and selectors: enough to see
        # churn and relist storms without a series per informer.
        label = str(resource)
        self._m_events = ({t: metrics.informer_events.labels(label, t)
                           for t in (ADDED, MODIFIED, DELETED)}
                          if metrics is not None else None)
        self._m_relists = (metrics.informer_relists.labels(label)
                           if metrics is not None else None)
        self._reflector = Reflector(
            client, resource, _Sink(self), namespace=namespace, label_selector=label_selector,
            field_selector=field_selector, page_size=page_size, watch_timeout=watch_timeout,
            backoff=BackoffPolicy(initial=backoff_initial, maximum=backoff_max,
                                  jitter=DEFAULT_BACKOFF.jitter),
            log=self._log)

    def __repr__(self) -> str:
        return f"<SharedInformer {self.name} synced={self.has_synced}>"

    # -- state --

    @property
    def has_synced(self) -> bool:
        """Whether the first list has been loaded into the cache."""
        return self._synced.is_set()

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    @property
    def resource_version(self) -> str:
        """The last resourceVersion the informer has seen (list, event or bookmark)."""
        return self._reflector.resource_version

    async def wait_synced(self) -> bool:
        """Wait for the first list; ``False`` if the informer stopped first.

        Bound the wait with ``asyncio.timeout`` where needed.
        """
        if self._synced.is_set():
            return True
        synced = asyncio.ensure_future(self._synced.wait())
        stopped = asyncio.ensure_future(self._stopped.wait())
        try:
            await asyncio.wait((synced, stopped), return_when=asyncio.FIRST_COMPLETED)
        finally:
            synced.cancel()
            stopped.cancel()
        return self._synced.is_set()

    # -- handlers and indexes --

    def add_event_handler(self, handler: ResourceEventHandler | None = None, *,
                          on_add: Callable[[Obj], None] | None = None,
                          on_update: Callable[[Obj, Obj], None] | None = None,
                          on_delete: Callable[[Obj], None] | None = None) -> HandlerRegistration:
        """Register a handler (an object, or up to three functions).

        If the informer has already listed, the handler is called at once with an
        add for every cached object.
        """
        if handler is None:
            handler = FuncEventHandler(on_add, on_update, on_delete)
        elif on_add or on_update or on_delete:
            raise TypeError("pass a handler object or functions, not both")
        reg = HandlerRegistration(self, handler)
        self._handlers.append(reg)
        if self.has_synced:
            for obj in self.cache:
                self._call(reg, "on_add", obj)
        return reg

    def remove_event_handler(self, registration: HandlerRegistration) -> None:
        with contextlib.suppress(ValueError):
            self._handlers.remove(registration)

    def add_indexer(self, name: str, fn: IndexFunc) -> None:
        """Add a secondary index (see :class:`~pincompute.runtime.cache.Cache`)."""
        self.cache.add_indexer(name, fn)

    # -- reads: shared, read-only objects (copy before changing) --

    def get(self, name: str, *, namespace: str | None = None) -> Obj | None:
        return self.cache.get(f"{namespace}/{name}" if namespace else name)

    def get_by_key(self, key: str) -> Obj | None:
        return self.cache.get(key)

    def by_index(self, name: str, value: str) -> list[Obj]:
        return self.cache.by_index(name, value)

    def index_keys(self, name: str, value: str) -> list[str]:
        return self.cache.index_keys(name, value)

    def keys(self) -> list[str]:
        return self.cache.keys()

    def check_mutations(self) -> None:
        """Raise if a cached object was changed in place (when detection is on)."""
        self.cache.check_mutations()

    # -- lifecycle --

    def start(self) -> asyncio.Task[None]:
        """Start the list/watch loop in a task (idempotent)."""
        if self._task is None or self._task.done():
            self._stopped.clear()
            self._task = asyncio.get_running_loop().create_task(
                self.run(), name=f"informer {self.name}")
        return self._task

    async def stop(self) -> None:
        """Stop watching; the cache keeps its contents."""
        task, self._task = self._task, None
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._stopped.set()

    async def run(self) -> None:
        """The list/watch loop; runs until cancelled."""
        try:
            await self._reflector.run()
        finally:
            self._stopped.set()

    # -- the reflector's sink --

    def _begin_list(self) -> None:
        self._listed = []

    def _list_page(self, items: list[Obj]) -> None:
        transform = self.transform
        self._listed.extend(items if transform is None else map(transform, items))

    def _end_list(self, resource_version: str) -> None:
        items, self._listed = self._listed, []
        self.relists += 1
        if self._m_relists is not None:
            self._m_relists.inc()
        self._replace(items)
        if not self._synced.is_set():
            self._log.debug("synced %d objects at resourceVersion %s", len(items),
                            resource_version)
            self._synced.set()
        else:
            self._log.info("relisted %d objects at resourceVersion %s", len(items),
                           resource_version)

    def _replace(self, items: list[Obj]) -> None:
        """Make the cache equal ``items``, emitting events for the difference."""
        cache = self.cache
        fresh: dict[str, Obj] = {key_of(o): o for o in items}
        for key in [k for k in cache.keys() if k not in fresh]:
            old = cache.remove(key)
            if old is not None:
                self._dispatch_delete(old)
        for key, obj in fresh.items():
            old = cache.get(key)
            if old is None:
                cache.put(obj)
                self._dispatch_add(obj)
            elif uid_of(old) != uid_of(obj):
                # Deleted and re-created under the same name while we were not watching.
                cache.remove(key)
                self._dispatch_delete(old)
                cache.put(obj)
                self._dispatch_add(obj)
            elif _rv(old) != _rv(obj):
                cache.put(obj)
                self._dispatch_update(old, obj)
            # Same resourceVersion: unchanged; keep the cached object (and its identity).

    def _apply(self, event: WatchEvent) -> None:
        obj = event.object
        etype = event.type
        if self.transform is not None:
            obj = self.transform(obj)
        self.events += 1
        if self._m_events is not None and etype in self._m_events:
            self._m_events[etype].inc()
        if etype == ADDED or etype == MODIFIED:
            key = key_of(obj)
            old = self.cache.get(key)
            if old is not None and _rv(old) == _rv(obj):
                # Already cached at this version: a store whose paginated lists are not
                # snapshots replays changes the later pages already showed.
                return
            self.cache.put(obj, key=key)
            if old is None:
                self._dispatch_add(obj)
            else:
                self._dispatch_update(old, obj)
        elif etype == DELETED:
            self.cache.remove(key_of(obj))
            # The event carries the object's final state, which is what handlers want.
            self._dispatch_delete(obj)
        else:
            self._log.warning("ignoring watch event of unknown type %r", etype)

    # -- dispatch --

    def _call(self, reg: HandlerRegistration, method: str, *args: Obj) -> None:
        try:
            getattr(reg.handler, method)(*args)
        except Exception:
            self._log.exception("event handler %r failed in %s for %s", reg.handler, method,
                                key_of(args[-1]))

    # (add and update, once per event: the handler called inline, _call only on failure)
    def _dispatch_add(self, obj: Obj) -> None:
        for reg in tuple(self._handlers):
            try:
                reg.handler.on_add(obj)
            except Exception:
                self._failed(reg, "on_add", obj)

    def _dispatch_update(self, old: Obj, new: Obj) -> None:
        for reg in tuple(self._handlers):
            try:
                reg.handler.on_update(old, new)
            except Exception:
                self._failed(reg, "on_update", new)

    def _failed(self, reg: HandlerRegistration, method: str, obj: Obj) -> None:
        self._log.exception("event handler %r failed in %s for %s", reg.handler, method,
                            key_of(obj))

    def _dispatch_delete(self, obj: Obj) -> None:
        for reg in tuple(self._handlers):
            self._call(reg, "on_delete", obj)

    # Defined last so that ``list`` in the annotations above means the builtin.
    def list(self, *, namespace: str | None = None) -> list[Obj]:
        """Cached objects (shared, read-only), optionally of one namespace."""
        return self.cache.list(namespace=namespace)


def _rv(obj: Mapping[str, Any]) -> str:
    rv: str = (obj.get("metadata") or {}).get("resourceVersion", "")
    return rv


InformerKey = tuple[int, str, str | None, str | None, str | None]


class InformerFactory:
    """Hands out one shared informer per (client, resource, namespace, selectors)."""

    def __init__(self, *, metrics: RuntimeMetrics | None = None,
                 page_size: int | None = DEFAULT_PAGE_SIZE,
                 watch_timeout: float | None = DEFAULT_WATCH_TIMEOUT,
                 detect_mutations: bool | None = None) -> None:
        self.metrics = metrics
        self.page_size = page_size
        self.watch_timeout = watch_timeout
        self.detect_mutations = detect_mutations
        self._informers: dict[InformerKey, SharedInformer] = {}
        self._started = False

    def informer(self, client: KubeClient, resource: Resource, *,
                 namespace: str | None = None, label_selector: str | None = None,
                 field_selector: str | None = None) -> SharedInformer:
        """The shared informer for this collection, created on first request.

        Once the factory has started, a newly created informer starts at once.
        """
        # Keyed by the client's identity: one client is one connection to one
        # cluster, and the informer holds a reference, so the id stays unique.
        key: InformerKey = (id(client), resource.key, namespace or None,
                            label_selector or None, field_selector or None)
        inf = self._informers.get(key)
        if inf is None:
            inf = SharedInformer(
                client, resource, namespace=namespace, label_selector=label_selector,
                field_selector=field_selector, page_size=self.page_size,
                watch_timeout=self.watch_timeout, detect_mutations=self.detect_mutations,
                metrics=self.metrics)
            self._informers[key] = inf
            if self._started:
                inf.start()
        return inf

    @property
    def informers(self) -> list[SharedInformer]:
        return list(self._informers.values())

    def start(self) -> None:
        """Start every informer (and, from now on, every new one)."""
        self._started = True
        for inf in self._informers.values():
            inf.start()

    async def wait_synced(self) -> bool:
        """Wait until every informer has listed; ``False`` if one stopped first."""
        infs = self.informers
        if not infs:
            return True
        results = await asyncio.gather(*(i.wait_synced() for i in infs))
        return all(results)

    async def stop(self) -> None:
        self._started = False
        await asyncio.gather(*(i.stop() for i in self._informers.values()))

    def check_mutations(self) -> None:
        for inf in self._informers.values():
            inf.check_mutations()
