"""The node-state cache: every node as a row of numpy arrays, every pod accounted to one.

Theory of operation
-------------------
The scheduler decides against this table, never against the API directly.  It
is fed by the node and pod informers and by the scheduler itself, and it is the
one structure a decision reads, so the questions plugins ask ("which nodes have
room for 100m cpu?") are numpy expressions over whole columns.

**Rows.**  A node gets a row when it appears and keeps it until it is deleted
(freed rows are reused).  Columns: allocatable and requested cpu (millicores),
memory (bytes), GPUs and pods; ``unschedulable`` (cordon); taint bitsets (one bit
per distinct ``(key, value, effect)`` seen in the cluster, NoSchedule/NoExecute
and PreferNoSchedule kept apart); and, created on first use, one *label column*
per label key a selector asks about, holding an integer id per value (-1 when
the node lacks the label).  Nodes without ``kubernetes.io/hostname`` get their
name as that label, as kubelets set it.

**Pods.**  Every non-terminal pod bound to a node — or *assumed* onto one by the
scheduler before its binding is written — adds its requests to its row.
Assuming is what lets decisions run ahead of the API: the next decision already
sees the room the previous one took, so concurrent bindings never overcommit a
node.  The informer's later report of the bound pod *confirms* the assumption
(same node, same requests: nothing changes); a failed binding *forgets* it.
Pods bound to a node the table does not know yet wait in ``pending`` and are
accounted when the node arrives.

**Anti-affinity terms.**  Each distinct required anti-affinity term of a placed
pod is kept with the rows of the pods carrying it, so a newcomer is checked
against distinct terms (replicas share one), not against every such pod.

**Match counters.**  Spread constraints and anti-affinity terms need, per node,
how many pods match a (namespaces, selector) pair.  The first ask registers a
counter and scans the pods once; afterwards every pod added or removed updates
the registered counters, so the answer is always a ready column.

**Change logs.**  Each change to a row is appended to one of two logs: the
*node log* (the node object changed: labels, taints, allocatable, cordon) or
the *pod log* (the pods on it changed, or its nominations).  Consumers (the
equivalence-class cache) remember their position in each log and re-evaluate
only the rows logged since — after one binding, one row.  Changes that
invalidate everything (the arrays grew, a new taint appeared) bump ``epoch``.

**Nominations.**  A preemptor's nominated node holds the room its victims are
freeing: nominated pods are listed per row, and the resource filter counts them
against every pod of lower or equal priority, so freed room is not taken by a
pod that did not preempt for it.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from pincompute.kube.quantity import QuantityError
from pincompute.kube.selectors import LabelSelector

from . import labels as L
from .podinfo import PodInfo
from .resources import cpu_quantity, unit_quantity

Obj = dict[str, Any]
Rows = slice | np.ndarray

DEFAULT_PODS = 110
LOG_MAX = 16_384
MAX_COUNTERS = 128
EFFECTS_HARD = ("NoSchedule", "NoExecute")
SOFT = "PreferNoSchedule"


@dataclass(slots=True)
class PodEntry:
    info: PodInfo
    node_name: str
    row: int        # -1 while the node is unknown
    assumed: bool


@dataclass(slots=True)
class MatchCounter:
    namespaces: frozenset[str] | None
    selector: LabelSelector
    counts: np.ndarray
    last_used: int = 0

    def matches(self, info: PodInfo) -> bool:
        # Terminating pods are on their way out; spread and affinity do not count them.
        if info.deleting:
            return False
        if self.namespaces is not None and info.namespace not in self.namespaces:
            return False
        return self.selector.matches(info.labels)


@dataclass(frozen=True, slots=True)
class NodeFacts:
    """What the scheduler reads from a node object."""

    name: str
    labels: Mapping[str, str]
    cpu: int
    memory: int
    gpu: int
    pods: int
    unschedulable: bool
    taints: tuple[tuple[str, str, str], ...]

    @classmethod
    def from_node(cls, obj: Mapping[str, Any]) -> NodeFacts:
        md = obj.get("metadata") or {}
        spec = obj.get("spec") or {}
        status = obj.get("status") or {}
        name = md.get("name") or ""
        alloc = status.get("allocatable") or status.get("capacity") or {}
        try:
            cpu = cpu_quantity(alloc["cpu"], "cpu") if "cpu" in alloc else 0
            mem = unit_quantity(alloc["memory"], "memory") if "memory" in alloc else 0
            gpu = unit_quantity(alloc[L.GPU_RESOURCE], "gpu") if L.GPU_RESOURCE in alloc else 0
            pods = unit_quantity(alloc["pods"], "pods") if "pods" in alloc else DEFAULT_PODS
        except (QuantityError, ValueError):
            cpu = mem = gpu = pods = 0  # a node with unreadable capacity takes nothing
        node_labels: Mapping[str, str] = md.get("labels") or {}
        if L.HOSTNAME_LABEL not in node_labels:
            node_labels = {**node_labels, L.HOSTNAME_LABEL: name}
        taints = tuple((str(t.get("key") or ""), str(t.get("value") or ""),
                        str(t.get("effect") or "")) for t in spec.get("taints") or ())
        return cls(name, node_labels, cpu, mem, gpu, pods, bool(spec.get("unschedulable")),
                   taints)


class NodeTable:
    """Nodes as numpy rows plus the pods accounted to them (see module doc)."""

    def __init__(self, *, capacity: int = 64) -> None:
        self.capacity = 0
        self.n = 0            # rows ever used (high-water mark); arrays are valid up to n
        self.count = 0        # nodes present
        self.epoch = 0
        self.names: list[str] = []
        self.facts: list[NodeFacts | None] = []
        self.row_of: dict[str, int] = {}
        self._free: list[int] = []
        self.valid = np.zeros(0, dtype=bool)
        self.alloc_cpu = np.zeros(0, dtype=np.int64)
        self.alloc_mem = np.zeros(0, dtype=np.int64)
        self.alloc_gpu = np.zeros(0, dtype=np.int64)
        self.alloc_pods = np.zeros(0, dtype=np.int64)
        self.req_cpu = np.zeros(0, dtype=np.int64)
        self.req_mem = np.zeros(0, dtype=np.int64)
        self.req_gpu = np.zeros(0, dtype=np.int64)
        self.req_pods = np.zeros(0, dtype=np.int64)
        self.unschedulable = np.zeros(0, dtype=bool)
        self.words = 1
        self.hard_taints = np.zeros((0, 1), dtype=np.uint64)
        self.soft_taints = np.zeros((0, 1), dtype=np.uint64)
        self.taint_list: list[tuple[str, str, str]] = []
        self._taint_ids: dict[tuple[str, str, str], int] = {}
        self.soft_taint_nodes = 0  # nodes carrying any PreferNoSchedule taint
        self._columns: dict[str, np.ndarray] = {}
        self._value_ids: dict[str, dict[str, int]] = {}
        self._value_names: dict[str, list[str]] = {}
        self._numeric: dict[str, np.ndarray] = {}
        self._node_log: list[int] = []
        self._node_base = 0
        self._pod_log: list[int] = []
        self._pod_base = 0
        self.pods: dict[str, PodEntry] = {}
        self.pods_on: list[dict[str, PodInfo]] = []
        self.pending: dict[str, dict[str, PodInfo]] = {}
        self.groups: dict[str, set[str]] = {}
        self.anti_version = 0  # bumped whenever anti_terms changes
        # Required anti-affinity terms of placed pods -> {row: pods with that term there}.
        # Replicas share terms, so symmetry checks walk distinct terms, not pods.
        self.anti_terms: dict[Any, dict[int, int]] = {}
        self._counters: dict[tuple[Any, str], MatchCounter] = {}
        self._counter_clock = 0
        self.nominated: dict[str, tuple[PodInfo, str]] = {}
        self.nominated_on: dict[int, dict[str, PodInfo]] = {}
        self._grow(max(capacity, 1))

    # -- logs --------------------------------------------------------------------------------

    @property
    def node_pos(self) -> int:
        return self._node_base + len(self._node_log)

    @property
    def pod_pos(self) -> int:
        return self._pod_base + len(self._pod_log)

    def node_changes(self, since: int) -> list[int] | None:
        """Rows whose node changed after position ``since``; None if the log no longer reaches."""
        if since < self._node_base:
            return None
        return self._node_log[since - self._node_base:]

    def pod_changes(self, since: int) -> list[int] | None:
        """Rows whose pods (or nominations) changed after ``since``; None if out of reach."""
        if since < self._pod_base:
            return None
        return self._pod_log[since - self._pod_base:]

    def _log_node(self, row: int) -> None:
        log = self._node_log
        log.append(row)
        if len(log) > LOG_MAX:
            half = len(log) // 2
            del log[:half]
            self._node_base += half

    def _log_pod(self, row: int) -> None:
        log = self._pod_log
        log.append(row)
        if len(log) > LOG_MAX:
            half = len(log) // 2
            del log[:half]
            self._pod_base += half

    # -- arrays ------------------------------------------------------------------------------

    def _grow(self, capacity: int) -> None:
        def grown(a: np.ndarray) -> np.ndarray:
            b = np.zeros((capacity, *a.shape[1:]), dtype=a.dtype)
            b[: a.shape[0]] = a
            return b

        for name in ("valid", "alloc_cpu", "alloc_mem", "alloc_gpu", "alloc_pods", "req_cpu",
                     "req_mem", "req_gpu", "req_pods", "unschedulable", "hard_taints",
                     "soft_taints"):
            setattr(self, name, grown(getattr(self, name)))
        for key, col in list(self._columns.items()):
            b = np.full(capacity, -1, dtype=np.int32)
            b[: col.shape[0]] = col
            self._columns[key] = b
        for counter in self._counters.values():
            counter.counts = grown(counter.counts)
        extra = capacity - self.capacity
        self.names.extend([""] * extra)
        self.facts.extend([None] * extra)
        self.pods_on.extend({} for _ in range(extra))
        self.capacity = capacity
        self.epoch += 1

    def _taint_id(self, taint: tuple[str, str, str]) -> int:
        tid = self._taint_ids.get(taint)
        if tid is None:
            tid = len(self.taint_list)
            self._taint_ids[taint] = tid
            self.taint_list.append(taint)
            if tid >= self.words * 64:
                self.words += 1
                for name in ("hard_taints", "soft_taints"):
                    a = getattr(self, name)
                    b = np.zeros((a.shape[0], self.words), dtype=np.uint64)
                    b[:, : a.shape[1]] = a
                    setattr(self, name, b)
            # Cached toleration masks do not know the new bit: start over.
            self.epoch += 1
        return tid

    def taint_mask(self, tolerated: Iterable[int]) -> np.ndarray:
        """A bitset (one uint64 per word) with the given taint ids set."""
        mask = np.zeros(self.words, dtype=np.uint64)
        for tid in tolerated:
            mask[tid // 64] |= np.uint64(1 << (tid % 64))
        return mask

    # -- label columns -------------------------------------------------------------------------

    def column(self, key: str) -> np.ndarray:
        """The value-id column of label ``key`` (-1 where a node lacks it); built on first use."""
        col = self._columns.get(key)
        if col is None:
            col = np.full(self.capacity, -1, dtype=np.int32)
            ids = self._value_ids.setdefault(key, {})
            names = self._value_names.setdefault(key, [])
            for row in range(self.n):
                facts = self.facts[row]
                if facts is not None:
                    value = facts.labels.get(key)
                    if value is not None:
                        vid = ids.get(value)
                        if vid is None:
                            vid = ids[value] = len(names)
                            names.append(value)
                        col[row] = vid
            self._columns[key] = col
        return col

    def value_id(self, key: str, value: str) -> int:
        """The id of ``value`` in column ``key`` (-2, matching no row, if no node has it)."""
        self.column(key)
        return self._value_ids[key].get(value, -2)

    def value_names(self, key: str) -> list[str]:
        self.column(key)
        return self._value_names[key]

    def numeric_column(self, key: str, rows: Rows) -> np.ndarray:
        """Label ``key`` as numbers for ``rows`` (NaN where absent or not an integer)."""
        col = self.column(key)
        names = self._value_names[key]
        table = self._numeric.get(key)
        if table is None or table.shape[0] != len(names) + 1:
            vals = []
            for v in names:
                try:
                    vals.append(float(int(v)))
                except ValueError:
                    vals.append(np.nan)
            vals.append(np.nan)  # index -1 (absent) lands here
            table = np.array(vals, dtype=np.float64)
            self._numeric[key] = table
        return table[col[rows]]

    def _set_labels(self, row: int, node_labels: Mapping[str, str]) -> None:
        for key, col in self._columns.items():
            value = node_labels.get(key)
            if value is None:
                col[row] = -1
                continue
            ids = self._value_ids[key]
            vid = ids.get(value)
            if vid is None:
                names = self._value_names[key]
                vid = ids[value] = len(names)
                names.append(value)
            col[row] = vid

    # -- nodes ---------------------------------------------------------------------------------

    def upsert_node(self, obj: Mapping[str, Any]) -> tuple[int, set[str]]:
        """Add or update a node; returns its row and what changed (for queueing hints).

        Changes: ``add``, ``allocatable``, ``labels``, ``taints``, ``unschedulable``;
        an empty set means nothing the scheduler reads changed (a heartbeat).
        """
        facts = NodeFacts.from_node(obj)
        row = self.row_of.get(facts.name)
        changed: set[str]
        if row is None:
            if self._free:
                row = self._free.pop()
            else:
                if self.n >= self.capacity:
                    self._grow(self.capacity * 2)
                row = self.n
                self.n += 1
            self.row_of[facts.name] = row
            self.names[row] = facts.name
            self.valid[row] = True
            self.count += 1
            old = None
            changed = {"add"}
        else:
            old = self.facts[row]
            assert old is not None
            changed = set()
            if (old.cpu, old.memory, old.gpu, old.pods) != \
                    (facts.cpu, facts.memory, facts.gpu, facts.pods):
                changed.add("allocatable")
            if old.labels != facts.labels:
                changed.add("labels")
            if old.taints != facts.taints:
                changed.add("taints")
            if old.unschedulable != facts.unschedulable:
                changed.add("unschedulable")
            if not changed:
                self.facts[row] = facts
                return row, changed
        self.facts[row] = facts
        self.alloc_cpu[row] = facts.cpu
        self.alloc_mem[row] = facts.memory
        self.alloc_gpu[row] = facts.gpu
        self.alloc_pods[row] = facts.pods
        self.unschedulable[row] = facts.unschedulable
        if old is None or "labels" in changed:
            self._set_labels(row, facts.labels)
        if old is None or "taints" in changed:
            had_soft = bool(self.soft_taints[row].any())
            hard = [0] * self.words
            soft = [0] * self.words
            for taint in facts.taints:
                tid = self._taint_id(taint)
                if len(hard) < self.words:
                    hard.extend([0] * (self.words - len(hard)))
                    soft.extend([0] * (self.words - len(soft)))
                if taint[2] == SOFT:
                    soft[tid // 64] |= 1 << (tid % 64)
                elif taint[2] in EFFECTS_HARD:
                    hard[tid // 64] |= 1 << (tid % 64)
            self.hard_taints[row] = np.array(hard, dtype=np.uint64)
            self.soft_taints[row] = np.array(soft, dtype=np.uint64)
            has_soft = any(soft)
            if has_soft != had_soft:
                self.soft_taint_nodes += 1 if has_soft else -1
                # Plugins skip soft-taint scoring while no node has one: that changed.
                self.epoch += 1
        self._log_node(row)
        if old is None:
            waiting = self.pending.pop(facts.name, None)
            if waiting:
                for uid, info in waiting.items():
                    entry = self.pods.get(uid)
                    if entry is not None:
                        entry.row = row
                        self._account(info, row, 1)
        return row, changed

    def remove_node(self, name: str) -> bool:
        row = self.row_of.pop(name, None)
        if row is None:
            return False
        facts = self.facts[row]
        if facts is not None and any(t[2] == SOFT for t in facts.taints):
            self.soft_taint_nodes -= 1
            self.epoch += 1
        # Pods still bound to the vanished node wait, unaccounted, for it to come back.
        for uid, info in list(self.pods_on[row].items()):
            self._account(info, row, -1)
            entry = self.pods.get(uid)
            if entry is not None:
                entry.row = -1
                self.pending.setdefault(name, {})[uid] = info
        for uid in list(self.nominated_on.get(row, {})):
            self.clear_nomination(uid)
        self.valid[row] = False
        self.facts[row] = None
        self.names[row] = ""
        for a in (self.alloc_cpu, self.alloc_mem, self.alloc_gpu, self.alloc_pods,
                  self.req_cpu, self.req_mem, self.req_gpu, self.req_pods):
            a[row] = 0
        self.unschedulable[row] = False
        self.hard_taints[row] = 0
        self.soft_taints[row] = 0
        for col in self._columns.values():
            col[row] = -1
        self.count -= 1
        self._free.append(row)
        self._log_node(row)
        return True

    def node_rows(self) -> np.ndarray:
        """Rows of present nodes."""
        return np.flatnonzero(self.valid[: self.n])

    # -- pods ----------------------------------------------------------------------------------

    def _account(self, info: PodInfo, row: int, sign: int) -> None:
        # Element by element with Python ints (numpy's scalar ``+=`` costs three times more).
        req = self.req_cpu
        req[row] = req.item(row) + sign * info.cpu
        req = self.req_mem
        req[row] = req.item(row) + sign * info.memory
        if info.gpu:
            req = self.req_gpu
            req[row] = req.item(row) + sign * info.gpu
        req = self.req_pods
        req[row] = req.item(row) + sign
        on = self.pods_on[row]
        if sign > 0:
            on[info.uid] = info
        else:
            on.pop(info.uid, None)
        if self._counters:
            for counter in self._counters.values():
                if counter.matches(info):
                    counter.counts[row] += sign
        if info.anti_required and not info.deleting:
            for term in info.anti_required:
                rows = self.anti_terms.setdefault(term, {})
                left = rows.get(row, 0) + sign
                if left > 0:
                    rows[row] = left
                else:
                    rows.pop(row, None)
                    if not rows:
                        del self.anti_terms[term]
            self.anti_version += 1
        self._log_pod(row)

    def _index(self, info: PodInfo, sign: int) -> None:
        if info.group:
            members = self.groups.setdefault(info.group, set())
            if sign > 0:
                members.add(info.uid)
            else:
                members.discard(info.uid)
                if not members:
                    del self.groups[info.group]

    def add_pod(self, info: PodInfo, node_name: str, *, assumed: bool) -> None:
        """Account a pod to a node (bound, or assumed by the scheduler); idempotent."""
        entry = self.pods.get(info.uid)
        if entry is not None:
            if entry.node_name == node_name and _same_accounting(entry.info, info):
                # The informer confirming what we assumed, or a status-only change.
                entry.assumed = entry.assumed and assumed
                if entry.row >= 0:
                    self.pods_on[entry.row][info.uid] = info
                else:
                    self.pending[node_name][info.uid] = info
                entry.info = info
                return
            self.remove_pod(info.uid)
        row = self.row_of.get(node_name, -1)
        self.pods[info.uid] = PodEntry(info, node_name, row, assumed)
        self._index(info, 1)
        if row < 0:
            self.pending.setdefault(node_name, {})[info.uid] = info
        else:
            self._account(info, row, 1)
        if info.uid in self.nominated:
            self.clear_nomination(info.uid)

    def remove_pod(self, uid: str) -> PodEntry | None:
        """Stop accounting a pod (deleted, finished, or a forgotten assumption)."""
        entry = self.pods.pop(uid, None)
        if entry is None:
            return None
        self._index(entry.info, -1)
        if entry.row >= 0:
            self._account(entry.info, entry.row, -1)
        else:
            waiting = self.pending.get(entry.node_name)
            if waiting is not None:
                waiting.pop(uid, None)
                if not waiting:
                    del self.pending[entry.node_name]
        return entry

    def is_assumed(self, uid: str) -> bool:
        entry = self.pods.get(uid)
        return entry is not None and entry.assumed

    def pods_on_row(self, row: int) -> Iterator[PodInfo]:
        return iter(self.pods_on[row].values())

    # -- nominations ---------------------------------------------------------------------------

    def nominate(self, info: PodInfo, node_name: str) -> None:
        """Hold room on ``node_name`` for a preemptor while its victims terminate."""
        current = self.nominated.get(info.uid)
        if current is not None and current[1] == node_name:
            self.nominated[info.uid] = (info, node_name)
            row = self.row_of.get(node_name)
            if row is not None:
                self.nominated_on.setdefault(row, {})[info.uid] = info
            return
        self.clear_nomination(info.uid)
        if info.uid in self.pods:
            return  # already placed: nothing to hold
        row = self.row_of.get(node_name)
        if row is None:
            return
        self.nominated[info.uid] = (info, node_name)
        self.nominated_on.setdefault(row, {})[info.uid] = info
        self._log_pod(row)

    def clear_nomination(self, uid: str) -> None:
        got = self.nominated.pop(uid, None)
        if got is None:
            return
        row = self.row_of.get(got[1])
        if row is not None:
            on = self.nominated_on.get(row)
            if on is not None:
                on.pop(uid, None)
                if not on:
                    del self.nominated_on[row]
            self._log_pod(row)

    def nominated_extra(self, rows: np.ndarray, priority: int, exclude: str = "",
                        ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None:
        """Requests of nominated pods of priority >= ``priority`` on ``rows`` (None if none)."""
        if not self.nominated_on:
            return None
        cpu = np.zeros(rows.shape[0], dtype=np.int64)
        mem = np.zeros_like(cpu)
        gpu = np.zeros_like(cpu)
        pods = np.zeros_like(cpu)
        hit = False
        position = {int(r): i for i, r in enumerate(rows)} \
            if len(self.nominated_on) * 4 < rows.shape[0] else None
        for row, noms in self.nominated_on.items():
            if position is not None:
                i = position.get(row)
                if i is None:
                    continue
                idx: Any = i
            else:
                found = np.flatnonzero(rows == row)
                if found.shape[0] == 0:
                    continue
                idx = found
            for uid, info in noms.items():
                if uid == exclude or info.priority < priority:
                    continue
                cpu[idx] += info.cpu
                mem[idx] += info.memory
                gpu[idx] += info.gpu
                pods[idx] += 1
                hit = True
        return (cpu, mem, gpu, pods) if hit else None

    def nominated_row(self, row: int, priority: int, exclude: str = "",
                      ) -> tuple[int, int, int, int]:
        """Scalar :meth:`nominated_extra` for one row."""
        cpu = mem = gpu = pods = 0
        for uid, info in self.nominated_on.get(row, {}).items():
            if uid != exclude and info.priority >= priority:
                cpu += info.cpu
                mem += info.memory
                gpu += info.gpu
                pods += 1
        return cpu, mem, gpu, pods

    # -- match counters --------------------------------------------------------------------------

    def match_counts(self, namespaces: frozenset[str] | None,
                     selector: LabelSelector) -> np.ndarray:
        """Per row, how many accounted pods in ``namespaces`` match ``selector`` (kept current)."""
        key = (tuple(sorted(namespaces)) if namespaces is not None else None, str(selector))
        self._counter_clock += 1
        counter = self._counters.get(key)
        if counter is None:
            if len(self._counters) >= MAX_COUNTERS:
                oldest = min(self._counters, key=lambda k: self._counters[k].last_used)
                del self._counters[oldest]
            counter = MatchCounter(namespaces, selector, np.zeros(self.capacity, dtype=np.int64))
            for entry in self.pods.values():
                if entry.row >= 0 and counter.matches(entry.info):
                    counter.counts[entry.row] += 1
            self._counters[key] = counter
        counter.last_used = self._counter_clock
        return counter.counts

    # -- summaries (tests, metrics) ------------------------------------------------------------

    def overcommitted(self) -> list[str]:
        """Names of nodes whose accounted requests exceed what they can hold (should be none)."""
        n = self.n
        bad = self.valid[:n] & ((self.req_cpu[:n] > self.alloc_cpu[:n])
                                | (self.req_mem[:n] > self.alloc_mem[:n])
                                | (self.req_gpu[:n] > self.alloc_gpu[:n])
                                | (self.req_pods[:n] > self.alloc_pods[:n]))
        return [self.names[int(r)] for r in np.flatnonzero(bad)]


def _same_accounting(a: PodInfo, b: PodInfo) -> bool:
    return (a.cpu == b.cpu and a.memory == b.memory and a.gpu == b.gpu and a.labels == b.labels
            and a.group == b.group and bool(a.anti_required) == bool(b.anti_required)
            and a.namespace == b.namespace and a.deleting == b.deleting)
