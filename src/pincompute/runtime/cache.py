"""The informer's read-only object cache, with secondary indexes.

Theory of operation
-------------------
A :class:`Cache` maps an object key (``namespace/name``, or ``name`` for
cluster-scoped objects) to the latest state an informer has seen, and maintains
any number of *indexes*: an index function maps an object to zero or more string
values, and the cache keeps ``value -> {keys}`` so lookups such as "pods on node
n1" or "objects owned by uid u" cost a dict lookup instead of a scan.  Every
cache has the ``namespace`` index built in.

Index values of an object are recomputed from the *stored* old object when it is
replaced or removed, which is only correct because stored objects never change —
the sharing rule below is what makes indexes cheap.

Sharing rule (read this before using a cache)
    The dicts a cache hands out (:meth:`Cache.get`, :meth:`Cache.list`,
    :meth:`Cache.by_index`, and the objects given to informer event handlers) are
    the cache's own, shared by every controller in the process.  They are never
    copied on the way out, because copying every object on every read is the
    single biggest cost of a Python controller.  So **never mutate them**.  To
    change an object, copy it first and write the copy through the client::

        obj = informer.get(key)
        new = pincompute.kube.objects.deepcopy(obj)   # now yours
        new["spec"]["replicas"] = 3
        await client.update(PINAPPS, new)

    Mutating a cached object would silently corrupt what other controllers see,
    desynchronise the indexes, and make the next update diff against a lie.
    Tests (and cautious deployments) can turn on *mutation detection*
    (``detect_mutations=True`` or ``PINCOMPUTE_CACHE_MUTATION_DETECTOR=1``): the
    cache then keeps a serialised snapshot of every object it stores and
    :meth:`Cache.check_mutations` raises :class:`CacheMutationError` naming any
    object changed behind its back, like client-go's cache mutation detector.

The cache is owned by one informer and changed only from its task; readers in
the same event loop never observe a half-applied change.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

import orjson

from pincompute.kube.objects import controller_of, key_of, meta, namespace_of

Obj = dict[str, Any]
IndexFunc = Callable[[Mapping[str, Any]], Iterable[str]]

NAMESPACE_INDEX = "namespace"
MUTATION_DETECTOR_ENV = "PINCOMPUTE_CACHE_MUTATION_DETECTOR"


class CacheMutationError(AssertionError):
    """Objects in an informer cache were mutated in place (see the sharing rule)."""

    def __init__(self, keys: list[str]) -> None:
        super().__init__(f"cached objects were mutated in place: {', '.join(keys)}; "
                         "copy with pincompute.kube.objects.deepcopy before changing")
        self.keys = keys


# --- ready-made index functions --------------------------------------------------------------

def index_by_namespace(obj: Mapping[str, Any]) -> list[str]:
    return [namespace_of(obj)]


def index_by_controller_uid(obj: Mapping[str, Any]) -> list[str]:
    """The uid of the object's controlling owner, if any."""
    ref = controller_of(obj)
    return [ref["uid"]] if ref and ref.get("uid") else []


def index_by_owner_uid(obj: Mapping[str, Any]) -> list[str]:
    """The uids of every owner of the object."""
    return [r["uid"] for r in meta(obj).get("ownerReferences") or () if r.get("uid")]


# The two factories are memoized: the same arguments give the same function, so
# controllers sharing an informer can each add "their" index of the same name.

@functools.cache
def index_by_label(label: str) -> IndexFunc:
    """An index on the value of one label (objects without it are not indexed)."""
    def fn(obj: Mapping[str, Any]) -> list[str]:
        value = (meta(obj).get("labels") or {}).get(label)
        return [value] if value is not None else []
    fn.__name__ = f"index_by_label[{label}]"
    return fn


@functools.cache
def index_by_field(*path: str) -> IndexFunc:
    """An index on the string value at ``path``, e.g. ``index_by_field("spec", "nodeName")``."""
    def fn(obj: Mapping[str, Any]) -> list[str]:
        cur: Any = obj
        for part in path:
            if not isinstance(cur, Mapping):
                return []
            cur = cur.get(part)
        return [cur] if isinstance(cur, str) and cur else []
    fn.__name__ = f"index_by_field[{'.'.join(path)}]"
    return fn


# --- the cache -------------------------------------------------------------------------------

