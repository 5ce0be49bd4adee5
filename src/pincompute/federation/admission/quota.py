"""Quota accounting: a running total per project and tier, checked in O(1).

Theory of operation
-------------------
A project's quota (``spec.quota``) limits, per tier, the cpu, memory, gpus and
pods its admitted workloads may hold at once; a tier or a resource left out is
not limited, ``0`` forbids it.  Each (project, tier) has one
:class:`TierAccount`: its :data:`Limits` and the running total ``used`` of what
is charged to it, kept up to date as workloads are charged and released — never
recomputed by summing workloads.

Preemptible workloads may *borrow*: one that does not fit its own tier's quota
is charged to a lender tier (ondemand, then reserved) whose quota has room left
idle.  The lender's account holds those charges in ``used`` and separately in
``borrowed``, and knows its borrowers in arrival order, so when a workload of
its own tier needs the room back (it would fit were nothing lent), the newest
borrowers are reclaimed first (:meth:`TierAccount.reclaimable`).

Whether something fits, and if not why, is :func:`shortfall`: per dimension,
the amounts over the limit — the material of a queued workload's reason.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from sortedcontainers import SortedList

from pincompute.model.wellknown import TIERS

from .demand import DIMS, ZERO, DemandError, Vector, add, amount, format_amount, sub

Limits = tuple[int | None, int | None, int | None, int | None]
"""Per dimension the most a tier may hold; ``None``: not limited."""
UNLIMITED: Final[Limits] = (None, None, None, None)
LENDERS: Final = ("ondemand", "reserved")
"""The tiers a preemptible workload may borrow from, in order."""


def limits_of(quota: Mapping[str, Any] | None, tier: str) -> Limits:
    """A tier's limits from a Project's ``spec.quota`` (raises :class:`DemandError`)."""
    amounts = (quota or {}).get(tier)
    if amounts is None:
        return UNLIMITED
    out: list[int | None] = []
    for d, name in enumerate(DIMS):
        value = amounts.get(name)
        out.append(None if value is None else amount(d, value, f"spec.quota.{tier}.{name}"))
    return out[0], out[1], out[2], out[3]


@dataclass(frozen=True, slots=True)
class Over:
    """One dimension over its limit."""

    dim: int
    requested: int
    used: int
    limit: int

    def describe(self, tier: str) -> str:
        """``cpu: requested 4, used 10 of 12 (ondemand)``."""
        f = format_amount
        return (f"{DIMS[self.dim]}: requested {f(self.dim, self.requested)}, used "
                f"{f(self.dim, self.used)} of {f(self.dim, self.limit)} ({tier})")

    @property
    def missing(self) -> int:
        return self.used + self.requested - self.limit


def shortfall(limit: Limits, used: Vector, demand: Vector) -> list[Over]:
    """The dimensions where ``used + demand`` exceeds ``limit`` (empty: it fits)."""
    out = []
    for d in range(4):
        lim = limit[d]
        if lim is not None and demand[d] and used[d] + demand[d] > lim:
            out.append(Over(d, demand[d], used[d], lim))
    return out


def fits(limit: Limits, used: Vector, demand: Vector) -> bool:
    for d in range(4):
        lim = limit[d]
        if lim is not None and demand[d] and used[d] + demand[d] > lim:
            return False
    return True


@dataclass(slots=True)
class TierAccount:
    """One project's tier: its limits and the running totals charged to it."""

    project: str
    tier: str
    limit: Limits = UNLIMITED
    used: Vector = ZERO
    """Everything charged here, borrowers included."""
    borrowed: Vector = ZERO
    """The part of ``used`` lent to preemptible workloads."""
    borrowers: SortedList = field(default_factory=SortedList)
    """``(order, uid)`` of the borrowing workloads, oldest first."""

    @property
    def own(self) -> Vector:
        """What this tier's own workloads hold."""
        return sub(self.used, self.borrowed)

    def charge(self, demand: Vector, *, borrower: tuple[Any, str] | None = None) -> None:
        self.used = add(self.used, demand)
        if borrower is not None:
            self.borrowed = add(self.borrowed, demand)
            self.borrowers.add(borrower)

    def release(self, demand: Vector, *, borrower: tuple[Any, str] | None = None) -> None:
        self.used = sub(self.used, demand)
        if borrower is not None:
            self.borrowed = sub(self.borrowed, demand)
            self.borrowers.discard(borrower)

    def reclaimable(self) -> Iterator[tuple[Any, str]]:
        """Borrowers, newest first (the order they are reclaimed in)."""
        return reversed(self.borrowers)


class Ledger:
    """Every (project, tier) account."""

    def __init__(self) -> None:
        self._accounts: dict[tuple[str, str], TierAccount] = {}
        self.quotas: dict[str, Mapping[str, Any] | None] = {}
        """The projects known, with their ``spec.quota``."""

    def account(self, project: str, tier: str) -> TierAccount:
        key = (project, tier)
        acct = self._accounts.get(key)
        if acct is None:
            acct = self._accounts[key] = TierAccount(project, tier)
            if project in self.quotas:
                acct.limit = _safe_limits(self.quotas[project], tier)
        return acct

    def set_quota(self, project: str, quota: Mapping[str, Any] | None) -> None:
        self.quotas[project] = quota
        for tier in TIERS:
            self.account(project, tier).limit = _safe_limits(quota, tier)

    def drop_project(self, project: str) -> None:
        self.quotas.pop(project, None)

    def usage(self, project: str) -> dict[str, Vector]:
        """What is charged now per tier (borrowed room counted in the lender)."""
        return {t: self.account(project, t).used for t in TIERS}


def _safe_limits(quota: Mapping[str, Any] | None, tier: str) -> Limits:
    try:
        return limits_of(quota, tier)
    except DemandError:
        return (0, 0, 0, 0)  # a malformed quota (validation prevents it) admits nothing


__all__ = ["LENDERS", "UNLIMITED", "Ledger", "Limits", "Over", "TierAccount", "fits",
           "limits_of", "shortfall"]
