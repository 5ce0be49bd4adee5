"""Member cluster health: conditions, a resource summary, and taints for the unhealthy.

Theory of operation
-------------------
For each MemberCluster this controller (host side, leader only) keeps in status:

* ``Reachable``: the member's API answers the cluster set's probe, every
  ``spec.healthCheck.periodSeconds`` within ``timeoutSeconds``; it turns False
  after ``failureThreshold`` failures in a row (at once if the cluster set
  cannot connect at all) and True again after ``successThreshold`` successes;
* ``Ready``: reachable, and at least :data:`MIN_READY_RATIO` of its nodes are
  Ready (a cluster with no nodes yet is ready: its pools grow from zero);
* ``health`` (``Healthy``, ``Degraded`` — some nodes not ready —, ``Unhealthy``,
  ``Unknown``), node counts and the resource summary of
  :mod:`.clustersummary` (allocatable, allocated, allocating, per tier), which
  the cluster scheduler's ResourcesFit and TierPool plugins read.

Node and pod figures come from informers on each member through the live
cluster set (:meth:`~.clusterset.ClusterSet.watch`): their handlers move running
totals and enqueue the member, so a status write never lists anything; a write
that changes only the figures waits for :data:`MIN_WRITE_INTERVAL` after the last.

Unhealthy clusters are tainted in ``spec.taints`` as Karmada's cluster taint
manager does (:data:`TAINTS`, a table): a False condition adds its taint with
effect ``NoSchedule`` at once (no new placements), and ``NoExecute`` once it has
been False for the grace period (its shards move away: failover); a True
condition removes both.  The time a condition turned False is its
``lastTransitionTime``, so a restarted controller keeps counting where the last
one stopped.  Taints of other keys are left alone.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from pincompute.kube import objects
from pincompute.kube.errors import Conflict, NotFound
from pincompute.kube.protocol import KubeClient
from pincompute.kube.resource import NODES, PODS
from pincompute.model.registry import MEMBERCLUSTERS
from pincompute.model.wellknown import CLUSTER_NOT_READY_TAINT, CLUSTER_UNREACHABLE_TAINT
from pincompute.runtime.controller import Controller
from pincompute.runtime.informer import FuncEventHandler, ResourceEventHandler
from pincompute.runtime.manager import Manager
from pincompute.runtime.reconciler import Request, Result

from .clusterset import ClusterSet
from .clustersummary import ClusterSummary

MIN_READY_RATIO: Final = 0.5
NO_EXECUTE_AFTER: Final = 60.0
"""Seconds a condition stays False before NoSchedule becomes NoExecute too."""
MIN_WRITE_INTERVAL: Final = 1.0
"""Seconds between two status writes of a cluster that change only its figures."""
EMPTY: Mapping[str, Any] = {}

TAINTS: Final[Mapping[str, str]] = {
    "Reachable": CLUSTER_UNREACHABLE_TAINT,
    "Ready": CLUSTER_NOT_READY_TAINT,
}
"""The taint key a False condition puts on the cluster (effects by :func:`taints_for`)."""
OUR_KEYS: Final = frozenset(TAINTS.values())


def taints_for(conditions: list[Mapping[str, Any]], *, now: float,
               grace: float) -> list[dict[str, str]]:
    """The health taints a cluster with these conditions carries at ``now``.

    A condition in :data:`TAINTS` that is not True (False or Unknown) gives its key
    ``NoSchedule``; after ``grace`` seconds since it changed, ``NoExecute`` as well.
    An unreachable cluster is also not ready: only the unreachable key is used then,
    so the two do not double-count one outage.
    """
    by_type = {c.get("type"): c for c in conditions}
    out: list[dict[str, str]] = []
    for cond_type, key in TAINTS.items():
        cond = by_type.get(cond_type)
        if cond is None or cond.get("status") == "True":
            continue
        out.append({"key": key, "effect": "NoSchedule"})
        since = cond.get("lastTransitionTime")
        if since is not None and now - objects.parse_time(since).timestamp() >= grace:
            out.append({"key": key, "effect": "NoExecute"})
        break  # the first failing condition names the outage (see the docstring)
    return out


@dataclass(slots=True)
class _Probes:
    failures: int = 0
    successes: int = 0
    reachable: bool | None = None
    last: float = 0.0
    message: str = ""


class ClusterHealthReconciler:
    def __init__(self, *, host: KubeClient, clusters: ClusterSet, grace: float,
                 min_ready_ratio: float, summaries: dict[str, ClusterSummary],
                 min_interval: float = MIN_WRITE_INTERVAL) -> None:
        self.host = host
        self.min_interval = min_interval
        self._last_write: dict[str, float] = {}
        self.clusters = clusters
        self.grace = grace
        self.min_ready_ratio = min_ready_ratio
        self.summaries = summaries
        self._probes: dict[str, _Probes] = {}

    async def reconcile(self, request: Request) -> Result | None:
        name = request.name
        mc = self.clusters.memberclusters.get(name)
        if mc is None or objects.is_deleting(mc):
            self._probes.pop(name, None)
            return None
        check = (mc.get("spec") or EMPTY).get("healthCheck") or EMPTY
        period = float(check.get("periodSeconds", 10))
        probes = await self._probe(name, check, period)
        summary = self.summaries.get(name) if self.clusters.get(name) is not None else None
        updated = objects.deepcopy(mc)
        status = updated.setdefault("status", {})
        generation = objects.meta(mc).get("generation")
        if summary is not None:
            for key, value in summary.status().items():
                if value is None:
                    status.pop(key, None)
                else:
                    status[key] = value
        ratio = summary.ready_ratio if summary is not None else None
        if probes.reachable is None:
            health = "Unknown"
            objects.set_condition(updated, "Reachable", "Unknown", reason="Probing",
                                  message=probes.message or "not probed yet",
                                  observed_generation=generation)
            objects.set_condition(updated, "Ready", "Unknown", reason="Probing",
                                  message="waiting for the first probe",
                                  observed_generation=generation)
        else:
            objects.set_condition(
                updated, "Reachable", probes.reachable,
                reason="ProbeSucceeded" if probes.reachable else "ProbeFailed",
                message=probes.message, observed_generation=generation)
            nodes = status.get("nodes") or EMPTY
            counts = f"{nodes.get('ready', 0)} of {nodes.get('total', 0)} nodes ready"
            if not probes.reachable:
                ready, reason, message = False, "Unreachable", probes.message
            elif ratio is None or ratio >= self.min_ready_ratio:
                ready, reason, message = True, "NodesReady", counts
            else:
                ready, reason, message = False, "NodesNotReady", \
                    f"{counts} (needs {self.min_ready_ratio:.0%})"
            objects.set_condition(updated, "Ready", ready, reason=reason, message=message,
                                  observed_generation=generation)
            health = ("Unhealthy" if not ready else
                      "Degraded" if ratio is not None and ratio < 1.0 else "Healthy")
        status["health"] = health
        if probes.last:
            status["lastProbeTime"] = time.strftime("%Y-%m-%dT%H:%M:%SZ",
                                                    time.gmtime(probes.last))
        if status != (mc.get("status") or {}):
            wait = self._last_write.get(name, 0.0) + self.min_interval - time.monotonic()
            if wait > 0 and _same_conditions(status, mc.get("status") or EMPTY):
                # Figures only (pods come and go): at most one write per min_interval.
                return Result(requeue_after=wait)
            self._last_write[name] = time.monotonic()
            try:
                mc = await self.host.update_status(MEMBERCLUSTERS, updated)
            except NotFound:
                return None
            except Conflict:
                return Result(requeue=True)
        conditions = (mc.get("status") or EMPTY).get("conditions") or []
        wanted = taints_for(conditions, now=time.time(), grace=self.grace)
        spec = mc.get("spec") or EMPTY
        current = list(spec.get("taints") or ())
        kept = [t for t in current if t.get("key") not in OUR_KEYS]
        ours = [t for t in current if t.get("key") in OUR_KEYS]
        if _taint_set(ours) != _taint_set(wanted):
            patched = objects.deepcopy(mc)
            patched["spec"]["taints"] = (kept + wanted) or None
            try:
                await self.host.update(MEMBERCLUSTERS, patched)
            except NotFound:
                return None
            except Conflict:
                return Result(requeue=True)
        after = period
        if any(t["effect"] == "NoSchedule" for t in wanted) and not any(
                t["effect"] == "NoExecute" for t in wanted):
            after = min(after, self._until_no_execute(conditions))
        return Result(requeue_after=max(after, 0.05))

    def _until_no_execute(self, conditions: list[Mapping[str, Any]]) -> float:
        soonest = self.grace
        for cond in conditions:
            if cond.get("type") in TAINTS and cond.get("status") != "True" and \
                    cond.get("lastTransitionTime"):
                since = objects.parse_time(cond["lastTransitionTime"]).timestamp()
                soonest = min(soonest, since + self.grace - time.time() + 0.05)
        return soonest

    async def _probe(self, name: str, check: Mapping[str, Any], period: float) -> _Probes:
        probes = self._probes.setdefault(name, _Probes())
        now = time.time()
        if probes.reachable is not None and now - probes.last < period * 0.9:
            return probes  # probed recently: a pod event is not a reason to probe again
        handle = self.clusters.get(name)
        state = self.clusters.state(name)
        if handle is None:
            if state is not None and state.phase == "Failed":
                probes.reachable, probes.message = False, f"cannot connect: {state.message}"
                probes.failures, probes.successes, probes.last = probes.failures + 1, 0, now
            else:
                probes.message = "connecting"
            return probes
        timeout = float(check.get("timeoutSeconds", 5))
        try:
            async with asyncio.timeout(timeout):
                await self.clusters.probe(handle.client)
        except Exception as exc:  # any failure to answer is a failed probe
            if not self.clusters.is_current(handle):
                return probes
            probes.failures, probes.successes = probes.failures + 1, 0
            probes.message = f"probe failed: {getattr(exc, 'message', None) or exc!r}"
            if probes.failures >= int(check.get("failureThreshold", 3)):
                probes.reachable = False
            # Below the threshold the last answer stands (Unknown before any).
        else:
            probes.successes, probes.failures = probes.successes + 1, 0
            probes.message = "the API answers"
            if probes.reachable is None or \
                    probes.successes >= int(check.get("successThreshold", 1)):
                probes.reachable = True
        probes.last = now
        return probes


def _same_conditions(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    return bool(a.get("conditions") == b.get("conditions") and a.get("health") == b.get("health"))


def _taint_set(taints: Sequence[Mapping[str, Any]]) -> set[tuple[str, str]]:
    return {(t.get("key", ""), t.get("effect", "")) for t in taints}


def add_cluster_health_controller(manager: Manager, *, host: KubeClient, clusters: ClusterSet,
                                  name: str = "membercluster-health",
                                  grace: float = NO_EXECUTE_AFTER,
                                  min_ready_ratio: float = MIN_READY_RATIO,
                                  min_interval: float = MIN_WRITE_INTERVAL,
                                  workers: int = 2) -> Controller:
    """Wire the member clusters' health and resource summary (leader only)."""
    summaries: dict[str, ClusterSummary] = {}
    reconciler = ClusterHealthReconciler(host=host, clusters=clusters, grace=grace,
                                         min_ready_ratio=min_ready_ratio, summaries=summaries,
                                         min_interval=min_interval)
    controller = manager.controller(name, reconciler, workers=workers)
    controller.for_(clusters.memberclusters)

    def poke(member: str) -> None:
        controller.enqueue(Request("", member))

    def nodes_for(member: str) -> ResourceEventHandler:
        # Called as a (re)connected member's informers are built, nodes first: the
        # member starts a fresh summary, and the handlers of a let-go member's old
        # informers keep only their own (unreferenced) one.
        summary = summaries[member] = ClusterSummary()

        def seen(obj: dict[str, Any]) -> None:
            summary.node(obj)
            poke(member)

        def gone(obj: dict[str, Any]) -> None:
            summary.node_gone(obj)
            poke(member)

        return FuncEventHandler(add=seen, update=lambda _o, n: seen(n), delete=gone)

    def pods_for(member: str) -> ResourceEventHandler:
        summary = summaries[member]

        def seen(obj: dict[str, Any]) -> None:
            summary.pod(obj)
            poke(member)

        def gone(obj: dict[str, Any]) -> None:
            summary.pod_gone(obj)
            poke(member)

        return FuncEventHandler(add=seen, update=lambda _o, n: seen(n), delete=gone)

    clusters.watch(NODES, nodes_for)
    clusters.watch(PODS, pods_for)
    clusters.subscribe(on_added=lambda h: poke(h.name), on_removed=lambda h: poke(h.name),
                       on_state=poke)
    return controller


__all__ = ["MIN_READY_RATIO", "MIN_WRITE_INTERVAL", "NO_EXECUTE_AFTER", "OUR_KEYS", "TAINTS",
           "ClusterHealthReconciler", "add_cluster_health_controller", "taints_for"]
