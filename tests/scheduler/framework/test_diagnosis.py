from __future__ import annotations

from pincompute.scheduler.framework import Diagnosis, unschedulable
from pincompute.scheduler.framework.diagnosis import histogram_message


def test_reasons_are_counted_and_sorted_like_kube_scheduler() -> None:
    d = Diagnosis(total=3000)
    d.add("node(s) had untolerated taint {dedicated: gpu}", 900)
    d.add("Insufficient cpu", 2100)
    d.add("ignored", 0)
    assert d.message() == ("0/3000 nodes are available: 2100 Insufficient cpu, "
                           "900 node(s) had untolerated taint {dedicated: gpu}.")


def test_prefilter_and_postfilter_parts() -> None:
    d = Diagnosis(total=5, prefilter=unschedulable("pod group is too small"))
    d.post_filter = "preemption: not eligible."
    assert d.message() == "0/5 nodes are available: pod group is too small. preemption: " \
        "not eligible."
    assert Diagnosis(total=0).message() == "no nodes available to schedule pods"
    assert histogram_message(2, {"b": 1, "a": 1}) == "0/2 nodes are available: 1 a, 1 b."
