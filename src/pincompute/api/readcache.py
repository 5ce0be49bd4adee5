"""Reads from informer caches, answered as pre-encoded JSON.

Theory of operation
-------------------
A gateway read never lists the store: the host's informers (and the members', for pods and
nodes) hold every object, and the work per request is a dictionary read or a walk over one
namespace's objects.  What remains expensive in Python is turning objects into JSON, so each
object's simplified JSON (:mod:`.simplify`, encoded by orjson) is kept beside the cache,
keyed by the object's key and checked against its resourceVersion: an object is encoded
once per version, and a list response is the concatenation of its items' bytes.

Lists are in key order (namespace/name) so ``limit`` and ``continue`` page stably: the
continue token is the last key served (base64 of JSON).  The sorted view of one namespace
is kept until the informer's resourceVersion moves, so repeated lists of an unchanged
collection sort nothing.  Each informer's deletions drop their encodings.
"""

from __future__ import annotations

import base64
import bisect
from collections.abc import Callable, Iterable
from typing import Any

import orjson

from pincompute.kube.errors import BadRequest, NotFound
from pincompute.kube.resource import Resource
from pincompute.kube.selectors import LabelSelector, parse_label_selector
from pincompute.runtime.informer import SharedInformer

from .simplify import simplify

Obj = dict[str, Any]


def encode_continue(key: str) -> str:
    return base64.urlsafe_b64encode(orjson.dumps({"after": key})).decode()


def decode_continue(token: str) -> str:
    try:
        data = orjson.loads(base64.urlsafe_b64decode(token.encode()))
        after = data["after"]
        if not isinstance(after, str):
            raise TypeError
        return after
    except (ValueError, TypeError, KeyError, orjson.JSONDecodeError):
        raise BadRequest(f"continue: invalid value {token!r}: not a continue token "
                         "this server issued") from None


class ReadCache:
    """Encoded objects and sorted views over shared informers."""

    def __init__(self) -> None:
        self._encoded: dict[tuple[int, str], tuple[str, bytes]] = {}
        self._sorted: dict[tuple[int, str | None], tuple[str, list[Obj], list[str]]] = {}
        self._watched: set[int] = set()

    def _track(self, informer: SharedInformer) -> None:
        ident = id(informer)
        if ident in self._watched:
            return
        self._watched.add(ident)

        def forget(obj: Obj) -> None:
            md = obj.get("metadata") or {}
            ns, name = md.get("namespace"), md.get("name", "")
            self._encoded.pop((ident, f"{ns}/{name}" if ns else name), None)

        informer.add_event_handler(on_delete=forget)

    def encode(self, informer: SharedInformer, obj: Obj, *,
               transform: Callable[[Obj], Obj] | None = None) -> bytes:
        """The simplified JSON of a cached object (encoded once per resourceVersion)."""
        self._track(informer)
        md = obj.get("metadata") or {}
        ns, name = md.get("namespace"), md.get("name", "")
        key = (id(informer), f"{ns}/{name}" if ns else name)
        rv = md.get("resourceVersion", "")
        hit = self._encoded.get(key)
        if hit is not None and hit[0] == rv and transform is None:
            return hit[1]
        out = simplify(obj)
        res = informer.resource
        if "kind" not in out:
            out = {"apiVersion": res.api_version, "kind": res.kind, **out}
        if transform is not None:
            return orjson.dumps(transform(out))
        data = orjson.dumps(out)
        self._encoded[key] = (rv, data)
        return data

    def sorted_view(self, informer: SharedInformer,
                    namespace: str | None) -> tuple[list[Obj], list[str]]:
        """The collection's objects in key order, with their keys (shared; do not change)."""
        ident = (id(informer), namespace)
        rv = informer.resource_version
        hit = self._sorted.get(ident)
        if hit is not None and hit[0] == rv and rv:
            return hit[1], hit[2]
        objs = informer.list(namespace=namespace)
        pairs = sorted(((_key(o), o) for o in objs), key=lambda p: p[0])
        keys = [k for k, _ in pairs]
        items = [o for _, o in pairs]
        self._sorted[ident] = (rv, items, keys)
        return items, keys

    def get(self, informer: SharedInformer, name: str, *, namespace: str | None) -> bytes:
        obj = informer.get(name, namespace=namespace)
        if obj is None:
            raise NotFound(f'{informer.resource.plural}.{informer.resource.group} "{name}" '
                           "not found", kind=informer.resource.kind, name=name)
        return self.encode(informer, obj)

    def list_page(self, informer: SharedInformer, *, namespace: str | None,
             label_selector: str | None = None, limit: int | None = None,
             continue_token: str | None = None,
             keep: Callable[[Obj], bool] | None = None) -> bytes:
        """A list response: ``{"apiVersion", "kind": "<Kind>List", "metadata", "items"}``."""
        selector = parse_label_selector(label_selector)
        items, keys = self.sorted_view(informer, namespace)
        start = 0
        if continue_token:
            start = bisect.bisect_right(keys, decode_continue(continue_token))
        chosen, last = self._page(items, keys, start, selector, limit, keep)
        return self.list_body(informer, (self.encode(informer, o) for o in chosen),
                              continue_key=last)

    @staticmethod
    def _page(items: list[Obj], keys: list[str], start: int, selector: LabelSelector,
              limit: int | None, keep: Callable[[Obj], bool] | None
              ) -> tuple[list[Obj], str | None]:
        chosen: list[Obj] = []
        for i in range(start, len(items)):
            obj = items[i]
            if not selector.empty and not selector.matches(
                    (obj.get("metadata") or {}).get("labels")):
                continue
            if keep is not None and not keep(obj):
                continue
            if limit and len(chosen) == limit:
                return chosen, keys[i - 1] if i else None
            chosen.append(obj)
        return chosen, None

    @staticmethod
    def list_body(informer: SharedInformer | Resource, parts: Iterable[bytes], *,
                  continue_key: str | None = None, resource_version: str = "") -> bytes:
        res = informer.resource if isinstance(informer, SharedInformer) else informer
        rv = (informer.resource_version if isinstance(informer, SharedInformer)
              else resource_version)
        metadata: dict[str, Any] = {"resourceVersion": rv}
        if continue_key is not None:
            metadata["continue"] = encode_continue(continue_key)
        head = orjson.dumps({"apiVersion": res.api_version, "kind": f"{res.kind}List",
                             "metadata": metadata})
        return head[:-1] + b',"items":[' + b",".join(parts) + b"]}"


def _key(obj: Obj) -> str:
    md = obj.get("metadata") or {}
    ns, name = md.get("namespace"), md.get("name", "")
    return f"{ns}/{name}" if ns else str(name)
