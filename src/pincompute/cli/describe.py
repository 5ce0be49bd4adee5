"""``describe``: one object for a human — what was asked, where it runs, how it is, what
happened.

Sections, each only when it has something to say: the header (name, project,
labels, age); the spec summary (replicas, tier, containers and images, placement);
admission (queued: the reason, the position in the queue and the hint — "why is
my job pending" answered first); placements (clusters and zones with replicas and
readiness) and excluded clusters with their reasons; status and conditions; the
workload's pods (cluster, zone, node, IP); recent events.  Kinds without a
workload shape (platform objects) show their spec as YAML.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import yaml

from pincompute.sdk import Client, KindRef, PinComputeError

from .common import console
from .output import age, cell, grid, lookup
from .rollout import queue_reason

_POD_KINDS = ("PinApp", "PinPod", "PinJob", "PinTrainingJob")


def _section(title: str) -> None:
    console.print(f"\n[bold]{title}:[/bold]", highlight=False)


def _field(label: str, value: Any) -> None:
    console.print(f"  {label + ':':<{max(20, len(label) + 2)}}{cell(value)}",
                  highlight=False, soft_wrap=True)


def containers(spec: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The containers of a workload's pod template(s), wherever the kind keeps them."""
    out: list[Mapping[str, Any]] = []
    for path in (".template.spec.containers", ".containers",
                 ".jobTemplate.spec.template.spec.containers"):
        out.extend(lookup(spec, path) or ())
    for role in lookup(spec, ".roles") or ():
        out.extend(lookup(role, ".template.spec.containers") or ())
    return out


def show(pc: Client, ref: KindRef, obj: Mapping[str, Any], *, events: int = 10) -> None:
    md, spec, status = (obj.get("metadata") or {}), (obj.get("spec") or {}), \
        (obj.get("status") or {})
    console.print(f"[bold]{ref.kind}[/bold] {md.get('name')}", highlight=False)
    if md.get("namespace"):
        _field("Project", md["namespace"])
    _field("Created", f"{md.get('creationTimestamp', '-')} ({age(md.get('creationTimestamp'))}"
                      " ago)")
    if md.get("labels"):
        _field("Labels", ", ".join(f"{k}={v}" for k, v in md["labels"].items()))
    if md.get("deletionTimestamp"):
        _field("Deleting since", md["deletionTimestamp"])
    if ref.scope == "project":
        _workload_spec(ref, spec)
    else:
        _section("Spec")
        console.print(_indent(yaml.safe_dump(spec, sort_keys=False)), highlight=False)
    _admission(obj)
    _placements(status)
    _status(ref, status)
    if ref.kind in _POD_KINDS:
        _pods(pc, ref, md.get("name", ""), md.get("namespace"))
    if ref.scope == "project" and events:
        _events(pc, ref, md.get("name", ""), md.get("namespace"), limit=events)


def _indent(text: str) -> str:
    return "\n".join("  " + line for line in text.rstrip().splitlines())


def _workload_spec(ref: KindRef, spec: Mapping[str, Any]) -> None:
    _section("Spec")
    for key, label in (("replicas", "Replicas"), ("tier", "Tier"), ("parallelism",
                       "Parallelism"), ("completions", "Completions"), ("schedule", "Schedule"),
                       ("framework", "Framework"), ("paused", "Paused"), ("stopped", "Stopped"),
                       ("suspend", "Suspended")):
        if spec.get(key) not in (None, False):
            _field(label, spec[key])
    strategy = lookup(spec, ".strategy.type")
    if strategy:
        zones = " zone by zone" if lookup(spec, ".strategy.zoneRollout.enabled") else ""
        _field("Strategy", f"{strategy}{zones}")
    placement = spec.get("placement") or {}
    if placement:
        parts = []
        if placement.get("zones"):
            parts.append("zones " + ",".join(placement["zones"]))
        for s in placement.get("spread") or ():
            parts.append(f"spread by {s.get('topology')} (maxSkew {s.get('maxSkew', 1)})")
        if parts:
            _field("Placement", "; ".join(parts))
    found = containers(spec)
    if found:
        _section("Containers")
        grid(["NAME", "TYPE", "IMAGE", "REQUESTS", "COMMAND"], [
            (c.get("name"), c.get("type") or "main", c.get("image"),
             ", ".join(f"{k} {v}" for k, v in (lookup(c, ".resources.requests") or {}).items()),
             _short(" ".join(str(a) for a in c.get("command") or ()))) for c in found])


