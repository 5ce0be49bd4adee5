"""Workload operations as spec changes: what each ``POST .../{name}/<operation>`` writes.

Theory of operation
-------------------
Every operation is a change to the *host* object the user submitted, so the federation
carries it to every cluster the workload runs in and it survives restarts, failovers and
new placements, like any other spec change (DESIGN §5).  Nothing is sent to a member
operator directly — with one exception: a replica of a PinApp is a PinPod the app's
*member* operator made, so restarting one replica's container patches that PinPod where it
lives.

The table :data:`OPERATIONS` says, per (kind, operation), which merge patch to write; the
values are built from the request (a replica count, a container name) and the time (a
restart token).  Patches are idempotent where the operation is (``pause`` twice is one
pause); ``restart``, ``restart-container`` and ``trigger`` write a fresh token each time, so
each request is one restart or one run.

Rollback is computed here rather than requested by annotation: the host app has no
revision history (its shards in the member clusters do, ``status.revisions``), and a
template written into a shard alone would be overwritten by the federation from the host's.
So the gateway reads the shards' histories from the member caches, picks the revision
(hash, number, or the previous one), and writes its template into the host's spec.
"""

from __future__ import annotations

import datetime as _dt
import secrets
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pincompute.kube.errors import Cause, invalid
from pincompute.model.wellknown import (
    CRON_TRIGGER_ANNOTATION,
    PARENT_UID_LABEL,
    RESTARTED_AT_ANNOTATION,
    RESUME_ROLLOUT_ANNOTATION,
)

Obj = dict[str, Any]
PatchFor = Callable[[Mapping[str, Any]], Obj]
"""Given the request's arguments, the merge patch to write."""


def restart_token() -> str:
    """A fresh, readable restart token: the time of the request, made unique."""
    now = _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return f"{now}-{secrets.token_hex(2)}"


def _spec(**fields: Any) -> PatchFor:
    return lambda _: {"spec": dict(fields)}


@dataclass(frozen=True, slots=True)
class Operation:
    name: str
    summary: str
    patch: PatchFor


def _scale(args: Mapping[str, Any]) -> Obj:
    return {"spec": {"replicas": args["replicas"]}}


def _restart_app(_: Mapping[str, Any]) -> Obj:
    return {"spec": {"template": {"metadata": {"annotations": {
        RESTARTED_AT_ANNOTATION: restart_token()}}}}}


def _resume_app(_: Mapping[str, Any]) -> Obj:
    # Unpause, and resume a zone rollout the federation paused on a failing zone.
    return {"spec": {"paused": False},
            "metadata": {"annotations": {RESUME_ROLLOUT_ANNOTATION: restart_token()}}}


def _restart_container(args: Mapping[str, Any]) -> Obj:
    return {"spec": {"restarts": {args["container"]: restart_token()}}}


def _trigger(_: Mapping[str, Any]) -> Obj:
    return {"metadata": {"annotations": {CRON_TRIGGER_ANNOTATION: restart_token()}}}


OPERATIONS: dict[str, dict[str, Operation]] = {
    "pinapps": {op.name: op for op in (
        Operation("pause", "Freeze the rollout where it is (spec.paused)", _spec(paused=True)),
        Operation("resume", "Resume a paused rollout (spec.paused false; also a zone "
                  "rollout paused on a failing zone)", _resume_app),
        Operation("stop", "Run no pods, keeping spec.replicas (spec.stopped)",
                  _spec(stopped=True)),
        Operation("start", "Run the app again (spec.stopped false)", _spec(stopped=False)),
        Operation("restart", "Rolling restart: a new revision with a restart token",
                  _restart_app),
        Operation("scale", "Set spec.replicas", _scale),
    )},
    "pinpods": {op.name: op for op in (
        Operation("restart-container", "Restart one container alone (spec.restarts)",
                  _restart_container),
        Operation("stop", "Delete the pod, keep the spec (spec.stopped)", _spec(stopped=True)),
        Operation("start", "Run the pod again (spec.stopped false)", _spec(stopped=False)),
    )},
    "pinjobs": {op.name: op for op in (
        Operation("suspend", "Create no pods; running ones stop (spec.suspend)",
                  _spec(suspend=True)),
        Operation("resume", "Resume a suspended job (spec.suspend false)",
                  _spec(suspend=False)),
    )},
    "pintrainingjobs": {op.name: op for op in (
        Operation("suspend", "Create no pods; running ones stop (spec.suspend)",
                  _spec(suspend=True)),
        Operation("resume", "Resume a suspended job (spec.suspend false)",
                  _spec(suspend=False)),
    )},
    "pincronjobs": {op.name: op for op in (
        Operation("trigger", "Run the job now, whatever the schedule", _trigger),
        Operation("suspend", "Schedule no more runs (spec.suspend)", _spec(suspend=True)),
        Operation("resume", "Schedule runs again (spec.suspend false)", _spec(suspend=False)),
    )},
}
"""Per plural, the operations its objects offer."""


def container_names(spec: Mapping[str, Any]) -> list[str]:
    return [str(c.get("name")) for key in ("containers", "initContainers")
            for c in spec.get(key) or () if isinstance(c, Mapping)]


def check_container(kind: str, name: str, spec: Mapping[str, Any], container: str) -> None:
    names = container_names(spec)
    if container not in names:
        raise invalid(kind, name, [Cause("container", f"Not found: {container!r}: the "
                                     f"containers are {', '.join(names) or 'none'}",
                                     "FieldValueNotFound")])


def shard_revisions(host_app: Mapping[str, Any],
                    shards: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """The longest revision history among the app's shards (each has the whole history of
    the templates it ran; a shard placed later has a shorter one)."""
    uid = (host_app.get("metadata") or {}).get("uid")
    best: list[Mapping[str, Any]] = []
    for shard in shards:
        if ((shard.get("metadata") or {}).get("labels") or {}).get(PARENT_UID_LABEL) != uid:
            continue
        history = (shard.get("status") or {}).get("revisions") or []
        if len(history) > len(best):
            best = history
    return best


def find_revision(history: Sequence[Mapping[str, Any]], target: str) -> Mapping[str, Any] | None:
    """The entry ``target`` names: a hash, a number, or (empty, ``previous``) the one before
    the latest — as the member operator's own rollback reads it."""
    target = target.strip()
    if target in ("", "previous"):
        return history[-2] if len(history) >= 2 else None
    for entry in reversed(history):
        if entry.get("revision") == target or str(entry.get("number")) == target:
            return entry
    return None
