"""Namespace lifecycle in the embedded store.

Theory of operation
-------------------
As the API server and its namespace controller do it:

- a namespaced object must name a valid namespace (from its metadata or the
  request, which must agree) — :meth:`Namespaces.resolve`; with
  ``require_namespaces`` the namespace must exist and not be terminating —
  :meth:`Namespaces.check_open`;
- a new Namespace is ``Active``;
- deleting a Namespace marks it ``Terminating`` with the ``kubernetes`` spec
  finalizer and deletes everything in it (in the background policy);
- the Namespace goes when it is empty: the store counts the objects of every
  namespace as it writes (:attr:`Namespaces.counts`), and each removal from a
  terminating namespace checks whether it was the last (:meth:`Namespaces.finish`).
  Metadata finalizers on the Namespace itself still hold it after that, like
  any object's.

Like the garbage collector, this runs inside the triggering write.
"""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING, Any

import orjson

from pincompute.kube import names
from pincompute.kube.errors import (
    NAMESPACE_TERMINATING,
    BadRequest,
    Cause,
    NamespaceTerminating,
    NotFound,
    invalid,
)
from pincompute.kube.resource import NAMESPACES, Resource
from pincompute.kube.selectors import FieldSelector, LabelSelector

from .collection import Collection, Entry
from .commit import Waiter
from .timestamps import now

if TYPE_CHECKING:
    from .store import EmbeddedStore

NAMESPACE_FINALIZER = "kubernetes"


# Namespace names already found valid (every create in a namespace checks its name).
_VALID_NAMES: set[str] = set()
_VALID_NAMES_MAX = 10_000


class Namespaces:
    """The namespaces of one store: admission of namespaced objects and deletion."""

    def __init__(self, store: EmbeddedStore, *, require_namespaces: bool) -> None:
        self._store = store
        self.require_namespaces = require_namespaces
        self.counts: Counter[str] = Counter()
        """Objects per namespace, kept current by the store's writes."""

    # --- admission --------------------------------------------------------------------------

    @staticmethod
    def resolve(resource: Resource, md: dict[str, Any], namespace: str | None) -> str | None:
        """The namespace a new object goes to (set in ``md``); None if not namespaced."""
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
        if type(ns) is str and ns in _VALID_NAMES:
            errors = []
        else:
            errors = names.dns1123_label(ns) if isinstance(ns, str) else ["must be a string"]
            if not errors:
                if len(_VALID_NAMES) >= _VALID_NAMES_MAX:
                    _VALID_NAMES.clear()
                _VALID_NAMES.add(str(ns))
        if errors:
            raise invalid(resource.kind, str(md.get("name", "")),
                          [Cause("metadata.namespace", f"Invalid value: {ns!r}: {e}")
                           for e in errors])
        md["namespace"] = ns
        return str(ns)

    def check_open(self, ns: str) -> None:
        """Refuse new content in a namespace that is missing or terminating."""
        if not self.require_namespaces:
            return
        entry = self._store.collections[NAMESPACES.key].entries.get(ns)
        if entry is None:
            raise NotFound(f'namespaces "{ns}" not found', kind="Namespace", name=ns)
        if entry.deleting:
            message = (f"unable to create new content in namespace {ns} because it is "
                       "being terminated")
            raise NamespaceTerminating(
                message, kind="Namespace", name=ns,
                causes=[Cause("metadata.namespace", message, NAMESPACE_TERMINATING)])

    # --- deletion ---------------------------------------------------------------------------

    def delete(self, coll: Collection, prev: Entry,
               obj: dict[str, Any]) -> tuple[dict[str, Any], Waiter]:
        """Delete the Namespace ``prev`` (``obj`` its current state) and its contents."""
        store = self._store
        name = prev.name
        if not prev.deleting:
            obj["metadata"]["deletionTimestamp"] = now()
            obj["metadata"]["deletionGracePeriodSeconds"] = 0
            obj.setdefault("spec", {})["finalizers"] = [NAMESPACE_FINALIZER]
            obj.setdefault("status", {})["phase"] = "Terminating"
            store.put(coll, obj, prev)
            for other in list(store.collections.values()):
                res = other.resource
                if res is None or not res.namespaced:
                    continue
                for entry in list(other.scan(namespace=name, labels=LabelSelector(),
                                             fields=FieldSelector(), after=None)):
                    current = other.entries.get(entry.key)
                    if current is not None and not current.deleting:
                        store.delete(res, current.name, name, preconditions=None,
                                     grace_period_seconds=None, propagation_policy="Background")
        self.finish(name)
        current = coll.entries.get(prev.key)
        result = orjson.loads(current.raw) if current is not None else obj
        return result, store.current_waiter()

    def finish(self, name: str) -> None:
        """Let a terminating Namespace go if nothing is left in it."""
        coll = self._store.collections[NAMESPACES.key]
        entry = coll.entries.get(name)
        if entry is None or not entry.deleting or self.counts.get(name):
            return
        obj = orjson.loads(entry.raw)
        obj.setdefault("spec", {})["finalizers"] = []
        if entry.finalizers:
            self._store.put(coll, obj, entry)
        else:
            self._store.remove(coll, entry, final=obj)


__all__ = ["NAMESPACE_FINALIZER", "Namespaces"]
