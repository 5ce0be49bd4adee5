"""The node-by-node baseline: the same plugins, evaluated one node at a time, no class cache.

Theory of operation
-------------------
This is what a straightforward Python port of kube-scheduler's algorithm does:
for every pod, loop over every node, run the filters in profile order until one
fails, score the feasible nodes, normalize, take the best.  It exists for two
reasons:

* **the benchmark's baseline** — ``benchmarks/scheduler.py`` runs the same
  scheduler with :class:`ReferenceFramework` in place of the vectorized one, so
  the figure shows what numpy over node arrays and equivalence classes buy;
* **a test oracle** — its scalar implementations of the simple plugins
  (resources, cordon, node name, taints, selector, affinity, allocation scores)
  are written independently of the vector code, and tests hold the two to the
  same answers.

Plugins without a scalar twin here (spread, anti-affinity, out-of-tree ones)
are evaluated through their vector code on a one-row index, which is correct
and exactly as slow as a per-node loop should be.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from .equivalence import DEAD_BIT, NEG_INF, ClassEntry, signature
from .framework.interface import ClassContext
from .framework.pipeline import Framework
from .nodetable import SOFT, NodeTable
from .plugins.allocation import scored_resources
from .podinfo import PodInfo, term_matches, tolerates_all

ScalarFilter = Callable[[PodInfo, NodeTable, int], bool]
ScalarScore = Callable[[Any, PodInfo, NodeTable, int], float]


def _nominated(table: NodeTable, pod: PodInfo, row: int) -> tuple[int, int, int, int]:
    cpu = mem = gpu = pods = 0
    for uid, other in table.nominated_on.get(row, {}).items():
        if uid != pod.uid and other.priority >= pod.priority:
            cpu += other.cpu
            mem += other.memory
            gpu += other.gpu
            pods += 1
    return cpu, mem, gpu, pods


def fit(pod: PodInfo, t: NodeTable, i: int) -> bool:
    ncpu, nmem, ngpu, npods = _nominated(t, pod, i) if t.nominated_on else (0, 0, 0, 0)
    if int(t.req_pods[i]) + npods + 1 > int(t.alloc_pods[i]):
        return False
    if pod.cpu and int(t.req_cpu[i]) + ncpu + pod.cpu > int(t.alloc_cpu[i]):
        return False
    if pod.memory and int(t.req_mem[i]) + nmem + pod.memory > int(t.alloc_mem[i]):
        return False
    return not (pod.gpu and int(t.req_gpu[i]) + ngpu + pod.gpu > int(t.alloc_gpu[i]))


def unschedulable_ok(pod: PodInfo, t: NodeTable, i: int) -> bool:
    return not bool(t.unschedulable[i])


def node_name_ok(pod: PodInfo, t: NodeTable, i: int) -> bool:
    return t.names[i] == pod.node_name


def taints_ok(pod: PodInfo, t: NodeTable, i: int) -> bool:
    facts = t.facts[i]
    assert facts is not None
    return all(tolerates_all(pod.tolerations, k, v, e)
               for k, v, e in facts.taints if e in ("NoSchedule", "NoExecute"))


def selector_ok(pod: PodInfo, t: NodeTable, i: int) -> bool:
    facts = t.facts[i]
    assert facts is not None
    return all(facts.labels.get(k) == v for k, v in pod.node_selector)


def affinity_ok(pod: PodInfo, t: NodeTable, i: int) -> bool:
    facts = t.facts[i]
    assert facts is not None and pod.required_terms is not None
    return any(term_matches(term, facts.labels, facts.name) for term in pod.required_terms)


SCALAR_FILTERS: dict[str, ScalarFilter] = {
    "NodeResourcesFit": fit,
    "NodeUnschedulable": unschedulable_ok,
    "NodeName": node_name_ok,
    "TaintToleration": taints_ok,
    "NodeSelector": selector_ok,
    "NodeAffinity": affinity_ok,
}


def _fraction(pod: PodInfo, t: NodeTable, i: int, resource: str) -> float:
    if resource == "cpu":
        used, alloc = int(t.req_cpu[i]) + pod.cpu, int(t.alloc_cpu[i])
    elif resource == "memory":
        used, alloc = int(t.req_mem[i]) + pod.memory, int(t.alloc_mem[i])
    else:
        used, alloc = int(t.req_gpu[i]) + pod.gpu, int(t.alloc_gpu[i])
    return min(used / alloc, 1.0) if alloc > 0 else 1.0


def least_allocated(plugin: Any, pod: PodInfo, t: NodeTable, i: int) -> float:
    res = scored_resources(pod, plugin.resources)
    return sum((1.0 - _fraction(pod, t, i, r)) * 100.0 * w for r, w in res.items()) / \
        sum(res.values())


def most_allocated(plugin: Any, pod: PodInfo, t: NodeTable, i: int) -> float:
    res = scored_resources(pod, plugin.resources)
    return sum(_fraction(pod, t, i, r) * 100.0 * w for r, w in res.items()) / sum(res.values())


def balanced(plugin: Any, pod: PodInfo, t: NodeTable, i: int) -> float:
    fr = [_fraction(pod, t, i, r) for r in scored_resources(pod, plugin.resources)]
    mean = sum(fr) / len(fr)
    return (1.0 - math.sqrt(sum((f - mean) ** 2 for f in fr) / len(fr))) * 100.0


def soft_taints(plugin: Any, pod: PodInfo, t: NodeTable, i: int) -> float:
    facts = t.facts[i]
    assert facts is not None
    return float(sum(1 for k, v, e in facts.taints
                     if e == SOFT and not tolerates_all(pod.tolerations, k, v, e)))


def preferred_affinity(plugin: Any, pod: PodInfo, t: NodeTable, i: int) -> float:
    facts = t.facts[i]
    assert facts is not None
    return float(sum(w for w, term in pod.preferred_terms
                     if term_matches(term, facts.labels, facts.name)))


SCALAR_SCORES: dict[str, ScalarScore] = {
    "LeastAllocated": least_allocated,
    "MostAllocated": most_allocated,
    "BalancedAllocation": balanced,
    "TaintToleration": soft_taints,
    "NodeAffinity": preferred_affinity,
}


class ReferenceFramework(Framework):
    """A :class:`Framework` whose Filter/Score run node by node (see module doc)."""

    def find(self, pod: PodInfo) -> ClassEntry:
        table = self.table
        filters, scorers = self.active(pod)
        entry = ClassEntry(pod.class_key, filters, scorers, signature(filters, scorers))
        ctx = entry.ctx = ClassContext()
        n = table.n
        fails = [0] * n
        feasible: list[int] = []
        scalar_f = [(SCALAR_FILTERS.get(p.name), p, bit) for p, _d, bit in filters]
        for i in range(n):
            if not table.valid[i]:
                fails[i] = int(DEAD_BIT)
                continue
            for fn, p, bit in scalar_f:
                ok = fn(pod, table, i) if fn is not None else \
                    bool(p.filter(ctx, pod, table, np.array([i]))[0])
                if not ok:
                    fails[i] = 1 << bit
                    break
            else:
                feasible.append(i)
        entry.fails = np.array(fails + [int(DEAD_BIT)] * (table.capacity - n), dtype=np.uint32)
        total = [0.0] * n
        for scorer, _d, weight in scorers:
            score = SCALAR_SCORES.get(scorer.name)
            raw = [0.0] * n
            for i in feasible:
                raw[i] = score(scorer, pod, table, i) if score is not None else \
                    float(scorer.score(ctx, pod, table, np.array([i]))[0])
            if scorer.normalized:
                mask = np.zeros(n, dtype=bool)
                mask[feasible] = True
                raw = list(scorer.normalize(np.array(raw), mask))  # type: ignore[attr-defined]
            for i in feasible:
                total[i] += weight * raw[i]
        best = -1
        best_score = NEG_INF
        for i in feasible:
            if total[i] > best_score:
                best, best_score = i, total[i]
        entry.best = best
        return entry
