"""Timestamps the embedded store writes into objects.

Kubernetes stamps ``creationTimestamp``, ``deletionTimestamp`` and condition
times in RFC 3339 at second precision.  Every create stamps one, so the string
for the current second is made once and reused (a hot path at thousands of
writes a second).
"""

from __future__ import annotations

import datetime as _dt
import time

_stamp_cache: tuple[int, str] = (0, "")


def now(offset_seconds: int = 0) -> str:
    """The current time plus ``offset_seconds``, as RFC 3339 at second precision."""
    global _stamp_cache
    second = int(time.time()) + offset_seconds
    if offset_seconds == 0 and _stamp_cache[0] == second:
        return _stamp_cache[1]
    text = _dt.datetime.fromtimestamp(second, _dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    if offset_seconds == 0:
        _stamp_cache = (second, text)
    return text


__all__ = ["now"]
