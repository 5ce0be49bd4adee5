from __future__ import annotations

import random

import numpy as np

from pincompute.scheduler.framework import Code, NoEffects
from tests.scheduler.support import framework, info, node, pod, table_of


def setup(*nodes: object) -> tuple:
    t = table_of(*nodes)
    effects = NoEffects()
    return t, framework(t, effects=effects), effects


def bind(t: object, name: str, where: str, **kw: object) -> object:
    p = info(pod(name, **kw))  # type: ignore[arg-type]
    t.add_pod(p, where, assumed=False)  # type: ignore[attr-defined]
    return p


def test_reserved_pod_evicts_the_minimal_set_of_preemptible_pods() -> None:
    t, fw, effects = setup(node("a", cpu="4"))
    for i in range(4):
        bind(t, f"spot-{i}", "a", cpu="1", tier="preemptible")
    d = fw.schedule(info(pod("critical", cpu="2", tier="reserved")))
    assert d.status.code == Code.UNSCHEDULABLE and d.nominated == "a"
    assert len(effects.evicted) == 2
    assert effects.nominated == [("default/critical", "a")]
    assert t.nominated  # the room is held


def test_preemptible_pods_go_before_on_demand_ones() -> None:
    t, fw, effects = setup(node("a", cpu="4"))
    bind(t, "od", "a", cpu="2", tier="ondemand")
    bind(t, "spot", "a", cpu="2", tier="preemptible")
    fw.schedule(info(pod("critical", cpu="2", tier="reserved")))
    assert [v for v, _, _ in effects.evicted] == ["default/spot"]


def test_the_node_with_the_least_important_victims_is_chosen() -> None:
    t, fw, effects = setup(node("a", cpu="2"), node("b", cpu="2"), node("c", cpu="2"))
    bind(t, "od-a", "a", cpu="2", tier="ondemand")
    bind(t, "spot-b1", "b", cpu="1", tier="preemptible")
    bind(t, "spot-b2", "b", cpu="1", tier="preemptible")
    bind(t, "spot-c", "c", cpu="2", tier="preemptible")
    d = fw.schedule(info(pod("critical", cpu="2", tier="reserved")))
    # b and c only hold preemptible pods; c needs one victim, b two.
    assert d.nominated == "c"
    assert [v for v, _, _ in effects.evicted] == ["default/spot-c"]


def test_lower_tiers_never_evict_higher_ones() -> None:
    t, fw, effects = setup(node("a", cpu="2"))
    bind(t, "r", "a", cpu="2", tier="reserved")
    d = fw.schedule(info(pod("od", cpu="1", tier="ondemand", priority=5_000_000)))
    assert d.nominated == "" and not effects.evicted
    assert d.diagnosis is not None
    assert d.diagnosis.message() == (
        "0/1 nodes are available: 1 Insufficient cpu. preemption: 0/1 nodes are available: "
        "1 No preemption victims found for incoming pod.")


def test_unresolvable_nodes_are_not_candidates() -> None:
    t, fw, effects = setup(node("tainted", cpu="2", taints=[("k", "v", "NoSchedule")]))
    bind(t, "spot", "tainted", cpu="2", tier="preemptible",
         tolerations=[{"operator": "Exists"}])
    d = fw.schedule(info(pod("critical", cpu="2", tier="reserved")))
    assert not effects.evicted
    assert d.diagnosis is not None and d.diagnosis.message().endswith(
        "preemption: 0/1 nodes are available: 1 Preemption is not helpful for scheduling.")


def test_no_second_preemption_while_victims_terminate() -> None:
    t, fw, effects = setup(node("a", cpu="2"), node("b", cpu="2"))
    bind(t, "spot-a", "a", cpu="2", tier="preemptible")
    bind(t, "spot-b", "b", cpu="2", tier="preemptible")
    critical = info(pod("critical", cpu="2", tier="reserved"))
    assert fw.schedule(critical).nominated
    again = fw.schedule(critical)  # retried before the victim is gone
    assert again.nominated == "" and len(effects.evicted) == 1
    assert again.diagnosis is not None
    assert "not eligible due to terminating pods" in again.diagnosis.message()


def test_freed_room_is_not_taken_by_lower_priority_pods() -> None:
    t, fw, effects = setup(node("a", cpu="2"))
    victim = bind(t, "spot", "a", cpu="2", tier="preemptible")
    critical = info(pod("critical", cpu="2", tier="reserved"))
    fw.schedule(critical)
    t.remove_pod(victim.uid)  # the victim has terminated
    # Its replacement (or any other lower-priority pod) must not take the room...
    replacement = fw.schedule(info(pod("spot-again", cpu="1", tier="preemptible")))
    assert replacement.status.code == Code.UNSCHEDULABLE
    # ...and it must not preempt the nominated pod's room either.
    assert len(effects.evicted) == 1
    # The preemptor itself lands there.
    assert fw.schedule(critical).node == "a"
    assert not t.nominated


def test_preemption_policy_never_and_gang_members_do_not_preempt() -> None:
    t, fw, effects = setup(node("a", cpu="1"))
    bind(t, "spot", "a", cpu="1", tier="preemptible")
    never = pod("never", cpu="1", tier="reserved")
    never["spec"]["preemptionPolicy"] = "Never"
    d = fw.schedule(info(never))
    assert not effects.evicted
    assert d.diagnosis is not None and "preemptionPolicy=Never" in d.diagnosis.message()


def test_victims_still_being_bound_are_not_taken() -> None:
    t, fw, effects = setup(node("a", cpu="1"))
    t.add_pod(info(pod("spot", cpu="1", tier="preemptible")), "a", assumed=True)
    fw.schedule(info(pod("critical", cpu="1", tier="reserved")))
    assert not effects.evicted


def test_anti_affinity_victims_are_found_on_a_what_if_table() -> None:
    t, fw, effects = setup(node("a", cpu="4"))
    bind(t, "x", "a", cpu="1", tier="preemptible", labels={"app": "x"})
    bind(t, "y", "a", cpu="1", tier="preemptible", labels={"app": "y"})
    loner = info(pod("loner", cpu="1", tier="reserved", affinity={"podAntiAffinity": {
        "requiredDuringSchedulingIgnoredDuringExecution": [
            {"labelSelector": {"matchLabels": {"app": "x"}},
             "topologyKey": "kubernetes.io/hostname"}]}}))
    d = fw.schedule(loner)
    assert d.nominated == "a"
    assert [v for v, _, _ in effects.evicted] == ["default/x"]  # room was never the problem
    assert len(t.pods) == 2  # the what-if left the table as it was


def test_the_arithmetic_and_what_if_victim_searches_agree() -> None:
    rng = random.Random(3)
    for trial in range(30):
        t, fw, _ = setup(node("a", cpu=str(rng.randint(2, 8)), pods=rng.randint(3, 12)))
        for i in range(rng.randint(1, 10)):
            tier = rng.choice(["preemptible", "ondemand", "reserved"])
            p = info(pod(f"v{trial}-{i}", cpu=f"{rng.randint(1, 10) * 100}m", tier=tier))
            if fw.fits(p, np.array([0]))[0]:
                t.add_pod(p, "a", assumed=False)
        preemptor = info(pod("p", cpu=f"{rng.randint(1, 40) * 100}m", tier="reserved"))
        plugin = fw.by_name["Preemption"]
        fast = plugin.select_victims(preemptor, 0, only_resources=True)
        slow = plugin.select_victims(preemptor, 0, only_resources=False)
        assert sorted(v.uid for v in fast or []) == sorted(v.uid for v in slow or [])
