"""Admission queues: who is charged, who waits, in which order, and why.

Theory of operation
-------------------
Every host workload (:data:`~.demand.ADMITTED_KINDS`) is an :class:`Entry` in one
of three states — a table, :data:`TRANSITIONS`:

* ``Queued``: waiting in its project's queue for its tier;
* ``Admitted``: charged to a tier account of its project (:mod:`.quota`);
* ``Preempted``: a preemptible workload whose borrowed room was reclaimed; it
  waits in its queue again (keeping its place) but is not admitted before its
  back-off ends, so the room it freed goes to the workload that reclaimed it.
  When the back-off ends it is ``Queued`` again (``backoff-over``) — with its
  reason and position like any other — and ``Admitted`` when room returns.

Every (state, :data:`EVENTS`) pair is either a move of the table or a bug
(:func:`step` raises).  Back-offs end in a pass over the project, whatever its
queues' heads: a per-project ``SortedList`` of ``(notBefore, key)`` is drained
from the front, so a preempted workload never stays ``Preempted`` past its
back-off just because the queue before it is blocked.

Queues are per (project, tier), ordered by arrival (creation time, then the
order this process first saw them): first come, first served.  A pass over a
project (:meth:`AdmissionQueues.cycle`) takes the tiers in order — reserved
first, its own queue, then ondemand, then preemptible — and admits each queue's
entries from the head while they fit.  The first that does not fit blocks the
rest of its queue (strict FIFO: a large workload is not starved by small ones
behind it), except entries that never can (more than the whole quota), whose
spec cannot be read, or that are backing off: those are passed over.

A reserved or ondemand head that does not fit, but would were nothing lent to
preemptible workloads, reclaims the newest borrowers of its tier until it fits
(:meth:`~.quota.TierAccount.reclaimable`): they become ``Preempted`` with an
exponential back-off and the head is admitted.  The head's ``Admitted`` must not
be *recorded* before its victims' ``Preempted`` is (a crash in between would
leave both charged): :attr:`Entry.waits_for` holds the victims until their
status shows it.

Cost: charging, releasing and checking are O(1) on running totals; a queue is a
``SortedList``, so inserting, removing and a workload's position are O(log n);
a pass does work only for the entries it admits or passes over.  Why an entry
waits (:meth:`AdmissionQueues.explain`) is computed from its queue's blocking
head and the account in O(log n), never by scanning.

Memory is not the state of record: an Admitted entry's charge is in its status
(``status.admission.charged`` / ``chargedTier``); a restarted controller
:meth:`~AdmissionQueues.observe`\\ s every workload and charges the recorded ones
exactly as recorded before admitting anything new.
"""

from __future__ import annotations

import itertools
import time
from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Literal

from sortedcontainers import SortedList

from pincompute.kube import objects
from pincompute.model.wellknown import DEFAULT_TIER, TIERS

from .demand import (
    DIMS,
    ZERO,
    DemandError,
    Vector,
    amount,
    figures,
    format_amount,
    workload_demand,
)
from .quota import LENDERS, Ledger, TierAccount, fits, shortfall

State = Literal["Queued", "Admitted", "Preempted"]
Event = Literal["admit", "reclaim", "backoff-over", "requeue"]
STATES: Final[tuple[State, ...]] = ("Queued", "Admitted", "Preempted")
EVENTS: Final[tuple[Event, ...]] = ("admit", "reclaim", "backoff-over", "requeue")
Ticket = tuple[tuple[str, int], str]
"""``((creationTimestamp, first-seen sequence), key)``: a queue's sort key."""

TRANSITIONS: Final[Mapping[tuple[State, Event], State]] = {
    ("Queued", "admit"): "Admitted",
    ("Admitted", "reclaim"): "Preempted",       # a borrower, when the lender tier needs the room
    ("Preempted", "backoff-over"): "Queued",    # in its queue again, like any other
    ("Admitted", "requeue"): "Queued",          # its tier changed: another queue and quota
    ("Preempted", "requeue"): "Queued",         # likewise (its back-off was for the old tier)
}
"""The admission state machine: (state, event) → state; anything else is a bug."""

CONDITIONS: Final[Mapping[State, Mapping[str, bool]]] = {
    "Queued": {"Admitted": False, "Queued": True, "Preempted": False},
    "Admitted": {"Admitted": True, "Queued": False, "Preempted": False},
    "Preempted": {"Admitted": False, "Queued": True, "Preempted": True},
}
"""The conditions each state shows on the workload."""

BACKOFF_BASE: Final = 10.0
BACKOFF_MAX: Final = 300.0


