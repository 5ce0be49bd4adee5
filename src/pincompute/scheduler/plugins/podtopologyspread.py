"""PodTopologySpread (Filter, Score): keep matching pods evenly spread over zones or nodes.

Theory of operation
-------------------
A constraint names a topology key (``topology.kubernetes.io/zone``,
``kubernetes.io/hostname``, any node label), a selector of the pods to count (in
the pod's namespace), and ``maxSkew``.  Per domain (a value of the key), count
the matching pods on the *eligible* nodes — those that have the key and, with
``nodeAffinityPolicy: Honor`` (default), pass the pod's node selector and
required affinity; with ``nodeTaintsPolicy: Honor``, also its tolerations.
Placing the pod in domain ``d`` gives skew ``count[d] + self - min(count)``
where ``self`` is 1 if the pod matches its own selector; with fewer eligible
domains than ``minDomains`` the minimum is taken as 0.

* ``DoNotSchedule`` (Filter): skew must stay within ``maxSkew``; nodes without
  the key fail.
* ``ScheduleAnyway`` (Score): nodes in emptier domains score higher — per
  constraint ``(count[d] + maxSkew - 1) * log(domains + 2)``, summed, then
  normalized in reverse over the feasible nodes (kube-scheduler's formula);
  nodes lacking a key score 0.

Counts come from the node table's match counters (kept current on every pod
added, assumed or removed), so a pass is a handful of ``bincount``s over the
node arrays.  The answer for one node depends on pods anywhere in its domain,
hence ``Deps.GLOBAL``: classes with spread constraints are re-evaluated in full
(vectorized) on every decision after a change.  Terminating pods are not counted.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from pincompute.scheduler.framework.handle import FrameworkHandle
from pincompute.scheduler.framework.interface import (
    ASSIGNED_POD_ADD,
    ASSIGNED_POD_DELETE,
    ASSIGNED_POD_UPDATE,
    NODE_ADD,
    NODE_LABEL,
    NODE_TAINT,
    ClassContext,
    Deps,
)
from pincompute.scheduler.nodematch import pod_node_mask, row_count, untolerated_hard
from pincompute.scheduler.nodetable import NodeTable, Rows
from pincompute.scheduler.podinfo import PodInfo, SpreadConstraint

NAME = "PodTopologySpread"
REASON = "node(s) didn't match pod topology spread constraints"
REASON_MISSING = "node(s) didn't match pod topology spread constraints (missing required label)"


class _Domains:
    """Per-domain counts of one constraint over the eligible nodes."""

    __slots__ = ("col", "counts", "min_match", "present")

    def __init__(self, table: NodeTable, pod: PodInfo, c: SpreadConstraint,
                 eligible_base: np.ndarray) -> None:
        n = table.n
        col = table.column(c.topology_key)[:n]
        eligible = eligible_base & (col >= 0)
        if c.honor_taints:
            eligible &= ~untolerated_hard(table, pod, slice(0, n))
        matches = table.match_counts(frozenset((pod.namespace,)), c.selector)[:n]
        size = len(table.value_names(c.topology_key)) + 1
        cols = col[eligible]
        self.col = col
        # bincount has no slot for -1; domains are value ids, and the extra last slot
        # absorbs index -1 (nodes lacking the key) when the column is indexed below.
        self.counts = np.bincount(cols, weights=matches[eligible], minlength=size)[:size]
        self.present = np.bincount(cols, minlength=size)[:size] > 0
        domains = int(self.present.sum())
        if domains < c.min_domains or domains == 0:
            self.min_match = 0.0
        else:
            self.min_match = float(self.counts[self.present].min())

    def of(self, rows: Rows) -> tuple[np.ndarray, np.ndarray]:
        """(domain ids, whether the node has the key) for ``rows``."""
        d = self.col[rows]
        return d, d >= 0


def _eligible(table: NodeTable, pod: PodInfo, honor: bool) -> np.ndarray:
    n = table.n
    valid = table.valid[:n].copy()
    if honor:
        valid &= pod_node_mask(table, pod, slice(0, n))
    return valid


class PodTopologySpread:
    name = NAME
    unresolvable = False
    normalized = True

    def _domains(self, ctx: ClassContext, pod: PodInfo, table: NodeTable,
                 hard: bool) -> list[tuple[SpreadConstraint, _Domains]]:
        out = []
        bases: dict[bool, np.ndarray] = {}
        for c in pod.spread:
            if c.hard != hard:
                continue
            base = bases.get(c.honor_affinity)
            if base is None:
                base = bases[c.honor_affinity] = _eligible(table, pod, c.honor_affinity)
            out.append((c, _Domains(table, pod, c, base)))
        return out

    # -- filter --

    def filter_deps(self, pod: PodInfo, table: NodeTable) -> Deps:
        return Deps.GLOBAL if any(c.hard for c in pod.spread) else Deps.NONE

    def _fail_masks(self, ctx: ClassContext, pod: PodInfo, table: NodeTable,
                    rows: Rows) -> tuple[np.ndarray, np.ndarray]:
        """(missing the key, skew too large) for ``rows``."""
        k = row_count(table, rows)
        missing = np.zeros(k, dtype=bool)
        skewed = np.zeros(k, dtype=bool)
        for c, dom in self._domains(ctx, pod, table, hard=True):
            d, has = dom.of(rows)
            self_match = 1 if c.selector.matches(pod.labels) else 0
            skew = dom.counts[d] + self_match - dom.min_match
            missing |= ~has
            skewed |= has & (skew > c.max_skew)
        return missing, skewed

    def filter(self, ctx: ClassContext, pod: PodInfo, table: NodeTable, rows: Rows) -> np.ndarray:
        missing, skewed = self._fail_masks(ctx, pod, table, rows)
        return ~(missing | skewed)

    def explain(self, ctx: ClassContext, pod: PodInfo, table: NodeTable,
                rows: np.ndarray) -> Mapping[str, int]:
        missing, skewed = self._fail_masks(ctx, pod, table, rows)
        out = {REASON_MISSING: int(missing.sum()), REASON: int((skewed & ~missing).sum())}
        return {k: v for k, v in out.items() if v}

    # -- score --

    def score_deps(self, pod: PodInfo, table: NodeTable) -> Deps:
        return Deps.GLOBAL if any(not c.hard for c in pod.spread) else Deps.NONE

    def score(self, ctx: ClassContext, pod: PodInfo, table: NodeTable, rows: Rows) -> np.ndarray:
        k = row_count(table, rows)
        raw = np.zeros(k, dtype=np.float64)
        ignored = np.zeros(k, dtype=bool)
        for c, dom in self._domains(ctx, pod, table, hard=False):
            d, has = dom.of(rows)
            weight = float(np.log(int(dom.present.sum()) + 2))
            raw += np.where(has, (dom.counts[d] + c.max_skew - 1) * weight, 0.0)
            ignored |= ~has
        raw[ignored] = np.nan
        return raw

    def normalize(self, raw: np.ndarray, feasible: np.ndarray) -> np.ndarray:
        considered = feasible & ~np.isnan(raw)
        if not considered.any():
            return np.zeros_like(raw)
        top = float(raw[considered].max())
        low = float(raw[considered].min())
        if top <= 0:
            out = np.full_like(raw, 100.0)
        else:
            out = 100.0 * (top + low - raw) / top
        return np.where(np.isnan(raw), 0.0, out)

    def events(self) -> frozenset[str]:
        return frozenset((NODE_ADD, NODE_LABEL, NODE_TAINT, ASSIGNED_POD_ADD,
                          ASSIGNED_POD_DELETE, ASSIGNED_POD_UPDATE))


def new(args: Mapping[str, Any], handle: FrameworkHandle) -> PodTopologySpread:
    return PodTopologySpread()
