"""Schedule windows in their time zones: open at start, closed at end, next change."""

from __future__ import annotations

import datetime as dt
import zoneinfo

from pincompute.scaler.schedules import Window, floor, is_open, next_change

PARIS = zoneinfo.ZoneInfo("Europe/Paris")


def at(*args: int, tz: zoneinfo.ZoneInfo = PARIS) -> float:
    return dt.datetime(*args, tzinfo=tz).timestamp()


PEAK = Window(name="peak", start="0 9 * * 1-5", end="0 17 * * 1-5", desired=6,
              time_zone="Europe/Paris")


def test_window_opens_at_start_and_closes_at_end_in_its_zone() -> None:
    # Monday 30 Nov 2026, Paris time
    assert not is_open(PEAK, at(2026, 11, 30, 8, 59, 59))
    assert is_open(PEAK, at(2026, 11, 30, 9, 0, 0))
    assert is_open(PEAK, at(2026, 11, 30, 16, 59, 59))
    assert not is_open(PEAK, at(2026, 11, 30, 17, 0, 0))
    # 09:00 Paris is 08:00 UTC in winter: a UTC clock at 08:30 sees it open
    assert is_open(PEAK, at(2026, 11, 30, 8, 30, tz=zoneinfo.ZoneInfo("UTC")))
    # not on Saturday
    assert not is_open(PEAK, at(2026, 12, 5, 10, 0))


def test_floor_is_the_largest_open_window() -> None:
    night = Window(name="batch", start="0 16 * * *", end="0 18 * * *", desired=9,
                   time_zone="Europe/Paris")
    assert floor([PEAK, night], at(2026, 11, 30, 10, 0), minimum=2) == (6, "schedule peak")
    assert floor([PEAK, night], at(2026, 11, 30, 16, 30), minimum=2) == (9, "schedule batch")
    assert floor([PEAK, night], at(2026, 11, 30, 20, 0), minimum=2) == (2, "minReplicas")


def test_next_change() -> None:
    assert next_change([PEAK], at(2026, 11, 30, 8, 0)) == at(2026, 11, 30, 9, 0)
    assert next_change([PEAK], at(2026, 11, 30, 9, 0)) == at(2026, 11, 30, 17, 0)
