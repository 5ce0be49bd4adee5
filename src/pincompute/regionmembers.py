"""An embedded region's member clusters: their record in the host, their names, draining.

Theory of operation
-------------------
Which member clusters an embedded region has is recorded in one place, its host
cluster: one MemberCluster per member (connection ``Embedded``), the objects the
rest of the federation reads too.  On open the region reads that record
(:func:`registered`) and opens each cluster's store under
``<data dir>/members/<name>`` (:func:`store_path`; never a path read from the
object).  The command-line shape — zones times clusters per zone, :func:`initial` —
only seeds a host that has no member cluster at all, i.e. a first start: a region
grown or shrunk while it ran resumes as it was left, whatever the flags say.

Names are ``<zone>-<n>``, ``n`` from 1 (``zone-a-1``, ``zone-a-2``, ...).
:func:`next_name` takes the lowest ``n`` free of both a registered cluster and a
kept data directory, so a new cluster never picks up a removed one's data by
accident (naming it explicitly reopens that data).  :func:`sort_key` orders names
naturally: ``zone-a-2`` before ``zone-a-10``.

Removing a member drains it first.  :func:`mark_draining` puts the taint
:data:`~pincompute.model.wellknown.CLUSTER_DRAINING_TAINT` (``NoSchedule``) on
its MemberCluster, so the cluster scheduler places nothing new there, and the
condition ``Draining``; :class:`Leftovers`, fed by the member's own informers,
keeps what still runs there — objects of every workload kind
(:data:`MEMBER_WORKLOADS`), and pods other than finished ones and node daemons
(:func:`is_workload_pod`; daemons leave with their nodes) — and the region
waits for it to be empty before it takes the nodes away, then waits the same way
for the node pools and nodes to be gone.  Taint and condition are durable: a region
restarted in the middle of a removal reopens the cluster still draining.
"""

from __future__ import annotations

import asyncio
import heapq
import string
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pincompute.kube import names, objects
from pincompute.kube.errors import Conflict
from pincompute.kube.protocol import KubeClient
from pincompute.kube.wellknown import ZONE_LABEL
from pincompute.model.registry import MEMBER_RESOURCES, MEMBERCLUSTERS, WORKLOAD_RESOURCES
from pincompute.model.wellknown import (
    CLUSTER_DRAINING_TAINT,
    DAEMON_POD_LABEL,
    DATA_PATH_ANNOTATION,
    SYSTEM_NAMESPACE,
)
from pincompute.runtime.informer import FuncEventHandler, HandlerRegistration, SharedInformer

MEMBERS_DIR = "members"
"""Under the data directory: one store directory per member cluster."""
HOST = "host"
"""The host cluster's name (no member may take it)."""
DRAINING = "Draining"
"""The MemberCluster condition of a cluster being removed."""
EMBEDDED = "Embedded"
MAX_ZONES = len(string.ascii_lowercase)

MEMBER_WORKLOADS = tuple(r for r in WORKLOAD_RESOURCES if r in MEMBER_RESOURCES)
"""The workload kinds a member cluster stores (shards)."""
_FINISHED = ("Succeeded", "Failed")


@dataclass(frozen=True, slots=True)
class MemberRecord:
    """A member cluster of the region: its name and zone."""

    name: str
    zone: str


def zone_name(index: int) -> str:
    """The ``index``-th zone (from 0): ``zone-a``, ``zone-b``, ..."""
    return f"zone-{string.ascii_lowercase[index]}"


def initial(*, zones: int, clusters_per_zone: int) -> list[MemberRecord]:
    """The member clusters of a first start: ``clusters_per_zone`` in each of ``zones``."""
    if not 1 <= zones <= MAX_ZONES:
        raise ValueError(f"zones must be between 1 and {MAX_ZONES}")
    if clusters_per_zone < 1:
        raise ValueError("clusters_per_zone must be >= 1")
    return [MemberRecord(f"{zone_name(z)}-{n}", zone_name(z))
            for z in range(zones) for n in range(1, clusters_per_zone + 1)]


def store_path(data_dir: Path, name: str) -> Path:
    """Where the member cluster ``name`` keeps its store."""
    return data_dir / MEMBERS_DIR / name


def check_name(name: str, *, zone: str) -> None:
    """Refuse a member cluster name or zone that cannot be one (``ValueError``)."""
    problems = names.dns1123_label(name)
    if problems:
        raise ValueError(f"member cluster name {name!r}: {'; '.join(problems)}")
    if name == HOST:
        raise ValueError(f"{HOST!r} is the host cluster's name")
    problems = names.dns1123_label(zone)
    if problems:
        raise ValueError(f"zone {zone!r}: {'; '.join(problems)}")


def next_name(zone: str, *, taken: Collection[str], data_dir: Path) -> str:
    """The lowest free ``<zone>-<n>``: neither registered nor holding kept data."""
    n = 1
    while (name := f"{zone}-{n}") in taken or store_path(data_dir, name).exists():
        n += 1
    return name


def sort_key(name: str) -> tuple[str, int, str]:
    """Natural order of member names: ``zone-a-2`` before ``zone-a-10``."""
    head, _, tail = name.rpartition("-")
    return (head, int(tail), "") if head and tail.isdigit() else (name, 0, name)


def is_embedded(mc: dict[str, Any]) -> bool:
    return ((mc.get("spec") or {}).get("connection") or {}).get("type", EMBEDDED) == EMBEDDED


