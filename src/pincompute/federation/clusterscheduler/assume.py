"""Capacity promised to decisions the members do not report yet: the assume cache.

Theory of operation
-------------------
A decision is written to the workload's status long before its shards' pods
exist in the member clusters, and the members' resource summaries
(``status.tiers`` of the MemberClusters) count a pod only once it exists.  In
between, a second decision reading the same summaries would see the room the
first one took as free — the overcommit Karmada's users keep hitting
(karmada#1385, #6783).  So each decision *reserves* what it places, as the pod
scheduler assumes a pod onto a node before its binding is written:

* :meth:`AssumeCache.reserve` records, per workload uid, the clusters and
  replicas of its decision and adds their requests to the table's ``resv``
  column of the workload's tier.  A new decision for the same uid *supersedes*
  the old one (its reservation is taken back first).
* :meth:`AssumeCache.confirm` says that the member now reports ``replicas`` of
  the uid's shard in a cluster (in its allocated or allocating figures, read
  into the table): those leave the reservation, which keeps only the rest.
  Call it with the member's summary already fed to the table, or the room is
  counted twice for a moment (harmless) — never before, or it is counted not at
  all for that moment.
* :meth:`AssumeCache.forget` drops the uid (the workload was deleted).

A reservation belongs to a row *incarnation*: a cluster removed and added again
starts with nothing reserved, and the old entries are not taken back from it.

For a later decision of the same workload, :meth:`AssumeCache.own` returns what
the workload already holds on each cluster (reserved or confirmed): that room
is the workload's own, free to it though not to others.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

import numpy as np

from .clustertable import ClusterTable


@dataclass(slots=True)
class _Share:
    row: int
    tier: int
    incarnation: int
    assigned: int
    confirmed: int
    amount: np.ndarray   # the requests of all ``assigned`` replicas
    held: np.ndarray     # what is in the table's resv column now


@dataclass(slots=True)
class _Entry:
    shares: dict[str, _Share] = field(default_factory=dict)


class AssumeCache:
    """Reservations by workload uid, applied to a :class:`ClusterTable` (see module doc)."""

    def __init__(self, table: ClusterTable) -> None:
        self.table = table
        self._entries: dict[str, _Entry] = {}
        self.lock = threading.RLock()

    def __contains__(self, uid: object) -> bool:
        return uid in self._entries

    def __len__(self) -> int:
        return len(self._entries)

    def reserve(self, uid: str, *, tier: int, per_replica: np.ndarray,
                placements: dict[str, int], whole: np.ndarray | None = None) -> None:
        """Reserve ``placements`` (cluster → replicas) for ``uid``, superseding its last
        decision.  ``whole`` is the amount of all replicas when the workload goes to one
        cluster (a training job's roles differ), else replicas x ``per_replica``."""
        with self.lock:
            old = self._entries.pop(uid, None)
            confirmed: dict[str, int] = {}
            if old is not None:
                for name, share in old.shares.items():
                    self._release(share)
                    confirmed[name] = share.confirmed
            entry = _Entry()
            for name, replicas in placements.items():
                row = self.table.row_of(name)
                if row is None or replicas <= 0:
                    continue
                amount = whole.copy() if whole is not None else per_replica * replicas
                share = _Share(row, tier, int(self.table.incarnation[row]), replicas,
                               min(confirmed.get(name, 0), replicas), amount,
                               np.zeros_like(amount))
                self._hold(share)
                entry.shares[name] = share
            self._entries[uid] = entry

    def confirm(self, uid: str, cluster: str, replicas: int) -> None:
        """The member reports ``replicas`` of the uid's shard on ``cluster`` (see module doc)."""
        with self.lock:
            entry = self._entries.get(uid)
            share = entry.shares.get(cluster) if entry else None
            if entry is None or share is None:
                return
            self._release(share)
            share.confirmed = max(0, min(replicas, share.assigned))
            self._hold(share)

    def forget(self, uid: str) -> None:
        with self.lock:
            entry = self._entries.pop(uid, None)
            if entry is not None:
                for share in entry.shares.values():
                    self._release(share)

    def own(self, uid: str) -> dict[str, tuple[int, np.ndarray]] | None:
        """What ``uid`` holds per cluster: ``(replicas, their requests)``; ``None`` when the
        cache knows nothing of it."""
        entry = self._entries.get(uid)
        if entry is None:
            return None
        return {name: (s.assigned, s.amount) for name, s in entry.shares.items()
                if self._current(s)}

    def reserved(self, uid: str) -> dict[str, int]:
        """Replicas of ``uid`` reserved and not yet confirmed, per cluster."""
        entry = self._entries.get(uid)
        if entry is None:
            return {}
        return {name: s.assigned - s.confirmed for name, s in entry.shares.items()
                if s.assigned > s.confirmed and self._current(s)}

    def _current(self, share: _Share) -> bool:
        t = self.table
        return bool(t.live[share.row]) and int(t.incarnation[share.row]) == share.incarnation

    def _hold(self, share: _Share) -> None:
        left = share.assigned - share.confirmed
        if left <= 0:
            share.held = np.zeros_like(share.amount)
        else:
            # Round up: a share of a training job's total must never be under-reserved.
            share.held = -((-share.amount * left) // share.assigned)
        if self._current(share):
            self.table.resv[share.row, share.tier] += share.held

    def _release(self, share: _Share) -> None:
        if self._current(share):
            self.table.resv[share.row, share.tier] -= share.held
        share.held = np.zeros_like(share.amount)
