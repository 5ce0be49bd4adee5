"""One resource's objects inside an embedded store, with the indexes reads need.

An :class:`Entry` is an object at one resourceVersion: its serialized JSON (the
only full copy the store keeps — a read parses a private copy from it) plus the
few fields that selectors and garbage collection look at, extracted once when it
is written.  Entries are immutable; a write replaces the entry.

A :class:`Collection` holds a resource's entries in key order (``namespace/name``,
as etcd orders its keys, so pagination is a range scan) and keeps secondary
indexes — by label pair and by ``spec.nodeName`` — so a selector list touches
only the objects it returns instead of scanning them all.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from sortedcontainers import SortedDict

from pincompute.kube.intern import intern_str, shared
from pincompute.kube.resource import Resource
from pincompute.kube.selectors import FieldSelector, LabelSelector, field_value

from .watch import History, Listener

Validator = Callable[[dict[str, Any], dict[str, Any] | None], dict[str, Any] | None]

_EMPTY: dict[str, str] = {}
_intern = shared()


_FIELDS: dict[tuple[tuple[str, ...], tuple[str, ...]], dict[str, str]] = {}
_MAX_FIELDS = 65_536


def _shared_fields(paths: tuple[str, ...], values: tuple[str, ...]) -> dict[str, str]:
    """The one (read-only) dict of these field values; bounded, like the interner."""
    key = (paths, values)
    found = _FIELDS.get(key)
    if found is None:
        if len(_FIELDS) >= _MAX_FIELDS:
            _FIELDS.clear()  # dicts already handed out stay valid
        found = _FIELDS[key] = {p: intern_str(v) for p, v in zip(paths, values, strict=True)}
    return found


class Entry:
    __slots__ = ("deleting", "fields", "finalizers", "key", "labels", "name", "node", "ns",
                 "owners", "raw", "rv", "uid")

    def __init__(self, *, key: str, ns: str, name: str, uid: str, rv: int, raw: bytes,
                 data: dict[str, Any], selectable: tuple[str, ...] = ()) -> None:
        self.key = key
        self.ns = ns
        self.name = name
        self.uid = uid
        self.rv = rv
        self.raw = raw
        md = data["metadata"]
        # Shared with equal labels elsewhere in the process (the writer's dict would keep
        # the rest of the object it came from alive too).
        labels = md.get("labels")
        self.labels: dict[str, str] = _intern(labels) if labels else _EMPTY
        refs = md.get("ownerReferences")
        self.owners: tuple[str, ...] = tuple(
            r["uid"] for r in refs if r.get("uid")) if refs else ()
        finalizers = md.get("finalizers")
        self.finalizers: tuple[str, ...] = tuple(finalizers) if finalizers else ()
        self.deleting = bool(md.get("deletionTimestamp"))
        spec = data.get("spec")
        self.node: str = intern_str(spec.get("nodeName") or "") if isinstance(spec, dict) \
            else ""
        # The values of the resource's selectable fields, extracted once per write; entries
        # with equal values (pods of one node and phase) share one dict.
        self.fields: dict[str, str] | None = _shared_fields(
            selectable, tuple(field_value(data, path) for path in selectable)) \
            if selectable else None

    def match_fields(self, fields: FieldSelector) -> bool:
        for path, value, eq in fields.terms:
            if path == "metadata.name":
                actual = self.name
            elif path == "metadata.namespace":
                actual = self.ns
            else:
                actual = self.fields.get(path, "") if self.fields else ""
            if (actual == value) != eq:
                return False
        return True


class Collection:
    def __init__(self, resource_key: str, *, resource: Resource | None, history_size: int,
                 floor: int) -> None:
        self.resource_key = resource_key
        self.resource = resource
        self.validator: Validator | None = None
        self.selectable: tuple[str, ...] = resource.selectable_fields if resource else ()
        self.entries: SortedDict[str, Entry] = SortedDict()
        self.by_label: dict[tuple[str, str], set[str]] = {}
        self.by_node: dict[str, set[str]] = {}
        self.history = History(history_size, floor=floor)
        self.watchers: set[Listener] = set()  # watches, and the store's own listeners

    # --- index maintenance ------------------------------------------------------------------

    def insert(self, entry: Entry, prev: Entry | None) -> None:
        if prev is not None:
            self._unindex(prev, entry)
        self.entries[entry.key] = entry
        labels = entry.labels
        if labels:
            prev_labels = prev.labels if prev is not None else _EMPTY
            for pair in labels.items():
                if prev_labels.get(pair[0]) != pair[1]:
                    self.by_label.setdefault(pair, set()).add(entry.key)
        if entry.node and (prev is None or prev.node != entry.node):
            self.by_node.setdefault(entry.node, set()).add(entry.key)

    def remove(self, entry: Entry) -> None:
        del self.entries[entry.key]
        self._unindex(entry, None)

    def _unindex(self, old: Entry, new: Entry | None) -> None:
        new_labels = new.labels if new is not None else _EMPTY
        for pair in old.labels.items():
            if new_labels.get(pair[0]) != pair[1]:
                keys = self.by_label.get(pair)
                if keys is not None:
                    keys.discard(old.key)
                    if not keys:
                        del self.by_label[pair]
        if old.node and (new is None or new.node != old.node):
            keys = self.by_node.get(old.node)
            if keys is not None:
                keys.discard(old.key)
                if not keys:
                    del self.by_node[old.node]

    # --- reads ------------------------------------------------------------------------------

    def scan(self, *, namespace: str | None, labels: LabelSelector, fields: FieldSelector,
             after: str | None,
             overlay: dict[str, Entry | None] | None = None) -> Iterator[Entry]:
        """Matching entries in key order, starting after the key ``after``.

        Uses the smallest applicable index; falls back to a range scan over the
        namespace (or everything) when the selector has no indexable term.
        ``overlay`` replaces the current entry of some keys (None: absent), to
        read an older snapshot.
        """
        candidates = self._candidates(namespace, labels, fields)
        if candidates is not None:
            keys: Iterable[str] = sorted(candidates)
            if after is not None:
                keys = (k for k in keys if k > after)
            if namespace is not None:
                prefix = namespace + "/"
                keys = (k for k in keys if k.startswith(prefix))
        elif namespace is not None:
            lo = after if after is not None and after > namespace + "/" else namespace + "/"
            keys = self.entries.irange(lo, namespace + "0", inclusive=(after is None, False))
        else:
            keys = self.entries.irange(after, None, inclusive=(False, False)) \
                if after is not None else self.entries.keys()
        entries = self.entries
        if overlay:
            keys = _merge_unique(keys, sorted(
                k for k in overlay
                if (after is None or k > after)
                and (namespace is None or k.startswith(namespace + "/"))))
        need_labels = bool(labels.requirements)
        need_fields = not fields.empty
        for key in keys:
            entry = overlay.get(key, entries.get(key)) if overlay else entries.get(key)
            if entry is None:
                continue
            if need_labels and not labels.matches(entry.labels):
                continue
            if need_fields and not entry.match_fields(fields):
                continue
            yield entry

    def _candidates(self, namespace: str | None, labels: LabelSelector,
                    fields: FieldSelector) -> set[str] | None:
        best: set[str] | None = None
        name = fields.value_of("metadata.name")
        if name is not None:
            key = f"{namespace}/{name}" if namespace else name
            if namespace is None and self.resource is not None and self.resource.namespaced:
                best = {k for k in self._keys_named(name)}
            else:
                best = {key} if key in self.entries else set()
        node = fields.value_of("spec.nodeName")
        if node:  # unbound pods (nodeName "") are not indexed
            keys = self.by_node.get(node, set())
            if best is None or len(keys) < len(best):
                best = keys
        for pair in labels.equality_terms():
            keys = self.by_label.get(pair, set())
            if best is None or len(keys) < len(best):
                best = keys
        return best

    def _keys_named(self, name: str) -> Iterator[str]:
        suffix = "/" + name
        return (k for k in self.entries.keys() if k.endswith(suffix))

    def count(self, namespace: str | None) -> int:
        if namespace is None:
            return len(self.entries)
        lo = self.entries.bisect_left(namespace + "/")
        hi = self.entries.bisect_left(namespace + "0")
        return hi - lo


def _merge_unique(a: Iterable[str], b: Iterable[str]) -> Iterator[str]:
    last = None
    for key in heapq.merge(a, b):
        if key != last:
            yield key
            last = key
