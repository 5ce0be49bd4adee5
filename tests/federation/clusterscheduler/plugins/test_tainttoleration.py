from __future__ import annotations

from tests.federation.clusterscheduler.support import excluded, job, member, scheduler


def test_untolerated_noschedule_taint_excludes_and_toleration_admits() -> None:
    taint = {"key": "dedicated", "value": "ml", "effect": "NoSchedule"}
    s = scheduler(member("tainted", "z1", taints=[taint]), member("plain", "z1"))
    d = s.schedule(job(1, placement={"clusterAffinity": {"clusterNames": ["tainted"]}}),
                   reserve=False)
    assert not d.scheduled
    assert excluded(d)["tainted"] == ("TaintToleration",
                                      "untolerated taint dedicated=ml:NoSchedule")
    ok = s.schedule(job(1, placement={
        "clusterAffinity": {"clusterNames": ["tainted"]},
        "tolerations": [{"key": "dedicated", "operator": "Equal", "value": "ml",
                         "effect": "NoSchedule"}]}), reserve=False)
    assert ok.replicas() == {"tainted": 1}
    wrong_value = s.schedule(job(1, placement={
        "clusterAffinity": {"clusterNames": ["tainted"]},
        "tolerations": [{"key": "dedicated", "value": "web"}]}), reserve=False)
    assert not wrong_value.scheduled
    everything = s.schedule(job(1, placement={
        "clusterAffinity": {"clusterNames": ["tainted"]},
        "tolerations": [{"operator": "Exists"}]}), reserve=False)
    assert everything.scheduled


def test_prefer_noschedule_only_lowers_the_score() -> None:
    s = scheduler(member("a", "z1", taints=[{"key": "old", "effect": "PreferNoSchedule"}]),
                  member("b", "z1"))
    assert s.schedule(job(1), reserve=False).replicas() == {"b": 1}
