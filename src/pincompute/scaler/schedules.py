"""Schedule windows: replica floors that hold from a cron ``start`` until the next ``end``.

Theory of operation
-------------------
A window is open at time ``t`` when its most recent ``start`` time at or before
``t`` is later than its most recent ``end`` time at or before ``t``, both read
in the window's IANA time zone with croniter (so "09:00 Europe/Paris" follows
daylight saving time).  Open at ``t == start``, closed at ``t == end``.  The
floor at ``t`` is the largest ``desiredReplicas`` of the open windows;
:func:`next_change` is when any window next opens or closes, so the controller
can look again exactly then rather than poll.  Every search steps once from
``t`` (``get_prev``/``get_next``), bounded by croniter's year limit: cost does
not depend on how long ago a window opened.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from collections.abc import Sequence
from dataclasses import dataclass

from croniter import CroniterBadDateError, croniter

from pincompute.model.cron import MAX_YEARS_BETWEEN_RUNS


@dataclass(frozen=True, slots=True)
class Window:
    name: str
    start: str
    end: str
    desired: int
    time_zone: str = "UTC"


def _iter(expr: str, tz: str, t: float) -> croniter:
    return croniter(expr.strip(), dt.datetime.fromtimestamp(t, zoneinfo.ZoneInfo(tz)),
                    max_years_between_matches=MAX_YEARS_BETWEEN_RUNS)


def last_at_or_before(expr: str, tz: str, t: float) -> float | None:
    try:
        nxt = float(_iter(expr, tz, t - 1e-3).get_next(float))
        if nxt <= t:
            return nxt
        return float(_iter(expr, tz, t).get_prev(float))
    except CroniterBadDateError:
        return None


def next_after(expr: str, tz: str, t: float) -> float | None:
    try:
        return float(_iter(expr, tz, t).get_next(float))
    except CroniterBadDateError:
        return None


def is_open(window: Window, t: float) -> bool:
    started = last_at_or_before(window.start, window.time_zone, t)
    if started is None:
        return False
    ended = last_at_or_before(window.end, window.time_zone, t)
    return ended is None or started > ended


def open_windows(windows: Sequence[Window], t: float) -> list[Window]:
    return [w for w in windows if is_open(w, t)]


def floor(windows: Sequence[Window], t: float, *, minimum: int) -> tuple[int, str]:
    """The floor at ``t`` and what sets it (``minReplicas`` or ``schedule <name>``)."""
    best, why = minimum, "minReplicas"
    for w in open_windows(windows, t):
        if w.desired > best:
            best, why = w.desired, f"schedule {w.name}"
    return best, why


def next_change(windows: Sequence[Window], t: float) -> float | None:
    """When any window next opens or closes (epoch seconds), or None."""
    times = [x for w in windows for x in (next_after(w.start, w.time_zone, t),
                                          next_after(w.end, w.time_zone, t)) if x is not None]
    return min(times, default=None)


__all__ = ["Window", "floor", "is_open", "last_at_or_before", "next_after", "next_change",
           "open_windows"]
