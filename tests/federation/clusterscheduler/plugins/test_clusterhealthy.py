from __future__ import annotations

from tests.federation.clusterscheduler.support import app, excluded, member, scheduler


def _status(**extra: object) -> dict[str, object]:
    return {"tiers": {"ondemand": {"allocatable": {"cpu": "64", "memory": "64Gi"}}}, **extra}


def test_unready_unreachable_unhealthy_and_unschedulable_clusters_are_excluded() -> None:
    s = scheduler(
        member("ok", "z1", status=_status(conditions=[{"type": "Ready", "status": "True"}])),
        member("unready", "z1", status=_status(conditions=[
            {"type": "Ready", "status": "False", "reason": "NodesNotReady"}])),
        member("unreachable", "z1", status=_status(conditions=[
            {"type": "Connected", "status": "False", "reason": "Unreachable"}])),
        member("sick", "z1", status=_status(health="Unhealthy")),
        member("cordoned", "z1", unschedulable=True),
        member("new", "z1", status=_status()))  # nothing reported yet: healthy
    d = s.schedule(app(4), reserve=False)
    assert set(d.replicas()) == {"ok", "new"}
    why = excluded(d)
    assert why["unready"] == ("ClusterHealthy", "cluster condition Ready is False (NodesNotReady)")
    assert why["unreachable"][0] == "ClusterHealthy"
    assert why["sick"] == ("ClusterHealthy", "cluster health is Unhealthy")
    assert why["cordoned"] == ("ClusterHealthy", "cluster is unschedulable (spec.unschedulable)")


def test_recovery_is_seen_at_the_next_decision() -> None:
    bad = member("c", "z1", status=_status(conditions=[{"type": "Ready", "status": "False"}]))
    s = scheduler(bad)
    assert not s.schedule(app(1), reserve=False).scheduled
    good = member("c", "z1", status=_status(conditions=[{"type": "Ready", "status": "True"}]))
    s.table.upsert(good)
    assert s.schedule(app(1), reserve=False).replicas() == {"c": 1}
