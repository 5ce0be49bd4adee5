from __future__ import annotations

from tests.federation.clusterscheduler.support import app, excluded, member, scheduler


def test_tier_needs_a_pool_of_its_own_but_preemptible_borrows() -> None:
    s = scheduler(member("both", "z1", tiers=("reserved", "ondemand")),
                  member("ondemand-only", "z1", tiers=("ondemand",)),
                  member("pooled", "z1", status={"allocatable": {"cpu": "8", "memory": "8Gi"}}))
    d = s.schedule(app(2, tier="reserved"), reserve=False)
    assert set(d.replicas()) <= {"both", "pooled"}
    assert excluded(d)["ondemand-only"] == ("TierPool", "no node pool for tier reserved")
    # Preemptible work runs on what other tiers leave idle: any pool will do.
    d = s.schedule(app(3, tier="preemptible"), reserve=False)
    assert "ondemand-only" not in {c for c, (p, _) in excluded(d).items() if p == "TierPool"}
    assert d.scheduled
