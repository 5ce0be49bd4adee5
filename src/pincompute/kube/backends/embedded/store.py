"""The embedded store: one cluster's API objects, in process.

Theory of operation
-------------------
All state lives in memory, in one :class:`~.collection.Collection` per resource,
and every operation runs synchronously on the event loop's thread — so a write
is atomic with respect to every other read and write without locks.  A write:

1. validates the candidate object (generic metadata rules, then the resource's
   registered validator), so a rejected write changes nothing;
2. takes the next resourceVersion (one counter per store, like an etcd revision),
   serializes the object, and swaps the new entry into the collection's indexes;
3. records a :class:`~.watch.StoreEvent` in the resource's history;
4. hands the change to persistence, and returns a *waiter* the client awaits
   before acknowledging the write.

With persistence on, writes are grouped into batches: while one batch is being
committed on the commit thread, new writes collect in the next (group commit).
When a batch is on disk its waiter resolves and its events are dispatched to
watchers, so a watcher never sees a change that a crash could take back.  Reads
see the newest in-memory state and then wait for the commit of whatever they
saw before answering (``read_barrier``).  Batches commit in order, so a crash
can only lose a suffix of writes nobody was told about.

Deletion follows Kubernetes: finalizers hold an object back with a
``deletionTimestamp``; pods bound to a node wait for the node to finish them
(``graceful_delete``); the garbage collector deletes dependents whose owners are
all gone (background), holds an owner until its blocking dependents are gone
(foreground, finalizer ``foregroundDeletion``), or strips the owner reference
(finalizer ``orphan``); deleting a Namespace deletes what it contains.  These
run inside the deleting write, cascading synchronously, which is a legal
(immediate) schedule of Kubernetes' asynchronous collector.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import datetime as _dt
import logging
import time
import uuid
from collections import Counter, deque
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import orjson

from ....kube import names
from ....kube.errors import (
    AlreadyExists,
    ApiError,
    BadRequest,
    Cause,
    Conflict,
    Forbidden,
    Gone,
    NotFound,
    ServerTimeout,
    invalid,
)
from ....kube.patch import merge_patch
from ....kube.protocol import ADDED, DELETED, MODIFIED, Preconditions
from ....kube.resource import CORE_RESOURCES, EVENTS, NAMESPACES, NODES, Resource
from ....kube.selectors import (
    ALWAYS_SELECTABLE,
    FieldSelector,
    LabelSelector,
    field_value,
    parse_field_selector,
    parse_label_selector,
)
from . import admission, limits
from .collection import Collection, Entry, Validator
from .eventexpiry import DEFAULT_EVENT_TTL, EventExpiry
from .persistence import SqliteLog
from .watch import StoreEvent, Watcher

log = logging.getLogger(__name__)

FOREGROUND = "foregroundDeletion"
ORPHAN = "orphan"
NAMESPACE_FINALIZER = "kubernetes"
DEFAULT_GRACE_SECONDS = 30
_SYSTEM_METADATA = ("uid", "creationTimestamp", "generation", "deletionTimestamp",
                    "deletionGracePeriodSeconds", "name", "namespace")
_TERMINAL_PHASES = ("Succeeded", "Failed")

Waiter = asyncio.Future[None] | None
# Group commit tuning.  A batch collects the writes made while the previous one
# commits.  When every writer waits on one batch, the loop idles while it commits
# and the disk idles while the loop works; cutting a batch at SPLIT_BATCH_AT
# writes and letting a second one queue behind it overlaps the two.  Below that
# size the fsync dominates, and fewer, larger batches are better.
SPLIT_BATCH_AT = 256
MAX_BATCHES_IN_FLIGHT = 2
# items, resourceVersion, continue token, remaining item count
ListResult = tuple[list[dict[str, Any]], str, str | None, int | None]


class _Batch:
    __slots__ = ("events", "ops", "rv", "waiters")

    def __init__(self) -> None:
        # Last write per (resource, key) wins within a batch.
        self.ops: dict[tuple[str, str], tuple[int, bytes | None]] = {}
        self.events: list[tuple[Collection, StoreEvent]] = []
        # One future per waiting caller rather than one shared future: a caller
        # cancelled while waiting then cancels only its own.
        self.waiters: list[asyncio.Future[None]] = []
        self.rv = 0

    def waiter(self, loop: asyncio.AbstractEventLoop) -> asyncio.Future[None]:
        future = loop.create_future()
        self.waiters.append(future)
        return future

    def resolve(self, error: BaseException | None) -> None:
        for future in self.waiters:
            if not future.done():
                if error is None:
                    future.set_result(None)
                else:
                    future.set_exception(error)


_stamp_cache: tuple[int, str] = (0, "")


def _now(offset_seconds: int = 0) -> str:
    """RFC 3339 at second precision; the current second's string is cached (hot path)."""
    global _stamp_cache
    second = int(time.time()) + offset_seconds
    if offset_seconds == 0 and _stamp_cache[0] == second:
        return _stamp_cache[1]
    text = _dt.datetime.fromtimestamp(second, _dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    if offset_seconds == 0:
        _stamp_cache = (second, text)
    return text


def _copy_in(obj: Any, what: str = "body") -> dict[str, Any]:
    if not isinstance(obj, Mapping):
        raise BadRequest(f"the {what} must be a JSON object, not {type(obj).__name__}",
                         causes=[Cause(what, "must be an object", "FieldValueTypeInvalid")])
    try:
        data = orjson.loads(orjson.dumps(obj))
    except TypeError as e:
        raise BadRequest(f"the {what} is not valid JSON: {e}") from e
    md = data.get("metadata")
    if md is None:
        data["metadata"] = {}
    elif not isinstance(md, dict):
        raise BadRequest("metadata must be an object",
                         causes=[Cause("metadata", "must be an object", "FieldValueTypeInvalid")])
    return data


class EmbeddedStore:
    """The state of one cluster.  Use :meth:`open`; talk to it through :meth:`client`."""

    def __init__(self, *, path: Path | None, history_size: int, watch_buffer: int,
                 bookmark_interval: float, require_namespaces: bool,
                 synchronous: str) -> None:
        self.path = path
        self.history_size = history_size
        self.watch_buffer = watch_buffer
        self.bookmark_interval = bookmark_interval
        self.require_namespaces = require_namespaces
        self._loop = asyncio.get_running_loop()
        self._collections: dict[str, Collection] = {}
        self._rv = 0
        self._committed_rv = 0
        self._by_uid: dict[str, tuple[Collection, str]] = {}
        self._dependents: dict[str, set[tuple[Collection, str]]] = {}
        self._ns_counts: Counter[str] = Counter()
        self._log: SqliteLog | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._open_batch: _Batch | None = None
        self._in_flight: deque[_Batch] = deque()
        self._flush_scheduled = False
        self._failed: BaseException | None = None
        self._read_only_hooks: list[Callable[[str], None]] = []
        self._expiry: EventExpiry | None = None
        self._closed = False
        if path is not None:
            self._log = SqliteLog(path, synchronous=synchronous)
            self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="store-commit")

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
        if store._log is not None:
            store._load()
        for resource in resources:
            store.register(resource)
        if event_ttl is not None and EVENTS in resources:
            store._expiry = EventExpiry(store, ttl=event_ttl)
            store._expiry.start()
        return store

    def _load(self) -> None:
        assert self._log is not None
        self._rv = self._committed_rv = self._log.last_resource_version()
        for rkey, key, rv, raw in self._log.rows():
            coll = self._collection_for_key(rkey)
            data = orjson.loads(raw)
            md = data["metadata"]
            entry = Entry(key=key, ns=md.get("namespace") or "", name=md["name"],
                          uid=md["uid"], rv=rv, raw=bytes(raw), data=data,
                          selectable=coll.selectable)
            coll.insert(entry, None)
            self._track(coll, entry, None)
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
        return [c.resource for c in self._collections.values() if c.resource is not None]

    def _collection_for_key(self, rkey: str) -> Collection:
        coll = self._collections.get(rkey)
        if coll is None:
            coll = Collection(rkey, resource=None, history_size=self.history_size,
                              floor=self._rv)
            self._collections[rkey] = coll
        return coll

    def _collection(self, resource: Resource) -> Collection:
        coll = self._collections.get(resource.key)
        if coll is None or coll.resource is None:
            raise NotFound(f"the server could not find the requested resource ({resource})")
        return coll

    @property
    def resource_version(self) -> int:
        return self._rv

    def object_count(self) -> int:
        return sum(len(c.entries) for c in self._collections.values())

    def client(self) -> Any:
        from .client import EmbeddedClient
        return EmbeddedClient(self)

    # --- reads ------------------------------------------------------------------------------

    def _namespace_arg(self, resource: Resource, namespace: str | None) -> str | None:
        if not resource.namespaced:
            return None
        return namespace or None

    def _key(self, resource: Resource, namespace: str | None, name: str) -> str:
        if resource.namespaced:
            if not namespace:
                raise BadRequest("a namespace is required for namespaced resource "
                                 f"{resource}", causes=[Cause("metadata.namespace",
                                                              "Required value",
                                                              "FieldValueRequired")])
            return f"{namespace}/{name}"
        return name

    def get(self, resource: Resource, name: str, namespace: str | None) -> dict[str, Any]:
        coll = self._collection(resource)
        entry = coll.entries.get(self._key(resource, namespace, name))
        if entry is None:
            raise NotFound(f'{resource} "{name}" not found', kind=resource.kind, name=name)
        return orjson.loads(entry.raw)

    def _selectors(self, resource: Resource, label_selector: str | None,
                   field_selector: str | None) -> tuple[LabelSelector, FieldSelector]:
        labels = parse_label_selector(label_selector)
        fields = parse_field_selector(field_selector)
        for path, _, _ in fields.terms:
            if path not in ALWAYS_SELECTABLE and path not in resource.selectable_fields:
                raise BadRequest(f'field label not supported: "{path}" for {resource}',
                                 causes=[Cause("fieldSelector", f"{path} is not selectable")])
        return labels, fields

    def list(self, resource: Resource, *, namespace: str | None, label_selector: str | None,
             field_selector: str | None, limit: int | None,
             continue_token: str | None) -> ListResult:
        coll = self._collection(resource)
        labels, fields = self._selectors(resource, label_selector, field_selector)
        namespace = self._namespace_arg(resource, namespace)
        ns_field = fields.value_of("metadata.namespace")
        if ns_field is not None and namespace is None and resource.namespaced:
            namespace = ns_field
        if limit is not None and (not isinstance(limit, int) or limit < 0):
            raise BadRequest("limit must be a non-negative integer",
                             causes=[Cause("limit", "must be >= 0")])
        after, list_rv, overlay = None, self._rv, None
        if continue_token:
            after, list_rv = self._decode_continue(continue_token)
            overlay = self._state_at(coll, list_rv)
        items: list[dict[str, Any]] = []
        loads = orjson.loads
        it = coll.scan(namespace=namespace, labels=labels, fields=fields, after=after,
                       overlay=overlay)
        token, remaining = None, None
        for entry in it:
            if limit and len(items) >= limit:
                token = self._encode_continue(items[-1], list_rv, resource)
                if labels.empty and fields.empty and not overlay:
                    hi = (coll.entries.bisect_left(namespace + "0") if namespace
                          else len(coll.entries))
                    last = self._key_of_item(resource, items[-1])
                    remaining = hi - coll.entries.bisect_right(last)
                break
            items.append(loads(entry.raw))
        return items, str(list_rv), token, remaining

    def _state_at(self, coll: Collection, rv: int) -> dict[str, Entry | None]:
        """How the entries changed since ``rv`` looked at ``rv`` (None: absent then).

        Later pages of a paginated list read the snapshot of the first page, as
        etcd serves them at the first page's revision; the history holds what is
        needed to undo the writes since.  If it no longer reaches back, the token
        has expired (Gone), as after an etcd compaction.
        """
        events = coll.history.since(rv)
        if events is None:
            raise Gone("the provided continue parameter is too old to display a consistent "
                       "list result; start a new list without the continue parameter",
                       causes=[Cause("continue", "expired")])
        state: dict[str, Entry | None] = {}
        for event in events:
            key = event.entry.key
            if key in state:
                continue  # the first change after rv tells the state at rv
            if event.type == ADDED:
                state[key] = None
            elif event.type == MODIFIED:
                state[key] = event.prev
            else:
                state[key] = event.entry
        return state

    @staticmethod
    def _key_of_item(resource: Resource, item: dict[str, Any]) -> str:
        md = item["metadata"]
        return f"{md['namespace']}/{md['name']}" if resource.namespaced else md["name"]

    def _encode_continue(self, last: dict[str, Any], rv: int, resource: Resource) -> str:
        raw = orjson.dumps({"rv": rv, "start": self._key_of_item(resource, last)})
        return base64.urlsafe_b64encode(raw).decode()

    @staticmethod
    def _decode_continue(token: str) -> tuple[str, int]:
        try:
            data = orjson.loads(base64.urlsafe_b64decode(token.encode()))
            return str(data["start"]), int(data["rv"])
        except (binascii.Error, ValueError, KeyError, TypeError, orjson.JSONDecodeError) as e:
            raise BadRequest("continue key is not valid: malformed token",
                             causes=[Cause("continue", "invalid continue token")]) from e

    # --- watch ------------------------------------------------------------------------------

    def open_watch(self, resource: Resource, *, namespace: str | None,
                   label_selector: str | None, field_selector: str | None,
                   resource_version: str | None, allow_bookmarks: bool) -> Watcher:
        coll = self._collection(resource)
        labels, fields = self._selectors(resource, label_selector, field_selector)
        namespace = self._namespace_arg(resource, namespace)
        ns_field = fields.value_of("metadata.namespace")
        if ns_field is not None and namespace is None and resource.namespaced:
            namespace = ns_field
        if resource_version in (None, "", "0"):
            watcher = Watcher(namespace=namespace, labels=labels, fields=fields,
                              start_rv=self._rv, limit=self.watch_buffer,
                              allow_bookmarks=allow_bookmarks)
            loads = orjson.loads
            for entry in coll.scan(namespace=namespace, labels=labels, fields=fields,
                                   after=None):
                watcher.push_initial(loads(entry.raw))
        else:
            try:
                start = int(resource_version)
            except ValueError as e:
                raise BadRequest(f"invalid resourceVersion {resource_version!r}",
                                 causes=[Cause("resourceVersion", "must be an integer")]) from e
            if start > self._rv:
                raise ServerTimeout(f"Too large resource version: {start}, current: {self._rv}",
                                    causes=[Cause("resourceVersion", "is in the future")])
            events = coll.history.since(start)
            if events is None:
                raise Gone(f"too old resource version: {start} ({coll.history.floor})")
            watcher = Watcher(namespace=namespace, labels=labels, fields=fields,
                              start_rv=start, limit=self.watch_buffer,
                              allow_bookmarks=allow_bookmarks)
            committed = self._committed_rv
            for event in events:
                if event.rv > committed:
                    break
                watcher.offer(event, replay=True)
        coll.watchers.add(watcher)
        return watcher

    def close_watch(self, resource: Resource, watcher: Watcher) -> None:
        coll = self._collections.get(resource.key)
        if coll is not None:
            coll.watchers.discard(watcher)

    @property
    def healthy(self) -> bool:
        """False once a commit failed: the store then refuses writes until reopened."""
        return self._failed is None

    @property
    def read_only_reason(self) -> str | None:
        """Why the store refuses writes (None while healthy)."""
        if self._failed is None:
            return None
        return (f"a commit to {self.path} failed ({self._failed}); the store refuses writes "
                "until it is reopened with the storage fixed (free space, then restart)")

    def on_read_only(self, hook: Callable[[str], None]) -> None:
        """Call ``hook(reason)`` once, when the store turns read-only."""
        self._read_only_hooks.append(hook)

    @property
    def committed_resource_version(self) -> int:
        return self._committed_rv

    # --- writes -----------------------------------------------------------------------------

    def _check_writable(self) -> None:
        if self._closed:
            raise ApiError("the store is closed")
        if self._failed is not None:
            raise ApiError(f"the store stopped accepting writes after a storage failure: "
                           f"{self._failed}")

    def create(self, resource: Resource, obj: Mapping[str, Any],
               namespace: str | None) -> tuple[dict[str, Any], Waiter]:
        self._check_writable()
        coll = self._collection(resource)
        data = _copy_in(obj)
        self._check_type(resource, data)
        md = data["metadata"]
        ns = self._resolve_namespace(resource, md, namespace)
        causes: list[Cause] = []
        if not md.get("name") and isinstance(md.get("generateName"), str) and md["generateName"]:
            md["name"] = names.generate_name(md["generateName"])
        causes += admission.check_name(md.get("name"),
                                       namespace_like=resource.key == NAMESPACES.key)
        causes += admission.check_metadata(md)
        if causes:
            raise invalid(resource.kind, str(md.get("name", "")), causes)
        if ns is not None:
            self._check_namespace_open(ns)
        # Kubelets register nodes with their capacity in one create; every other
        # status is the business of the status subresource.
        if resource.status_subresource and resource.key != NODES.key:
            data.pop("status", None)
        if resource.key == NAMESPACES.key:
            data["status"] = {"phase": "Active"}
        elif resource.graceful_delete:
            data["status"] = {"phase": "Pending"}
        if coll.validator is not None:
            data = coll.validator(data, None) or data
            md = data["metadata"]
        key = self._key(resource, ns, md["name"])
        if key in coll.entries:
            raise AlreadyExists(f'{resource} "{md["name"]}" already exists',
                                kind=resource.kind, name=md["name"])
        for field in ("deletionTimestamp", "deletionGracePeriodSeconds", "resourceVersion"):
            md.pop(field, None)
        md["uid"] = str(uuid.uuid4())
        md["creationTimestamp"] = _now()
        md["generation"] = 1
        waiter = self._put(coll, data, None)
        return data, waiter

    def update(self, resource: Resource, obj: Mapping[str, Any], *,
               status: bool = False) -> tuple[dict[str, Any], Waiter]:
        self._check_writable()
        coll = self._collection(resource)
        data = _copy_in(obj)
        md = data["metadata"]
        name = md.get("name")
        if not isinstance(name, str) or not name:
            raise invalid(resource.kind, "", [Cause("metadata.name", "Required value",
                                                    "FieldValueRequired")])
        ns = md.get("namespace") if resource.namespaced else None
        prev = coll.entries.get(self._key(resource, ns, name))
        if prev is None:
            raise NotFound(f'{resource} "{name}" not found', kind=resource.kind, name=name)
        self._check_type(resource, data)
        rv = md.get("resourceVersion")
        if rv not in (None, "") and str(rv) != str(prev.rv):
            raise Conflict(f'Operation cannot be fulfilled on {resource} "{name}": the object '
                           "has been modified; please apply your changes to the latest version "
                           "and try again", kind=resource.kind, name=name)
        if md.get("uid") not in (None, "") and md["uid"] != prev.uid:
            raise Conflict(f'Precondition failed: UID in precondition: {md["uid"]}, UID in '
                           f"object meta: {prev.uid}", kind=resource.kind, name=name)
        old = orjson.loads(prev.raw)
        if status:
            if not resource.status_subresource:
                raise NotFound(f"the server could not find the requested resource "
                               f"({resource}/status)")
            new = orjson.loads(prev.raw)
            if "status" in data:
                new["status"] = data["status"]
            else:
                new.pop("status", None)
            data = new
        else:
            causes = admission.check_metadata(md)
            if causes:
                raise invalid(resource.kind, name, causes)
            for field in _SYSTEM_METADATA:
                if field in old["metadata"]:
                    md[field] = old["metadata"][field]
                else:
                    md.pop(field, None)
            if resource.status_subresource:
                if "status" in old:
                    data["status"] = old["status"]
                else:
                    data.pop("status", None)
            if prev.deleting:
                added = set(md.get("finalizers") or ()) - set(prev.finalizers)
                if added:
                    raise invalid(resource.kind, name, [Cause(
                        "metadata.finalizers", "Forbidden: no new finalizers can be added if "
                        "the object is being deleted, found new finalizers "
                        + ", ".join(sorted(added)), "FieldValueForbidden")])
        if coll.validator is not None:
            data = coll.validator(data, old) or data
        if not status and _spec_of(data) != _spec_of(old):
            # Compared after defaulting, so re-applying a manifest that omits
            # defaulted fields is no change.
            data["metadata"]["generation"] = int(old["metadata"].get("generation", 0)) + 1
        data["metadata"]["resourceVersion"] = old["metadata"]["resourceVersion"]
        if data == old:
            return old, self._current_waiter()
        if prev.deleting and not data["metadata"].get("finalizers") and \
                not data["metadata"].get("deletionGracePeriodSeconds"):
            return self._remove(coll, prev, final=data)
        waiter = self._put(coll, data, prev)
        return data, waiter

    def patch(self, resource: Resource, name: str, patch: Any, namespace: str | None, *,
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
                           body: Any, namespace: str | None) -> tuple[dict[str, Any], Waiter]:
        """``pods/binding``: assign an unbound pod to a node, as the API server does."""
        self._check_writable()
        if not (resource.graceful_delete and subresource == "binding"):
            raise NotFound(f"the server could not find the requested resource "
                           f"({resource}/{subresource})")
        coll = self._collection(resource)
        if not isinstance(body, Mapping):
            raise BadRequest("a Binding must be a JSON object")
        target = body.get("target") or {}
        node = target.get("name") if isinstance(target, Mapping) else None
        if not isinstance(node, str) or not node:
            raise invalid("Binding", name, [Cause("target.name", "Required value",
                                                  "FieldValueRequired")])
        prev = coll.entries.get(self._key(resource, namespace, name))
        if prev is None:
            raise NotFound(f'{resource} "{name}" not found', kind=resource.kind, name=name)
        uid = (body.get("metadata") or {}).get("uid")
        if uid and uid != prev.uid:
            raise Conflict(f"Precondition failed: UID in precondition: {uid}, UID in object "
                           f"meta: {prev.uid}", kind=resource.kind, name=name)
        if prev.deleting:
            raise Conflict(f"pod {name} is being deleted, cannot be assigned to a host",
                           kind=resource.kind, name=name)
        if prev.node:
            raise Conflict(f'pod {name} is already assigned to node "{prev.node}"',
                           kind=resource.kind, name=name)
        obj = orjson.loads(prev.raw)
        obj.setdefault("spec", {})["nodeName"] = node
        conditions = obj.setdefault("status", {}).setdefault("conditions", [])
        conditions[:] = [c for c in conditions if c.get("type") != "PodScheduled"]
        conditions.append({"type": "PodScheduled", "status": "True",
                           "lastTransitionTime": _now()})
        waiter = self._put(coll, obj, prev)
        return {"kind": "Status", "apiVersion": "v1", "status": "Success",
                "metadata": {}}, waiter

    def delete(self, resource: Resource, name: str, namespace: str | None, *,
               preconditions: Preconditions | None, grace_period_seconds: int | None,
               propagation_policy: str | None) -> tuple[dict[str, Any], Waiter]:
        self._check_writable()
        coll = self._collection(resource)
        if propagation_policy not in (None, "Background", "Foreground", "Orphan"):
            raise BadRequest(f"propagationPolicy {propagation_policy!r} is not one of "
                             "Background, Foreground, Orphan",
                             causes=[Cause("propagationPolicy", "unsupported value")])
        if grace_period_seconds is not None and grace_period_seconds < 0:
            raise BadRequest("gracePeriodSeconds must be >= 0",
                             causes=[Cause("gracePeriodSeconds", "must be >= 0")])
        ns = namespace if resource.namespaced else None
        prev = coll.entries.get(self._key(resource, ns, name))
        if prev is None:
            raise NotFound(f'{resource} "{name}" not found', kind=resource.kind, name=name)
        if preconditions is not None:
            if preconditions.uid and preconditions.uid != prev.uid:
                raise Conflict(f"Precondition failed: UID in precondition: {preconditions.uid}, "
                               f"UID in object meta: {prev.uid}", kind=resource.kind, name=name)
            if preconditions.resource_version and \
                    str(preconditions.resource_version) != str(prev.rv):
                raise Conflict("Precondition failed: ResourceVersion in precondition: "
                               f"{preconditions.resource_version}, ResourceVersion in object "
                               f"meta: {prev.rv}", kind=resource.kind, name=name)
        obj = orjson.loads(prev.raw)
        md = obj["metadata"]
        if resource.key == NAMESPACES.key:
            return self._delete_namespace(coll, prev, obj)
        graceful = resource.graceful_delete and self._needs_grace(obj, grace_period_seconds)
        if prev.deleting:
            current = md.get("deletionGracePeriodSeconds") or 0
            if resource.graceful_delete and grace_period_seconds is not None and \
                    grace_period_seconds < current:
                # A shorter grace period wins (the node finishing a pod sends 0).
                if grace_period_seconds == 0 and not prev.finalizers:
                    return self._remove(coll, prev)
                md["deletionGracePeriodSeconds"] = grace_period_seconds
                md["deletionTimestamp"] = _now(grace_period_seconds)
                return obj, self._put(coll, obj, prev)
            return obj, self._current_waiter()
        finalizers = list(md.get("finalizers") or ())
        if propagation_policy == "Orphan" and ORPHAN not in finalizers:
            finalizers.append(ORPHAN)
        if propagation_policy == "Foreground" and FOREGROUND not in finalizers:
            finalizers.append(FOREGROUND)
        if not finalizers and not graceful:
            return self._remove(coll, prev)
        grace = self._grace(obj, grace_period_seconds) if graceful else 0
        if finalizers:
            md["finalizers"] = finalizers
        md["deletionTimestamp"] = _now(grace)
        md["deletionGracePeriodSeconds"] = grace
        if "generation" in md and not resource.graceful_delete:
            md["generation"] = int(md["generation"]) + 1
        waiter = self._put(coll, obj, prev)
        uid = prev.uid
        if ORPHAN in finalizers:
            self._orphan_dependents(uid)
            waiter = self._drop_finalizer(coll, obj["metadata"], ORPHAN) or waiter
        elif FOREGROUND in finalizers:
            self._delete_dependents(uid, policy="Foreground")
            self._release_foreground_owner(uid)
        current = coll.entries.get(prev.key)
        if current is None:
            return obj, self._current_waiter()
        return orjson.loads(current.raw), self._current_waiter()

    # --- deletion machinery -----------------------------------------------------------------

    @staticmethod
    def _grace(obj: dict[str, Any], requested: int | None) -> int:
        if requested is not None:
            return requested
        spec = obj.get("spec") or {}
        value = spec.get("terminationGracePeriodSeconds")
        return int(value) if isinstance(value, int) and value >= 0 else DEFAULT_GRACE_SECONDS

    def _needs_grace(self, obj: dict[str, Any], requested: int | None) -> bool:
        # As the API server does: a pod never bound to a node, or already finished,
        # has no containers to stop, so it goes at once.
        if not (obj.get("spec") or {}).get("nodeName"):
            return False
        if (obj.get("status") or {}).get("phase") in _TERMINAL_PHASES:
            return False
        return self._grace(obj, requested) > 0

    def _drop_finalizer(self, coll: Collection, md: dict[str, Any], finalizer: str) -> Waiter:
        entry = coll.entries.get(self._entry_key(coll, md))
        if entry is None or finalizer not in entry.finalizers:
            return None
        obj = orjson.loads(entry.raw)
        obj["metadata"]["finalizers"] = [f for f in entry.finalizers if f != finalizer]
        if not obj["metadata"]["finalizers"]:
            return self._remove(coll, entry, final=obj)[1]
        return self._put(coll, obj, entry)

    @staticmethod
    def _entry_key(coll: Collection, md: Mapping[str, Any]) -> str:
        ns = md.get("namespace")
        return f"{ns}/{md['name']}" if ns else md["name"]

    def _orphan_dependents(self, owner_uid: str) -> None:
        for coll, key in list(self._dependents.get(owner_uid, ())):
            entry = coll.entries.get(key)
            if entry is None:
                continue
            obj = orjson.loads(entry.raw)
            refs = obj["metadata"].get("ownerReferences") or []
            obj["metadata"]["ownerReferences"] = [r for r in refs if r.get("uid") != owner_uid]
            if not obj["metadata"]["ownerReferences"]:
                del obj["metadata"]["ownerReferences"]
            self._put(coll, obj, entry)

    def _delete_dependents(self, owner_uid: str, *, policy: str) -> None:
        for coll, key in list(self._dependents.get(owner_uid, ())):
            entry = coll.entries.get(key)
            if entry is None or entry.deleting:
                continue
            assert coll.resource is not None
            self.delete(coll.resource, entry.name, entry.ns or None, preconditions=None,
                        grace_period_seconds=None, propagation_policy=policy)

    def _release_foreground_owner(self, owner_uid: str) -> None:
        """Let a foreground-deleting owner go once no blocking dependent remains."""
        found = self._by_uid.get(owner_uid)
        if found is None:
            return
        coll, key = found
        entry = coll.entries.get(key)
        if entry is None or not entry.deleting or FOREGROUND not in entry.finalizers:
            return
        for dcoll, dkey in self._dependents.get(owner_uid, ()):
            dep = dcoll.entries.get(dkey)
            if dep is None:
                continue
            refs = orjson.loads(dep.raw)["metadata"].get("ownerReferences") or ()
            if any(r.get("uid") == owner_uid and r.get("blockOwnerDeletion") for r in refs):
                return
        obj = orjson.loads(entry.raw)
        self._drop_finalizer(coll, obj["metadata"], FOREGROUND)

    def _collect_garbage(self, owner_uid: str) -> None:
        """Background collection after ``owner_uid`` is gone."""
        for coll, key in list(self._dependents.pop(owner_uid, ())):
            entry = coll.entries.get(key)
            if entry is None:
                continue
            alive = [u for u in entry.owners if u in self._by_uid]
            if alive:
                obj = orjson.loads(entry.raw)
                obj["metadata"]["ownerReferences"] = [
                    r for r in obj["metadata"].get("ownerReferences") or ()
                    if r.get("uid") in self._by_uid]
                self._put(coll, obj, entry)
            elif not entry.deleting:
                assert coll.resource is not None
                self.delete(coll.resource, entry.name, entry.ns or None, preconditions=None,
                            grace_period_seconds=None, propagation_policy="Background")

    def _collect_dangling(self, coll: Collection, key: str, uid: str) -> None:
        """Delete an object none of whose owners exist; drop references to missing ones."""
        entry = coll.entries.get(key)
        if entry is None or entry.uid != uid or entry.deleting or self._closed or self._failed:
            return
        alive = [u for u in entry.owners if u in self._by_uid]
        if len(alive) == len(entry.owners):
            return
        assert coll.resource is not None
        if not alive:
            self.delete(coll.resource, entry.name, entry.ns or None, preconditions=None,
                        grace_period_seconds=None, propagation_policy="Background")
            return
        obj = orjson.loads(entry.raw)
        obj["metadata"]["ownerReferences"] = [
            r for r in obj["metadata"]["ownerReferences"] if r.get("uid") in self._by_uid]
        self._put(coll, obj, entry)

    def _delete_namespace(self, coll: Collection, prev: Entry,
                          obj: dict[str, Any]) -> tuple[dict[str, Any], Waiter]:
        name = prev.name
        if not prev.deleting:
            obj["metadata"]["deletionTimestamp"] = _now()
            obj["metadata"]["deletionGracePeriodSeconds"] = 0
            obj.setdefault("spec", {})["finalizers"] = [NAMESPACE_FINALIZER]
            obj.setdefault("status", {})["phase"] = "Terminating"
            self._put(coll, obj, prev)
            for other in list(self._collections.values()):
                res = other.resource
                if res is None or not res.namespaced:
                    continue
                for entry in list(other.scan(namespace=name, labels=LabelSelector(),
                                             fields=FieldSelector(), after=None)):
                    current = other.entries.get(entry.key)
                    if current is not None and not current.deleting:
                        self.delete(res, current.name, name, preconditions=None,
                                    grace_period_seconds=None, propagation_policy="Background")
        self._finish_namespace(name)
        current = coll.entries.get(prev.key)
        result = orjson.loads(current.raw) if current is not None else obj
        return result, self._current_waiter()

    def _finish_namespace(self, name: str) -> None:
        coll = self._collections[NAMESPACES.key]
        entry = coll.entries.get(name)
        if entry is None or not entry.deleting or self._ns_counts.get(name):
            return
        obj = orjson.loads(entry.raw)
        obj.setdefault("spec", {})["finalizers"] = []
        if entry.finalizers:
            self._put(coll, obj, entry)
        else:
            self._remove(coll, entry, final=obj)

    def _resolve_namespace(self, resource: Resource, md: dict[str, Any],
                           namespace: str | None) -> str | None:
        if not resource.namespaced:
            if md.get("namespace"):
                raise BadRequest(f"{resource} is not namespaced; metadata.namespace must be empty",
                                 causes=[Cause("metadata.namespace", "must be empty")])
            md.pop("namespace", None)
            return None
        ns = md.get("namespace") or namespace
        if namespace and md.get("namespace") and md["namespace"] != namespace:
            raise BadRequest("the namespace of the provided object does not match the namespace "
                             "sent on the request",
                             causes=[Cause("metadata.namespace", "does not match the request")])
        if not ns:
            raise BadRequest(f"a namespace is required for {resource}",
                             causes=[Cause("metadata.namespace", "Required value",
                                           "FieldValueRequired")])
        errors = names.dns1123_label(ns) if isinstance(ns, str) else ["must be a string"]
        if errors:
            raise invalid(resource.kind, str(md.get("name", "")),
                          [Cause("metadata.namespace", f"Invalid value: {ns!r}: {e}")
                           for e in errors])
        md["namespace"] = ns
        return ns

    def _check_namespace_open(self, ns: str) -> None:
        if not self.require_namespaces:
            return
        entry = self._collections[NAMESPACES.key].entries.get(ns)
        if entry is None:
            raise NotFound(f'namespaces "{ns}" not found', kind="Namespace", name=ns)
        if entry.deleting:
            raise Forbidden(f"unable to create new content in namespace {ns} because it is "
                            "being terminated", kind="Namespace", name=ns)

    @staticmethod
    def _check_type(resource: Resource, data: dict[str, Any]) -> None:
        api_version = data.setdefault("apiVersion", resource.api_version)
        kind = data.setdefault("kind", resource.kind)
        if api_version != resource.api_version or kind != resource.kind:
            raise BadRequest(f"the object is a {api_version} {kind}, but the request is for "
                             f"{resource.api_version} {resource.kind}",
                             causes=[Cause("kind", f"must be {resource.kind}")])

    # --- the write primitive ----------------------------------------------------------------

    def _put(self, coll: Collection, data: dict[str, Any], prev: Entry | None) -> Waiter:
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
        entry = Entry(key=prev.key if prev is not None else self._entry_key(coll, md),
                      ns=md.get("namespace") or "", name=md["name"], uid=md["uid"], rv=rv,
                      raw=raw, data=data, selectable=coll.selectable)
        coll.insert(entry, prev)
        self._track(coll, entry, prev)
        if entry.owners and (prev is None or prev.owners != entry.owners) and \
                not all(uid in self._by_uid for uid in entry.owners):
            # Collected after this write, as Kubernetes' collector does it
            # asynchronously: the writer still sees its create succeed.
            self._loop.call_soon(self._collect_dangling, coll, entry.key, entry.uid)
        return self._record(coll, StoreEvent(MODIFIED if prev is not None else ADDED, rv, entry,
                                             prev), entry.key, raw)

    def _remove(self, coll: Collection, prev: Entry, *,
                final: dict[str, Any] | None = None) -> tuple[dict[str, Any], Waiter]:
        self._rv += 1
        rv = self._rv
        obj = final if final is not None else orjson.loads(prev.raw)
        obj["metadata"]["resourceVersion"] = str(rv)
        gone = prev
        if final is not None:
            gone = Entry(key=prev.key, ns=prev.ns, name=prev.name, uid=prev.uid, rv=rv,
                         raw=_compact(orjson.dumps(final)), data=final,
                         selectable=coll.selectable)
        coll.remove(prev)
        self._untrack(coll, prev)
        waiter = self._record(coll, StoreEvent(DELETED, rv, gone, None), prev.key, None)
        self._collect_garbage(prev.uid)
        for owner in prev.owners:
            self._release_foreground_owner(owner)
        if prev.ns and coll.resource is not None and coll.resource.namespaced:
            self._finish_namespace(prev.ns)
        return obj, self._current_waiter() or waiter

    def _track(self, coll: Collection, entry: Entry, prev: Entry | None) -> None:
        if prev is None:
            self._by_uid[entry.uid] = (coll, entry.key)
            if entry.ns:
                self._ns_counts[entry.ns] += 1
        if prev is None or prev.owners != entry.owners:
            if prev is not None:
                for uid in prev.owners:
                    deps = self._dependents.get(uid)
                    if deps is not None:
                        deps.discard((coll, entry.key))
            for uid in entry.owners:
                self._dependents.setdefault(uid, set()).add((coll, entry.key))

    def _untrack(self, coll: Collection, entry: Entry) -> None:
        self._by_uid.pop(entry.uid, None)
        if entry.ns:
            left = self._ns_counts[entry.ns] - 1
            if left > 0:
                self._ns_counts[entry.ns] = left
            else:
                del self._ns_counts[entry.ns]
        for uid in entry.owners:
            deps = self._dependents.get(uid)
            if deps is not None:
                deps.discard((coll, entry.key))
                if not deps:
                    del self._dependents[uid]

    # --- durability and event dispatch ------------------------------------------------------

    def _record(self, coll: Collection, event: StoreEvent, key: str, raw: bytes | None) -> Waiter:
        coll.history.append(event)
        if self._log is None:
            self._committed_rv = event.rv
            for watcher in tuple(coll.watchers) if coll.watchers else ():
                watcher.offer(event)
            return None
        batch = self._open_batch
        if batch is None:
            batch = self._open_batch = _Batch()
        batch.ops[(coll.resource_key, key)] = (event.rv, raw)
        batch.events.append((coll, event))
        batch.rv = event.rv
        if len(batch.ops) >= SPLIT_BATCH_AT and len(self._in_flight) < MAX_BATCHES_IN_FLIGHT:
            waiter = batch.waiter(self._loop)
            self._flush()
            return waiter
        if not self._flush_scheduled and not self._in_flight:
            self._flush_scheduled = True
            self._loop.call_soon(self._flush)
        return batch.waiter(self._loop)

    def read_barrier(self) -> Waiter:
        """What a reader must await before answering: the commit of writes it may have seen."""
        if self._committed_rv >= self._rv:
            return None
        return self._current_waiter()

    def _current_waiter(self) -> Waiter:
        """What a caller must await to know everything it has seen so far is durable."""
        if self._open_batch is not None:
            return self._open_batch.waiter(self._loop)
        if self._in_flight:
            return self._in_flight[-1].waiter(self._loop)
        return None

    def _flush(self) -> None:
        self._flush_scheduled = False
        batch = self._open_batch
        if batch is None or len(self._in_flight) >= MAX_BATCHES_IN_FLIGHT:
            return
        self._in_flight.append(batch)
        self._open_batch = None
        puts = [(rkey, key, rv, raw) for (rkey, key), (rv, raw) in batch.ops.items()
                if raw is not None]
        deletes = [(rkey, key) for (rkey, key), (_, raw) in batch.ops.items() if raw is None]
        assert self._executor is not None and self._log is not None
        done = self._loop.run_in_executor(self._executor, self._log.commit, puts, deletes,
                                          batch.rv)
        done.add_done_callback(lambda f, b=batch: self._committed(b, f))

    def _committed(self, batch: _Batch, done: asyncio.Future[None]) -> None:
        # One commit thread runs batches in submission order, so they finish in it too.
        finished = self._in_flight.popleft()
        assert finished is batch
        error = done.exception() or self._failed
        if error is not None:
            if self._failed is None:
                self._failed = error
                log.error("STORE READ-ONLY: %s", self.read_only_reason)
                for hook in self._read_only_hooks:
                    try:
                        hook(self.read_only_reason or "")
                    except Exception:  # a listener's bug must not leave writers waiting
                        log.exception("read-only hook failed")
            batch.resolve(ApiError(f"storage failure: {error}"))
            if self._open_batch is not None:
                self._open_batch.resolve(ApiError(f"storage failure: {error}"))
                self._open_batch = None
            return
        self._committed_rv = batch.rv
        for coll, event in batch.events:
            for watcher in tuple(coll.watchers) if coll.watchers else ():
                watcher.offer(event)
        batch.resolve(None)
        if self._open_batch is not None:
            self._flush()

    async def sync(self) -> None:
        """Wait until every write made so far is durable."""
        while True:
            waiter = self._current_waiter()
            if waiter is None:
                return
            await waiter

    async def close(self) -> None:
        if self._closed:
            return
        if self._expiry is not None:
            await self._expiry.stop()
        try:
            if self._failed is None:
                await self.sync()
        finally:
            self._closed = True
            for coll in self._collections.values():
                for watcher in list(coll.watchers):
                    watcher.close()
                coll.watchers.clear()
            if self._executor is not None:
                self._executor.shutdown(wait=True)
            if self._log is not None:
                self._log.close()


def _compact(raw: bytes) -> bytes:
    return bytes(memoryview(raw))


def _spec_of(obj: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in obj.items() if k not in ("metadata", "status")}


__all__ = ["EmbeddedStore"]
