"""The embedded store's garbage collector: owner references and their finalizers.

Theory of operation
-------------------
Kubernetes' garbage collector keeps a graph of owner references and acts when
an owner goes.  Here the graph is two indexes, kept current by every write
(:meth:`GarbageCollector.track` / :meth:`~GarbageCollector.untrack`): every live
object by uid, and the dependents of every owner uid.  With them:

- **background** (the default): when an owner is removed, each dependent whose
  owners are now all gone is deleted; one that still has a live owner only loses
  the references to the missing ones (:meth:`~GarbageCollector.collect`);
- **foreground** (finalizer ``foregroundDeletion``): deleting the owner deletes
  its dependents first, and the owner goes once no dependent with
  ``blockOwnerDeletion`` remains (:meth:`~GarbageCollector.release_foreground_owner`,
  checked again whenever one of its dependents goes);
- **orphan** (finalizer ``orphan``): the dependents lose their reference to the
  owner and stay; then the finalizer is dropped (:meth:`~GarbageCollector.orphan`);
- an object written with owner references none of which exist (**dangling**) is
  collected right after the write, as the collector would find it
  asynchronously: the writer still sees its create succeed.

All of it runs inside the write that triggers it, cascading synchronously — a
legal (immediate) schedule of Kubernetes' asynchronous collector.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import orjson

from .collection import Collection, Entry
from .commit import Waiter

if TYPE_CHECKING:
    from .store import EmbeddedStore

FOREGROUND = "foregroundDeletion"
ORPHAN = "orphan"

Ref = tuple[Collection, str]  # an object, as its collection and key


def entry_key(md: Mapping[str, Any]) -> str:
    """An object's key in its collection, from its metadata."""
    ns = md.get("namespace")
    return f"{ns}/{md['name']}" if ns else str(md["name"])


class GarbageCollector:
    """The owner graph of one store and the collection it drives."""

    def __init__(self, store: EmbeddedStore, *, loop: asyncio.AbstractEventLoop) -> None:
        self._store = store
        self._loop = loop
        self._by_uid: dict[str, Ref] = {}
        self._dependents: dict[str, set[Ref]] = {}

    # --- the graph --------------------------------------------------------------------------

    def exists(self, uid: str) -> bool:
        return uid in self._by_uid

    def track(self, coll: Collection, entry: Entry, prev: Entry | None) -> None:
        """Record a write of ``entry`` (``prev`` the entry it replaces, if any)."""
        by_uid = self._by_uid
        if prev is None:
            by_uid[entry.uid] = (coll, entry.key)
        owners = entry.owners
        if prev is None or prev.owners != owners:
            if prev is not None:
                for uid in prev.owners:
                    deps = self._dependents.get(uid)
                    if deps is not None:
                        deps.discard((coll, entry.key))
            for uid in owners:
                self._dependents.setdefault(uid, set()).add((coll, entry.key))
            if owners and not all(uid in by_uid for uid in owners):
                self._loop.call_soon(self.collect_dangling, coll, entry.key, entry.uid)

    def untrack(self, coll: Collection, entry: Entry) -> None:
        """Record the removal of ``entry``."""
        self._by_uid.pop(entry.uid, None)
        for uid in entry.owners:
            deps = self._dependents.get(uid)
            if deps is not None:
                deps.discard((coll, entry.key))
                if not deps:
                    del self._dependents[uid]

    # --- finalizers -------------------------------------------------------------------------

    def drop_finalizer(self, coll: Collection, md: Mapping[str, Any], finalizer: str) -> Waiter:
        """Remove ``finalizer`` from the object; it goes if it was the last one."""
        entry = coll.entries.get(entry_key(md))
        if entry is None or finalizer not in entry.finalizers:
            return None
        obj = orjson.loads(entry.raw)
        obj["metadata"]["finalizers"] = [f for f in entry.finalizers if f != finalizer]
        if not obj["metadata"]["finalizers"]:
            return self._store.remove(coll, entry, final=obj)[1]
        return self._store.put(coll, obj, entry)

    def orphan(self, coll: Collection, md: Mapping[str, Any], owner_uid: str) -> Waiter:
        """Strip references to ``owner_uid`` from its dependents, then drop ``orphan``."""
        for dcoll, key in list(self._dependents.get(owner_uid, ())):
            entry = dcoll.entries.get(key)
            if entry is None:
                continue
            obj = orjson.loads(entry.raw)
            refs = obj["metadata"].get("ownerReferences") or []
            obj["metadata"]["ownerReferences"] = [r for r in refs if r.get("uid") != owner_uid]
            if not obj["metadata"]["ownerReferences"]:
                del obj["metadata"]["ownerReferences"]
            self._store.put(dcoll, obj, entry)
        return self.drop_finalizer(coll, md, ORPHAN)

    def delete_dependents(self, owner_uid: str, *, policy: str) -> None:
        for coll, key in list(self._dependents.get(owner_uid, ())):
            entry = coll.entries.get(key)
            if entry is None or entry.deleting:
                continue
            assert coll.resource is not None
            self._store.delete(coll.resource, entry.name, entry.ns or None, preconditions=None,
                               grace_period_seconds=None, propagation_policy=policy)

    def release_foreground_owner(self, owner_uid: str) -> None:
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
        self.drop_finalizer(coll, obj["metadata"], FOREGROUND)

    # --- collection -------------------------------------------------------------------------

    def collect(self, owner_uid: str) -> None:
        """Background collection after ``owner_uid`` is gone."""
        by_uid = self._by_uid
        for coll, key in list(self._dependents.pop(owner_uid, ())):
            entry = coll.entries.get(key)
            if entry is None:
                continue
            alive = [u for u in entry.owners if u in by_uid]
            if alive:
                obj = orjson.loads(entry.raw)
                obj["metadata"]["ownerReferences"] = [
                    r for r in obj["metadata"].get("ownerReferences") or ()
                    if r.get("uid") in by_uid]
                self._store.put(coll, obj, entry)
            elif not entry.deleting:
                assert coll.resource is not None
                self._store.delete(coll.resource, entry.name, entry.ns or None,
                                   preconditions=None, grace_period_seconds=None,
                                   propagation_policy="Background")

    def collect_dangling(self, coll: Collection, key: str, uid: str) -> None:
        """Delete an object none of whose owners exist; drop references to missing ones."""
        entry = coll.entries.get(key)
        if entry is None or entry.uid != uid or entry.deleting or not self._store.writable:
            return
        by_uid = self._by_uid
        alive = [u for u in entry.owners if u in by_uid]
        if len(alive) == len(entry.owners):
            return
        assert coll.resource is not None
        if not alive:
            self._store.delete(coll.resource, entry.name, entry.ns or None, preconditions=None,
                               grace_period_seconds=None, propagation_policy="Background")
            return
        obj = orjson.loads(entry.raw)
        obj["metadata"]["ownerReferences"] = [
            r for r in obj["metadata"]["ownerReferences"] if r.get("uid") in by_uid]
        self._store.put(coll, obj, entry)


__all__ = ["FOREGROUND", "ORPHAN", "GarbageCollector", "entry_key"]
