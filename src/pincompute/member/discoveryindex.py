"""The ready endpoints of one namespace's apps, kept from pod events, and their document.

Theory of operation
-------------------
The discovery controller (:mod:`.discovery`) writes one document per namespace,
``{app: [endpoint, ...]}``, with apps in name order and endpoints in pod-name
order.  Rebuilding it from every pod of the namespace on each pod event costs
O(pods) per event — O(pods²) while a 100,000-pod project starts — so it is kept
here instead, incrementally:

* :meth:`NamespaceEndpoints.set` records what one pod contributes (its app and its
  endpoint's JSON, or ``None`` when it is not a ready endpoint) and says whether
  that changed anything; the controller's pod handler calls it, so an event costs
  O(1) and an unchanged pod (a resync, a label edit) costs no write.
* Each app's part of the document is serialized once and cached until one of its
  pods changes (:meth:`_fragment`); a document is the join of the cached parts.
* A ConfigMap holds at most 1 MiB of data (the API server's limit).  A document
  that would be larger is **truncated** as Kubernetes' Endpoints objects are
  (``endpoints.kubernetes.io/over-capacity: truncated``): every app keeps the same
  number of endpoints, the largest that fits, the first by pod name; an app with
  fewer keeps all of its own.  :meth:`document` says when it capped.
"""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass, field
from itertools import accumulate

import orjson

DOCUMENT_LIMIT = 1_000_000
"""Bytes a document may take: a ConfigMap's data is limited to 1 MiB, less headroom for
the object around it."""


@dataclass(slots=True)
class _App:
    endpoints: dict[str, bytes | None] = field(default_factory=dict)
    """Pod name → its endpoint's JSON (``None``: a pod of the app that is not ready)."""
    cached: tuple[bytes, list[bytes], list[int]] | None = None
    """The app's JSON key, its endpoints in pod-name order and their running sizes."""


@dataclass(slots=True)
class Document:
    content: bytes
    """The JSON document, one trailing newline."""
    cap: int | None = None
    """Endpoints kept per app when the document had to be truncated."""
    largest: int = 0
    """The most endpoints any app has (what a cap left out of)."""


class NamespaceEndpoints:
    """One namespace's apps and endpoints (see the module doc)."""

    __slots__ = ("_apps", "_pods")

    def __init__(self) -> None:
        self._apps: dict[str, _App] = {}
        self._pods: dict[str, tuple[str, bytes | None]] = {}

    def __len__(self) -> int:
        return len(self._pods)

    def set(self, pod: str, entry: tuple[str, bytes | None] | None) -> bool:
        """Record ``pod``'s (app, endpoint JSON), or forget it (``None``); whether the
        document changes."""
        old = self._pods.get(pod)
        if old == entry:
            return False
        if old is not None:
            app = self._apps[old[0]]
            del app.endpoints[pod]
            app.cached = None
            if not app.endpoints:
                del self._apps[old[0]]
            del self._pods[pod]
        if entry is not None:
            self._pods[pod] = entry
            app = self._apps.setdefault(entry[0], _App())
            app.endpoints[pod] = entry[1]
            app.cached = None
        return True

    def document(self, *, limit: int = DOCUMENT_LIMIT) -> Document:
        parts = [self._fragment(name, app) for name, app in sorted(self._apps.items())]
        whole = sum(len(key) + 3 + (sizes[-1] if sizes else 0) for key, _, sizes in parts)
        size = 2 + whole + max(0, len(parts) - 1)
        largest = max((len(eps) for _, eps, _ in parts), default=0)
        cap = None
        if size > limit:
            cap = self._cap(parts, limit=limit - 2 - max(0, len(parts) - 1), largest=largest)
        body = b",".join(key + b":[" + b",".join(eps if cap is None else eps[:cap]) + b"]"
                         for key, eps, _ in parts)
        return Document(b"{" + body + b"}\n", cap, largest)

    @staticmethod
    def _fragment(name: str, app: _App) -> tuple[bytes, list[bytes], list[int]]:
        if app.cached is None:
            eps = [e for _, e in sorted(app.endpoints.items()) if e is not None]
            # Running sizes with the commas between: sizes[k-1] is the first k joined.
            sizes = list(accumulate(len(e) + 1 for e in eps))
            app.cached = (orjson.dumps(name), eps, [s - 1 for s in sizes])
        return app.cached

    @staticmethod
    def _cap(parts: list[tuple[bytes, list[bytes], list[int]]], *, limit: int,
             largest: int) -> int:
        """The most endpoints per app with which every app's part fits in ``limit``."""
        def size(cap: int) -> int:
            return sum(len(key) + 3 + (sizes[min(cap, len(sizes)) - 1] if cap and sizes else 0)
                       for key, _, sizes in parts)

        caps = list(range(largest + 1))
        # The largest cap whose size fits: size() grows with the cap.
        fits = bisect_right(caps, limit, key=size) - 1
        return max(0, fits)


def endpoint_json(endpoint: dict[str, object]) -> bytes:
    """An endpoint as the document holds it (keys sorted: the document is deterministic)."""
    return orjson.dumps(endpoint, option=orjson.OPT_SORT_KEYS)


__all__ = ["DOCUMENT_LIMIT", "Document", "NamespaceEndpoints", "endpoint_json"]