def _short(text: str, limit: int = 60) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit - 1] + "…"


def _admission(obj: Mapping[str, Any]) -> None:
    admission = lookup(obj, ".status.admission") or {}
    if not admission:
        return
    _section("Admission")
    _field("State", admission.get("state"))
    if admission.get("queue"):
        _field("Queue", admission["queue"])
    if admission.get("state") == "Queued":
        _field("Position", admission.get("position"))
        _field("Why", admission.get("reason") or queue_reason(obj))
        if admission.get("hint"):
            _field("To run", admission["hint"])
    if admission.get("charged"):
        _field("Would charge" if admission.get("state") == "Queued" else "Charged",
               ", ".join(f"{k} {v}" for k, v in admission["charged"].items()))


def _placements(status: Mapping[str, Any]) -> None:
    placements = status.get("placements") or []
    if placements:
        per_cluster = {c.get("cluster"): c for c in status.get("clusters") or ()}
        _section("Placements")
        grid(["CLUSTER", "ZONE", "REPLICAS", "READY", "MESSAGE"], [
            (p.get("cluster"), p.get("zone"), p.get("replicas"),
             (per_cluster.get(p.get("cluster")) or {}).get("readyReplicas"),
             (per_cluster.get(p.get("cluster")) or {}).get("message"))
            for p in placements])
    excluded = status.get("excludedClusters") or []
    if excluded:
        _section("Excluded clusters")
        grid(["CLUSTER", "FILTER", "REASON"],
              [(e.get("cluster"), e.get("plugin"), e.get("reason")) for e in excluded])


def _status(ref: KindRef, status: Mapping[str, Any]) -> None:
    shown = {k: v for k, v in status.items()
             if isinstance(v, str | int | float | bool) and k != "observedGeneration"}
    if shown:
        _section("Status")
        for key, value in shown.items():
            _field(key, value)
    rollout = status.get("rollout") or {}
    if rollout.get("completedZones") or rollout.get("currentZone") or \
            rollout.get("pendingZones"):
        _field("Zone rollout", f"{rollout.get('phase', '-')}; done "
                               f"{','.join(rollout.get('completedZones') or []) or '-'}; now "
                               f"{rollout.get('currentZone') or '-'}; next "
                               f"{','.join(rollout.get('pendingZones') or []) or '-'}")
    conditions = status.get("conditions") or []
    if conditions:
        _section("Conditions")
        grid(["TYPE", "STATUS", "REASON", "AGE", "MESSAGE"], [
            (c.get("type"), c.get("status"), c.get("reason"),
             age(c.get("lastTransitionTime")), c.get("message")) for c in conditions])


def _pods(pc: Client, ref: KindRef, name: str, project: str | None) -> None:
    try:
        pods = pc.pods(ref, name, project=project)
    except PinComputeError as e:
        _section("Pods")
        console.print(f"  (cannot list them: {e})", highlight=False)
        return
    if not pods:
        return
    _section("Pods")
    grid(["NAME", "CLUSTER", "ZONE", "NODE", "IP", "PHASE", "READY"], [
        (lookup(p, ".metadata.name"),
         lookup(p, ".metadata.labels.pincompute\\.io/cluster"),
         lookup(p, ".metadata.labels.topology\\.kubernetes\\.io/zone"),
         lookup(p, ".spec.nodeName"), lookup(p, ".status.podIP"),
         lookup(p, ".status.phase"), _ready(p)) for p in pods])


def _ready(pod: Mapping[str, Any]) -> str:
    statuses = lookup(pod, ".status.containerStatuses") or []
    if not statuses:
        return "-"
    return f"{sum(1 for s in statuses if s.get('ready'))}/{len(statuses)}"


def _events(pc: Client, ref: KindRef, name: str, project: str | None, *, limit: int) -> None:
    try:
        events = pc.events(ref, name, project=project)
    except PinComputeError as e:
        _section("Events")
        console.print(f"  (cannot list them: {e})", highlight=False)
        return
    _section("Events")
    if not events:
        console.print("  <none>", highlight=False)
        return
    grid(["TYPE", "REASON", "AGE", "FROM", "MESSAGE"], [
        (e.get("type"), e.get("reason"), age(event_time(e)),
         lookup(e, ".source.component") or e.get("reportingComponent"), e.get("message"))
        for e in events[-limit:]])


def event_time(event: Mapping[str, Any]) -> str | None:
    return (event.get("lastTimestamp") or event.get("eventTime")
            or event.get("firstTimestamp") or lookup(event, ".metadata.creationTimestamp"))
