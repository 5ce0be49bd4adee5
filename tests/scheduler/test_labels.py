from __future__ import annotations

from pincompute.scheduler import labels as L


def test_tiers_order_priorities_and_victims() -> None:
    assert L.TIER_PRIORITY["reserved"] > L.TIER_PRIORITY["ondemand"] > \
        L.TIER_PRIORITY["preemptible"]
    assert L.tier_rank("preemptible") < L.tier_rank("ondemand") < L.tier_rank("reserved")
    assert L.tier_of({L.TIER_LABEL: "reserved"}) == "reserved"
    assert L.tier_of({}) == L.tier_of(None) == L.tier_of({L.TIER_LABEL: "gold"}) == "ondemand"
