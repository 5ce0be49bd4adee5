"""TierPriority (PreemptionPolicy): who may preempt whom, and who goes first.

Theory of operation
-------------------
PinCompute's capacity tiers (DESIGN §7) set the rules preemption must obey:

* a pod may only preempt pods of **strictly lower priority**, and never pods of a
  **higher tier** than its own — so whatever ``spec.priority`` says, an
  on-demand or preemptible pod never evicts a reserved one, and a preemptible
  pod never evicts an on-demand one;
* reserved pods are preempted only by reserved pods of higher priority
  (``protect_reserved`` turns even that off);
* victims are taken **preemptible first**, then on-demand, then reserved; within
  a tier lower priority first, and among equals the most recently created first
  (it has lost the least work).

The Preemption plugin asks every enabled policy; all must agree.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from pincompute.scheduler import labels as L
from pincompute.scheduler.framework.handle import FrameworkHandle
from pincompute.scheduler.podinfo import PodInfo

NAME = "TierPriority"


@lru_cache(maxsize=65_536)
def _created_seconds(created: str) -> float:
    if not created:
        return 0.0
    try:
        return _dt.datetime.fromisoformat(created.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return 0.0


class TierPriority:
    name = NAME

    def __init__(self, *, protect_reserved: bool = False) -> None:
        self.protect_reserved = protect_reserved

    def can_preempt(self, preemptor: PodInfo, victim: PodInfo) -> bool:
        if victim.priority >= preemptor.priority:
            return False
        if L.tier_rank(victim.tier) > L.tier_rank(preemptor.tier):
            return False
        return not (self.protect_reserved and victim.tier == L.RESERVED)

    def victim_key(self, victim: PodInfo) -> tuple[Any, ...]:
        return (L.tier_rank(victim.tier), victim.priority, -_created_seconds(victim.created),
                victim.key)


def new(args: Mapping[str, Any], handle: FrameworkHandle) -> TierPriority:
    return TierPriority(protect_reserved=bool(args.get("protect_reserved", False)))
