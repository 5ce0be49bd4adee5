from __future__ import annotations

from pincompute.scheduler.plugins.tierpriority import TierPriority, new
from tests.scheduler.support import info, pod


def test_lower_priority_and_never_a_higher_tier() -> None:
    policy = TierPriority()
    reserved = info(pod("r", tier="reserved"))
    ondemand = info(pod("o", tier="ondemand"))
    spot = info(pod("s", tier="preemptible"))
    assert policy.can_preempt(reserved, ondemand) and policy.can_preempt(reserved, spot)
    assert policy.can_preempt(ondemand, spot)
    assert not policy.can_preempt(ondemand, reserved)
    assert not policy.can_preempt(spot, ondemand)
    assert not policy.can_preempt(ondemand, info(pod("o2", tier="ondemand")))
    # Whatever spec.priority says, a lower tier never evicts a higher one.
    loud = info(pod("loud", tier="preemptible", priority=5_000_000))
    assert not policy.can_preempt(loud, ondemand) and not policy.can_preempt(loud, reserved)
    # Within a tier, a higher spec.priority may preempt.
    assert policy.can_preempt(info(pod("o3", tier="ondemand", priority=20_000)), ondemand)


def test_reserved_can_be_fully_protected() -> None:
    policy = new({"protect_reserved": True}, None)
    top = info(pod("r1", tier="reserved", priority=2_000_000))
    assert not policy.can_preempt(top, info(pod("r2", tier="reserved")))


def test_preemptible_pods_are_the_first_victims_newest_first() -> None:
    policy = TierPriority()
    old = pod("old", tier="preemptible")
    old["metadata"]["creationTimestamp"] = "2026-01-01T00:00:00Z"
    new_ = pod("new", tier="preemptible")
    new_["metadata"]["creationTimestamp"] = "2026-01-02T00:00:00Z"
    victims = [info(pod("o", tier="ondemand")), info(old), info(new_),
               info(pod("r", tier="reserved"))]
    order = [v.name for v in sorted(victims, key=policy.victim_key)]
    assert order == ["new", "old", "o", "r"]
