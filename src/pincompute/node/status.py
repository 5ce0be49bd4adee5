"""Pod status as the node reports it: phase, conditions, per-container states.

Theory of operation
-------------------
The pod worker keeps one record per container; this module turns a snapshot of
those records (:class:`ContainerFacts`) into the Kubernetes-shaped ``status``
the API stores, as pure functions, so every rule below is tested without a
node:

* **container state** — ``waiting`` (with a reason: ``ContainerCreating``,
  ``PodInitializing`` while sidecars come up, ``CrashLoopBackOff`` during
  back-off, ``CreateContainerConfigError``), ``running`` (with ``started`` telling
  whether the startup probe passed) or ``terminated`` (exit code, reason such as
  ``Completed``/``Error``/``OOMKilled``, signal, times); ``lastState`` holds the
  previous instance's termination;
* **phase** — ``Pending`` until the sidecars are up and every main container has
  started once; ``Succeeded``/``Failed`` once every container has terminated for
  good (``Failed`` if any main container failed, or the pod was stopped for a
  reason such as a deadline); ``Running`` otherwise;
* **conditions** — ``Initialized`` (sidecars up), ``ContainersReady`` (every
  container ready), ``Ready`` (that, and the pod not stopping).  Conditions other
  writers own (``PodScheduled``) are kept as they are.
* **node not ready** — the control plane's node lifecycle controller sets
  ``Ready``/``ContainersReady`` False with reason ``NodeNotReady``
  (:func:`marked_not_ready`) when the node goes silent; a node never writes that
  reason, so the worker seeing it knows its last write was overruled and writes
  its own view again (:func:`overruled`) once it is back.

Sidecars are reported among ``containerStatuses`` with ``type: sidecar``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from pincompute.kube.objects import now

from .containerlifecycle import State
from .containerruntime import ExitStatus

OWN_CONDITIONS = ("Initialized", "ContainersReady", "Ready")
TERMINAL_PHASES = ("Succeeded", "Failed")
"""API phases a pod never leaves."""
NODE_NOT_READY = "NodeNotReady"
"""The reason Kubernetes' node lifecycle controller gives (its MarkPodsNotReady event)."""
NODE_NOT_READY_MESSAGE = "Node is not ready"
MARKED_CONDITIONS = ("ContainersReady", "Ready")
OWNED_STATUS_KEYS = ("phase", "conditions", "containerStatuses", "reason", "message", "podIP",
                     "podIPs", "hostIP", "hostIPs", "startTime")
"""The status fields the node writes (a patch sets each, absent ones to null)."""


@dataclass(frozen=True, slots=True)
class Termination:
    status: ExitStatus
    started_at: str
    container_id: str = ""

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"exitCode": self.status.code, "reason": self.status.reason,
                               "startedAt": self.started_at,
                               "finishedAt": self.status.finished_at}
        if self.status.message:
            out["message"] = self.status.message
        if self.status.signal:
            out["signal"] = self.status.signal
        if self.container_id:
            out["containerID"] = self.container_id
        return out


@dataclass(frozen=True, slots=True)
class ContainerFacts:
    name: str
    type: str
    image: str
    state: State
    ready: bool
    started: bool
    restart_count: int
    ever_started: bool
    started_at: str = ""
    container_id: str = ""
    waiting_reason: str = ""
    waiting_message: str = ""
    termination: Termination | None = None
    """Why the current TERMINATED state ended."""
    last_termination: Termination | None = None
    """The previous instance's end (``lastState``)."""


def container_status(c: ContainerFacts, *, initialized: bool) -> dict[str, Any]:
    state: dict[str, Any]
    if c.state in (State.STARTING, State.RUNNING, State.STOPPING):
        state = {"running": {"startedAt": c.started_at}}
    elif c.state is State.TERMINATED and c.termination is not None:
        state = {"terminated": c.termination.as_dict()}
    else:
        if c.waiting_reason:
            reason = c.waiting_reason
        elif c.state is State.BACKOFF:
            reason = "CrashLoopBackOff"
        elif c.state is State.TERMINATED:
            reason = "Stopped"  # torn down before it ever ran
        elif not initialized and c.type == "main":
            reason = "PodInitializing"
        else:
            reason = "ContainerCreating"
        waiting: dict[str, Any] = {"reason": reason}
        if c.waiting_message:
            waiting["message"] = c.waiting_message
        state = {"waiting": waiting}
    out: dict[str, Any] = {
        "name": c.name, "type": c.type, "image": c.image, "imageID": "",
        "ready": c.ready, "started": c.started, "restartCount": c.restart_count,
        "state": state,
        "lastState": ({"terminated": c.last_termination.as_dict()}
                      if c.last_termination is not None else {}),
    }
    if c.container_id:
        out["containerID"] = c.container_id
    return out


