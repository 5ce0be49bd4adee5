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
  Call it once the member's summary that counts them has been fed to the
  table; in between, the room is counted twice (conservative, never short).
* :meth:`AssumeCache.forget` drops the uid (the workload was deleted).

A reservation belongs to a row *incarnation*: a cluster removed and added again
starts with nothing reserved, and the old entries are not taken back from it.

For a later decision of the same workload, :meth:`AssumeCache.own` returns what
the workload already holds on each cluster (reserved or confirmed): that room
is the workload's own, free to it though not to others.

An entry keeps its clusters as parallel numpy arrays, so reserving a decision
that places on many clusters (a duplicated workload) is a few array operations.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np

from .clustertable import ClusterTable


@dataclass(slots=True)
class _Entry:
    tier: int
    names: list[str]
    rows: np.ndarray          # table rows, unique
    incarnation: np.ndarray   # the rows' incarnations when reserved
    assigned: np.ndarray      # replicas placed per cluster
    confirmed: np.ndarray     # of which the member reports
    amount: np.ndarray        # (k, DIMS): the requests of all assigned replicas
    held: np.ndarray          # (k, DIMS): what is in the table's resv now


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
                self._apply(old, -1)
                confirmed = {n: int(c) for n, c in zip(old.names, old.confirmed.tolist(),
                                                       strict=True) if c}
            names = [n for n, r in placements.items()
                     if r > 0 and self.table.row_of(n) is not None]
            if not names:
                return
            t = self.table
            rows = np.array([t.index[n] for n in names], dtype=np.int64)
            assigned = np.array([placements[n] for n in names], dtype=np.int64)
            if whole is not None:
                amount = np.broadcast_to(whole, (len(names), len(whole))).copy()
            else:
                amount = assigned[:, None] * per_replica[None, :]
            done = np.array([min(confirmed.get(n, 0), placements[n]) for n in names],
                            dtype=np.int64)
            entry = _Entry(tier, names, rows, t.incarnation[rows].copy(), assigned, done,
                           amount, np.zeros_like(amount))
            self._hold(entry)
            self._apply(entry, 1)
            self._entries[uid] = entry

    def confirm(self, uid: str, cluster: str, replicas: int) -> None:
        """The member reports ``replicas`` of the uid's shard on ``cluster`` (see module doc)."""
        with self.lock:
            entry = self._entries.get(uid)
            if entry is None or cluster not in entry.names:
                return
            self._apply(entry, -1)
            i = entry.names.index(cluster)
            entry.confirmed[i] = max(0, min(replicas, int(entry.assigned[i])))
            self._hold(entry)
            self._apply(entry, 1)

    def forget(self, uid: str) -> None:
        with self.lock:
            entry = self._entries.pop(uid, None)
            if entry is not None:
                self._apply(entry, -1)

    def own(self, uid: str) -> dict[str, tuple[int, np.ndarray]] | None:
        """What ``uid`` holds per cluster: ``(replicas, their requests)``; ``None`` when the
        cache knows nothing of it."""
        entry = self._entries.get(uid)
        if entry is None:
            return None
        current = self._current(entry)
        return {n: (int(entry.assigned[i]), entry.amount[i])
                for i, n in enumerate(entry.names) if current[i]}

    def reserved(self, uid: str) -> dict[str, int]:
        """Replicas of ``uid`` reserved and not yet confirmed, per cluster."""
        entry = self._entries.get(uid)
        if entry is None:
            return {}
        left = entry.assigned - entry.confirmed
        current = self._current(entry)
        return {n: int(left[i]) for i, n in enumerate(entry.names)
                if left[i] > 0 and current[i]}

    def _current(self, entry: _Entry) -> np.ndarray:
        t = self.table
        return t.live[entry.rows] & (t.incarnation[entry.rows] == entry.incarnation)

    @staticmethod
    def _hold(entry: _Entry) -> None:
        left = entry.assigned - entry.confirmed
        # Round up: a share of a training job's total must never be under-reserved.
        entry.held = -((-entry.amount * left[:, None]) // entry.assigned[:, None])

    def _apply(self, entry: _Entry, sign: int) -> None:
        current = self._current(entry)
        if current.all():
            self.table.resv[entry.rows, entry.tier] += sign * entry.held
        elif current.any():
            self.table.resv[entry.rows[current], entry.tier] += sign * entry.held[current]