def step(state: State, event: Event) -> State:
    """The state after ``event`` (:class:`ValueError` if the table has no such move)."""
    try:
        return TRANSITIONS[(state, event)]
    except KeyError:
        raise ValueError(f"admission: no transition from {state} on {event}") from None


def workload_key(obj: Mapping[str, Any]) -> str:
    """``Kind/namespace/name``: an entry's key."""
    md = objects.meta(obj)
    return f"{obj.get('kind', '')}/{md.get('namespace', '')}/{md.get('name', '')}"


@dataclass(slots=True)
class Entry:
    """One workload as admission sees it."""

    key: str
    uid: str
    project: str
    tier: str
    demand: Vector
    order: tuple[str, int]
    generation: int
    state: State = "Queued"
    charged: Vector | None = None
    charged_tier: str | None = None
    preemptions: int = 0
    not_before: float = 0.0
    reclaimed_by: str | None = None
    waits_for: set[str] = field(default_factory=set)
    """Victims whose ``Preempted`` is not recorded yet (this entry's Admitted waits)."""
    recorded: str | None = None
    """The state its status last showed."""
    error: str | None = None
    """Why its requests cannot be read (never admitted)."""

    @property
    def ticket(self) -> Ticket:
        return self.order, self.key

    @property
    def borrowing(self) -> bool:
        return self.charged_tier is not None and self.charged_tier != self.tier


@dataclass(slots=True)
class CycleResult:
    changed: list[str] = field(default_factory=list)
    """Entries whose state changed (their status is due)."""
    wake_at: float | None = None
    """When a back-off ends (run the pass again then)."""


