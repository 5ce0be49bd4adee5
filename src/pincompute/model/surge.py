"""Surge nodes: a pool carries a successor for each node a rotation is replacing.

Theory of operation
-------------------
A rotation with surge marks each node it replaces —
:data:`~pincompute.model.wellknown.ROTATION_ANNOTATION`, JSON with ``"surge": true``
— and cordons it.  The pool is then kept at its size *without* those nodes: the node
provisioner starts a successor for each at once, up to the pool's ``maxSize`` (a
pool at its maximum replaces without surging: the marked nodes beyond its room
count as before).  When the marked node is released (it leaves its pool) the
count does not change: it no longer counted.

So ``desiredSize`` stays put for the whole rotation.  It used to move instead (one
more per node in progress, one less on each release), and a provisioner pass
that saw a node's release but not yet the size's — two writes, two informers —
shrank the pool by the difference, draining nodes the rotation was still using.
The rotation (``ops``) and the provisioner (``member``) both count with
:func:`covered`, so they agree on which marked nodes have a successor.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from pincompute.kube import objects

from .wellknown import NODE_DRAIN_ANNOTATION, ROTATION_ANNOTATION


def surge_since(node: Mapping[str, Any]) -> float | None:
    """When a rotation with surge marked ``node`` (None: not marked so, or leaving)."""
    annotations = objects.meta(node).get("annotations") or {}
    raw = annotations.get(ROTATION_ANNOTATION)
    if not raw or NODE_DRAIN_ANNOTATION in annotations:
        return None
    try:
        record = json.loads(raw)
        return float(record.get("since", 0.0)) if record.get("surge") else None
    except (ValueError, AttributeError, TypeError):
        return None


def surge_room(*, target: int, min_size: int, max_size: int) -> int:
    """How many successors a pool kept at ``target`` may run beside it."""
    return max(0, max(min_size, max_size) - target)


def covered(nodes: Iterable[Mapping[str, Any]], *, room: int) -> list[str]:
    """The names of the marked ``nodes`` that have a successor: the first ``room``,
    first marked first (the name settles ties)."""
    marked = sorted((since, objects.name_of(n)) for n in nodes
                    if (since := surge_since(n)) is not None)
    return [name for _, name in marked[:room]]


__all__ = ["covered", "surge_room", "surge_since"]
