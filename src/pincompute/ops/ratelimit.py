"""Rate limits of disruptive actions, per cluster and per zone.

Theory of operation
-------------------
However healthy-looking a wave of bad nodes is, remediation never cordons, drains
or replaces faster than ``limit`` actions per ``window`` seconds in one cluster,
nor in one zone (a zone may hold several clusters: the assembly hands every
cluster of a process the same :class:`RateLimits`, so they share the zone's
budget).  A sliding window of action times per key: an action is allowed when
each of its keys has had fewer than its limit within the window, and then counts
against all of them at once.  A refused action says when the earliest slot frees.
In memory: a restart forgets the window, which at worst lets one more window's
worth of actions through.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Limit:
    key: str
    """``cluster/<name>`` or ``zone/<name>``."""
    limit: int
    window: float


@dataclass(frozen=True, slots=True)
class Verdict:
    allowed: bool
    key: str = ""
    """The key that refused."""
    used: int = 0
    limit: int = 0
    window: float = 0.0
    retry_after: float = 0.0


class RateLimits:
    """Sliding windows of action times, by key."""

    def __init__(self) -> None:
        self._times: dict[str, deque[float]] = {}

    def _window(self, limit: Limit, now: float) -> deque[float]:
        times = self._times.setdefault(limit.key, deque())
        while times and now - times[0] >= limit.window:
            times.popleft()
        return times

    def acquire(self, limits: Sequence[Limit], *, now: float) -> Verdict:
        """Count one action against every limit, or none if one of them is full."""
        for limit in limits:
            times = self._window(limit, now)
            if len(times) >= limit.limit:
                retry = limit.window - (now - times[0]) if times else limit.window
                return Verdict(False, limit.key, len(times), limit.limit, limit.window,
                               max(retry, 0.0))
        for limit in limits:
            self._times[limit.key].append(now)
        return Verdict(True)

    def used(self, key: str) -> int:
        return len(self._times.get(key, ()))


__all__ = ["Limit", "RateLimits", "Verdict"]
