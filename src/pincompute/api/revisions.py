"""A PinApp's revisions as the gateway shows them (``GET .../pinapps/{name}/revisions``).

Theory of operation
-------------------
The host app keeps no history; each of its shards in the member clusters does, in
``status.revisions`` (``{revision, number, time, template}``, oldest first, the update
revision last — :mod:`pincompute.member.apphistory`).  The gateway takes the longest of the
shards' histories from the member caches (:func:`pincompute.api.operations.shard_revisions`)
and turns each entry into a row a person can choose from: its number and hash, the images
its containers run, what changed from the entry before it, when it was made, and whether it
is the current one.  The current revision is the latest entry: the update revision, the
template the members run or roll out to (a spec change shows once a member has seen it).
A rollback to a revision moves it to the end under a new number, as the member records it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pincompute.model.wellknown import RESTARTED_AT_ANNOTATION

Obj = dict[str, Any]


def images(template: Mapping[str, Any]) -> dict[str, str]:
    """Container name to image, init containers included, in the template's order."""
    spec = template.get("spec") or {}
    return {str(c.get("name")): str(c.get("image") or "")
            for key in ("initContainers", "containers")
            for c in spec.get(key) or () if isinstance(c, Mapping)}


def _restart_token(template: Mapping[str, Any]) -> str:
    annotations = (template.get("metadata") or {}).get("annotations") or {}
    return str(annotations.get(RESTARTED_AT_ANNOTATION) or "")


def change(before: Mapping[str, Any] | None, after: Mapping[str, Any]) -> str:
    """What ``after`` (a template) changes from ``before``, in a few words."""
    now = images(after)
    if before is None:
        return "created: " + ", ".join(f"{n}={i}" for n, i in now.items())
    was = images(before)
    parts = [f"{n}: {was[n]} → {i}" for n, i in now.items() if n in was and was[n] != i]
    parts += [f"+{n}={i}" for n, i in now.items() if n not in was]
    parts += [f"-{n}" for n in was if n not in now]
    if not parts and _restart_token(before) != _restart_token(after):
        parts.append("restart")
    return "; ".join(parts) or "template changed"


def rows(history: Sequence[Mapping[str, Any]]) -> list[Obj]:
    """The revision list's items, oldest first (module docstring)."""
    out: list[Obj] = []
    before: Mapping[str, Any] | None = None
    latest = len(history) - 1
    for i, entry in enumerate(history):
        template = entry.get("template") or {}
        out.append({
            "number": entry.get("number"),
            "revision": entry.get("revision"),
            "images": images(template),
            "change": change(before, template),
            "created": entry.get("time"),
            "current": i == latest,
        })
        before = template
    return out
