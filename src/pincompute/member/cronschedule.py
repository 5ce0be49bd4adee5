"""Cron schedule arithmetic for PinCronJobs: next run, most recent missed run, misses.

Theory of operation
-------------------
A schedule (validated by :func:`pincompute.model.cron.cron_errors`: bounded
length, bounded items per field, fires within
:data:`~pincompute.model.cron.MAX_YEARS_BETWEEN_RUNS` years) is read in its IANA
time zone with croniter; every search is bounded by that many years, so no
expression makes a computation spin.

After downtime the controller needs the *most recent* schedule time since the
last run, not the list of every missed one: :func:`missed` finds it by stepping
*back* once from now (``get_prev``), so the cost does not grow with the length
of the downtime — unlike Kubernetes' CronJob, which iterates the misses and
gives up after 100.  How many were missed is counted forwards only up to
:data:`MISS_COUNT_CAP` (reported as "at least").
"""

from __future__ import annotations

import datetime as _dt
import zoneinfo
from dataclasses import dataclass

from croniter import CroniterBadDateError, croniter

from pincompute.model.cron import MAX_YEARS_BETWEEN_RUNS

MISS_COUNT_CAP = 1000
"""Missed runs are counted up to this many."""


def _iter(expr: str, tz: str, start: float) -> croniter:
    zone = zoneinfo.ZoneInfo(tz)
    return croniter(expr.strip(), _dt.datetime.fromtimestamp(start, zone),
                    max_years_between_matches=MAX_YEARS_BETWEEN_RUNS)


def next_after(expr: str, tz: str, t: float) -> float | None:
    """The first schedule time strictly after ``t`` (epoch seconds), or None."""
    try:
        return float(_iter(expr, tz, t).get_next(float))
    except CroniterBadDateError:
        return None


def latest_at_or_before(expr: str, tz: str, t: float) -> float | None:
    """The last schedule time at or before ``t``, or None."""
    try:
        nxt = _iter(expr, tz, t - 1e-3).get_next(float)
        if nxt <= t:
            return float(nxt)
        return float(_iter(expr, tz, t).get_prev(float))
    except CroniterBadDateError:
        return None


@dataclass(frozen=True, slots=True)
class Missed:
    """The schedule times in ``(since, now]``."""

    latest: float
    """The most recent one: the run to start."""
    first: float
    """The earliest one."""
    count: int
    """How many (at most :data:`MISS_COUNT_CAP`)."""
    capped: bool
    """``count`` stopped at the cap: there were at least that many."""


def missed(expr: str, tz: str, *, since: float, now: float) -> Missed | None:
    """The schedule times after ``since`` up to ``now`` (None when there are none)."""
    latest = latest_at_or_before(expr, tz, now)
    if latest is None or latest <= since:
        return None
    first = next_after(expr, tz, since)
    assert first is not None  # latest is one
    count, t = 1, first
    it = _iter(expr, tz, first)
    while t < latest and count < MISS_COUNT_CAP:
        t = float(it.get_next(float))
        count += 1
    return Missed(latest=latest, first=first, count=count, capped=t < latest)


__all__ = ["MISS_COUNT_CAP", "Missed", "latest_at_or_before", "missed", "next_after"]