def phase(containers: Sequence[ContainerFacts], *, initialized: bool, finished: bool,
          failed_reason: str | None) -> str:
    if failed_reason is not None and finished:
        return "Failed"
    mains = [c for c in containers if c.type != "sidecar"]
    if finished:
        ok = all(c.termination is not None and c.termination.status.code == 0 for c in mains)
        return "Succeeded" if ok else "Failed"
    if not initialized or any(not c.ever_started for c in mains):
        return "Pending"
    return "Running"


def _condition(type_: str, ok: bool, previous: Mapping[str, Any] | None, *, reason: str = "",
               message: str = "") -> dict[str, Any]:
    value = "True" if ok else "False"
    since = (previous or {}).get("lastTransitionTime") if (previous or {}).get(
        "status") == value else None
    cond: dict[str, Any] = {"type": type_, "status": value, "lastTransitionTime": since or now()}
    if reason:
        cond["reason"] = reason
    if message:
        cond["message"] = message
    return cond


def pod_status(previous: Mapping[str, Any], containers: Sequence[ContainerFacts], *,
               initialized: bool, finished: bool, stopping: bool, host_ip: str,
               pod_ip: str | None, start_time: str | None,
               reason: str | None = None, message: str | None = None,
               failed: bool = False) -> dict[str, Any]:
    """The new ``status`` of a pod, from its previous status and its containers."""
    prev_conditions = {c.get("type"): c for c in previous.get("conditions") or ()}
    ph = "Failed" if failed else phase(containers, initialized=initialized, finished=finished,
                                       failed_reason=reason)
    not_ready = [c.name for c in containers if not c.ready]
    containers_ready = not not_ready and bool(containers)
    own = [
        _condition("Initialized", initialized, prev_conditions.get("Initialized"),
                   reason="" if initialized else "ContainersNotInitialized",
                   message="" if initialized else "sidecar containers are not ready"),
        _condition("ContainersReady", containers_ready, prev_conditions.get("ContainersReady"),
                   reason="" if containers_ready else "ContainersNotReady",
                   message="" if containers_ready else
                   f"containers with unready status: [{' '.join(not_ready)}]"),
        _condition("Ready", containers_ready and not stopping and ph == "Running",
                   prev_conditions.get("Ready"),
                   reason="" if containers_ready else "ContainersNotReady"),
    ]
    conditions = [c for c in previous.get("conditions") or () if c.get("type")
                  not in OWN_CONDITIONS] + own
    status: dict[str, Any] = {k: v for k, v in previous.items()
                              if k not in ("phase", "conditions", "containerStatuses", "reason",
                                           "message", "podIP", "podIPs", "hostIP", "hostIPs",
                                           "startTime")}
    status["phase"] = ph
    status["conditions"] = conditions
    status["hostIP"] = host_ip
    status["hostIPs"] = [{"ip": host_ip}]
    if pod_ip:
        status["podIP"] = pod_ip
        status["podIPs"] = [{"ip": pod_ip}]
    if start_time:
        status["startTime"] = start_time
    if reason:
        status["reason"] = reason
    if message:
        status["message"] = message
    status["containerStatuses"] = [container_status(c, initialized=initialized)
                                   for c in containers]
    return status


def _stripped(s: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(s)
    out["conditions"] = [{k: v for k, v in c.items() if k != "lastTransitionTime"}
                         for c in s.get("conditions") or ()]
    return out


def same_status(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    """Equal apart from condition transition times (which do not warrant a write)."""
    return _stripped(a) == _stripped(b)


def status_digest(s: Mapping[str, Any]) -> bytes:
    """A short digest for :func:`same_status` comparisons against a status no longer held."""
    return hashlib.blake2b(orjson.dumps(_stripped(s), option=orjson.OPT_SORT_KEYS),
                           digest_size=16).digest()


def marked_not_ready(status: Mapping[str, Any], *, now_: str) -> dict[str, Any] | None:
    """``status`` with ``Ready``/``ContainersReady`` False for a node that is not ready,
    or None when neither is True (nothing to write)."""
    conditions = [dict(c) for c in status.get("conditions") or ()]
    changed = False
    for c in conditions:
        if c.get("type") in MARKED_CONDITIONS and c.get("status") == "True":
            c.update(status="False", reason=NODE_NOT_READY, message=NODE_NOT_READY_MESSAGE,
                     lastTransitionTime=now_)
            changed = True
    if not changed:
        return None
    return {**status, "conditions": conditions}


def overruled(status: Mapping[str, Any]) -> bool:
    """Whether the control plane marked the pod not ready for its node (see above)."""
    return any(c.get("reason") == NODE_NOT_READY for c in status.get("conditions") or ()
               if c.get("type") in MARKED_CONDITIONS)


__all__ = ["MARKED_CONDITIONS", "NODE_NOT_READY", "NODE_NOT_READY_MESSAGE", "OWNED_STATUS_KEYS",
           "OWN_CONDITIONS", "TERMINAL_PHASES", "ContainerFacts",
           "Termination", "container_status", "marked_not_ready", "overruled", "phase",
           "pod_status", "same_status", "status_digest"]