class Cache:
    """Objects by key plus secondary indexes; hands out shared, read-only dicts."""

    def __init__(self, *, detect_mutations: bool | None = None) -> None:
        self._items: dict[str, Obj] = {}
        self._indexers: dict[str, IndexFunc] = {}
        self._indices: dict[str, dict[str, set[str]]] = {}
        if detect_mutations is None:
            detect_mutations = os.environ.get(MUTATION_DETECTOR_ENV, "") not in ("", "0")
        self._snapshots: dict[str, bytes] | None = {} if detect_mutations else None
        self.add_indexer(NAMESPACE_INDEX, index_by_namespace)

    # -- indexes --

    def add_indexer(self, name: str, fn: IndexFunc) -> None:
        """Add an index; objects already cached are indexed at once."""
        if name in self._indexers:
            if self._indexers[name] is fn:
                return
            raise ValueError(f"indexer {name!r} already exists")
        self._indexers[name] = fn
        index: dict[str, set[str]] = {}
        self._indices[name] = index
        for key, obj in self._items.items():
            for value in fn(obj):
                index.setdefault(value, set()).add(key)

    @property
    def indexers(self) -> Mapping[str, IndexFunc]:
        return dict(self._indexers)

    def index_keys(self, name: str, value: str) -> list[str]:
        """Keys of the objects whose index ``name`` contains ``value``."""
        try:
            index = self._indices[name]
        except KeyError:
            raise KeyError(f"no indexer {name!r}") from None
        return list(index.get(value, ()))

    def by_index(self, name: str, value: str) -> list[Obj]:
        """The (shared, read-only) objects whose index ``name`` contains ``value``."""
        items = self._items
        return [items[k] for k in self.index_keys(name, value)]

    def index_values(self, name: str) -> list[str]:
        return list(self._indices[name])

    # -- reads --

    def get(self, key: str) -> Obj | None:
        """The (shared, read-only) object at ``key``."""
        return self._items.get(key)

    def __contains__(self, key: object) -> bool:
        return key in self._items

    def __len__(self) -> int:
        return len(self._items)

    def __iter__(self) -> Iterator[Obj]:
        return iter(list(self._items.values()))

    def keys(self) -> list[str]:
        return list(self._items)

    # -- writes (informer only) --

    def put(self, obj: Obj, *, key: str | None = None) -> Obj | None:
        """Store ``obj`` under its key (``key``: already known); returns the object it replaced."""
        if key is None:
            key = key_of(obj)
        old = self._items.get(key)
        self._items[key] = obj
        if old is None:
            self._index(key, obj)
        elif self._indexers:
            self._reindex(key, old, obj)
        if self._snapshots is not None:
            self._snapshots[key] = orjson.dumps(obj, option=orjson.OPT_SORT_KEYS)
        return old

    def remove(self, key: str) -> Obj | None:
        """Drop the object at ``key``; returns it (``None`` if absent)."""
        old = self._items.pop(key, None)
        if old is not None:
            self._unindex(key, old)
        if self._snapshots is not None:
            self._snapshots.pop(key, None)
        return old

    def _index(self, key: str, obj: Obj) -> None:
        for name, fn in self._indexers.items():
            index = self._indices[name]
            for value in fn(obj):
                index.setdefault(value, set()).add(key)

    def _reindex(self, key: str, old: Obj, new: Obj) -> None:
        for name, fn in self._indexers.items():
            before = fn(old)
            after = fn(new)
            if before == after:
                continue  # (an update seldom moves an object between index values)
            index = self._indices[name]
            for value in before:
                keys = index.get(value)
                if keys is not None:
                    keys.discard(key)
                    if not keys:
                        del index[value]
            for value in after:
                index.setdefault(value, set()).add(key)

    def _unindex(self, key: str, obj: Obj) -> None:
        for name, fn in self._indexers.items():
            index = self._indices[name]
            for value in fn(obj):
                keys = index.get(value)
                if keys is not None:
                    keys.discard(key)
                    if not keys:
                        del index[value]

    # -- mutation detection --

    @property
    def detects_mutations(self) -> bool:
        return self._snapshots is not None

    def check_mutations(self) -> None:
        """Raise :class:`CacheMutationError` if any cached object changed in place.

        Does nothing unless mutation detection is on.
        """
        snaps = self._snapshots
        if snaps is None:
            return
        bad = [key for key, obj in self._items.items()
               if orjson.dumps(obj, option=orjson.OPT_SORT_KEYS) != snaps.get(key)]
        if bad:
            raise CacheMutationError(sorted(bad))

    # Defined last so that ``list`` in the annotations above means the builtin.
    def list(self, *, namespace: str | None = None) -> list[Obj]:
        """Every (shared, read-only) object, or those of one namespace."""
        if namespace is None:
            return list(self._items.values())
        return self.by_index(NAMESPACE_INDEX, namespace)
