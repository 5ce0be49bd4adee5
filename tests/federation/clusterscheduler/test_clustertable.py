from __future__ import annotations

from pincompute.federation.clusterscheduler import ClusterTable
from pincompute.model.wellknown import TIERS

from .support import member

OD, PE = TIERS.index("ondemand"), TIERS.index("preemptible")


def test_rows_are_reused_and_the_spec_epoch_moves_only_on_spec_changes() -> None:
    t = ClusterTable(capacity=2)
    for i in range(5):
        t.upsert(member(f"c{i}", "z1"))
    assert len(t) == 5 and t.cap >= 5
    epoch = t.spec_epoch
    t.upsert(member("c1", "z1", allocated={"cpu": "3"}))       # status only
    assert t.spec_epoch == epoch
    t.upsert(member("c1", "z1", labels={"new": "label"}))
    assert t.spec_epoch > epoch
    row = t.row_of("c2")
    t.remove("c2")
    assert t.row_of("c2") is None and len(t) == 4
    t.upsert(member("c9", "z2"))
    assert t.row_of("c9") == row
    assert t.zones == ["z1", "z2"]


def test_free_room_per_tier_pooled_and_preemptible_borrowing() -> None:
    t = ClusterTable()
    t.upsert(member("tiered", "z1", tiers=("ondemand", "reserved"), cpu="10",
                    allocated={"cpu": "4"}))
    t.upsert(member("pooled", "z1", status={"allocatable": {"cpu": "8"},
                                            "allocated": {"cpu": "1"},
                                            "allocating": {"cpu": "1"}}))
    rows = t.rows()
    assert t.free(OD, rows)[:, 0].tolist() == [6000, 6000]
    # Preemptible: its own pool (none) plus what the others leave idle.
    assert t.free(PE, rows)[:, 0].tolist() == [12000, 6000]
    t.resv[t.row_of("pooled"), PE, 0] = 2000
    assert t.free(OD, rows)[:, 0].tolist() == [6000, 4000]   # pooled: one bucket
    assert not t.pooled[t.row_of("tiered")] and t.pooled[t.row_of("pooled")]
