"""JSON merge patch (RFC 7386), the patch every backend must support.

``null`` removes a key, objects merge recursively, and anything else — lists
included — replaces the target.  The result is a new value; inputs are not
changed.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def merge_patch(target: Any, patch: Any) -> Any:
    if not isinstance(patch, Mapping):
        return patch
    result: dict[str, Any] = dict(target) if isinstance(target, Mapping) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def merge_diff(old: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, Any]:
    """The merge patch that turns ``old`` into ``new`` (for callers that want small writes)."""
    diff: dict[str, Any] = {}
    for key in old:
        if key not in new:
            diff[key] = None
    for key, value in new.items():
        before = old.get(key)
        if isinstance(value, Mapping) and isinstance(before, Mapping):
            sub = merge_diff(before, value)
            if sub:
                diff[key] = sub
        elif key not in old or before != value:
            diff[key] = value
    return diff
