"""TaintToleration (Filter, Score): taints repel pods that do not tolerate them.

Theory of operation
-------------------
Every distinct taint in the cluster has a bit in the node table; a node's
NoSchedule/NoExecute taints form one bitset, its PreferNoSchedule taints
another.  For a pod the plugin builds, once per equivalence class, the bitset of
taints its tolerations cover; a node passes when ``taints & ~tolerated`` is
empty — one vectorized AND over all nodes.

The failure reason names the first untolerated taint, as kube-scheduler does:
``node(s) had untolerated taint {key: value}``.  Scoring counts a node's
untolerated PreferNoSchedule taints; fewer is better (normalized in reverse:
the node with most such taints scores 0).  While no node carries a
PreferNoSchedule taint the score is skipped altogether.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from pincompute.scheduler.framework.handle import FrameworkHandle
from pincompute.scheduler.framework.interface import NODE_ADD, NODE_TAINT, ClassContext, Deps
from pincompute.scheduler.nodetable import SOFT, NodeTable, Rows
from pincompute.scheduler.podinfo import PodInfo, tolerates_all

NAME = "TaintToleration"


def reason(key: str, value: str) -> str:
    return f"node(s) had untolerated taint {{{key}: {value}}}"


class TaintToleration:
    name = NAME
    unresolvable = True
    normalized = True

    def _masks(self, ctx: ClassContext, pod: PodInfo,
               table: NodeTable) -> tuple[np.ndarray, np.ndarray]:
        got = ctx.data.get(NAME)
        if got is None or got[0] != len(table.taint_list) or got[1].shape[0] != table.words:
            tolerated = [tid for tid, (k, v, e) in enumerate(table.taint_list)
                         if tolerates_all(pod.tolerations, k, v, e)]
            mask = table.taint_mask(tolerated)
            got = (len(table.taint_list), ~mask, mask)
            ctx.data[NAME] = got
        return got[1], got[2]

    def filter_deps(self, pod: PodInfo, table: NodeTable) -> Deps:
        return Deps.NODE if table.taint_list else Deps.NONE

    def filter(self, ctx: ClassContext, pod: PodInfo, table: NodeTable, rows: Rows) -> np.ndarray:
        untolerated, _ = self._masks(ctx, pod, table)
        if table.words == 1:
            return (table.hard_taints[rows, 0] & untolerated[0]) == 0
        return ~(table.hard_taints[rows] & untolerated).any(axis=1)

    def explain(self, ctx: ClassContext, pod: PodInfo, table: NodeTable,
                rows: np.ndarray) -> Mapping[str, int]:
        untolerated, _ = self._masks(ctx, pod, table)
        bad = table.hard_taints[rows] & untolerated
        counts: dict[str, int] = {}
        left = np.ones(rows.shape[0], dtype=bool)
        for tid, (key, value, effect) in enumerate(table.taint_list):
            if effect == SOFT:
                continue
            word, bit = divmod(tid, 64)
            has = left & ((bad[:, word] & np.uint64(1 << bit)) != 0)
            hit = int(has.sum())
            if hit:
                text = reason(key, value)
                counts[text] = counts.get(text, 0) + hit
                left &= ~has
                if not left.any():
                    break
        return counts

    def score_deps(self, pod: PodInfo, table: NodeTable) -> Deps:
        return Deps.NODE if table.soft_taint_nodes > 0 else Deps.NONE

    def score(self, ctx: ClassContext, pod: PodInfo, table: NodeTable, rows: Rows) -> np.ndarray:
        untolerated, _ = self._masks(ctx, pod, table)
        bad = table.soft_taints[rows] & untolerated
        return np.bitwise_count(bad).sum(axis=1).astype(np.float64)

    def normalize(self, raw: np.ndarray, feasible: np.ndarray) -> np.ndarray:
        top = raw[feasible].max() if feasible.any() else 0.0
        if top <= 0:
            return np.full_like(raw, 100.0)
        return 100.0 - raw * (100.0 / top)

    def events(self) -> frozenset[str]:
        return frozenset((NODE_ADD, NODE_TAINT))


def new(args: Mapping[str, Any], handle: FrameworkHandle) -> TaintToleration:
    return TaintToleration()
