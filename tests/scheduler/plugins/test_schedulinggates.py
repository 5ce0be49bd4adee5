from __future__ import annotations

from pincompute.scheduler.plugins.schedulinggates import SchedulingGates
from tests.scheduler.support import info, pod


def test_gated_pods_stay_out_of_the_queue() -> None:
    assert not SchedulingGates().pre_enqueue(info(pod("g", gated=True))).ok
    assert SchedulingGates().pre_enqueue(info(pod("p"))).ok
