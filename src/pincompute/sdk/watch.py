"""Watch streams: newline-delimited JSON events, read as typed :class:`WatchEvent` s.

A watch is ``GET <collection>?watch=true``; the gateway answers one JSON object
per line, ``{"type": "ADDED"|"MODIFIED"|"DELETED"|"BOOKMARK"|"ERROR", "object":
{...}}``.  An ``ERROR`` event carries a ``Status`` (410 Gone when the
resourceVersion is too old) and ends the stream: :func:`parse_event` raises it as
the SDK's exception, so a caller relists on :class:`~.errors.Gone`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import orjson

from .errors import PinComputeError, error_from_response

EventType = Literal["ADDED", "MODIFIED", "DELETED", "BOOKMARK", "ERROR"]


@dataclass(frozen=True, slots=True)
class WatchEvent:
    type: EventType
    object: dict[str, Any]

    @property
    def name(self) -> str:
        return str((self.object.get("metadata") or {}).get("name", ""))

    @property
    def resource_version(self) -> str:
        return str((self.object.get("metadata") or {}).get("resourceVersion", ""))


def parse_event(line: str | bytes) -> WatchEvent | None:
    """One line of a watch stream (``None`` for a blank keep-alive line)."""
    if not line.strip():
        return None
    try:
        data = orjson.loads(line)
    except orjson.JSONDecodeError:
        raise PinComputeError(f"the watch stream sent a line that is not JSON: {line[:80]!r}"
                              ) from None
    if not isinstance(data, dict) or "type" not in data:
        raise PinComputeError("the watch stream sent an event without a type")
    raw = data.get("object")
    obj: dict[str, Any] = raw if isinstance(raw, dict) else {}
    if data["type"] == "ERROR":
        raise error_from_response(int(obj.get("code") or 500), obj, {})
    return WatchEvent(type=data["type"], object=obj)
