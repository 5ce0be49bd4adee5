"""Per-app sums folded from node records: replaced, removed and expired records."""

from __future__ import annotations

from pincompute.model.usage import NodeUsage, PodUsage, from_configmap
from pincompute.scaler.usageindex import UsageIndex


def pod(name: str, *, cpu: int | None, ready: bool = True, app: str = "web",
        custom: dict[str, float] | None = None) -> PodUsage:
    return PodUsage(namespace="demo", name=name, app=app, ready=ready, running=True,
                    cpu_request=100, memory_request=100, cpu=cpu,
                    memory=50 if cpu is not None else None, custom=custom or {})


def test_records_fold_into_per_app_groups() -> None:
    now = [1000.0]
    index = UsageIndex(clock=lambda: now[0], stale_seconds=60)
    index.set_node("a", NodeUsage(node="n1", time=1000, pods=(
        pod("p1", cpu=80, custom={"rps": 4}), pod("p2", cpu=None),
        pod("p3", cpu=10, ready=False), pod("x", cpu=5, app="other"))))
    index.set_node("b", NodeUsage(node="n1", time=990, pods=(pod("p4", cpu=40,
                                                                 custom={"rps": 2}),)))
    web = index.get("demo", "web")
    assert web is not None
    assert (web.reported, web.cpu_ready, web.cpu_used, web.cpu_missing, web.cpu_unready) == \
        (4, 2, 120, 1, 1)
    assert web.custom == {"rps": [2, 6.0]} and web.custom_missing("rps") == 2
    # a new record replaces the node's old one
    index.set_node("a", NodeUsage(node="n1", time=1010, pods=(pod("p1", cpu=20),)))
    web = index.get("demo", "web")
    assert web is not None and (web.reported, web.cpu_used) == (2, 60)
    # a node silent too long stops counting
    now[0] = 1055
    assert index.expire() == 1
    web = index.get("demo", "web")
    assert web is not None and (web.reported, web.cpu_used) == (1, 20)
    index.forget_cluster("a")
    assert index.get("demo", "web") is None and index.get("demo", "other") is None


def test_a_record_round_trips_through_its_configmap() -> None:
    usage = NodeUsage(node="n1", time=12.5, cpu=80, memory=50, pods=(
        pod("p1", cpu=80, custom={"rps": 4.5}),))
    assert from_configmap(usage.configmap()) == usage
    assert from_configmap({"data": {"usage.json": "{broken"}}) is None
