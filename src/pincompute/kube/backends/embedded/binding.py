"""The ``pods/binding`` subresource: how a scheduler assigns a pod to a node.

Theory of operation
-------------------
A scheduler does not update a pod to bind it; it creates a Binding naming the
target node (optionally with the pod's uid as a precondition).  As the API
server does, the store then sets ``spec.nodeName`` — which nothing else may
change — and a true ``PodScheduled`` condition, in one write.  A pod being
deleted, or already assigned, cannot be bound (Conflict), so two schedulers
racing for one pod cannot both win.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, NamedTuple, TypeGuard

import orjson

from pincompute.kube.errors import BadRequest, Cause, Conflict, invalid

from .collection import Collection, Entry
from .commit import Waiter
from .timestamps import now

if TYPE_CHECKING:
    from .store import EmbeddedStore

SUBRESOURCE = "binding"
_SUCCESS = {"kind": "Status", "apiVersion": "v1", "status": "Success", "metadata": {}}


class Binding(NamedTuple):  # (immutable; a frozen dataclass costs more to make)
    node: str
    """The target node."""
    uid: str | None
    """The pod's uid, if the binder made it a precondition."""


def _is_mapping(value: object) -> TypeGuard[Mapping[str, Any]]:
    return type(value) is dict or isinstance(value, Mapping)  # (dicts without the ABC check)


def parse(name: str, body: object) -> Binding:
    """The Binding a request body holds (for the pod ``name``)."""
    if not _is_mapping(body):
        raise BadRequest("a Binding must be a JSON object")
    target = body.get("target") or {}
    node = target.get("name") if _is_mapping(target) else None
    if not isinstance(node, str) or not node:
        raise invalid("Binding", name, [Cause("target.name", "Required value",
                                              "FieldValueRequired")])
    md = body.get("metadata")
    uid = md.get("uid") if _is_mapping(md) else None
    return Binding(node=node, uid=uid or None)


def bind(store: EmbeddedStore, coll: Collection, prev: Entry,
         binding: Binding) -> tuple[dict[str, Any], Waiter]:
    """Assign the pod ``prev`` to the binding's node; answer a Success Status.

    The caller has checked the binding's uid precondition.
    """
    kind, name = "Pod", prev.name
    if coll.resource is not None:
        kind = coll.resource.kind
    if prev.deleting:
        raise Conflict(f"pod {name} is being deleted, cannot be assigned to a host",
                       kind=kind, name=name)
    if prev.node:
        raise Conflict(f'pod {name} is already assigned to node "{prev.node}"',
                       kind=kind, name=name)
    obj = orjson.loads(prev.raw)
    obj.setdefault("spec", {})["nodeName"] = binding.node
    conditions = obj.setdefault("status", {}).setdefault("conditions", [])
    conditions[:] = [c for c in conditions if c.get("type") != "PodScheduled"]
    conditions.append({"type": "PodScheduled", "status": "True",
                       "lastTransitionTime": now()})
    waiter = store.put(coll, obj, prev, private=True)  # the caller gets a Status, not obj
    return dict(_SUCCESS, metadata={}), waiter


__all__ = ["SUBRESOURCE", "Binding", "bind", "parse"]
