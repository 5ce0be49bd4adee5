"""PinCronJob: a PinJob on a cron schedule, in a time zone.

Theory
------
As a Kubernetes CronJob: at each time ``schedule`` (a standard five-field cron
expression, or ``@hourly``/``@daily``/``@weekly``/``@monthly``/``@yearly``,
validated with croniter) names in ``timeZone`` (an IANA zone, validated with
zoneinfo; default ``UTC``), the controller creates a PinJob from
``jobTemplate``, unless ``suspend`` is set.  ``concurrencyPolicy`` decides what
happens when the previous job still runs (``Allow`` another, ``Forbid`` - skip
this run, ``Replace`` the old one); a run missed by more than
``startingDeadlineSeconds`` is skipped.  The newest
``successfulJobsHistoryLimit`` (3) succeeded and ``failedJobsHistoryLimit`` (1)
failed jobs are kept.  The jobs inherit the cron job's ``tier`` and
``placement``; ``jobTemplate.spec`` is a :class:`.jobs.JobBody`.

The time zone goes in ``timeZone``, never in the schedule (``CRON_TZ=`` is
rejected, as Kubernetes does).

Hostile schedules: an expression is at most :data:`MAX_SCHEDULE_LENGTH`
characters with at most :data:`MAX_FIELD_ITEMS` comma-separated items per field,
and it must fire at least once within :data:`MAX_YEARS_BETWEEN_RUNS` years
(``0 0 30 2 *`` never does): croniter's search is bounded by that many years, so
neither validation nor the controller's next/previous-time computation can spin.
"""

from __future__ import annotations

import datetime
import functools
import zoneinfo
from typing import Annotated, Literal

from croniter import CroniterBadDateError, croniter
from pydantic import AfterValidator, Field

from .base import (
    CamelModel,
    NonNegInt,
    ObjectReference,
    TemplateMeta,
    WorkloadStatusBase,
    fail,
)
from .jobs import JobBody
from .placement import DEFAULT_TIER, FederatedStatusMixin, Placement, Tier

MAX_SCHEDULE_LENGTH = 256
"""Longest accepted schedule."""
MAX_FIELD_ITEMS = 64
"""Most comma-separated items in one field (``0,5,10,...``)."""
MAX_YEARS_BETWEEN_RUNS = 8
"""A schedule must fire within this many years of any time (Feb 29 fires every 4); it
also bounds croniter's search for the next and previous times."""
_REFERENCE = datetime.datetime(2001, 1, 1, tzinfo=datetime.UTC)

MACROS = frozenset({"@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight",
                    "@hourly"})


@functools.lru_cache(maxsize=4096)
def cron_errors(expr: str) -> str | None:
    """Why ``expr`` is not a valid schedule, or None."""
    text = expr.strip()
    if not text:
        return "must not be empty"
    if "TZ=" in text:
        return "must not contain a time zone (CRON_TZ= or TZ=); use timeZone"
    if text.startswith("@"):
        return None if text in MACROS else (
            f"unknown macro; supported: {', '.join(sorted(MACROS))}")
    if len(text) > MAX_SCHEDULE_LENGTH:
        return f"must be at most {MAX_SCHEDULE_LENGTH} characters"
    fields = text.split()
    if len(fields) != 5:
        return "must have five fields: minute hour day-of-month month day-of-week"
    if any(f.count(",") >= MAX_FIELD_ITEMS for f in fields):
        return f"must have at most {MAX_FIELD_ITEMS} comma-separated items per field"
    if not croniter.is_valid(text):
        return "is not a valid cron expression"
    try:
        croniter(text, _REFERENCE, max_years_between_matches=MAX_YEARS_BETWEEN_RUNS
                 ).get_next(datetime.datetime)
    except (CroniterBadDateError, ValueError, KeyError, OverflowError):
        return f"never fires (no time matches within {MAX_YEARS_BETWEEN_RUNS} years)"
    return None


@functools.lru_cache(maxsize=1024)
def time_zone_errors(name: str) -> str | None:
    """Why ``name`` is not an IANA time zone, or None."""
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return "unknown time zone (use an IANA name such as 'Europe/Paris' or 'UTC')"
    return None


def _check_cron(value: str) -> str:
    why = cron_errors(value)
    if why:
        raise fail(f"Invalid value: {value!r}: {why}")
    return value


def _check_tz(value: str) -> str:
    why = time_zone_errors(value)
    if why:
        raise fail(f"Invalid value: {value!r}: {why}")
    return value


CronSchedule = Annotated[str, AfterValidator(_check_cron)]
"""A five-field cron expression or an ``@hourly``-style macro."""

TimeZone = Annotated[str, AfterValidator(_check_tz)]
"""An IANA time zone name."""


class JobTemplate(CamelModel):
    """The PinJob each run creates."""

    metadata: TemplateMeta | None = None
    """Labels and annotations for the jobs."""
    spec: JobBody
    """The jobs' spec (tier and placement come from the cron job)."""


class PinCronJobSpec(CamelModel):
    """A job on a schedule."""

    schedule: CronSchedule
    """When to run, e.g. ``"*/15 * * * *"`` or ``"@daily"``."""
    job_template: JobTemplate
    """The job each run creates."""
    time_zone: TimeZone = "UTC"
    """The time zone the schedule is read in."""
    concurrency_policy: Literal["Allow", "Forbid", "Replace"] = "Allow"
    """What to do when the previous run is still active."""
    starting_deadline_seconds: NonNegInt | None = None
    """Skip a run that could not start within this many seconds of its time."""
    suspend: bool = False
    """Start no new runs."""
    successful_jobs_history_limit: NonNegInt = 3
    """Succeeded jobs kept."""
    failed_jobs_history_limit: NonNegInt = 1
    """Failed jobs kept."""
    tier: Tier = DEFAULT_TIER
    """The capacity tier of the jobs: ``reserved``, ``ondemand`` (default) or ``preemptible``."""
    placement: Placement = Field(default_factory=Placement)
    """Where the jobs' pods may run."""


class PinCronJobStatus(WorkloadStatusBase, FederatedStatusMixin):
    """The active runs and the times of the last and next ones."""

    active: list[ObjectReference] | None = None
    """The jobs running now."""
    last_schedule_time: str | None = None
    """When a job was last created (RFC 3339)."""
    last_successful_time: str | None = None
    """When a job last succeeded."""
    next_schedule_time: str | None = None
    """When the next run is due."""
    last_trigger: str | None = None
    """The last manual trigger (``pincompute.io/trigger``) acted on."""


__all__ = [
    "MACROS", "MAX_FIELD_ITEMS", "MAX_SCHEDULE_LENGTH", "MAX_YEARS_BETWEEN_RUNS",
    "CronSchedule", "JobTemplate", "PinCronJobSpec", "PinCronJobStatus", "TimeZone",
    "cron_errors", "time_zone_errors",
]
