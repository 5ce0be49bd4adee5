"""InterPodAntiAffinity (Filter, Score): keep pods away from the pods they must not share with.

Theory of operation
-------------------
A pod anti-affinity term names pods (a label selector over some namespaces) and
a topology key: the pod must not land in a domain of that key (a node for
``kubernetes.io/hostname``, a zone for ``topology.kubernetes.io/zone``, any node
label) that already holds a matching pod.

* **Required terms of the incoming pod** (Filter): per term, matching pods are
  counted per node by the node table's match counters and summed per domain
  with a ``bincount``; nodes in a domain with any match fail.  Nodes without
  the key cannot share a domain with anyone and pass.
* **Required terms of existing pods** (Filter, symmetry): a pod already placed
  whose term matches the incoming pod forbids its own domain to it.  The node
  table keeps each distinct required term with the rows of the pods carrying
  it — replicas share one term — so this is a pass over distinct terms.
* **Preferred terms of the incoming pod** (Score): each adds ``-weight x
  matching pods in the domain``; normalized min-max over the feasible nodes.

Domain-wide counts make both ``Deps.GLOBAL``.  Rejections are resolvable: the
offending pods may be preempted.  Positive pod affinity is not implemented.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from pincompute.scheduler.framework.handle import FrameworkHandle
from pincompute.scheduler.framework.interface import (
    ASSIGNED_POD_DELETE,
    ASSIGNED_POD_UPDATE,
    NODE_ADD,
    NODE_LABEL,
    ClassContext,
    Deps,
)
from pincompute.scheduler.nodematch import row_count
from pincompute.scheduler.nodetable import NodeTable, Rows
from pincompute.scheduler.podinfo import PodAffinityTerm, PodInfo

NAME = "InterPodAntiAffinity"
REASON_OWN = "node(s) didn't match pod anti-affinity rules"
REASON_EXISTING = "node(s) didn't satisfy existing pods anti-affinity rules"


def domain_counts(table: NodeTable, term: PodAffinityTerm) -> tuple[np.ndarray, np.ndarray]:
    """(value-id column, matching pods per domain with a trailing 0 slot for 'no key')."""
    n = table.n
    col = table.column(term.topology_key)[:n]
    counts = table.match_counts(term.namespaces, term.selector)[:n]
    size = len(table.value_names(term.topology_key)) + 1
    keyed = col >= 0
    per_domain = np.bincount(col[keyed], weights=counts[keyed], minlength=size)[:size]
    return col, per_domain


def symmetric_terms(table: NodeTable, pod: PodInfo) -> list[tuple[PodAffinityTerm, list[int]]]:
    """Required terms of placed (non-terminating) pods that match ``pod``, with their rows."""
    return [(term, list(rows)) for term, rows in table.anti_terms.items()
            if term.matches_pod(pod.namespace, pod.labels)]


def forbidden_by_existing(table: NodeTable, pod: PodInfo, rows: Rows) -> np.ndarray:
    """Nodes in a domain whose placed pods' required terms exclude ``pod``."""
    out = np.zeros(row_count(table, rows), dtype=bool)
    masks: dict[str, np.ndarray] = {}
    for term, term_rows in symmetric_terms(table, pod):
        key = term.topology_key
        col = table.column(key)
        mask = masks.get(key)
        if mask is None:
            # One slot per value id plus a last, never-set slot for "no such label" (-1).
            mask = masks[key] = np.zeros(len(table.value_names(key)) + 1, dtype=bool)
        mask[col[np.array(term_rows, dtype=np.intp)]] = True
        mask[-1] = False
    for key, mask in masks.items():
        out |= mask[table.column(key)[rows]]
    return out


class InterPodAntiAffinity:
    name = NAME
    unresolvable = False
    normalized = True

    def __init__(self) -> None:
        # class key -> (anti_version, whether placed pods' terms match the class)
        self._symmetric: dict[bytes, tuple[int, bool]] = {}

    def filter_deps(self, pod: PodInfo, table: NodeTable) -> Deps:
        if pod.anti_required:
            return Deps.GLOBAL
        if not table.anti_terms:
            return Deps.NONE
        # Whether some placed pod's term forbids this class anything; remembered per
        # class until the set of pods with terms changes, so the check is not per decision.
        got = self._symmetric.get(pod.class_key)
        if got is None or got[0] != table.anti_version:
            if len(self._symmetric) > 4096:
                self._symmetric.clear()
            got = (table.anti_version, bool(symmetric_terms(table, pod)))
            self._symmetric[pod.class_key] = got
        return Deps.GLOBAL if got[1] else Deps.NONE

    def _masks(self, pod: PodInfo, table: NodeTable,
               rows: Rows) -> tuple[np.ndarray, np.ndarray]:
        k = row_count(table, rows)
        own = np.zeros(k, dtype=bool)
        for term in pod.anti_required:
            col, per_domain = domain_counts(table, term)
            d = col[rows]
            own |= (d >= 0) & (per_domain[d] > 0)
        return own, forbidden_by_existing(table, pod, rows)

    def filter(self, ctx: ClassContext, pod: PodInfo, table: NodeTable, rows: Rows) -> np.ndarray:
        own, existing = self._masks(pod, table, rows)
        return ~(own | existing)

    def explain(self, ctx: ClassContext, pod: PodInfo, table: NodeTable,
                rows: np.ndarray) -> Mapping[str, int]:
        own, existing = self._masks(pod, table, rows)
        out = {REASON_OWN: int(own.sum()), REASON_EXISTING: int((existing & ~own).sum())}
        return {k: v for k, v in out.items() if v}

    def score_deps(self, pod: PodInfo, table: NodeTable) -> Deps:
        return Deps.GLOBAL if pod.anti_preferred else Deps.NONE

    def score(self, ctx: ClassContext, pod: PodInfo, table: NodeTable, rows: Rows) -> np.ndarray:
        raw = np.zeros(row_count(table, rows), dtype=np.float64)
        for weight, term in pod.anti_preferred:
            col, per_domain = domain_counts(table, term)
            raw -= weight * per_domain[col[rows]]
        return raw

    def normalize(self, raw: np.ndarray, feasible: np.ndarray) -> np.ndarray:
        if not feasible.any():
            return np.zeros_like(raw)
        low = float(raw[feasible].min())
        top = float(raw[feasible].max())
        if top <= low:
            return np.zeros_like(raw)
        return 100.0 * (raw - low) / (top - low)

    def events(self) -> frozenset[str]:
        return frozenset((NODE_ADD, NODE_LABEL, ASSIGNED_POD_DELETE, ASSIGNED_POD_UPDATE))


def new(args: Mapping[str, Any], handle: FrameworkHandle) -> InterPodAntiAffinity:
    return InterPodAntiAffinity()