async def registered(host: KubeClient) -> list[MemberRecord]:
    """The embedded member clusters the host records, in natural order.

    MemberClusters of other connection types (real clusters) are the cluster set's
    alone: the region runs nothing for them.
    """
    records = [MemberRecord(objects.name_of(mc), (mc.get("spec") or {}).get("zone", ""))
               for mc in (await host.list(MEMBERCLUSTERS)).items
               if is_embedded(mc) and not objects.is_deleting(mc)]
    return sorted(records, key=lambda r: sort_key(r.name))


async def any_registered(host: KubeClient) -> bool:
    """Whether the host records any member cluster (of any connection type)."""
    return bool((await host.list(MEMBERCLUSTERS, limit=1)).items)


def membercluster(record: MemberRecord, *, region: str, path: Path) -> dict[str, Any]:
    """The MemberCluster object recording an embedded member."""
    return {"metadata": {"name": record.name, "labels": {ZONE_LABEL: record.zone},
                         "annotations": {DATA_PATH_ANNOTATION: str(path)}},
            "spec": {"zone": record.zone, "region": region, "connection": {"type": EMBEDDED}}}


def draining(mc: dict[str, Any]) -> bool:
    """Whether the MemberCluster carries the draining taint."""
    return any(t.get("key") == CLUSTER_DRAINING_TAINT and t.get("effect") == "NoSchedule"
               for t in (mc.get("spec") or {}).get("taints") or ())


async def mark_draining(host: KubeClient, name: str, *, message: str) -> None:
    """Taint the MemberCluster ``NoSchedule`` and set ``Draining`` (idempotent)."""
    while True:
        mc = await host.get(MEMBERCLUSTERS, name)
        if not draining(mc):
            mc = objects.deepcopy(mc)
            spec = mc.setdefault("spec", {})
            spec["taints"] = [*(spec.get("taints") or ()),
                              {"key": CLUSTER_DRAINING_TAINT, "effect": "NoSchedule"}]
            try:
                mc = await host.update(MEMBERCLUSTERS, mc)
            except Conflict:
                continue
        updated = objects.deepcopy(mc)
        if objects.set_condition(updated, DRAINING, True, reason="Removing", message=message):
            try:
                await host.update_status(MEMBERCLUSTERS, updated)
            except Conflict:
                continue
        return


def is_workload_pod(pod: Mapping[str, Any]) -> bool:
    """Whether a pod keeps its member cluster from being drained: a live pod of a
    project, not a node daemon (daemons leave with their nodes)."""
    md = pod.get("metadata") or {}
    return (md.get("namespace") != SYSTEM_NAMESPACE
            and DAEMON_POD_LABEL not in (md.get("labels") or {})
            and (pod.get("status") or {}).get("phase") not in _FINISHED)


def counts_all(_obj: Mapping[str, Any]) -> bool:
    return True


class Leftovers:
    """What still is in a member cluster, kept current by informer handlers.

    Each informer comes with a predicate saying which of its objects count; the
    set of counted keys is maintained per event (O(1) each), so waiting for a
    cluster of many pods to empty costs no scan.  :meth:`close` removes the
    handlers (the informers are the member's manager's: they stop with it).
    """

    def __init__(self, informers: Mapping[SharedInformer, Callable[[Mapping[str, Any]], bool]]
                 ) -> None:
        self._informers = dict(informers)
        self._left: set[str] = set()
        self._changed = asyncio.Event()
        self._registrations: list[HandlerRegistration] = []
        for informer, counts in self._informers.items():
            self._registrations.append(informer.add_event_handler(
                self._handler(informer.resource.plural, counts)))

    def _handler(self, plural: str, counts: Callable[[Mapping[str, Any]], bool]
                 ) -> FuncEventHandler:
        def seen(obj: Mapping[str, Any]) -> None:
            key = f"{plural}/{objects.key_of(obj)}"
            if counts(obj):
                self._left.add(key)
            else:
                self._left.discard(key)
            self._changed.set()

        def gone(obj: Mapping[str, Any]) -> None:
            self._left.discard(f"{plural}/{objects.key_of(obj)}")
            self._changed.set()

        return FuncEventHandler(add=seen, update=lambda _old, new: seen(new), delete=gone)

    async def wait_synced(self) -> None:
        """Until every informer has listed (bound it with ``asyncio.timeout``)."""
        for informer in self._informers:
            if not await informer.wait_synced():
                raise RuntimeError(f"the {informer.resource.plural} informer stopped")

    def names(self, *, limit: int = 5) -> list[str]:
        """Up to ``limit`` of what is left, as ``plural/namespace/name``, sorted."""
        return heapq.nsmallest(limit, self._left)

    def describe(self, *, limit: int = 5) -> str:
        """``"2 objects (pods/demo/a, pods/demo/b)"``: how many, and the first few."""
        n = len(self._left)
        more = ", ..." if n > limit else ""
        return f"{n} object{'' if n == 1 else 's'} ({', '.join(self.names(limit=limit))}{more})"

    def __len__(self) -> int:
        return len(self._left)

    async def wait_empty(self) -> None:
        """Until nothing counted is left (bound it with ``asyncio.timeout``)."""
        await self.wait_synced()
        while self._left:
            self._changed.clear()
            await self._changed.wait()

    def close(self) -> None:
        for registration in self._registrations:
            registration.remove()
        self._registrations.clear()


__all__ = [
    "DRAINING", "HOST", "MEMBERS_DIR", "MEMBER_WORKLOADS", "Leftovers", "MemberRecord",
    "any_registered", "check_name", "counts_all", "draining", "initial", "is_embedded",
    "is_workload_pod", "mark_draining", "membercluster", "next_name", "registered",
    "sort_key", "store_path", "zone_name",
]