class AdmissionQueues:
    """The admission state of every workload of every project (see module docstring)."""

    def __init__(self, *, backoff_base: float = BACKOFF_BASE, backoff_max: float = BACKOFF_MAX,
                 clock: Callable[[], float] = time.time) -> None:
        self.ledger = Ledger()
        self.entries: dict[str, Entry] = {}
        self.queues: dict[tuple[str, str], SortedList] = defaultdict(SortedList)
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.clock = clock
        self._seq = itertools.count()
        self._blocked: dict[tuple[str, str], Ticket] = {}
        """Per queue, the entry the last pass stopped at (everything after it waits)."""
        self._resizing: dict[str, set[str]] = defaultdict(set)
        self._backoffs: dict[str, SortedList] = defaultdict(SortedList)
        """Per project, ``(notBefore, key)`` of its Preempted entries, soonest first."""

    # --- what the informers say -----------------------------------------------------------------

    def set_project(self, name: str, quota: Mapping[str, Any] | None) -> None:
        self.ledger.set_quota(name, quota)

    def drop_project(self, name: str) -> None:
        self.ledger.drop_project(name)

    def observe(self, obj: Mapping[str, Any]) -> tuple[str | None, list[str]]:
        """Take in a workload as the API shows it now.

        Returns the project whose queues should be passed over (``None``: nothing
        changed for admission) and the keys whose status is due.
        """
        key = workload_key(obj)
        md = objects.meta(obj)
        uid = md.get("uid", "")
        generation = int(md.get("generation") or 0)
        recorded = ((obj.get("status") or {}).get("admission") or {})
        entry = self.entries.get(key)
        if entry is not None and entry.uid != uid:
            self.remove(key)
            entry = None
        tier = (obj.get("spec") or {}).get("tier") or DEFAULT_TIER
        if entry is not None and tier != entry.tier:
            # Another tier is another queue and another quota: start over there (an
            # admitted workload is released, a preempted one's back-off dropped: the
            # "requeue" move of the table).  Its preemptions still count.
            if entry.state != "Queued":
                step(entry.state, "requeue")
            preemptions = entry.preemptions
            self.remove(key)
            return self._first_sight(obj, key, uid, generation, {"preemptions": preemptions})
        if entry is None:
            return self._first_sight(obj, key, uid, generation, recorded)
        due: list[str] = []
        entry.recorded = recorded.get("state")
        if entry.recorded == "Preempted" and entry.reclaimed_by is not None:
            reclaimer = self.entries.get(entry.reclaimed_by)
            if reclaimer is not None and key in reclaimer.waits_for:
                reclaimer.waits_for.discard(key)
                due.append(reclaimer.key)
        if generation == entry.generation:
            return None, due
        entry.generation = generation
        demand, entry.error = _demand(obj)
        if demand == entry.demand:
            return None, due
        if entry.state == "Admitted":
            entry.demand = demand
            self._resizing[entry.project].add(key)
        else:
            entry.demand = demand
        return entry.project, [*due, key]

    def _first_sight(self, obj: Mapping[str, Any], key: str, uid: str, generation: int,
                     recorded: Mapping[str, Any]) -> tuple[str | None, list[str]]:
        md = objects.meta(obj)
        project = md.get("namespace", "")
        tier = (obj.get("spec") or {}).get("tier") or DEFAULT_TIER
        demand, error = _demand(obj)
        entry = Entry(key=key, uid=uid, project=project, tier=tier, demand=demand,
                      order=(md.get("creationTimestamp") or "", next(self._seq)),
                      generation=generation, error=error, recorded=recorded.get("state"))
        self.entries[key] = entry
        entry.preemptions = int(recorded.get("preemptions") or 0)
        charged_tier = recorded.get("chargedTier")
        if (entry.recorded == "Admitted" and charged_tier in TIERS
                and recorded.get("charged") is not None):
            # The status of record: charged exactly as written, even over a lowered quota.
            try:
                charged = _vector(recorded["charged"])
            except DemandError:
                charged = demand
            self._charge(entry, charged_tier, charged)
            entry.state = "Admitted"
            if charged != demand:
                self._resizing[project].add(key)
            return project, []
        if entry.recorded == "Preempted" and recorded.get("notBefore"):
            # Still backing off as recorded (or just done: the next pass requeues it).
            entry.state = "Preempted"
            entry.not_before = objects.parse_time(recorded["notBefore"]).timestamp()
            self._backoffs[project].add((entry.not_before, key))
        self.queues[(project, tier)].add(entry.ticket)
        return project, [key]

    def remove(self, key: str) -> str | None:
        """Forget a deleted workload (its charge released); the project to pass over."""
        entry = self.entries.pop(key, None)
        if entry is None:
            return None
        if entry.state == "Admitted":
            self._release(entry)
        else:
            self.queues[(entry.project, entry.tier)].discard(entry.ticket)
            if self._blocked.get((entry.project, entry.tier)) == entry.ticket:
                # The head that blocked its queue is gone: until the next pass nothing is
                # known to block it (explaining a workload behind it must not look it up).
                del self._blocked[(entry.project, entry.tier)]
        if entry.state == "Preempted":
            self._backoffs[entry.project].discard((entry.not_before, key))
        self._resizing[entry.project].discard(key)
        if entry.reclaimed_by is not None:
            reclaimer = self.entries.get(entry.reclaimed_by)
            if reclaimer is not None:
                reclaimer.waits_for.discard(key)
        return entry.project

    # --- the pass -------------------------------------------------------------------------------

    def cycle(self, project: str) -> CycleResult:
        """Admit what fits of ``project``'s queues: reserved, then ondemand, then preemptible."""
        result = CycleResult()
        now = self.clock()
        if project not in self.ledger.quotas:
            return result  # no Project: everything waits (explain says why)
        for key in sorted(self._resizing.pop(project, ())):
            self._resize(self.entries[key], result)
        self._end_backoffs(project, now, result)
        for tier in TIERS:
            qkey = (project, tier)
            queue = self.queues.get(qkey)
            self._blocked.pop(qkey, None)
            if not queue:
                continue
            i = 0
            while i < len(queue):
                entry = self.entries[queue[i][1]]
                if entry.error is not None or self._never_fits(entry):
                    i += 1
                    continue
                if entry.state == "Preempted":
                    i += 1  # backing off (its end is in result.wake_at)
                    continue
                placed = self._place(entry)
                if placed is None:
                    self._blocked[qkey] = entry.ticket
                    break
                charge_tier, victims = placed
                for victim in victims:
                    self._reclaim(victim, by=entry, now=now)
                    result.changed.append(victim.key)
                    entry.waits_for.add(victim.key)
                del queue[i]
                self._charge(entry, charge_tier, entry.demand)
                entry.state = step(entry.state, "admit")
                result.changed.append(entry.key)
        backoffs = self._backoffs.get(project)
        if backoffs:
            result.wake_at = backoffs[0][0]  # the next back-off to end (maybe one just begun)
        return result

    def _end_backoffs(self, project: str, now: float, result: CycleResult) -> None:
        """Preempted entries whose back-off is over are Queued again."""
        backoffs = self._backoffs.get(project)
        while backoffs and backoffs[0][0] <= now:
            _, key = backoffs.pop(0)
            entry = self.entries[key]
            entry.state = step(entry.state, "backoff-over")
            entry.not_before = 0.0
            result.changed.append(key)

    def _place(self, entry: Entry) -> tuple[str, list[Entry]] | None:
        """The tier to charge ``entry`` to, and the borrowers to reclaim first; or None."""
        d = entry.demand
        acct = self.ledger.account(entry.project, entry.tier)
        if fits(acct.limit, acct.used, d):
            return entry.tier, []
        if entry.tier == "preemptible":
            for lender in LENDERS:
                la = self.ledger.account(entry.project, lender)
                if fits(la.limit, la.used, d):
                    return lender, []
            return None
        if acct.borrowed == ZERO or not fits(acct.limit, acct.own, d):
            return None
        victims: list[Entry] = []
        used = acct.used
        for _, key in acct.reclaimable():
            victim = self.entries[key]
            victims.append(victim)
            assert victim.charged is not None
            used = _sub(used, victim.charged)
            if fits(acct.limit, used, d):
                return entry.tier, victims
        return None  # unreachable: without every borrower it fits

    def _never_fits(self, entry: Entry) -> bool:
        tiers = (entry.tier, *LENDERS) if entry.tier == "preemptible" else (entry.tier,)
        return all(_exceeds(self.ledger.account(entry.project, t), entry.demand) for t in tiers)

    def _resize(self, entry: Entry, result: CycleResult) -> None:
        """An admitted workload's demand changed: charge the new demand if it fits."""
        assert entry.charged is not None and entry.charged_tier is not None
        tier = entry.charged_tier
        acct = self.ledger.account(entry.project, tier)
        base = _sub(acct.used, entry.charged)
        shrink = all(n <= o for n, o in zip(entry.demand, entry.charged, strict=True))
        if shrink or fits(acct.limit, base, entry.demand):
            self._release(entry)
            self._charge(entry, tier, entry.demand)
            result.changed.append(entry.key)
        else:
            self._resizing[entry.project].add(entry.key)  # keep trying on later passes

    def _reclaim(self, victim: Entry, *, by: Entry, now: float) -> None:
        self._release(victim)
        victim.state = step(victim.state, "reclaim")
        victim.preemptions += 1
        victim.not_before = now + min(self.backoff_base * 2 ** (victim.preemptions - 1),
                                      self.backoff_max)
        victim.reclaimed_by = by.key
        self.queues[(victim.project, victim.tier)].add(victim.ticket)
        self._backoffs[victim.project].add((victim.not_before, victim.key))

    def _charge(self, entry: Entry, tier: str, demand: Vector) -> None:
        acct = self.ledger.account(entry.project, tier)
        borrower = entry.ticket if tier != entry.tier else None
        acct.charge(demand, borrower=borrower)
        entry.charged, entry.charged_tier = demand, tier

    def _release(self, entry: Entry) -> None:
        if entry.charged is None or entry.charged_tier is None:
            return
        acct = self.ledger.account(entry.project, entry.charged_tier)
        acct.release(entry.charged, borrower=entry.ticket if entry.borrowing else None)
        entry.charged = entry.charged_tier = None

    # --- where each stands ----------------------------------------------------------------------

    def position(self, key: str) -> int | None:
        """1 for the head of its queue; ``None`` if not queued."""
        entry = self.entries.get(key)
        if entry is None or entry.state == "Admitted":
            return None
        return self.queues[(entry.project, entry.tier)].index(entry.ticket) + 1

    def queue_keys(self, project: str, tier: str, *, first: int | None = None) -> list[str]:
        queue = self.queues.get((project, tier)) or ()
        return [k for _, k in (queue if first is None else queue[:first])]

    def explain(self, key: str) -> tuple[str, str, str]:
        """``(condition reason, why, what would let it run)`` of an entry."""
        e = self.entries[key]
        if e.state == "Admitted":
            if e.borrowing:
                return ("Borrowing", f"charged to the idle {e.charged_tier} quota of project "
                        f"{e.project}; reclaimed if its {e.charged_tier} workloads need it",
                        "")
            if key in self._resizing.get(e.project, ()):
                return ("ResizeQueued", f"charged to {e.charged_tier}; the new size waits for "
                        "quota", "")
            return "QuotaReserved", f"charged to the {e.charged_tier} quota of project " \
                f"{e.project}", ""
        if e.error is not None:
            return "InvalidRequests", e.error, "fix the workload's resource requests"
        if e.project not in self.ledger.quotas:
            return ("NoProject", f"no Project named {e.project}",
                    f"create the Project {e.project} (with a quota for {e.tier})")
        if self._never_fits(e):
            acct = self.ledger.account(e.project, e.tier)
            overs = [o for o in shortfall(acct.limit, ZERO, e.demand)]
            why = "; ".join(f"{DIMS[o.dim]}: requested {format_amount(o.dim, o.requested)}, "
                            f"quota {format_amount(o.dim, o.limit)} ({e.tier})" for o in overs)
            need = ", ".join(f"{DIMS[o.dim]} to at least {format_amount(o.dim, o.requested)}"
                             for o in overs)
            return ("ExceedsQuota", f"{why}: more than the whole quota",
                    f"raise project {e.project}'s {e.tier} quota: {need}")
        if e.state == "Preempted":
            until = _iso(e.not_before)
            return ("BackingOff", f"preempted: {e.tier} room reclaimed by {e.reclaimed_by}; "
                    f"not admitted again before {until}",
                    f"re-admitted after {until} when quota is free")
        blocked = self._blocked.get((e.project, e.tier))
        if blocked is not None and blocked < e.ticket:
            head = self.entries[blocked[1]]
            ahead = self.position(key)
            assert ahead is not None
            return ("WaitingInQueue", f"{ahead - 1} workloads ahead in queue {e.project}/"
                    f"{e.tier} (first come, first served); its head {blocked[1]} waits for "
                    f"{self._over(head)}",
                    "admitted when the workloads ahead of it are and quota is free for it")
        over = self._over(e)
        if not over:
            return "Pending", "waiting for the next admission pass", ""
        return "QuotaExceeded", over, self._hint(e)

    def _over(self, e: Entry) -> str:
        acct = self.ledger.account(e.project, e.tier)
        return "; ".join(o.describe(e.tier) for o in shortfall(acct.limit, acct.used, e.demand))

    def _hint(self, e: Entry) -> str:
        acct = self.ledger.account(e.project, e.tier)
        overs = shortfall(acct.limit, acct.used, e.demand)
        free = ", ".join(f"{format_amount(o.dim, o.missing)} {DIMS[o.dim]}" for o in overs)
        quota = ", ".join(f"{DIMS[o.dim]} {format_amount(o.dim, o.used + o.requested)}"
                          for o in overs)
        lend = (" (or ondemand/reserved quota left idle)" if e.tier == "preemptible" else "")
        return (f"needs {free} more free in project {e.project}'s {e.tier} quota{lend}: when "
                f"its admitted {e.tier} workloads finish, or the quota is raised to {quota}")

    def status(self, key: str) -> dict[str, Any]:
        """``status.admission`` of an entry."""
        e = self.entries[key]
        _, why, hint = self.explain(key)
        out: dict[str, Any] = {"state": e.state, "queue": f"{e.project}/{e.tier}",
                               "reason": why or None, "hint": hint or None,
                               "charged": figures(e.charged if e.charged is not None
                                                  else e.demand)}
        if e.state != "Admitted":
            out["position"] = self.position(key)
        else:
            out["chargedTier"] = e.charged_tier
        if e.preemptions:
            out["preemptions"] = e.preemptions
        if e.state == "Preempted" and e.not_before:
            out["notBefore"] = _iso(e.not_before)
        return {k: v for k, v in out.items() if v is not None}

    def project_status(self, project: str) -> tuple[dict[str, dict[str, str]], dict[str, int]]:
        """``(usage, queued)`` by tier for the Project's status."""
        usage = {t: figures(v) for t, v in self.ledger.usage(project).items()}
        queued: dict[str, int] = {t: len(self.queues.get((project, t)) or ()) for t in TIERS}
        return usage, queued


def _demand(obj: Mapping[str, Any]) -> tuple[Vector, str | None]:
    try:
        return workload_demand(obj), None
    except DemandError as exc:
        return ZERO, str(exc)


def _vector(figs: Mapping[str, Any]) -> Vector:
    v = [amount(d, figs[name], name) if figs.get(name) is not None else 0
         for d, name in enumerate(DIMS)]
    return v[0], v[1], v[2], v[3]


def _sub(a: Vector, b: Vector) -> Vector:
    return a[0] - b[0], a[1] - b[1], a[2] - b[2], a[3] - b[3]


def _exceeds(acct: TierAccount, demand: Vector) -> bool:
    return any(lim is not None and demand[d] > lim for d, lim in enumerate(acct.limit))


def _iso(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


__all__ = ["BACKOFF_BASE", "BACKOFF_MAX", "CONDITIONS", "EVENTS", "STATES", "TRANSITIONS",
           "AdmissionQueues", "CycleResult", "Entry", "Event", "State", "step", "workload_key"]
