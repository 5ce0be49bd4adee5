"""The census: how many nodes of each scope there are, and how many look unhealthy.

Theory of operation
-------------------
The circuit breaker (:mod:`.breaker`) needs, for a node's pool, zone and cluster,
the number of nodes and of unhealthy ones *now* — before the work queue has come
round to each of them.  The census is fed by the node informer's event handler
(every add, update and delete, synchronously), keeps each node's scopes and
verdict, and adjusts per-scope counters: O(1) per event, no scan when asked.
Scopes are strings: ``pool/<name>``, ``zone/<name>`` and ``cluster``.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Entry:
    scopes: tuple[str, ...]
    unhealthy: bool
    since: float
    """When the node was first seen unhealthy (epoch seconds; 0 while healthy)."""


def scopes_of(*, pool: str | None, zone: str | None) -> tuple[str, ...]:
    out = ["cluster"]
    if pool:
        out.append(f"pool/{pool}")
    if zone:
        out.append(f"zone/{zone}")
    return tuple(out)


class Census:
    def __init__(self) -> None:
        self._entries: dict[str, Entry] = {}
        self._total: Counter[str] = Counter()
        self._unhealthy: Counter[str] = Counter()

    def observe(self, name: str, *, scopes: tuple[str, ...], unhealthy: bool,
                now: float) -> Entry:
        """Record node ``name``'s current scopes and verdict; returns its entry."""
        old = self._entries.get(name)
        if old is not None and old.scopes == scopes and old.unhealthy == unhealthy:
            return old
        self.forget(name)
        since = (old.since if old is not None and old.unhealthy else now) if unhealthy else 0.0
        entry = Entry(scopes, unhealthy, since)
        self._entries[name] = entry
        for scope in scopes:
            self._total[scope] += 1
            if unhealthy:
                self._unhealthy[scope] += 1
        return entry

    def forget(self, name: str) -> None:
        entry = self._entries.pop(name, None)
        if entry is None:
            return
        for scope in entry.scopes:
            self._total[scope] -= 1
            if entry.unhealthy:
                self._unhealthy[scope] -= 1

    def get(self, name: str) -> Entry | None:
        return self._entries.get(name)

    def counts(self, scope: str) -> tuple[int, int]:
        """(unhealthy, total) nodes of ``scope``."""
        return self._unhealthy[scope], self._total[scope]

    def scopes(self) -> list[str]:
        return [scope for scope, n in self._total.items() if n > 0]

    def unhealthy_in(self, scope: str) -> list[str]:
        """The unhealthy nodes of ``scope`` (a scan: for the rare re-arm, not hot paths)."""
        return [name for name, e in self._entries.items() if e.unhealthy and scope in e.scopes]

    @property
    def unhealthy_total(self) -> int:
        return self._unhealthy["cluster"]


__all__ = ["Census", "Entry", "scopes_of"]
