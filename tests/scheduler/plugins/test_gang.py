from __future__ import annotations

from pincompute.scheduler.framework import Code
from tests.scheduler.support import ManualTimers, framework, gang, info, node, pod, table_of


def members(group: str, n: int, min_member: int, *, timeout: float | None = None,
            cpu: str = "1") -> list:
    g = gang(group, min_member, timeout)
    return [info(pod(f"{group}-{i}", cpu=cpu, **g)) for i in range(n)]


def test_too_few_pods_are_rejected_before_anything_is_reserved() -> None:
    t = table_of(node("a"))
    fw = framework(t)
    pods = members("g", 2, 3)
    for p in pods:
        fw.pod_seen(p)
    d = fw.schedule(pods[0])
    assert d.status.code == Code.UNRESOLVABLE
    assert d.diagnosis is not None
    assert d.diagnosis.message() == ('0/1 nodes are available: pod group "default/g" has 2 '
                                     "pod(s), fewer than minMember 3.")
    assert not t.pods


def test_members_wait_until_min_member_are_reserved_then_all_bind() -> None:
    t = table_of(node("a"), node("b"))
    timers = ManualTimers()
    fw = framework(t, timers=timers)
    pods = members("g", 3, 3)
    for p in pods:
        fw.pod_seen(p)
    outcomes: dict[str, bool] = {}
    for p in pods[:2]:
        d = fw.schedule(p)
        assert d.status.code == Code.WAIT
        fw.wait(d, lambda wp, st: outcomes.__setitem__(wp.info.name, st.ok))
    assert len(t.pods) == 2 and not outcomes
    last = fw.schedule(pods[2])
    assert last.status.ok
    assert outcomes == {"g-0": True, "g-1": True}
    assert not fw.waiting and timers.pending == 0


def test_timeout_releases_every_waiting_member() -> None:
    t = table_of(node("a"))
    timers = ManualTimers()
    fw = framework(t, timers=timers)
    pods = members("g", 3, 3, timeout=5)
    for p in pods:
        fw.pod_seen(p)
    verdicts: dict[str, str] = {}

    def done(wp: object, st: object) -> None:
        verdicts[wp.info.name] = st.message  # type: ignore[attr-defined]
        fw.unreserve(wp.state, wp.info, wp.node)  # type: ignore[attr-defined]

    for p in pods[:2]:
        fw.wait(fw.schedule(p), done)
    timers.advance(5)
    assert set(verdicts) == {"g-0", "g-1"}
    assert 'pod group "default/g": ' in verdicts["g-0"]
    assert not t.pods  # every reservation released
    assert t.req_cpu[t.row_of["a"]] == 0


def test_a_member_that_does_not_fit_releases_the_group_and_denies_it() -> None:
    t = table_of(node("a", cpu="2"))
    fw = framework(t)
    pods = members("g", 3, 3)
    for p in pods:
        fw.pod_seen(p)
    released: list[str] = []

    def done(wp: object, st: object) -> None:
        released.append(wp.info.name)  # type: ignore[attr-defined]
        fw.unreserve(wp.state, wp.info, wp.node)  # type: ignore[attr-defined]

    for p in pods[:2]:
        fw.wait(fw.schedule(p), done)
    third = fw.schedule(pods[2])
    assert third.status.code == Code.UNSCHEDULABLE
    assert sorted(released) == ["g-0", "g-1"] and not t.pods
    denied = fw.schedule(pods[0])
    assert denied.status.code == Code.UNRESOLVABLE
    assert "waits for the cluster to change" in denied.status.message
    fw.cluster_event("AssignedPodDelete")  # room may have appeared: try again
    assert fw.schedule(pods[0]).status.code == Code.WAIT


def test_pods_without_a_group_pass_straight_through() -> None:
    t = table_of(node("a"))
    fw = framework(t)
    assert fw.schedule(info(pod("solo"))).status.ok
