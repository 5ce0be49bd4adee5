"""Equal read-only values shared between the objects of one process.

Theory of operation
-------------------
The replicas of one workload carry identical container specs, labels,
annotations and tolerations, and pods that became Ready in the same second carry
identical condition lists; decoded once per pod, those copies are most of what a
cluster's pods cost in memory.  An :class:`Interner` maps a value to the first
equal value it was given (equality by canonical JSON: ``orjson.dumps`` with sorted
keys), so every consumer that interns through the same table holds one object.

:func:`shared` is the process-wide table: the embedded store's entries, the node
fleet and the scheduler's trimmed pod cache all intern through it, so a pod's
labels are one dict in the process however many informers and agents hold the
pod.  Interned values must never be changed in place — informer objects never
are.  The table is bounded: when full it starts over, which only costs sharing,
never correctness.

Strings of few distinct values (namespaces, node names, phases, timestamps to the
second) are shared through :func:`intern_str`, Python's own string table, whose
entries go when the last reference does: a decoded object's strings are new
objects, ~60 bytes each, and a pod's trimmed copies keep a dozen of them.
"""

from __future__ import annotations

import sys
from typing import Any

import orjson

__all__ = ["Interner", "intern_str", "shared"]


class Interner:
    """Equal JSON values share one object (see the module doc)."""

    def __init__(self, *, limit: int = 100_000) -> None:
        self.limit = limit
        self._table: dict[bytes, Any] = {}

    def __len__(self) -> int:
        return len(self._table)

    def __call__(self, value: Any) -> Any:
        if not value:
            return value
        key = orjson.dumps(value, option=orjson.OPT_SORT_KEYS)
        found = self._table.get(key)
        if found is None:
            if len(self._table) >= self.limit:
                self._table.clear()
            # The key is a copy sized to fit (orjson's own buffers are over-allocated).
            self._table[bytes(memoryview(key))] = found = value
        return found


_SHARED = Interner(limit=200_000)


def shared() -> Interner:
    """The process-wide interner."""
    return _SHARED


def intern_str(value: Any) -> Any:
    """``value``, or the process's one equal string if it is a string (see the module doc)."""
    return sys.intern(value) if type(value) is str else value
