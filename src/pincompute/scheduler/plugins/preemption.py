"""Preemption (PostFilter): evict the fewest, least important pods that make room.

Theory of operation
-------------------
Runs when no node fits.  As kube-scheduler's DefaultPreemption:

1. **Eligibility.**  Not for pods with ``preemptionPolicy: Never``, not for gang
   members (whole-group victim planning is not done), and not while victims of
   this pod's earlier preemption are still terminating — the pod waits for the
   room it already paid for instead of evicting more.
2. **Candidates.**  Only nodes that failed *resolvable* filters (resources,
   spread, anti-affinity) — evicting pods cannot fix a selector or a taint.  On
   each, the possible victims are the pods every preemption policy
   (TierPriority) lets this pod preempt, excluding pods still being bound or
   already terminating.  A node qualifies if the pod fits once *all* of them are
   gone: a plain resource check first, then — if spread or anti-affinity
   apply to the pod — every filter on a what-if table (victims removed from the
   node table, put back afterwards).
3. **Minimal victim set.**  Victims are then *reprieved* one by one, most
   important first (the policy's order, reversed): put back, and kept only if
   the pod still fits.  What remains is needed.  When only room matters (no
   spread or anti-affinity), this is integer arithmetic per candidate node.
4. **Choice of node.**  Fewest important victims: lowest highest victim tier,
   then lowest highest victim priority, then lowest sum of priorities, then
   fewest victims.  At most ``max(min_candidates, candidate_percent % of
   nodes)`` qualifying nodes are compared.
5. **Effects.**  The victims are evicted gracefully (DisruptionTarget
   condition, then delete with their termination grace period); lower-priority
   pods nominated to that node lose the nomination; the preemptor is
   **nominated** to the node.  The nomination is counted by the resource filter
   against every pod of lower or equal priority, so the room being freed is not
   taken by another pod (including the victims' own replacements, which are
   what makes preempt/re-admit thrash in quota systems), and the preemptor is
   retried when the victims are gone (AssignedPodDelete).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from pincompute.scheduler import labels as L
from pincompute.scheduler.framework.diagnosis import Diagnosis, histogram_message
from pincompute.scheduler.framework.handle import FrameworkHandle
from pincompute.scheduler.framework.interface import (
    SUCCESS,
    CycleState,
    PostFilterResult,
    PreemptionPolicyPlugin,
    unschedulable,
)
from pincompute.scheduler.nodetable import PodEntry
from pincompute.scheduler.podinfo import PodInfo

NAME = "Preemption"
NOT_HELPFUL = "Preemption is not helpful for scheduling"
NO_VICTIMS = "No preemption victims found for incoming pod"


class Preemption:
    name = NAME

    def __init__(self, handle: FrameworkHandle, *, min_candidates: int = 100,
                 candidate_percent: int = 10) -> None:
        self.handle = handle
        self.min_candidates = min_candidates
        self.candidate_percent = candidate_percent
        # preemptor uid -> victims it evicted that may still be on their node
        self._victims: dict[str, set[str]] = {}
        self.preemptions = 0

    @property
    def _policies(self) -> Sequence[PreemptionPolicyPlugin]:
        return self.handle.policies

    # -- eligibility --

    def _ineligible(self, pod: PodInfo) -> str:
        spec = pod.obj.get("spec") or {}
        if spec.get("preemptionPolicy") == "Never":
            return "not eligible due to preemptionPolicy=Never."
        if pod.group:
            return "not eligible: members of a pod group do not preempt."
        table = self.handle.table
        pending = self._victims.get(pod.uid)
        if pending:
            pending.intersection_update(table.pods)
            if pending:
                return "not eligible due to terminating pods on the nominated node."
            del self._victims[pod.uid]
        nominated = pod.nominated_node or (table.nominated.get(pod.uid, (None, ""))[1])
        row = table.row_of.get(nominated) if nominated else None
        if row is not None and any(v.deleting and v.priority < pod.priority
                                   for v in table.pods_on_row(row)):
            return "not eligible due to a terminating pod on the nominated node."
        return ""

    # -- victims --

    def _allowed(self, pod: PodInfo, victim: PodInfo) -> bool:
        return all(p.can_preempt(pod, victim) for p in self._policies)

    def _victim_key(self, victim: PodInfo) -> tuple[Any, ...]:
        policies = self._policies
        if policies:
            return policies[0].victim_key(victim)
        return (victim.priority, victim.key)

    def _roomy(self, pod: PodInfo, row: int, victims: Sequence[PodInfo]) -> bool:
        """Whether requests fit on ``row`` once ``victims`` are gone (resources only)."""
        t = self.handle.table
        cpu = int(t.req_cpu[row]) - sum(v.cpu for v in victims) + pod.cpu
        mem = int(t.req_mem[row]) - sum(v.memory for v in victims) + pod.memory
        gpu = int(t.req_gpu[row]) - sum(v.gpu for v in victims) + pod.gpu
        pods = int(t.req_pods[row]) - len(victims) + 1
        extra = t.nominated_extra(np.array([row]), pod.priority, exclude=pod.uid)
        if extra is not None:
            cpu += int(extra[0][0])
            mem += int(extra[1][0])
            gpu += int(extra[2][0])
            pods += int(extra[3][0])
        return ((not pod.cpu or cpu <= t.alloc_cpu[row])
                and (not pod.memory or mem <= t.alloc_mem[row])
                and (not pod.gpu or gpu <= t.alloc_gpu[row])
                and pods <= t.alloc_pods[row])

    def _only_resources(self, pod: PodInfo) -> bool:
        """Whether evicting pods can matter to no filter but the resource fit for ``pod``."""
        return all(p.unresolvable or p.name == "NodeResourcesFit"
                   for p, _d, _b in self.handle.active(pod)[0])

    def select_victims(self, pod: PodInfo, row: int, *,
                       only_resources: bool = False) -> list[PodInfo] | None:
        """The minimal victim set on ``row`` that lets ``pod`` fit, or None."""
        fw = self.handle
        table = fw.table
        possible = [v for v in table.pods_on_row(row)
                    if not v.deleting and not table.is_assumed(v.uid)
                    and v.uid not in fw.waiting and self._allowed(pod, v)]
        if not possible or not self._roomy(pod, row, possible):
            return None
        if only_resources:
            # Nothing but room matters: reprieve by arithmetic, without touching the table.
            kept = list(possible)
            for v in sorted(possible, key=self._victim_key, reverse=True):
                kept.remove(v)
                if not self._roomy(pod, row, kept):
                    kept.append(v)
            return kept or None
        rows = np.array([row], dtype=np.intp)
        removed: list[PodEntry] = []
        try:
            for v in possible:
                entry = table.remove_pod(v.uid)
                if entry is not None:
                    removed.append(entry)
            if not fw.fits(pod, rows)[0]:
                return None
            victims: list[PodInfo] = []
            for entry in sorted(removed, key=lambda e: self._victim_key(e.info), reverse=True):
                table.add_pod(entry.info, entry.node_name, assumed=entry.assumed)
                if not fw.fits(pod, rows)[0]:
                    table.remove_pod(entry.info.uid)
                    victims.append(entry.info)
            return victims or None
        finally:
            for entry in removed:
                if entry.info.uid not in table.pods:
                    table.add_pod(entry.info, entry.node_name, assumed=entry.assumed)

    @staticmethod
    def _rank(row: int, victims: Sequence[PodInfo]) -> tuple[Any, ...]:
        return (max(L.tier_rank(v.tier) for v in victims), max(v.priority for v in victims),
                sum(v.priority for v in victims), len(victims), row)

    # -- the extension point --

    def post_filter(self, state: CycleState, pod: PodInfo,
                    diagnosis: Diagnosis) -> PostFilterResult:
        why = self._ineligible(pod)
        if why:
            diagnosis.post_filter = f"preemption: {why}"
            return PostFilterResult(unschedulable(why, plugin=NAME))
        table = self.handle.table
        total = table.count
        limit = max(self.min_candidates, total * self.candidate_percent // 100)
        found: list[tuple[int, list[PodInfo]]] = []
        only_resources = self._only_resources(pod)
        for row in diagnosis.resolvable_rows.tolist():
            victims = self.select_victims(pod, int(row), only_resources=only_resources)
            if victims:
                found.append((int(row), victims))
                if len(found) >= limit:
                    break
        if not found:
            reasons = {NOT_HELPFUL: total - int(diagnosis.resolvable_rows.shape[0]),
                       NO_VICTIMS: int(diagnosis.resolvable_rows.shape[0])}
            diagnosis.post_filter = "preemption: " + histogram_message(total, reasons)
            return PostFilterResult(unschedulable(NO_VICTIMS, plugin=NAME))
        row, victims = min(found, key=lambda f: self._rank(*f))
        node = table.names[row]
        effects = self.handle.effects
        for v in victims:
            effects.evict(v, pod, node)
        for uid, other in list(table.nominated_on.get(row, {}).items()):
            if other.priority < pod.priority:
                table.clear_nomination(uid)
                effects.nominate(other, "")
        table.nominate(pod, node)
        effects.nominate(pod, node)
        self._victims[pod.uid] = {v.uid for v in victims}
        self.preemptions += 1
        return PostFilterResult(SUCCESS, node)

    def forget(self, uid: str) -> None:
        """The pod is gone or placed: stop tracking its victims."""
        self._victims.pop(uid, None)


def new(args: Mapping[str, Any], handle: FrameworkHandle) -> Preemption:
    return Preemption(handle, min_candidates=int(args.get("min_candidates", 100)),
                      candidate_percent=int(args.get("candidate_percent", 10)))
