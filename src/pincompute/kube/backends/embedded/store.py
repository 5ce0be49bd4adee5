"""The embedded store: one cluster's API objects, in process.

Theory of operation
-------------------
All state lives in memory, in one :class:`~.collection.Collection` per resource,
and every operation runs synchronously on the event loop's thread — so a write
is atomic with respect to every other read and write without locks.  A write:

1. validates the candidate object (:mod:`.admission`'s generic metadata rules,
   then the resource's registered validator), so a rejected write changes nothing;
2. takes the next resourceVersion (one counter per store, like an etcd revision),
   serializes the object, and swaps the new entry into the collection's indexes
   and the garbage collector's owner graph (:meth:`EmbeddedStore.put`);
3. records a :class:`~.watch.StoreEvent` in the resource's history;
4. hands the change to :class:`~.commit.GroupCommit`, and returns a *waiter* the
   client awaits before acknowledging the write.  Watchers hear of the change
   once it is durable; readers wait for the commit of whatever they saw.

If a commit fails the store turns read-only and rolls its memory back to the last
committed state (:meth:`EmbeddedStore._fail`): reads only ever show what the log
holds, which is what a restart would load.  Opening takes the directory's lock
(:mod:`.lock`) and checks the file (:mod:`.persistence`); what can stop an open is
a :class:`~.errors.StoreUnavailable` whose message is one line.

Reads (:meth:`~EmbeddedStore.get`, :meth:`~EmbeddedStore.list`, with continue
tokens from :mod:`.pagination`) parse private copies of the stored JSON; watches
(:meth:`~EmbeddedStore.open_watch`) replay the history from the requested
resourceVersion and then follow the commits (:mod:`.watch`).

What a delete sets off lives in its own modules, each driven from inside the
triggering write: grace periods and finalizers (:mod:`.deletion`), the garbage
collector and its ``foregroundDeletion``/``orphan`` finalizers (:mod:`.gc`), and
namespace lifecycle (:mod:`.namespaces`).  They change the store only through
:meth:`~EmbeddedStore.put`, :meth:`~EmbeddedStore.remove` and
:meth:`~EmbeddedStore.delete`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from pincompute.kube import names
from pincompute.kube.errors import (
    AlreadyExists,
    ApiError,
    BadRequest,
    Cause,
    NotFound,
    invalid,
)
from pincompute.kube.patch import merge_patch
from pincompute.kube.protocol import ADDED, DELETED, MODIFIED, Preconditions
from pincompute.kube.resource import CORE_RESOURCES, EVENTS, NAMESPACES, Resource
from pincompute.kube.selectors import (
    ALWAYS_SELECTABLE,
    FieldSelector,
    LabelSelector,
    field_value,
    parse_field_selector,
    parse_label_selector,
)

from . import admission, binding, deletion, limits, pagination, strategy
from .collection import Collection, Entry, Validator
from .commit import GroupCommit, Waiter, Write
from .eventexpiry import DEFAULT_EVENT_TTL, EventExpiry
from .gc import GarbageCollector, entry_key
from .namespaces import Namespaces
from .persistence import SqliteLog
from .preconditions import check_delete, check_uid, check_update
from .watch import StoreEvent, Watcher, start_watch

if TYPE_CHECKING:
    from .client import EmbeddedClient

log = logging.getLogger(__name__)

# items, resourceVersion, continue token, remaining item count
ListResult = tuple[list[dict[str, Any]], str, str | None, int | None]


class EmbeddedStore:
    """The state of one cluster.  Use :meth:`open`; talk to it through :meth:`client`."""

    def __init__(self, *, path: Path | None, history_size: int, watch_buffer: int,
                 bookmark_interval: float, require_namespaces: bool,
                 synchronous: str) -> None:
        self.path = path
        self.history_size = history_size
        self.watch_buffer = watch_buffer
        self.bookmark_interval = bookmark_interval
        self._loop = asyncio.get_running_loop()
        self.collections: dict[str, Collection] = {}
        """Every resource's objects, by resource key (for the store's own modules)."""
        self._rv = 0
        self._closed = False
        self._unreadable = False  # a failed commit could not be rolled back (see _fail)
        self._commit = GroupCommit(SqliteLog(path, synchronous=synchronous)
                                   if path is not None else None, loop=self._loop,
                                   on_failure=self._fail)
        self._read_only_hooks: list[Callable[[str], None]] = []
        self._expiry: EventExpiry | None = None
        self._gc = GarbageCollector(self, loop=self._loop)
        self._namespaces = Namespaces(self, require_namespaces=require_namespaces)
        # Objects per namespace (kept here, on the write path; read by the namespaces).
        self._ns_counts = self._namespaces.counts

    @classmethod
    async def open(cls, *, path: Path | str | None = None, history_size: int = 10_000,
                   watch_buffer: int = 100_000, bookmark_interval: float = 5.0,
                   require_namespaces: bool = True, synchronous: str = "FULL",
                   resources: tuple[Resource, ...] = CORE_RESOURCES,
                   event_ttl: float | None = DEFAULT_EVENT_TTL) -> EmbeddedStore:
        """Open a store; ``path`` is a data directory (None keeps everything in memory).

        Events expire ``event_ttl`` seconds after their last write (None: never).
        """
        store = cls(path=Path(path) if path is not None else None, history_size=history_size,
                    watch_buffer=watch_buffer, bookmark_interval=bookmark_interval,
                    require_namespaces=require_namespaces, synchronous=synchronous)
        if store._commit.log is not None:
            try:
                store._load(store._commit.log)
            except BaseException as e:
                store._commit.close()  # and release the lock
                if isinstance(e, Exception):
                    raise store._commit.log.unavailable(e) from None
                raise
        for resource in resources:
            store.register(resource)
        if event_ttl is not None and EVENTS in resources:
            store._expiry = EventExpiry(store, ttl=event_ttl)
            store._expiry.start()
        return store

    def _load(self, sqlite: SqliteLog) -> None:
        self._rv = self._commit.committed_rv = sqlite.last_resource_version()
        for rkey, key, rv, raw in sqlite.rows():
            coll = self._collection_for_key(rkey)
            data = orjson.loads(raw)
            md = data["metadata"]
            entry = Entry(key=key, ns=md.get("namespace") or "", name=md["name"],
                          uid=md["uid"], rv=rv, raw=bytes(raw), data=data,
                          selectable=coll.selectable)
            coll.insert(entry, None)
            self._gc.track(coll, entry, None)
            if entry.ns:
                self._ns_counts[entry.ns] += 1
        log.info("opened store %s at resourceVersion %d", self.path, self._rv)

    # --- registration -----------------------------------------------------------------------

    def register(self, resource: Resource, *, validator: Validator | None = None) -> None:
        """Make a resource known, optionally with a validator for its objects."""
        coll = self._collection_for_key(resource.key)
        coll.resource = resource
        if coll.selectable != resource.selectable_fields:
            coll.selectable = resource.selectable_fields
            # Objects loaded from disk before their resource was known.
            for entry in coll.entries.values():
                entry.fields = {path: field_value(orjson.loads(entry.raw), path)
                                for path in coll.selectable} or None
        if validator is not None:
            coll.validator = validator

    def resources(self) -> list[Resource]:
        return [c.resource for c in self.collections.values() if c.resource is not None]

    def _collection_for_key(self, rkey: str) -> Collection:
        coll = self.collections.get(rkey)
        if coll is None:
            coll = Collection(rkey, resource=None, history_size=self.history_size,
                              floor=self._rv)
            self.collections[rkey] = coll
        return coll

    def _collection(self, resource: Resource) -> Collection:
        if self._unreadable:
            raise ApiError(f"the store {self.path} cannot answer after a storage failure; "
                           "restart it")
        coll = self.collections.get(resource.key)
        if coll is None or coll.resource is None:
            raise NotFound(f"the server could not find the requested resource ({resource})")
        return coll

    @property
    def resource_version(self) -> int:
        return self._rv

    @property
    def committed_resource_version(self) -> int:
        return self._commit.committed_rv

    @property
    def healthy(self) -> bool:
        """False once a commit failed: the store then refuses writes until reopened."""
        return self._commit.failed is None

    @property
    def read_only_reason(self) -> str | None:
        """Why the store refuses writes (None while healthy)."""
        if self._commit.failed is None:
            return None
        return (f"a commit to {self.path} failed ({self._commit.failed}); the store refuses "
                "writes until it is reopened with the storage fixed (free space, then restart)")

    def on_read_only(self, hook: Callable[[str], None]) -> None:
        """Call ``hook(reason)`` once, when the store turns read-only."""
        self._read_only_hooks.append(hook)

    def _fail(self, error: BaseException, lost: list[Write]) -> None:
        """A commit failed: undo the writes that will never be durable, then say so."""
        try:
            self._roll_back(lost)
        except Exception:  # never serve a state that is neither committed nor rolled back
            log.exception("store %s: rolling back after a failed commit failed", self.path)
            self._unreadable = True
        self._read_only(error)

    def _roll_back(self, lost: list[Write]) -> None:
        """Put back what each lost write replaced, newest first (see .commit)."""
        counts = self._ns_counts
        for coll, event, before in lost:
            current = coll.entries.get(event.entry.key)
            if current is not None and before is not None:
                coll.insert(before, current)
                self._gc.track(coll, before, current)
            elif current is not None:
                coll.remove(current)
                self._gc.untrack(coll, current)
                if current.ns:
                    counts[current.ns] -= 1
                    if counts[current.ns] <= 0:
                        del counts[current.ns]
            elif before is not None:
                coll.insert(before, None)
                self._gc.track(coll, before, None)
                if before.ns:
                    counts[before.ns] += 1
        committed = self._commit.committed_rv
        for coll in self.collections.values():
            coll.history.truncate(committed)
        self._rv = committed
        if lost:
            log.warning("store %s: %d writes that failed to commit were undone", self.path,
                        len(lost))

    def _read_only(self, error: BaseException) -> None:
        reason = self.read_only_reason or str(error)
        log.error("STORE READ-ONLY: %s", reason)
        for hook in self._read_only_hooks:
            try:
                hook(reason)
            except Exception:  # a listener's bug must not leave writers waiting
                log.exception("read-only hook failed")

    @property
    def writable(self) -> bool:
        """Neither closed nor stopped by a storage failure."""
        return not self._closed and self._commit.failed is None

    def object_count(self) -> int:
        return sum(len(c.entries) for c in self.collections.values())

    def client(self) -> EmbeddedClient:
        from .client import EmbeddedClient
        return EmbeddedClient(self)

    # --- reads ------------------------------------------------------------------------------

    def _key(self, resource: Resource, namespace: str | None, name: str) -> str:
        if resource.namespaced:
            if not namespace:
                raise BadRequest("a namespace is required for namespaced resource "
                                 f"{resource}", causes=[Cause("metadata.namespace",
                                                              "Required value",
                                                              "FieldValueRequired")])
            return f"{namespace}/{name}"
        return name

    def _existing(self, coll: Collection, resource: Resource, namespace: str | None,
                  name: str) -> Entry:
        entry = coll.entries.get(self._key(resource, namespace, name))
        if entry is None:
            raise NotFound(f'{resource} "{name}" not found', kind=resource.kind, name=name)
        return entry

    def get(self, resource: Resource, name: str, namespace: str | None) -> dict[str, Any]:
        entry = self._existing(self._collection(resource), resource, namespace, name)
        obj: dict[str, Any] = orjson.loads(entry.raw)
        return obj

    @staticmethod
    def _scope(resource: Resource, namespace: str | None, label_selector: str | None,
               field_selector: str | None) -> tuple[str | None, LabelSelector, FieldSelector]:
        """The namespace (None: all) and selectors a list or watch reads."""
        labels = parse_label_selector(label_selector)
        fields = parse_field_selector(field_selector)
        for path, _, _ in fields.terms:
            if path not in ALWAYS_SELECTABLE and path not in resource.selectable_fields:
                raise BadRequest(f'field label not supported: "{path}" for {resource}',
                                 causes=[Cause("fieldSelector", f"{path} is not selectable")])
        if not resource.namespaced:
            return None, labels, fields
        return namespace or fields.value_of("metadata.namespace"), labels, fields

    def list(self, resource: Resource, *, namespace: str | None, label_selector: str | None,
             field_selector: str | None, limit: int | None,
             continue_token: str | None) -> ListResult:
        coll = self._collection(resource)
        namespace, labels, fields = self._scope(resource, namespace, label_selector,
                                                field_selector)
        if limit is not None and (not isinstance(limit, int) or limit < 0):
            raise BadRequest("limit must be a non-negative integer",
                             causes=[Cause("limit", "must be >= 0")])
        after, list_rv, overlay = None, self._rv, None
        if continue_token:
            after, list_rv = pagination.decode_continue(continue_token)
            overlay = pagination.state_at(coll, list_rv)
        entries = coll.scan(namespace=namespace, labels=labels, fields=fields, after=after,
                            overlay=overlay)
        items, token, remaining = pagination.page(
            coll, entries, limit=limit, list_rv=list_rv, namespace=namespace,
            countable=labels.empty and fields.empty and not overlay)
        return items, str(list_rv), token, remaining

    # --- watch ------------------------------------------------------------------------------

    def open_watch(self, resource: Resource, *, namespace: str | None,
                   label_selector: str | None, field_selector: str | None,
                   resource_version: str | None, allow_bookmarks: bool) -> Watcher:
        coll = self._collection(resource)
        namespace, labels, fields = self._scope(resource, namespace, label_selector,
                                                field_selector)
        watcher = start_watch(coll, namespace=namespace, labels=labels, fields=fields,
                              resource_version=resource_version, current_rv=self._rv,
                              committed_rv=self._commit.committed_rv, limit=self.watch_buffer,
                              allow_bookmarks=allow_bookmarks)
        coll.watchers.add(watcher)
        return watcher

    def close_watch(self, resource: Resource, watcher: Watcher) -> None:
        coll = self.collections.get(resource.key)
        if coll is not None:
            coll.watchers.discard(watcher)

    # --- writes -----------------------------------------------------------------------------

    def _check_writable(self) -> None:
        if self._closed:
            raise ApiError("the store is closed")
        if self._commit.failed is not None:
            raise ApiError(f"the store stopped accepting writes after a storage failure: "
                           f"{self._commit.failed}")

    def create(self, resource: Resource, obj: Mapping[str, Any],
               namespace: str | None) -> tuple[dict[str, Any], Waiter]:
        self._check_writable()
        coll = self._collection(resource)
        data = admission.copy_in(obj)
        admission.check_type(resource, data)
        md = data["metadata"]
        ns = self._namespaces.resolve(resource, md, namespace)
        causes: list[Cause] = []
        if not md.get("name") and isinstance(md.get("generateName"), str) and md["generateName"]:
            md["name"] = names.generate_name(md["generateName"])
        causes += admission.check_name(md.get("name"),
                                       namespace_like=resource.key == NAMESPACES.key)
        causes += admission.check_metadata(md)
        if causes:
            raise invalid(resource.kind, str(md.get("name", "")), causes)
        if ns is not None:
            self._namespaces.check_open(ns)
        strategy.prepare_for_create(resource, data)
        if coll.validator is not None:
            data = coll.validator(data, None) or data
            md = data["metadata"]
        key = self._key(resource, ns, md["name"])
        if key in coll.entries:
            raise AlreadyExists(f'{resource} "{md["name"]}" already exists',
                                kind=resource.kind, name=md["name"])
        strategy.stamp_new(md)
        return data, self.put(coll, data, None)

    def update(self, resource: Resource, obj: Mapping[str, Any], *,
               status: bool = False) -> tuple[dict[str, Any], Waiter]:
        self._check_writable()
        coll = self._collection(resource)
        data = admission.copy_in(obj)
        md = data["metadata"]
        name = md.get("name")
        if not isinstance(name, str) or not name:
            raise invalid(resource.kind, "", [Cause("metadata.name", "Required value",
                                                    "FieldValueRequired")])
        ns = md.get("namespace") if resource.namespaced else None
        prev = coll.entries.get(self._key(resource, ns, name))
        if prev is None:
            raise NotFound(f'{resource} "{name}" not found', kind=resource.kind, name=name)
        admission.check_type(resource, data)
        check_update(resource, prev, md.get("resourceVersion"), md.get("uid"))
        old = orjson.loads(prev.raw)
        if status:
            if not resource.status_subresource:
                raise NotFound(f"the server could not find the requested resource "
                               f"({resource}/status)")
            data = strategy.prepare_for_status_update(data, orjson.loads(prev.raw))
        else:
            causes = admission.check_metadata(md)
            if causes:
                raise invalid(resource.kind, name, causes)
            strategy.prepare_for_update(resource, data, old)
            if prev.deleting:
                deletion.check_finalizers_kept(resource, prev, md)
        if coll.validator is not None:
            data = coll.validator(data, old) or data
        if not status:
            strategy.bump_generation(data, old)
        data["metadata"]["resourceVersion"] = old["metadata"]["resourceVersion"]
        if data == old:
            return old, self._commit.current_waiter()
        if prev.deleting and not data["metadata"].get("finalizers") and \
                not data["metadata"].get("deletionGracePeriodSeconds"):
            return self.remove(coll, prev, final=data)
        waiter = self.put(coll, data, prev)
        return data, waiter

    def patch(self, resource: Resource, name: str, patch: object, namespace: str | None, *,
              status: bool = False) -> tuple[dict[str, Any], Waiter]:
        self._check_writable()
        coll = self._collection(resource)
        if not isinstance(patch, Mapping):
            raise BadRequest("a merge patch must be a JSON object",
                             causes=[Cause("body", "must be an object", "FieldValueTypeInvalid")])
        ns = namespace if resource.namespaced else None
        prev = coll.entries.get(self._key(resource, ns, name))
        if prev is None:
            raise NotFound(f'{resource} "{name}" not found', kind=resource.kind, name=name)
        patched = merge_patch(orjson.loads(prev.raw), patch)
        if not isinstance(patched.get("metadata"), dict):
            raise BadRequest("metadata must be an object")
        pmd = patch.get("metadata")
        if not (isinstance(pmd, Mapping) and pmd.get("resourceVersion")):
            patched["metadata"]["resourceVersion"] = str(prev.rv)
        patched["metadata"]["name"] = name
        if resource.namespaced:
            patched["metadata"]["namespace"] = ns
        return self.update(resource, patched, status=status)

    def create_subresource(self, resource: Resource, name: str, subresource: str,
                           body: object, namespace: str | None) -> tuple[dict[str, Any], Waiter]:
        """``pods/binding``: assign an unbound pod to a node (see :mod:`.binding`)."""
        self._check_writable()
        if not (resource.graceful_delete and subresource == binding.SUBRESOURCE):
            raise NotFound(f"the server could not find the requested resource "
                           f"({resource}/{subresource})")
        coll = self._collection(resource)
        target = binding.parse(name, body)
        prev = self._existing(coll, resource, namespace, name)
        check_uid(resource, prev, target.uid)
        return binding.bind(self, coll, prev, target)

    def delete(self, resource: Resource, name: str, namespace: str | None, *,
               preconditions: Preconditions | None, grace_period_seconds: int | None,
               propagation_policy: str | None) -> tuple[dict[str, Any], Waiter]:
        self._check_writable()
        coll = self._collection(resource)
        if propagation_policy is not None or grace_period_seconds:  # the usual delete has neither
            deletion.check_options(grace_period_seconds, propagation_policy)
        prev = coll.entries.get(self._key(resource, namespace if resource.namespaced else None,
                                          name))
        if prev is None:
            raise NotFound(f'{resource} "{name}" not found', kind=resource.kind, name=name)
        if preconditions is not None:
            check_delete(resource, prev, preconditions)
        obj = orjson.loads(prev.raw)
        if resource.key == NAMESPACES.key:
            return self._namespaces.delete(coll, prev, obj)
        return deletion.delete(self, self._gc, coll, prev, obj,
                               grace_period_seconds=grace_period_seconds,
                               propagation_policy=propagation_policy)

    # --- the write primitives (for this module and deletion, gc, namespaces) ---------------

    def put(self, coll: Collection, data: dict[str, Any], prev: Entry | None, *,
            private: bool = False) -> Waiter:
        """Store ``data`` (a new object, or the next version of ``prev``) and commit it.

        ``private``: nobody else holds ``data`` or will change it (the caller drops it),
        so watchers are handed it as it is instead of a copy parsed from the JSON.
        """
        if self._commit.failed is not None:
            self._check_writable()
        self._rv += 1
        rv = self._rv
        md = data["metadata"]
        md["resourceVersion"] = str(rv)
        # orjson's result keeps a 4 KiB allocation however short the JSON is; the
        # store keeps these bytes for the object's lifetime, so keep an exact copy
        # (measured: 4.1 KB → 1.1 KB per 1 KB pod, ~350 MB at 120k pods).
        raw = _compact(orjson.dumps(data))
        if limits.exceeds(len(raw), md, prev):
            self._rv -= 1  # nothing was written
            raise limits.too_large(coll.resource, md, len(raw))
        ns: str = md.get("namespace") or ""
        name: str = md["name"]
        uid: str = md["uid"]
        if prev is not None:
            # The next version keeps the previous one's strings (equal: an update cannot
            # rename): the history holds many versions, and each decoded its own copies.
            ns = prev.ns if prev.ns == ns else ns
            name = prev.name if prev.name == name else name
            uid = prev.uid if prev.uid == uid else uid
        entry = Entry(key=prev.key if prev is not None else entry_key(md), ns=ns, name=name,
                      uid=uid, rv=rv, raw=raw, data=data, selectable=coll.selectable)
        coll.insert(entry, prev)
        self._gc.track(coll, entry, prev)
        if prev is None and entry.ns:
            self._ns_counts[entry.ns] += 1
        event = StoreEvent(MODIFIED if prev is not None else ADDED, rv, entry, prev)
        if private:
            event.share(data)
        coll.history.append(event)
        return self._commit.record(coll, event, entry.key, raw, prev)

    def remove(self, coll: Collection, prev: Entry, *,
               final: dict[str, Any] | None = None) -> tuple[dict[str, Any], Waiter]:
        """Remove ``prev`` (``final``: its last state, if it changed) and commit that.

        Then the garbage collector and the namespace lifecycle act on its going.
        """
        if self._commit.failed is not None:
            self._check_writable()
        self._rv += 1
        rv = self._rv
        obj: dict[str, Any] = final if final is not None else orjson.loads(prev.raw)
        obj["metadata"]["resourceVersion"] = str(rv)
        gone = prev
        if final is not None:
            gone = Entry(key=prev.key, ns=prev.ns, name=prev.name, uid=prev.uid, rv=rv,
                         raw=_compact(orjson.dumps(final)), data=final,
                         selectable=coll.selectable)
        coll.remove(prev)
        self._gc.untrack(coll, prev)
        if prev.ns:
            left = self._ns_counts[prev.ns] - 1
            if left > 0:
                self._ns_counts[prev.ns] = left
            else:
                del self._ns_counts[prev.ns]
        event = StoreEvent(DELETED, rv, gone, None)
        coll.history.append(event)
        waiter = self._commit.record(coll, event, prev.key, None, prev)
        gc = self._gc
        gc.collect(prev.uid)
        for owner in prev.owners:
            gc.release_foreground_owner(owner)
        if prev.ns and coll.resource is not None and coll.resource.namespaced:
            self._namespaces.finish(prev.ns)
        return obj, self._commit.current_waiter() or waiter

    # --- durability -------------------------------------------------------------------------

    def read_barrier(self) -> Waiter:
        """What a reader must await before answering: the commit of writes it may have seen."""
        return self._commit.read_barrier(self._rv)

    def current_waiter(self) -> Waiter:
        """What a caller must await to know everything it has seen so far is durable."""
        return self._commit.current_waiter()

    async def sync(self) -> None:
        """Wait until every write made so far is durable."""
        await self._commit.sync()

    async def close(self) -> None:
        if self._closed:
            return
        if self._expiry is not None:
            await self._expiry.stop()
        try:
            if self._commit.failed is None:
                await self.sync()
        finally:
            self._closed = True
            for coll in self.collections.values():
                for watcher in list(coll.watchers):
                    watcher.close()
                coll.watchers.clear()
            self._commit.close()


def _compact(raw: bytes) -> bytes:
    return bytes(memoryview(raw))


__all__ = ["EmbeddedStore", "ListResult"]
