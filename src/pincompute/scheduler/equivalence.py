"""Equivalence classes: cached per-class feasibility and scores, refreshed row by row.

Theory of operation
-------------------
Pods of one workload ask the same question of the same cluster: which node fits
a pod with *these* requests, selectors, tolerations and constraints, and which
is best.  Pods with equal :attr:`~pincompute.scheduler.podinfo.PodInfo.class_key`
share one :class:`ClassEntry` holding, for every row of the node table:

* ``fails`` — a bitmask of the filter plugins that reject the node (bit =
  plugin's position in the profile; bit 31 = no node in this row);
* one raw score vector per active score plugin;
* ``total`` — the weighted sum of the (normalized) scores, and ``masked`` — the
  total where feasible, ``-inf`` elsewhere, whose ``argmax`` is the decision.

The entry remembers where it stood in the table's node and pod change logs.  On
the next decision for the class only rows logged since are re-evaluated, and
only by the plugins whose dependencies say the change matters: a node-object
change re-runs every plugin on that row; a pod change re-runs only plugins that
depend on the node's pods (resource fit, allocation scores).  Plugins that
depend on state anywhere (spread, anti-affinity) or whose scores are
normalized over all nodes are re-run on all rows whenever anything changed —
still one vectorized pass, just not O(1).

After one binding in a homogeneous workload a decision re-evaluates one row.
numpy costs about a microsecond per call whatever the array size, so for a few
rows the cache calls a plugin's optional scalar twins (``filter_row``,
``score_row``) instead of its vector methods; tests hold both to the same
answers.  Then one ``argmax`` over the node axis picks the node.

Which plugins apply to a class (their ``filter_deps``/``score_deps``) may depend
on the pod and on table state that is versioned by ``table.epoch`` and
``table.anti_version``; the answer is cached per class under those versions.
Anything that invalidates rows wholesale — the arrays grew, a taint the class
has never seen appeared, the set of applicable plugins changed, the change log
was truncated past the entry's position — makes the next decision recompute
the class from scratch, which is always correct.  Entries are kept in LRU order
up to ``max_classes``.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence, Set
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .framework.interface import ClassContext, FilterPlugin, ScorePlugin
from .nodetable import NodeTable
from .podinfo import PodInfo

DEAD = 1 << 31
DEAD_BIT = np.uint32(DEAD)
NEG_INF = -np.inf
# Beyond this share of changed rows a full pass is as cheap as indexing.
FULL_FRACTION = 4
# Up to this many changed rows, plugins' scalar twins beat numpy calls.
SMALL = 8
# How far past the last pick the next one is looked for before a full argmax.
WINDOW = 64

_NO_ROWS: frozenset[int] = frozenset()

NODE = 1
LOCAL = 2
GLOBAL = 4

ActiveFilter = tuple[FilterPlugin, int, int]      # plugin, deps, bit
ActiveScore = tuple[ScorePlugin, int, float]      # plugin, deps, weight
Activate = Callable[[PodInfo], tuple[list[ActiveFilter], list[ActiveScore]]]


@dataclass(slots=True, eq=False)
class ClassEntry:
    key: bytes
    filters: Sequence[ActiveFilter]
    scorers: Sequence[ActiveScore]
    sig: tuple[Any, ...]
    active_key: tuple[int, int] = (-1, -1)
    ctx: ClassContext = field(default_factory=ClassContext)
    epoch: int = -1
    capacity: int = 0
    node_pos: int = 0
    pod_pos: int = 0
    fails: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.uint32))
    raw: list[np.ndarray] = field(default_factory=list)
    total: np.ndarray = field(default_factory=lambda: np.zeros(0))
    masked: np.ndarray = field(default_factory=lambda: np.zeros(0))
    best: int = -1
    full_passes: int = 0
    row_passes: int = 0
    volatile: bool = False  # some plugin is global or normalized: changes mean a full pass
    row_filters: list[tuple[FilterPlugin, int, int, Any]] = field(default_factory=list)
    row_scorers: list[tuple[ScorePlugin, int, float, Any, int]] = field(default_factory=list)
    # The row-local plugins that also depend on the node's pods (re-run on a pod change).
    pod_filters: list[tuple[FilterPlugin, int, int, Any]] = field(default_factory=list)
    pod_scorers: list[tuple[ScorePlugin, int, float, Any, int]] = field(default_factory=list)
    weights: list[float] = field(default_factory=list)

    def feasible_rows(self, n: int) -> np.ndarray:
        return np.flatnonzero(self.fails[:n] == 0)


def signature(filters: Sequence[ActiveFilter], scorers: Sequence[ActiveScore]) -> tuple[Any, ...]:
    return (tuple((bit, d) for _, d, bit in filters),
            tuple((id(p), d, w) for p, d, w in scorers))


def _prepare(entry: ClassEntry) -> None:
    entry.volatile = any(d & GLOBAL for _, d, _ in entry.filters) or any(
        (d & GLOBAL) or p.normalized for p, d, _ in entry.scorers)
    entry.row_filters = [(p, d, 1 << bit, getattr(p, "filter_row", None))
                         for p, d, bit in entry.filters if not d & GLOBAL]
    entry.row_scorers = [(p, d, w, getattr(p, "score_row", None), i)
                         for i, (p, d, w) in enumerate(entry.scorers) if not d & GLOBAL]
    entry.pod_filters = [f for f in entry.row_filters if f[1] & LOCAL]
    entry.pod_scorers = [sc for sc in entry.row_scorers if sc[1] & LOCAL]
    entry.weights = [w for _, _, w in entry.scorers]


class EquivalenceCache:
    """Class entries by class key, refreshed incrementally against one node table."""

    def __init__(self, table: NodeTable, *, max_classes: int = 64) -> None:
        self.table = table
        self.max_classes = max_classes
        self._entries: OrderedDict[bytes, ClassEntry] = OrderedDict()
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._entries)

    def clear(self) -> None:
        self._entries.clear()

    def evaluate(self, pod: PodInfo, activate: Activate, *, cached: bool = True) -> ClassEntry:
        """The pod's class entry, brought up to date with the table; ``best`` is the pick."""
        table = self.table
        akey = (table.epoch, table.anti_version)
        entries = self._entries
        entry = entries.get(pod.class_key) if cached else None
        if entry is not None and entry.active_key == akey:
            self.hits += 1
            entries.move_to_end(pod.class_key)
            self._refresh(entry, pod)
            return entry
        filters, scorers = activate(pod)
        sig = signature(filters, scorers)
        if entry is not None and entry.sig == sig:
            self.hits += 1
            entry.active_key = akey
            entries.move_to_end(pod.class_key)
            self._refresh(entry, pod)
            return entry
        entry = ClassEntry(pod.class_key, filters, scorers, sig, akey)
        _prepare(entry)
        self.misses += 1
        self._full(entry, pod)
        if cached:
            entries[pod.class_key] = entry
            entries.move_to_end(pod.class_key)
            while len(entries) > self.max_classes:
                entries.popitem(last=False)
        return entry

    # -- full pass -------------------------------------------------------------------------------

    def _full(self, entry: ClassEntry, pod: PodInfo) -> None:
        table = self.table
        n = table.n
        cap = table.capacity
        entry.ctx = ClassContext()
        ctx = entry.ctx
        rows = slice(0, n)
        fails = np.zeros(cap, dtype=np.uint32)
        fails[n:] = DEAD_BIT
        fails[:n][~table.valid[:n]] |= DEAD_BIT
        for plugin, _deps, bit in entry.filters:
            ok = plugin.filter(ctx, pod, table, rows)
            fails[:n] |= (~ok).astype(np.uint32) << np.uint32(bit)
        entry.fails = fails
        entry.raw = []
        for scorer, _deps, _w in entry.scorers:
            raw = np.zeros(cap, dtype=np.float64)
            raw[:n] = scorer.score(ctx, pod, table, rows)
            entry.raw.append(raw)
        entry.epoch = table.epoch
        entry.capacity = cap
        entry.node_pos = table.node_pos
        entry.pod_pos = table.pod_pos
        self._total_full(entry)
        entry.full_passes += 1

    def _total_full(self, entry: ClassEntry) -> None:
        n = self.table.n
        cap = self.table.capacity
        feasible = entry.fails[:n] == 0
        total = np.zeros(cap, dtype=np.float64)
        for (plugin, _deps, weight), raw in zip(entry.scorers, entry.raw, strict=True):
            if plugin.normalized:
                total[:n] += weight * plugin.normalize(raw[:n], feasible)  # type: ignore[attr-defined]
            else:
                total[:n] += weight * raw[:n]
        entry.total = total
        masked = np.full(cap, NEG_INF)
        masked[:n] = np.where(feasible, total[:n], NEG_INF)
        entry.masked = masked
        self._pick(entry)

    def _pick(self, entry: ClassEntry) -> None:
        n = self.table.n
        if n == 0:
            entry.best = -1
            return
        best = int(entry.masked[:n].argmax())
        entry.best = best if entry.masked[best] != NEG_INF else -1

    # -- incremental pass ------------------------------------------------------------------------

    def _refresh(self, entry: ClassEntry, pod: PodInfo) -> None:
        table = self.table
        if entry.epoch != table.epoch or entry.capacity != table.capacity:
            self._full(entry, pod)
            return
        node_changes = table.node_changes(entry.node_pos)
        pod_changes = table.pod_changes(entry.pod_pos)
        if node_changes is None or pod_changes is None:
            self._full(entry, pod)
            return
        if not node_changes and not pod_changes:
            return
        node_set: Set[int]
        all_set: Set[int]
        if node_changes:
            node_set = set(node_changes)
            all_set = node_set.union(pod_changes) if pod_changes else node_set
        else:
            node_set = _NO_ROWS
            all_set = set(pod_changes)
        if len(all_set) * FULL_FRACTION > table.n:
            self._full(entry, pod)
            return
        entry.node_pos = table.node_pos
        entry.pod_pos = table.pod_pos
        entry.row_passes += 1
        if len(all_set) <= SMALL:
            best = entry.best
            top = entry.masked.item(best) if best >= 0 else NEG_INF
            self._rows_scalar(entry, pod, sorted(all_set) if len(all_set) > 1 else all_set,
                              node_set)
            if not entry.volatile:
                self._pick_after(entry, all_set, best, top)
                return
        else:
            self._rows_vector(entry, pod, all_set, node_set)
        if entry.volatile:
            self._globals(entry, pod)
            self._total_full(entry)
        else:
            self._pick(entry)

    def _pick_after(self, entry: ClassEntry, rows: Iterable[int], best: int,
                    top: float) -> None:
        """:meth:`_pick` when only ``rows`` changed since ``best`` was picked, holding ``top``.

        ``best`` was the first row holding the maximum: rows before it hold less,
        rows after it at most as much.  So the pick is among ``best`` and the changed
        rows, unless none of them holds ``top`` any more at or before ``best`` — then
        it is the first later row holding ``top``, looked for in the next ``WINDOW``
        rows (pods spread over equal nodes fill them in row order) before a full pass.
        """
        n = self.table.n
        if best < 0 or best >= n or top == NEG_INF:
            self._pick(entry)
            return
        masked = entry.masked
        cand, value = best, masked.item(best)
        for r in rows:
            v = masked.item(r)
            if v > value or (v == value and r < cand):
                cand, value = r, v
        if value > top or (value == top and cand <= best):
            entry.best = cand
            return
        end = min(best + 1 + WINDOW, n)
        if end > best + 1:
            window = masked[best + 1:end]
            k = int(window.argmax())
            if window.item(k) == top:
                entry.best = best + 1 + k
                return
        self._pick(entry)

    def _rows_scalar(self, entry: ClassEntry, pod: PodInfo, rows: Iterable[int],
                     node_set: Set[int]) -> None:
        """Re-evaluate a few rows with scalar code (row-local plugins only)."""
        table = self.table
        ctx = entry.ctx
        valid = table.valid
        fails = entry.fails
        raws = entry.raw
        total = entry.total
        masked = entry.masked
        volatile = entry.volatile
        for r in rows:
            on_node = r in node_set
            f: int = fails.item(r)
            if on_node:
                f = f & ~DEAD if valid.item(r) else f | DEAD
            # A node change re-runs every row-local plugin, a pod change those that
            # depend on the node's pods.
            for plugin, _deps, flag, one in entry.row_filters if on_node else entry.pod_filters:
                ok = one(pod, table, r) if one is not None else \
                    bool(plugin.filter(ctx, pod, table, np.array([r]))[0])
                f = f & ~flag if ok else f | flag
            fails[r] = f
            for scorer, _deps, _w, one, i in entry.row_scorers if on_node else entry.pod_scorers:
                raws[i][r] = one(pod, table, r) if one is not None else \
                    float(scorer.score(ctx, pod, table, np.array([r]))[0])
            if not volatile:
                t = 0.0
                for weight, raw in zip(entry.weights, raws, strict=True):
                    t += weight * raw.item(r)
                total[r] = t
                masked[r] = t if f == 0 else NEG_INF

    def _rows_vector(self, entry: ClassEntry, pod: PodInfo, all_set: Set[int],
                     node_set: Set[int]) -> None:
        """Re-evaluate many rows with the plugins' vector code (row-local plugins only)."""
        table = self.table
        ctx = entry.ctx
        fails = entry.fails
        rows_all = np.fromiter(all_set, dtype=np.intp, count=len(all_set))
        rows_node = rows_all if len(node_set) == len(all_set) else \
            np.fromiter(node_set, dtype=np.intp, count=len(node_set))
        if node_set:
            dead = ~table.valid[rows_node]
            fails[rows_node] = np.where(dead, fails[rows_node] | DEAD_BIT,
                                        fails[rows_node] & ~DEAD_BIT)
        for plugin, deps, flag, _one in entry.row_filters:
            rows = rows_all if deps & LOCAL else rows_node
            if rows.shape[0] == 0:
                continue
            ok = plugin.filter(ctx, pod, table, rows)
            bit = np.uint32(flag)
            fails[rows] = np.where(ok, fails[rows] & ~bit, fails[rows] | bit)
        for scorer, deps, _w, _one, i in entry.row_scorers:
            rows = rows_all if deps & LOCAL else rows_node
            if rows.shape[0] == 0:
                continue
            entry.raw[i][rows] = scorer.score(ctx, pod, table, rows)
        if not entry.volatile:
            acc = np.zeros(rows_all.shape[0], dtype=np.float64)
            for (_plugin, _deps, weight), raw in zip(entry.scorers, entry.raw, strict=True):
                acc += weight * raw[rows_all]
            entry.total[rows_all] = acc
            entry.masked[rows_all] = np.where(fails[rows_all] == 0, acc, NEG_INF)

    def _globals(self, entry: ClassEntry, pod: PodInfo) -> None:
        """Re-run the plugins that depend on the whole cluster, on every row."""
        table = self.table
        n = table.n
        full = slice(0, n)
        ctx = entry.ctx
        fails = entry.fails
        for plugin, deps, bit in entry.filters:
            if deps & GLOBAL:
                ok = plugin.filter(ctx, pod, table, full)
                flag = np.uint32(1 << bit)
                fails[:n] = (fails[:n] & ~flag) | ((~ok).astype(np.uint32) << np.uint32(bit))
        for (scorer, deps, _w), raw in zip(entry.scorers, entry.raw, strict=True):
            if deps & GLOBAL:
                raw[:n] = scorer.score(ctx, pod, table, full)
