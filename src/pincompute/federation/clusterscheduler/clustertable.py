"""The member clusters as rows of numpy arrays: what every decision reads.

Theory of operation
-------------------
The cluster scheduler decides against this table, fed with MemberCluster
objects (:meth:`ClusterTable.upsert`, :meth:`ClusterTable.remove`) by whoever
watches them, and never against the API directly.  A cluster gets a row when it
first appears and keeps it until removed (freed rows are reused).

**Columns.**  Per row and per tier (``reserved``, ``ondemand``,
``preemptible``) and resource (:mod:`.resources` dimensions): allocatable,
used (allocated + allocating, as the member reports them) and the largest
node's allocatable, from ``status.tiers``; ``has_pool`` says which tiers the
cluster reported a pool for.  A cluster that reports no per-tier summary is
*pooled*: its cluster-wide figures (``status.allocatable`` /
``allocated`` / ``allocating``, else the capacity ``spec.capacity`` declares)
stand for every tier, in the ``tot_*`` columns.  ``resv`` holds what
decisions have promised but the member does not report yet (kept in step by
:class:`~.assume.AssumeCache`).  Also the zone id, the cost weight and whether
the cluster is healthy (computed once per status change: conditions, health,
``spec.unschedulable``).

**Free room** for a tier (:meth:`ClusterTable.free`) is
``allocatable - used - reserved`` of the tier's pools; preemptible work also
borrows whatever the other tiers leave idle (DESIGN §7), so its free room is
its own pool's plus the others' idle room.  Pooled rows count every tier
against the cluster-wide figures.

**Facts.**  Spec-only facts (labels with the implied zone, region and cluster
name labels; taints; hardware names; supported kinds) stay Python objects per
row, read by the spec-only filters whose answers the scheduler caches until
:attr:`ClusterTable.spec_epoch` changes.  Status-only changes (resources,
health) do not move the epoch: they change columns that every decision reads
afresh.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from pincompute.kube.wellknown import REGION_LABEL, ZONE_LABEL
from pincompute.model.wellknown import CLUSTER_NAME_LABEL, TIERS

from .resources import NDIMS, UNLIMITED, allocatable_vector, figures_vector

NTIERS = len(TIERS)
PREEMPTIBLE = TIERS.index("preemptible")
EMPTY: Mapping[str, Any] = {}


@dataclass(frozen=True, slots=True)
class ClusterFacts:
    """The spec-side facts of one cluster (Python objects, for spec-only filters)."""

    name: str
    zone: str
    region: str
    labels: Mapping[str, str]
    taints: tuple[Mapping[str, Any], ...]
    hardware: frozenset[str]
    kinds: frozenset[str] | None
    unhealthy: str
    """Why the cluster takes no new placements ("" when healthy)."""


def health_problem(obj: Mapping[str, Any]) -> str:
    """Why a MemberCluster must not get new placements, or "" (the ClusterHealthy rule)."""
    spec = obj.get("spec") or EMPTY
    if spec.get("unschedulable"):
        return "cluster is unschedulable (spec.unschedulable)"
    status = obj.get("status") or EMPTY
    for cond in status.get("conditions") or ():
        kind = cond.get("type")
        if kind in ("Ready", "Reachable", "Connected") and cond.get("status") != "True":
            why = cond.get("reason") or cond.get("message") or cond.get("status")
            return f"cluster condition {kind} is {cond.get('status')} ({why})"
    if status.get("health") == "Unhealthy":
        return "cluster health is Unhealthy"
    return ""


class ClusterTable:
    """Member clusters as numpy rows (see the module docstring)."""

    def __init__(self, *, capacity: int = 128) -> None:
        self.cap = 0
        self.names: list[str | None] = []
        self.facts: list[ClusterFacts | None] = []
        self.index: dict[str, int] = {}
        self._free_rows: list[int] = []
        self.zones: list[str] = []
        self._zone_ids: dict[str, int] = {}
        self.spec_epoch = 0
        self.count = 0
        self._grow(capacity)

    # --- storage -------------------------------------------------------------------------------

    def _grow(self, cap: int) -> None:
        old = self.cap

        def grow(a: np.ndarray | None, shape: tuple[int, ...], dtype: Any, fill: Any = 0
                 ) -> np.ndarray:
            new = np.full((cap, *shape), fill, dtype=dtype)
            if a is not None:
                new[:old] = a
            return new

        g = getattr
        self.live = grow(g(self, "live", None), (), bool)
        self.healthy = grow(g(self, "healthy", None), (), bool)
        self.pooled = grow(g(self, "pooled", None), (), bool)
        self.zone_id = grow(g(self, "zone_id", None), (), np.int32, -1)
        self.cost = grow(g(self, "cost", None), (), np.float64, 1.0)
        self.incarnation = grow(g(self, "incarnation", None), (), np.int64)
        self.has_pool = grow(g(self, "has_pool", None), (NTIERS,), bool)
        self.alloc = grow(g(self, "alloc", None), (NTIERS, NDIMS), np.int64)
        self.used = grow(g(self, "used", None), (NTIERS, NDIMS), np.int64)
        self.largest = grow(g(self, "largest", None), (NTIERS, NDIMS), np.int64)
        self.resv = grow(g(self, "resv", None), (NTIERS, NDIMS), np.int64)
        self.tot_alloc = grow(g(self, "tot_alloc", None), (NDIMS,), np.int64)
        self.tot_used = grow(g(self, "tot_used", None), (NDIMS,), np.int64)
        self.tot_largest = grow(g(self, "tot_largest", None), (NDIMS,), np.int64)
        self.names.extend([None] * (cap - old))
        self.facts.extend([None] * (cap - old))
        self._free_rows.extend(range(cap - 1, old - 1, -1))
        self.cap = cap
        self.spec_epoch += 1

    def _zone(self, zone: str) -> int:
        zid = self._zone_ids.get(zone)
        if zid is None:
            zid = self._zone_ids[zone] = len(self.zones)
            self.zones.append(zone)
        return zid

    # --- feeding -------------------------------------------------------------------------------

    def upsert(self, obj: Mapping[str, Any]) -> int:
        """Add or update a cluster from its MemberCluster object; returns its row."""
        meta = obj.get("metadata") or EMPTY
        name = meta["name"]
        row = self.index.get(name)
        if row is None:
            if not self._free_rows:
                self._grow(max(8, self.cap * 2))
            row = self._free_rows.pop()
            self.index[name] = row
            self.names[row] = name
            self.live[row] = True
            self.incarnation[row] += 1
            self.resv[row] = 0
            self.count += 1
        spec = obj.get("spec") or EMPTY
        status = obj.get("status") or EMPTY
        zone = spec.get("zone", "")
        region = spec.get("region") or ""
        labels = dict(meta.get("labels") or EMPTY)
        labels[ZONE_LABEL] = zone
        if region:
            labels[REGION_LABEL] = region
        labels[CLUSTER_NAME_LABEL] = name
        kinds = spec.get("supportedKinds")
        facts = ClusterFacts(
            name=name, zone=zone, region=region, labels=labels,
            taints=tuple(spec.get("taints") or ()),
            hardware=frozenset(h["name"] for h in spec.get("hardware") or ()),
            kinds=frozenset(kinds) if kinds is not None else None,
            unhealthy=health_problem(obj))
        old = self.facts[row]
        if old is None or _spec_part(old) != _spec_part(facts):
            self.spec_epoch += 1
        self.facts[row] = facts
        self.zone_id[row] = self._zone(zone)
        self.healthy[row] = not facts.unhealthy
        cost = spec.get("costWeight")
        self.cost[row] = 1.0 if cost is None else float(cost)
        self._set_resources(row, spec, status)
        return row

    def _set_resources(self, row: int, spec: Mapping[str, Any], status: Mapping[str, Any]
                       ) -> None:
        tiers = status.get("tiers")
        self.has_pool[row] = False
        self.alloc[row] = 0
        self.used[row] = 0
        self.largest[row] = 0
        if tiers is not None:
            self.pooled[row] = False
            for t, tier in enumerate(TIERS):
                summary = tiers.get(tier)
                if summary is None:
                    continue
                self.has_pool[row, t] = True
                self.alloc[row, t] = allocatable_vector(summary.get("allocatable"))
                self.used[row, t] = (figures_vector(summary.get("allocated"), missing=0)
                                     + figures_vector(summary.get("allocating"), missing=0))
                self.largest[row, t] = figures_vector(summary.get("largestNode"), missing=0)
            self.tot_alloc[row] = 0
            self.tot_used[row] = 0
            self.tot_largest[row] = self.largest[row].max(axis=0)
            return
        self.pooled[row] = True
        allocatable = status.get("allocatable")
        if allocatable is not None:
            self.tot_alloc[row] = allocatable_vector(allocatable)
            self.tot_used[row] = (figures_vector(status.get("allocated"), missing=0)
                                  + figures_vector(status.get("allocating"), missing=0))
        elif spec.get("capacity") is not None:
            self.tot_alloc[row] = allocatable_vector(spec["capacity"])
            self.tot_used[row] = 0
        else:
            # Nothing known: the cluster holds nothing until its figures arrive.
            self.tot_alloc[row] = 0
            self.tot_used[row] = 0
        self.tot_largest[row] = 0

    def remove(self, name: str) -> None:
        row = self.index.pop(name, None)
        if row is None:
            return
        self.names[row] = None
        self.facts[row] = None
        self.live[row] = False
        self.healthy[row] = False
        self.has_pool[row] = False
        self.pooled[row] = False
        for a in (self.alloc, self.used, self.largest, self.resv, self.tot_alloc,
                  self.tot_used, self.tot_largest):
            a[row] = 0
        self._free_rows.append(row)
        self.count -= 1
        self.spec_epoch += 1

    # --- reading -------------------------------------------------------------------------------

    def rows(self) -> np.ndarray:
        """The rows in use, ascending."""
        return np.flatnonzero(self.live)

    def free(self, tier: int, rows: np.ndarray | slice = slice(None)) -> np.ndarray:
        """Free room per row for ``tier`` (shape (len(rows), DIMS)); see the module doc."""
        alloc = self.alloc[rows]
        left = alloc - self.used[rows] - self.resv[rows]
        if tier == PREEMPTIBLE:
            tiered = left[:, PREEMPTIBLE].copy()
            for t in range(NTIERS):
                if t != PREEMPTIBLE:
                    tiered += np.maximum(left[:, t], 0)
        else:
            tiered = left[:, tier]
        pooled = self.pooled[rows]
        if not pooled.any():
            return tiered
        shared = self.tot_alloc[rows] - self.tot_used[rows] - self.resv[rows].sum(axis=1)
        return np.where(pooled[:, None], shared, tiered)

    def largest_node(self, tier: int, rows: np.ndarray | slice = slice(None)) -> np.ndarray:
        """The largest node's allocatable per row for ``tier`` (0: unknown, not checked)."""
        if tier == PREEMPTIBLE:
            tiered = self.largest[rows].max(axis=1)
        else:
            tiered = self.largest[rows, tier]
        return np.where(self.pooled[rows][:, None], self.tot_largest[rows], tiered)

    def capacity(self, tier: int, rows: np.ndarray | slice = slice(None)) -> np.ndarray:
        """Allocatable per row for ``tier`` (scores compare free room with it)."""
        if tier == PREEMPTIBLE:
            tiered = np.minimum(self.alloc[rows].sum(axis=1), UNLIMITED)
        else:
            tiered = self.alloc[rows, tier]
        return np.where(self.pooled[rows][:, None], self.tot_alloc[rows], tiered)

    def row_of(self, name: str) -> int | None:
        return self.index.get(name)

    def __iter__(self) -> Iterator[str]:
        return iter(self.index)

    def __len__(self) -> int:
        return self.count


def _spec_part(f: ClusterFacts) -> tuple[Any, ...]:
    return (f.zone, f.region, f.labels, f.taints, f.hardware, f.kinds)
