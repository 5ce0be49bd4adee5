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
The windows survive a restart through :meth:`RateLimits.snapshot` and
:meth:`RateLimits.restore` (remediation keeps them beside its breakers'
states): a controller that crashes and restarts in a loop must not get a fresh
window each time.  Times are epoch seconds, so a snapshot means the same to the
next process; restoring merges (two clusters of one zone save the same action),
and an action is one time however many snapshots hold it.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping, Sequence
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
        self._windows: dict[str, float] = {}
        """Key → the window it was last asked about (what a snapshot keeps)."""

    def _window(self, limit: Limit, now: float) -> deque[float]:
        self._windows[limit.key] = limit.window
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

    def snapshot(self, *, now: float) -> dict[str, list[float]]:
        """Key → the action times still within its window (JSON-ready)."""
        out: dict[str, list[float]] = {}
        for key, times in self._times.items():
            window = self._windows.get(key)
            kept = [t for t in times if window is None or now - t < window]
            if kept:
                out[key] = kept
        return out

    def restore(self, snapshot: Mapping[str, Sequence[float]]) -> None:
        """Merge a :meth:`snapshot` into the windows (a time already held counts once)."""
        for key, times in snapshot.items():
            held = self._times.get(key, deque())
            merged = sorted(set(held) | {float(t) for t in times})
            self._times[key] = deque(merged)


__all__ = ["Limit", "RateLimits", "Verdict"]
