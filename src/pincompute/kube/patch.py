"""JSON merge patch (RFC 7386), the patch every backend must support.

``null`` removes a key, objects merge recursively, and anything else — lists
included — replaces the target.  The result is a new value; inputs are not
changed.

A patch nested deeper than :data:`MAX_DEPTH` is refused with ``BadRequest``
(as kube-apiserver refuses a body too deep to decode) before the recursion could
exhaust the interpreter's stack.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pincompute.kube.errors import BadRequest, Cause

MAX_DEPTH = 254
"""The deepest patch (nested objects) accepted: as deep as JSON the stores can serialize."""


def merge_patch(target: Any, patch: Any) -> Any:
    return _merge(target, patch, MAX_DEPTH)


def _merge(target: Any, patch: Any, budget: int) -> Any:
    if not isinstance(patch, Mapping):
        return patch
    if budget <= 0:
        raise too_deep("merge patch")
    result: dict[str, Any] = dict(target) if isinstance(target, Mapping) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = _merge(result.get(key), value, budget - 1)
    return result


def check_depth(patch: Any) -> None:
    """Raise ``BadRequest`` if ``patch`` nests objects deeper than :data:`MAX_DEPTH`.

    For backends that send the patch elsewhere to apply (the kubernetes backend),
    so a too-deep patch is refused the same way on every backend.
    """
    stack = [(patch, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, Mapping):
            if depth > MAX_DEPTH:
                raise too_deep("merge patch")
            stack.extend((v, depth + 1) for v in value.values() if isinstance(v, Mapping))


def too_deep(what: str) -> BadRequest:
    return BadRequest(f"the {what} is nested too deeply: at most {MAX_DEPTH} levels of objects",
                      causes=[Cause("body", f"nested deeper than {MAX_DEPTH} levels",
                                    "FieldValueInvalid")])


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
