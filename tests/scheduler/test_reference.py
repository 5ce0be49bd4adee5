from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from pincompute.scheduler.framework import CycleState, Profile
from pincompute.scheduler.plugins import in_tree
from pincompute.scheduler.reference import ReferenceFramework

from .support import ZONE, ManualTimers, framework, info, node, pod, table_of

nodes = st.lists(st.tuples(st.integers(1, 8), st.integers(1, 16), st.integers(2, 12),
                           st.sampled_from(["z1", "z2", None]),
                           st.sampled_from([None, "NoSchedule", "PreferNoSchedule"]),
                           st.booleans()),
                 min_size=1, max_size=12)
pods = st.lists(st.tuples(st.integers(50, 3000), st.integers(64, 4096),
                          st.sampled_from([None, "z1", "z2"]), st.booleans(),
                          st.sampled_from([None, "prefer-z2"])),
                min_size=1, max_size=25)


@settings(max_examples=50, deadline=None)
@given(nodes=nodes, pods=pods, bin_packing=st.booleans())
def test_vectorized_and_node_by_node_agree(nodes: list, pods: list, bin_packing: bool) -> None:
    t = table_of(*(node(f"n{i}", cpu=str(c), memory=f"{m}Gi", pods=np_,
                        labels={ZONE: z} if z else {},
                        taints=[("dedicated", "x", eff)] if eff else [], unschedulable=cordon)
                   for i, (c, m, np_, z, eff, cordon) in enumerate(nodes)))
    profile = Profile()
    if bin_packing:
        profile = profile.with_plugins(disable=["LeastAllocated"], enable=["MostAllocated"])
    fw = framework(t, profile=profile)
    timers = ManualTimers()
    ref = ReferenceFramework(profile, in_tree(), table=t, call_later=timers.call_later)
    for i, (cpu, mem, zone, tolerate, prefer) in enumerate(pods):
        affinity = {"nodeAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
            {"weight": 5, "preference": {"matchExpressions": [
                {"key": ZONE, "operator": "In", "values": ["z2"]}]}}]}} if prefer else None
        p = info(pod(f"p{i}", cpu=f"{cpu}m", memory=f"{mem}Mi",
                     node_selector={ZONE: zone} if zone else None,
                     tolerations=[{"key": "dedicated", "operator": "Exists"}] if tolerate else (),
                     affinity=affinity))
        vec = fw.find(p)
        slow = ref.find(p)
        n = t.n
        assert np.array_equal(vec.fails[:n] == 0, slow.fails[:n] == 0)
        assert (vec.best < 0) == (slow.best < 0)
        if vec.best < 0:
            assert fw.diagnose(p, vec).message() == ref.diagnose(p, slow).message()
            continue
        # Both pick a node with the best score (ties may be broken differently by rounding).
        totals = vec.masked[:n]
        assert np.isclose(totals[slow.best], totals[vec.best])
        fw.commit(p, CycleState(), t.names[vec.best], vec.best)
