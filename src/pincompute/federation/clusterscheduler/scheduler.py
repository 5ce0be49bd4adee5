"""The cluster scheduler: one workload in, placements and exclusion reasons out.

Theory of operation
-------------------
:meth:`ClusterScheduler.schedule` takes a workload object (a dict as the
informers hold it) and decides against the :class:`~.clustertable.ClusterTable`:

1. **Request** — the parsed :class:`~.workload.Request`, cached per uid and
   generation; the workload's current placement from its status; the room it
   already holds per cluster (its reservation in the assume cache, or — after a
   restart, when the cache knows nothing — its current placement, taken to be
   running).
2. **Filter** — the profile's filters in order over every cluster at once; the
   first to reject a cluster gives its reason.  Static filters (spec side only)
   are answered from a cache keyed by the request's ``static_key`` until the
   table's ``spec_epoch`` moves, reasons included.
3. **Score** — the enabled score plugins over the feasible clusters, each
   normalised, weighted and summed; clusters are ranked by score, then name.
4. **Divide** — ``Whole`` workloads (jobs, pods, gangs) go to one cluster: the
   one they run on if still feasible (with Locality), else the best.  Others
   honour the placement's spread constraints: ``cluster`` ``maxGroups`` keeps
   the best clusters; a ``zone`` (or ``region``) constraint picks the domains
   (best first, at most ``maxGroups``, at least ``minGroups``), balances the
   replicas over them within ``maxSkew`` (hard with ``DoNotSchedule``), then
   divides each domain's share among its clusters; without one the divider
   of the replica scheduling mode splits the replicas.  With Locality the split
   moves as few replicas as possible from the current one
   (:func:`~.division.sticky`).
5. **Reserve** — the decision's replicas are reserved in the
   :class:`~.assume.AssumeCache` (superseding the workload's last decision), so
   the next decision already sees the room taken.

A decision that cannot place every replica places none: its
:attr:`Decision.message` says why (and what each cluster lacked), and the
workload keeps its last reservation.  Decisions, and cluster updates through
:meth:`ClusterScheduler.update_cluster` / :meth:`ClusterScheduler.remove_cluster`,
are serialised by the assume cache's lock, so callers on several threads never
decide against the same free room.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from .assume import AssumeCache
from .clustertable import ClusterTable
from .division import balanced, skew, sticky
from .interface import Context, DividePlugin, FilterPlugin, ScorePlugin
from .plugins import in_tree
from .profile import Profile
from .registry import Registry
from .resources import NDIMS
from .workload import EMPTY, Request, RequestCache, current_placements, parse_request

_STATIC_MAX = 4096


@dataclass(frozen=True, slots=True)
class ClusterPlacement:
    """One cluster chosen and its replicas (``None`` for kinds without replicas)."""

    cluster: str
    zone: str
    replicas: int | None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"cluster": self.cluster, "zone": self.zone}
        if self.replicas is not None:
            out["replicas"] = self.replicas
        return out


@dataclass(frozen=True, slots=True)
class Exclusion:
    """A cluster excluded, and why: ``plugin`` names the filter, or is None for a feasible
    cluster held off by a spread limit or left empty because nothing could be placed."""

    cluster: str
    plugin: str | None
    reason: str

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"cluster": self.cluster, "reason": self.reason}
        if self.plugin:
            out["plugin"] = self.plugin
        return out


@dataclass(frozen=True, slots=True)
class Decision:
    """The outcome of one decision (see :meth:`status` for the workload's status fields)."""

    uid: str
    placements: tuple[ClusterPlacement, ...]
    excluded: tuple[Exclusion, ...]
    message: str = ""
    """Why the workload could not be placed ("" when it was)."""

    @property
    def scheduled(self) -> bool:
        return not self.message

    def replicas(self) -> dict[str, int]:
        return {p.cluster: p.replicas or 0 for p in self.placements}

    def status(self) -> dict[str, Any]:
        """``placements`` and ``excludedClusters`` as the workload's status records them
        (model.placement PlacementDecision, ExcludedCluster)."""
        return {"placements": [p.to_dict() for p in self.placements],
                "excludedClusters": [e.to_dict() for e in self.excluded]}


class _Unschedulable(Exception):
    """Nothing could be placed; the message says why."""


class ClusterScheduler:
    """Decides placements for workloads (see the module docstring)."""

    vectorized = True

    def __init__(self, table: ClusterTable | None = None, *, profile: Profile | None = None,
                 registry: Registry | None = None) -> None:
        self.table = table if table is not None else ClusterTable()
        self.profile = profile or Profile()
        self.assumed = AssumeCache(self.table)
        self.requests = RequestCache()
        reg = registry if registry is not None else in_tree()
        made: dict[str, Any] = {}

        def plugin(name: str) -> Any:
            if name not in made:
                made[name] = reg.create(name, self.profile.args.get(name, {}))
            return made[name]

        self.filters: list[FilterPlugin] = [plugin(n) for n in self.profile.filters]
        self.scores: list[tuple[ScorePlugin, float]] = [
            (plugin(n), float(w)) for n, w in self.profile.scores.items()]
        self.dividers: dict[str, DividePlugin] = {
            mode: plugin(n) for mode, n in self.profile.dividers.items()}
        for f in self.filters:
            if not isinstance(f, FilterPlugin):
                raise ValueError(f"plugin {f.name!r} is not a filter")
        for s, _ in self.scores:
            if not isinstance(s, ScorePlugin):
                raise ValueError(f"plugin {s.name!r} is not a score plugin")
        self._static: dict[tuple[str, bytes], tuple[int, np.ndarray, dict[int, str]]] = {}
        self._epoch = -1
        self._rows = np.zeros(0, dtype=np.int64)
        self._name_rank = np.zeros(0, dtype=np.int64)
        self._pos_of = np.zeros(0, dtype=np.int64)
        self.decisions = 0

    # --- the public surface ---------------------------------------------------------------------

    def schedule(self, obj: Mapping[str, Any], *, reserve: bool = True,
                 rebalance: bool = False) -> Decision:
        """Place the workload ``obj``; reserve what it places unless ``reserve`` is False.
        ``rebalance`` ignores where it runs now (the ideal split, e.g. after a recovery).
        Raises :class:`~.resources.RequestError` for a kind it does not place or requests
        it cannot read."""
        with self.assumed.lock:
            request = self._request(obj)
            meta = obj.get("metadata") or EMPTY
            uid = meta.get("uid") or f"{meta.get('namespace', '')}/{meta.get('name', '')}"
            decision = self._decide(obj, request, uid, rebalance=rebalance)
            if reserve and decision.scheduled and request.counted:
                self.assumed.reserve(uid, tier=request.tier_index,
                                     per_replica=request.per_replica,
                                     placements=decision.replicas(),
                                     whole=request.whole if request.mode == "Whole" else None)
            self.decisions += 1
            return decision

    def update_cluster(self, obj: Mapping[str, Any]) -> None:
        """A MemberCluster appeared or changed (safe beside decisions on other threads)."""
        with self.assumed.lock:
            self.table.upsert(obj)

    def remove_cluster(self, name: str) -> None:
        """A MemberCluster is gone; what was reserved on it goes with it."""
        with self.assumed.lock:
            self.table.remove(name)

    def confirm(self, uid: str, cluster: str, replicas: int) -> None:
        """The member now reports ``replicas`` of the workload's shard (see :mod:`.assume`)."""
        self.assumed.confirm(uid, cluster, replicas)

    def forget(self, uid: str) -> None:
        """The workload is gone: release its reservation and its cached request."""
        self.assumed.forget(uid)
        self.requests.forget(uid)

    # --- steps ----------------------------------------------------------------------------------

    def _request(self, obj: Mapping[str, Any]) -> Request:
        return self.requests.get(obj)

    def _refresh(self) -> None:
        t = self.table
        if self._epoch == t.spec_epoch:
            return
        self._rows = t.rows()
        names = [t.names[int(r)] or "" for r in self._rows]
        rank = np.empty(len(names), dtype=np.int64)
        rank[np.argsort(np.array(names, dtype=object), kind="stable")] = np.arange(len(names))
        self._name_rank = rank
        self._pos_of = np.full(t.cap, -1, dtype=np.int64)
        self._pos_of[self._rows] = np.arange(len(self._rows))
        self._static.clear()
        self._epoch = t.spec_epoch

    def _context(self, obj: Mapping[str, Any], request: Request, uid: str) -> Context:
        self._refresh()
        rows = self._rows
        n = len(rows)
        current = np.zeros(n, dtype=np.int64)
        cur = current_placements(obj)
        for name, replicas in cur.items():
            row = self.table.row_of(name)
            if row is not None:
                current[self._pos_of[row]] = replicas
        own = np.zeros((n, NDIMS), dtype=np.int64)
        held = self.assumed.own(uid)
        if held is None:
            # Nothing reserved (a restart): take the current placement to be running.
            unit = request.whole if request.mode == "Whole" else request.per_replica
            for name, replicas in cur.items():
                row = self.table.row_of(name)
                if row is not None and replicas > 0 and request.counted:
                    own[self._pos_of[row]] = unit if request.mode == "Whole" else unit * replicas
        else:
            for name, (_, amount) in held.items():
                row = self.table.row_of(name)
                if row is not None:
                    own[self._pos_of[row]] = amount
        return Context(self.table, request, uid, rows, current, own)

    def _decide(self, obj: Mapping[str, Any], request: Request, uid: str, *,
                rebalance: bool) -> Decision:
        ctx = self._context(obj, request, uid)
        n = len(ctx.rows)
        alive = np.ones(n, dtype=bool)
        reasons: dict[int, tuple[str | None, str]] = {}
        counts: dict[str, int] = {}
        for f in self.filters:
            mask = self._filter(f, ctx)
            rejected = alive & ~mask
            if rejected.any():
                pos = np.flatnonzero(rejected)
                for p, why in zip(pos.tolist(), self._explain(f, ctx, pos), strict=True):
                    reasons[p] = (f.name, why)
                counts[f.name] = len(pos)
                alive &= mask
        feasible = np.flatnonzero(alive)
        if not len(feasible):
            return self._result(ctx, None, reasons,
                                _summary(n, counts) if n else "there are no member clusters")
        total = self._score(ctx, feasible)
        order = np.lexsort((self._name_rank[feasible], -total))
        rank = np.empty(len(feasible), dtype=np.int64)
        rank[order] = np.arange(len(feasible))
        try:
            shares, notes = self._divide(ctx, feasible, rank, rebalance=rebalance)
        except _Unschedulable as e:
            return self._result(ctx, None, reasons, str(e))
        replicas = np.zeros(n, dtype=np.int64)
        replicas[feasible] = shares
        for p, note in notes.items():
            reasons[int(feasible[p])] = (None, note)
        return self._result(ctx, replicas, reasons, "")

    def _filter(self, f: FilterPlugin, ctx: Context) -> np.ndarray:
        if not f.static:
            return f.filter(ctx, np.arange(len(ctx.rows)))
        return self._static_entry(f, ctx)[1]

    def _static_entry(self, f: FilterPlugin, ctx: Context
                      ) -> tuple[int, np.ndarray, dict[int, str]]:
        key = (f.name, ctx.request.static_key)
        entry = self._static.get(key)
        if entry is None:
            if len(self._static) >= _STATIC_MAX:
                self._static.clear()
            entry = self._static[key] = (self._epoch, f.filter(ctx, np.arange(len(ctx.rows))),
                                         {})
        return entry

    def _explain(self, f: FilterPlugin, ctx: Context, pos: np.ndarray) -> list[str]:
        if not f.static:
            return f.explain(ctx, pos)
        known = self._static_entry(f, ctx)[2]
        missing = [p for p in pos.tolist() if p not in known]
        if missing:
            known.update(zip(missing, f.explain(ctx, np.array(missing, dtype=np.int64)),
                             strict=True))
        return [known[p] for p in pos.tolist()]

    def _score(self, ctx: Context, feasible: np.ndarray) -> np.ndarray:
        total = np.zeros(len(feasible), dtype=np.float64)
        for plugin, weight in self.scores:
            if plugin.static:
                key = (plugin.name + "/score", ctx.request.static_key)
                entry = self._static.get(key)
                if entry is None:
                    entry = self._static[key] = (self._epoch, plugin.score(
                        ctx, np.arange(len(ctx.rows))), {})
                raw = entry[1][feasible]
            else:
                raw = plugin.score(ctx, feasible)
            total += weight * normalized(raw, plugin.normalize)
        return total

    # --- division -------------------------------------------------------------------------------

    def _divide(self, ctx: Context, feasible: np.ndarray, rank: np.ndarray, *, rebalance: bool
                ) -> tuple[np.ndarray, dict[int, str]]:
        r = ctx.request
        k = len(feasible)
        caps = ctx.caps(feasible)
        cur = ctx.current[feasible]
        use_current = self.profile.sticky and not rebalance and bool(cur.any())
        out = np.zeros(k, dtype=np.int64)
        notes: dict[int, str] = {}
        if r.mode == "Whole":
            here = np.flatnonzero(cur > 0) if use_current else np.zeros(0, dtype=np.int64)
            best = int(here[np.argmin(rank[here])]) if len(here) else int(np.argmin(rank))
            out[best] = r.replicas
            return out, notes
        spread = r.spread
        by_cluster = spread.get("cluster")
        by_domain = spread.get("zone") or spread.get("region")
        chosen = np.ones(k, dtype=bool)
        if by_cluster is not None:
            most = by_cluster.get("maxGroups")
            if most and k > most:
                chosen = rank < most
                for p in np.flatnonzero(~chosen).tolist():
                    notes[p] = f"feasible, but not among the best {most} clusters (spread " \
                               f"cluster maxGroups)"
            least = by_cluster.get("minGroups")
            if least and int(chosen.sum()) < least and _hard(by_cluster):
                raise _Unschedulable(f"spread: {int(chosen.sum())} feasible clusters, "
                                     f"minGroups is {least}")
        mode = "Duplicated" if r.mode == "Duplicated" else (
            "Static" if r.replica_scheduling.get("weighting") == "Static" else "Dynamic")
        divider = self.dividers[mode]
        members = np.flatnonzero(chosen)
        if by_domain is None:
            out[members] = self._split(ctx, divider, r.replicas, feasible, members, caps, cur,
                                       rank, by_cluster, use_current)
        else:
            self._split_domains(ctx, divider, feasible, members, caps, cur, rank, by_domain,
                                by_cluster, use_current, out, notes)
        if r.counted:
            placed = int(out.sum()) if mode != "Duplicated" else int((out > 0).sum())
            if mode != "Duplicated" and placed < r.replicas:
                raise _Unschedulable(f"only {placed} of {r.replicas} replicas fit in the "
                                     f"{k} feasible clusters")
            if mode == "Duplicated" and r.replicas and not placed:
                raise _Unschedulable("no feasible cluster can run all replicas")
        else:
            out[members] = np.maximum(out[members], 1)  # duplicated daemons: chosen = placed
        return out, notes

    def _split_domains(self, ctx: Context, divider: DividePlugin, feasible: np.ndarray,
                       members: np.ndarray, caps: np.ndarray, cur: np.ndarray,
                       rank: np.ndarray, by_domain: Mapping[str, Any],
                       by_cluster: Mapping[str, Any] | None, use_current: bool,
                       out: np.ndarray, notes: dict[int, str]) -> None:
        r = ctx.request
        domain = self._domains(ctx, feasible, by_domain["topology"])
        order = members[np.argsort(rank[members], kind="stable")]
        seen: dict[int, int] = {}
        for p in order.tolist():
            seen.setdefault(int(domain[p]), len(seen))
        doms = list(seen)  # best first
        word = by_domain["topology"]
        most = by_domain.get("maxGroups")
        if most and len(doms) > most:
            for p in members.tolist():
                if seen[int(domain[p])] >= most:
                    notes[p] = f"feasible, but its {word} is not among the best {most} " \
                               f"(spread {word} maxGroups)"
            doms = doms[:most]
        least = by_domain.get("minGroups")
        if least and len(doms) < least and r.replicas >= least and _hard(by_domain):
            raise _Unschedulable(f"spread: feasible clusters in {len(doms)} {word}s, minGroups "
                                 f"is {least}")
        groups = [members[domain[members] == d] for d in doms]
        if r.mode == "Duplicated":
            for g in groups:
                out[g] = self._split(ctx, divider, r.replicas, feasible, g, caps, cur, rank,
                                     by_cluster, False)
            return
        dcaps = np.array([int(caps[g].sum()) for g in groups], dtype=np.int64)
        dcur = np.array([int(cur[g].sum()) for g in groups], dtype=np.int64)
        drank = np.arange(len(groups), dtype=np.int64)
        ideal = balanced(r.replicas, dcaps, drank)
        shares = ideal
        hard = _hard(by_domain)
        max_skew = int(by_domain.get("maxSkew", 1))
        if use_current:
            shares = sticky(ideal, dcur, dcaps, drank)
            if hard and skew(shares) > max_skew:
                shares = ideal
        if hard and skew(shares) > max_skew:
            raise _Unschedulable(f"spread: {r.replicas} replicas cannot be balanced over "
                                 f"{len(groups)} {word}s within maxSkew {max_skew} (room per "
                                 f"{word}: {', '.join(str(int(c)) for c in dcaps)})")
        for g, share in zip(groups, shares.tolist(), strict=True):
            if share:
                out[g] = self._split(ctx, divider, share, feasible, g, caps, cur, rank,
                                     by_cluster, use_current)

    def _split(self, ctx: Context, divider: DividePlugin, total: int, feasible: np.ndarray,
               m: np.ndarray, caps: np.ndarray, cur: np.ndarray, rank: np.ndarray,
               by_cluster: Mapping[str, Any] | None, use_current: bool) -> np.ndarray:
        """``total`` replicas over the positions ``m`` (indexes into ``feasible``)."""
        if ctx.request.mode == "Duplicated" or not ctx.request.counted:
            return divider.divide(ctx, total, feasible[m], caps[m], rank[m])
        if by_cluster is not None:
            ideal = balanced(total, caps[m], rank[m])
        else:
            ideal = divider.divide(ctx, total, feasible[m], caps[m], rank[m])
        if use_current and getattr(divider, "sticky", True) and cur[m].any():
            moved = sticky(ideal, cur[m], caps[m], rank[m])
            if by_cluster is None or not _hard(by_cluster) or \
                    skew(moved) <= int(by_cluster.get("maxSkew", 1)):
                return moved
        return ideal

    def _domains(self, ctx: Context, feasible: np.ndarray, topology: str) -> np.ndarray:
        if topology == "zone":
            return self.table.zone_id[ctx.rows[feasible]].astype(np.int64)
        ids: dict[str, int] = {}
        return np.array([ids.setdefault(ctx.facts(int(p)).region, len(ids)) for p in feasible],
                        dtype=np.int64)

    # --- results --------------------------------------------------------------------------------

    def _result(self, ctx: Context, replicas: np.ndarray | None,
                reasons: Mapping[int, tuple[str | None, str]], message: str) -> Decision:
        t = self.table
        placements: list[ClusterPlacement] = []
        if replicas is not None and not message:
            counted = ctx.request.counted
            for p in np.flatnonzero(replicas).tolist():
                f = ctx.facts(p)
                placements.append(ClusterPlacement(f.name, f.zone, int(replicas[p])
                                                   if counted else None))
        excluded = [Exclusion(t.names[int(ctx.rows[p])] or "", plugin, why)
                    for p, (plugin, why) in sorted(reasons.items())]
        if message:
            # Nothing is placed: the clusters that were feasible say so too.
            excluded_pos = set(reasons)
            excluded += [Exclusion(t.names[int(r)] or "", None, message)
                         for p, r in enumerate(ctx.rows.tolist()) if p not in excluded_pos]
        return Decision(ctx.uid, tuple(placements), tuple(excluded), message)


def normalized(raw: np.ndarray, how: str | None) -> np.ndarray:
    """A plugin's raw scores rescaled to 0-100 over the feasible clusters."""
    if how is None or not len(raw):
        return raw
    hi = float(raw.max())
    if how == "max":
        return raw * (100.0 / hi) if hi > 0 else np.zeros_like(raw)
    lo = float(raw.min())
    if hi == lo:
        return np.full_like(raw, 100.0)
    return (hi - raw) * (100.0 / (hi - lo))


def _hard(constraint: Mapping[str, Any]) -> bool:
    return constraint.get("whenUnsatisfiable") == "DoNotSchedule"


def _summary(n: int, counts: Mapping[str, int]) -> str:
    parts = ", ".join(f"{c} excluded by {name}" for name, c in counts.items())
    return f"0/{n} clusters are available: {parts}"


__all__ = ["ClusterPlacement", "ClusterScheduler", "Decision", "Exclusion", "normalized",
           "parse_request"]
