"""Paginated lists in the embedded store: continue tokens over one snapshot.

Theory of operation
-------------------
A list with ``limit`` answers a page and a *continue token* naming the last key
returned and the resourceVersion of the first page.  Later pages read the
snapshot of the first page, as etcd serves them at the first page's revision:
the collection's entries in key order after that key, seen through an
*overlay* that undoes every write made since (:func:`state_at`), built from the
resource's event history.  If the history no longer reaches back that far, the
token has expired (Gone), as after an etcd compaction; the client then lists
again without it.

Tokens are opaque to clients: base64 of a small JSON object.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable
from typing import Any

import orjson

from pincompute.kube.errors import BadRequest, Cause, Gone
from pincompute.kube.protocol import ADDED, MODIFIED
from pincompute.kube.resource import Resource

from .collection import Collection, Entry


def page(coll: Collection, entries: Iterable[Entry], *, limit: int | None, list_rv: int,
         namespace: str | None,
         countable: bool) -> tuple[list[dict[str, Any]], str | None, int | None]:
    """Up to ``limit`` objects of ``entries``, the continue token, the count left.

    The count of remaining items is given, as the API server does, only when it
    is cheap and exact: no selector and no snapshot overlay (``countable``).
    """
    items: list[dict[str, Any]] = []
    loads = orjson.loads
    token, remaining = None, None
    for entry in entries:
        if limit and len(items) >= limit:
            assert coll.resource is not None
            token = encode_continue(items[-1], list_rv, coll.resource)
            if countable:
                hi = (coll.entries.bisect_left(namespace + "0") if namespace
                      else len(coll.entries))
                last = key_of_item(coll.resource, items[-1])
                remaining = hi - coll.entries.bisect_right(last)
            break
        items.append(loads(entry.raw))
    return items, token, remaining


def state_at(coll: Collection, rv: int) -> dict[str, Entry | None]:
    """How the entries changed since ``rv`` looked at ``rv`` (None: absent then)."""
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


def key_of_item(resource: Resource, item: dict[str, Any]) -> str:
    """The collection key of a listed object."""
    md = item["metadata"]
    return f"{md['namespace']}/{md['name']}" if resource.namespaced else str(md["name"])


def encode_continue(last: dict[str, Any], rv: int, resource: Resource) -> str:
    """The token for the page after ``last``, of the list at ``rv``."""
    raw = orjson.dumps({"rv": rv, "start": key_of_item(resource, last)})
    return base64.urlsafe_b64encode(raw).decode()


def decode_continue(token: str) -> tuple[str, int]:
    """The last key returned and the list's resourceVersion, from a token."""
    try:
        data = orjson.loads(base64.urlsafe_b64decode(token.encode()))
        return str(data["start"]), int(data["rv"])
    except (binascii.Error, ValueError, KeyError, TypeError, orjson.JSONDecodeError) as e:
        raise BadRequest("continue key is not valid: malformed token",
                         causes=[Cause("continue", "invalid continue token")]) from e


__all__ = ["decode_continue", "encode_continue", "key_of_item", "page", "state_at"]
