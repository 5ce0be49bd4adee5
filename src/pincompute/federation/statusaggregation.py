"""Status aggregation: a host workload's status folded from its shards in the members.

Theory of operation
-------------------
Users look at the host object; the work happens in the shards.  :func:`aggregate`
is a pure function from the host object, its placements and the shards the member
informers hold (``None`` for a placed cluster whose shard is not there yet) to the
host's new status fields:

* ``clusters[]`` — one entry per placed cluster or existing shard: replicas, ready
  replicas, phase and a message (the shard's failing condition, "not created yet",
  "being removed");
* totals, per kind: PinApps count ``replicas``/``readyReplicas``/``updatedReplicas``
  (only shards already on the host's revision count as updated)/``availableReplicas``
  as a Deployment does; jobs sum ``active``/``succeeded``/``failed`` and take a phase;
  a PinPod takes its shard's phase, node and address; PinDaemons sum their nodes;
  PinSidecars sum their pods (matched, injected, updated, ready) and a shard counts
  as ready once its operator has observed its generation;
* conditions: ``Available``/``Progressing`` for PinApps, ``Complete``/``Failed`` for
  run-to-finish kinds — the host's rollout state (:mod:`.zonerollout`) decides
  whether an app is progressing or paused.

It reads shards' status only through :func:`shard_counts`, which is also what the
propagation controller uses to decide that a shard is ready (a moved placement's
old shard goes only when the new one is).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

Obj = dict[str, Any]

RUN_TO_FINISH = frozenset({"PinJob", "PinTrainingJob"})
SUCCEEDED_PHASES = frozenset({"Succeeded", "Complete", "Completed"})
FINISHED_PHASES = SUCCEEDED_PHASES | {"Failed"}
SIDECAR_TOTALS = ("matchedPods", "injectedPods", "updatedPods", "readyPods")


def revision_of(template: Any) -> str:
    """A short stable hash of a pod template (a PinApp's revision, as the federation sees it)."""
    blob = json.dumps(template, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:10]


@dataclass(frozen=True, kw_only=True, slots=True)
class ShardCounts:
    """A shard's numbers, whatever its kind."""

    share: int
    """The replicas it is asked to run (``spec.replicas``; 1 for one-pod kinds)."""
    replicas: int = 0
    ready: int = 0
    available: int = 0
    updated: int = 0
    observed: bool = False
    """Its status is of its current generation."""
    phase: str | None = None

    @property
    def fully_available(self) -> bool:
        return (self.observed and self.available >= self.share and self.updated >= self.share
                and self.replicas <= self.share)

    @property
    def ready_enough(self) -> bool:
        """Ready to take over from a shard being moved away."""
        if self.phase is not None and self.share <= 1:
            return self.phase in ("Running", *FINISHED_PHASES)
        return self.observed and self.ready >= self.share


def shard_counts(kind: str, shard: Mapping[str, Any]) -> ShardCounts:
    spec = shard.get("spec") or {}
    status = shard.get("status") or {}
    generation = (shard.get("metadata") or {}).get("generation")
    observed = generation is None or status.get("observedGeneration") == generation
    if kind == "PinApp":
        share = 0 if spec.get("stopped") else int(spec.get("replicas", 1))
        return ShardCounts(share=share, replicas=status.get("replicas") or 0,
                           ready=status.get("readyReplicas") or 0,
                           available=status.get("availableReplicas") or 0,
                           updated=status.get("updatedReplicas") or 0, observed=observed,
                           phase=None)
    if kind == "PinDaemon":
        desired = status.get("desiredNumberScheduled") or 0
        ready = status.get("numberReady") or 0
        return ShardCounts(share=desired, replicas=status.get("currentNumberScheduled") or 0,
                           ready=ready, available=status.get("numberAvailable") or ready,
                           updated=status.get("updatedNumberScheduled") or 0,
                           observed=observed)
    if kind == "PinSidecar":  # injected at pod creation: ready once its operator observed it
        seen = 1 if observed and status.get("observedGeneration") is not None else 0
        return ShardCounts(share=1, replicas=seen, ready=seen, available=seen, updated=seen,
                           observed=observed)
    if kind in RUN_TO_FINISH:
        active = status.get("active") or 0
        return ShardCounts(share=1, replicas=active, ready=status.get("ready") or 0,
                           observed=observed, phase=status.get("phase") or "Pending")
    phase = status.get("phase") or "Pending"
    running = 1 if phase == "Running" else 0
    return ShardCounts(share=1, replicas=running, ready=running, available=running,
                       updated=running, observed=observed, phase=phase)


def _failing_message(shard: Mapping[str, Any]) -> str | None:
    for cond in (shard.get("status") or {}).get("conditions") or ():
        bad = (cond.get("type") in ("Failed", "ReplicaFailure") and cond.get("status") == "True"
               ) or (cond.get("type") in ("Available", "Progressing")
                     and cond.get("status") == "False")
        if bad:
            return cond.get("message") or cond.get("reason")
    return None


def cluster_entries(kind: str, placements: Sequence[Mapping[str, Any]],
                    shards: Mapping[str, Mapping[str, Any] | None],
                    zones: Mapping[str, str]) -> list[Obj]:
    placed = {p["cluster"] for p in placements}
    entries = []
    for cluster in sorted(placed | {c for c, s in shards.items() if s is not None}):
        shard = shards.get(cluster)
        entry: Obj = {"cluster": cluster}
        if zones.get(cluster):
            entry["zone"] = zones[cluster]
        if shard is None:
            entry.update(replicas=0, readyReplicas=0, message="shard not created yet")
        else:
            counts = shard_counts(kind, shard)
            entry.update(replicas=counts.replicas, readyReplicas=counts.ready)
            if counts.phase is not None:
                entry["phase"] = counts.phase
            message = _failing_message(shard)
            if cluster not in placed:
                message = "no longer placed here: removed once its replacement is ready"
            if message:
                entry["message"] = message
        if kind == "PinDaemon":  # DaemonClusterStatus
            entry = {"cluster": cluster,
                     "desiredNumberScheduled": shard_counts(kind, shard).share if shard else 0,
                     "numberReady": entry["readyReplicas"]}
        entries.append(entry)
    return entries


def aggregate(kind: str, host: Mapping[str, Any], placements: Sequence[Mapping[str, Any]],
              shards: Mapping[str, Mapping[str, Any] | None], zones: Mapping[str, str], *,
              rollout_phase: str | None = None, rollout_reason: str = "") -> Obj:
    """The host's new status fields and ``conditions`` (list of condition kwargs)."""
    spec = host.get("spec") or {}
    present = {c: s for c, s in shards.items() if s is not None}
    counts = {c: shard_counts(kind, s) for c, s in present.items()}
    out: Obj = {"clusters": cluster_entries(kind, placements, shards, zones)}
    conditions: list[Obj] = []
    if kind == "PinApp":
        revision = revision_of(spec.get("template"))
        desired = 0 if spec.get("stopped") else int(spec.get("replicas", 1))
        updated = sum(n.updated for c, n in counts.items()
                      if revision_of((present[c].get("spec") or {}).get("template")) == revision)
        available = sum(n.available for n in counts.values())
        out.update(replicas=sum(n.replicas for n in counts.values()),
                   readyReplicas=sum(n.ready for n in counts.values()),
                   availableReplicas=available, updatedReplicas=updated,
                   unavailableReplicas=max(desired - available, 0), updateRevision=revision)
        if spec.get("stopped"):
            phase = "Stopped"
        elif not placements:
            phase = "Pending"
        elif rollout_phase == "Paused":
            phase = "Paused"
        elif available >= desired and updated >= desired:
            phase = "Running"
        else:
            phase = "Progressing"
        out["phase"] = phase
        conditions.append(dict(type="Available", status=available >= desired,
                               reason="MinimumReplicasAvailable" if available >= desired
                               else "MinimumReplicasUnavailable",
                               message=f"{available} of {desired} replicas available "
                                       f"in {len(present)} clusters"))
        if rollout_phase == "Paused":
            conditions.append(dict(type="Progressing", status=False,
                                   reason=rollout_reason or "RolloutPaused",
                                   message="the zone rollout is paused"))
        else:
            done = phase in ("Running", "Stopped")
            conditions.append(dict(type="Progressing", status=True,
                                   reason="NewRevisionAvailable" if done else "ReplicasUpdating",
                                   message=f"{updated} of {desired} replicas updated"))
    elif kind == "PinDaemon":
        out.update(desiredNumberScheduled=sum(n.share for n in counts.values()),
                   currentNumberScheduled=sum(n.replicas for n in counts.values()),
                   numberReady=sum(n.ready for n in counts.values()),
                   numberAvailable=sum(n.available for n in counts.values()),
                   updatedNumberScheduled=sum(n.updated for n in counts.values()))
    elif kind == "PinSidecar":
        status_of = [s.get("status") or {} for s in present.values()]
        for key in SIDECAR_TOTALS:
            out[key] = sum(s.get(key) or 0 for s in status_of)
    elif kind in RUN_TO_FINISH:
        status_of = [_job_totals(s.get("status") or {}) for s in present.values()]
        out.update(active=sum(s.get("active") or 0 for s in status_of),
                   succeeded=sum(s.get("succeeded") or 0 for s in status_of),
                   failed=sum(s.get("failed") or 0 for s in status_of))
        phases = [n.phase or "Pending" for n in counts.values()]
        failed = [c for c, n in counts.items() if n.phase == "Failed"
                  or _true(present[c], "Failed")]
        # A PinJob shard says Complete; a PinTrainingJob's only has the phase.
        complete = bool(present) and len(present) >= len(placements) and all(
            _true(present[c], "Complete") or n.phase in SUCCEEDED_PHASES
            for c, n in counts.items())
        if failed:
            out["phase"] = "Failed"
            conditions.append(dict(type="Failed", status=True, reason="ShardFailed",
                                   message=f"failed in {', '.join(sorted(failed))}"))
        elif complete:
            out["phase"] = phases[0] if len(set(phases)) == 1 else "Succeeded"
            conditions.append(dict(type="Complete", status=True, reason="ShardsComplete",
                                   message=f"complete in {len(present)} clusters"))
        else:
            out["phase"] = "Running" if "Running" in phases else "Pending"
    elif kind == "PinPod":
        shard = next(iter(present.values()), None)
        if shard is not None:
            status = shard.get("status") or {}
            for key in ("phase", "cluster", "zone", "nodeName", "podName", "podIP", "startTime",
                        "containerStatuses"):
                if status.get(key) is not None:
                    out[key] = status[key]
        else:
            out["phase"] = "Pending"
    out["conditions"] = conditions
    return out


def _job_totals(status: Mapping[str, Any]) -> Mapping[str, Any]:
    """A job shard's pod counts: a PinJob's at the top, a PinTrainingJob's per role."""
    roles = status.get("roles")
    if not isinstance(roles, Mapping) or "active" in status:
        return status
    return {key: sum((r or {}).get(key) or 0 for r in roles.values())
            for key in ("active", "succeeded", "failed")}


def _true(obj: Mapping[str, Any], type_: str) -> bool:
    return any(c.get("type") == type_ and c.get("status") == "True"
               for c in (obj.get("status") or {}).get("conditions") or ())


__all__ = ["FINISHED_PHASES", "RUN_TO_FINISH", "ShardCounts", "aggregate", "cluster_entries",
           "revision_of", "shard_counts"]
