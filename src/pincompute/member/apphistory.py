"""A PinApp's revision history: the templates it ran, kept in its status for rollback.

Theory of operation
-------------------
A Deployment keeps old ReplicaSets as its history; PinPods are flat (one per
replica), so the history is a list in the app's status, ``status.revisions``:
``{revision, number, time, template}``, oldest first, the update revision last.
A status list rather than ControllerRevision-like objects because it needs no
new kind (nor, on real clusters, more RBAC), is written with the status the
operator writes anyway (one write, no orphan to collect), and a restarted
manager reads it back as it is; its size is bounded by ``revisionHistoryLimit``.

:func:`record` adds the update revision (a template seen again — a rollback —
moves to the end under a new number, as ``kubectl rollout undo`` does) and
trims: the update revision and every revision a PinPod still runs stay, plus
the ``limit`` most recent others.  :func:`find` resolves what a rollback names:
a revision hash, a number, or nothing (the previous revision).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import Any

Obj = dict[str, Any]


def record(revisions: Sequence[Mapping[str, Any]], *, revision: str,
           template: Mapping[str, Any], live: Collection[str], limit: int,
           now: str) -> list[Obj]:
    """``revisions`` with ``revision`` as the latest entry, trimmed (module docstring)."""
    entries = [dict(e) for e in revisions]
    if not entries or entries[-1].get("revision") != revision:
        number = max((int(e.get("number") or 0) for e in entries), default=0) + 1
        entries = [e for e in entries if e.get("revision") != revision]
        entries.append({"revision": revision, "number": number, "time": now,
                        "template": dict(template)})
    keep_others = limit
    out: list[Obj] = []
    for entry in reversed(entries[:-1]):
        if entry.get("revision") in live:
            out.append(entry)
        elif keep_others > 0:
            out.append(entry)
            keep_others -= 1
    return [*reversed(out), entries[-1]]


def find(revisions: Sequence[Mapping[str, Any]], target: str) -> Mapping[str, Any] | None:
    """The entry a rollback to ``target`` means: its hash, its number, or (empty,
    ``previous``) the one before the latest."""
    target = target.strip()
    if target in ("", "previous"):
        return revisions[-2] if len(revisions) >= 2 else None
    for entry in reversed(revisions):
        if entry.get("revision") == target or str(entry.get("number")) == target:
            return entry
    return None


__all__ = ["find", "record"]
