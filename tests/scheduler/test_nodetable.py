from __future__ import annotations

import numpy as np

from pincompute.kube.selectors import parse_label_selector
from pincompute.scheduler.nodetable import NodeTable

from .support import info, node, pod, table_of


def test_nodes_become_rows_and_rows_are_reused() -> None:
    t = table_of(node("a", cpu="2"), node("b", cpu="500m", memory="1Gi", pods=3, gpu=2))
    a, b = t.row_of["a"], t.row_of["b"]
    assert (t.alloc_cpu[a], t.alloc_cpu[b]) == (2000, 500)
    assert (t.alloc_mem[b], t.alloc_pods[b], t.alloc_gpu[b]) == (2**30, 3, 2)
    assert t.count == 2
    assert t.remove_node("a")
    assert t.count == 1 and not t.valid[a]
    t.upsert_node(node("c"))
    assert t.row_of["c"] == a  # the freed row is reused
    assert t.names[a] == "c"


def test_capacity_grows_and_bumps_the_epoch() -> None:
    t = NodeTable(capacity=2)
    epoch = t.epoch
    for i in range(5):
        t.upsert_node(node(f"n{i}"))
    assert t.capacity >= 5 and t.epoch > epoch
    assert [t.names[r] for r in t.node_rows()] == [f"n{i}" for i in range(5)]


def test_update_reports_what_changed() -> None:
    t = table_of(node("a"))
    assert t.upsert_node(node("a"))[1] == set()  # a heartbeat
    _, changed = t.upsert_node(node("a", cpu="8", labels={"x": "1"}, unschedulable=True,
                                    taints=[("k", "v", "NoSchedule")]))
    assert changed == {"allocatable", "labels", "unschedulable", "taints"}


def test_label_columns_and_values() -> None:
    t = table_of(node("a", labels={"zone": "z1"}), node("b", labels={"zone": "z2"}), node("c"))
    col = t.column("zone")
    assert col[t.row_of["a"]] != col[t.row_of["b"]]
    assert col[t.row_of["c"]] == -1
    assert t.value_id("zone", "nowhere") == -2
    t.upsert_node(node("c", labels={"zone": "z1"}))
    assert col[t.row_of["c"]] == col[t.row_of["a"]]  # existing columns follow updates
    assert t.column("kubernetes.io/hostname")[t.row_of["b"]] >= 0  # implicit hostname


def test_numeric_view_of_labels() -> None:
    t = table_of(node("a", labels={"cores": "16"}), node("b", labels={"cores": "many"}), node("c"))
    nums = t.numeric_column("cores", slice(0, t.n))
    assert nums[t.row_of["a"]] == 16
    assert np.isnan(nums[t.row_of["b"]]) and np.isnan(nums[t.row_of["c"]])


def test_taint_bits_and_new_taints_bump_the_epoch() -> None:
    t = table_of(node("a"))
    epoch = t.epoch
    t.upsert_node(node("b", taints=[("k", "v", "NoSchedule"), ("p", "", "PreferNoSchedule")]))
    assert t.epoch > epoch
    b = t.row_of["b"]
    assert t.hard_taints[b].any() and t.soft_taints[b].any()
    assert t.soft_taint_nodes == 1
    t.remove_node("b")
    assert t.soft_taint_nodes == 0


def test_many_distinct_taints_spill_into_more_words() -> None:
    t = table_of(*(node(f"n{i}", taints=[(f"k{i}", "", "NoSchedule")]) for i in range(70)))
    assert t.words == 2
    last = t.row_of["n69"]
    assert t.hard_taints[last, 1] != 0 and t.hard_taints[last, 0] == 0


def test_assume_confirm_forget() -> None:
    t = table_of(node("a"))
    p = info(pod("p", cpu="1"))
    t.add_pod(p, "a", assumed=True)
    row = t.row_of["a"]
    assert t.req_cpu[row] == 1000 and t.req_pods[row] == 1 and t.is_assumed(p.uid)
    pos = t.pod_pos
    t.add_pod(p, "a", assumed=False)  # the informer confirms: nothing moves
    assert not t.is_assumed(p.uid) and t.pod_pos == pos and t.req_cpu[row] == 1000
    t.remove_pod(p.uid)
    assert t.req_cpu[row] == 0 and t.req_pods[row] == 0
    assert t.pod_changes(pos) == [row]


def test_pods_on_unknown_nodes_wait_for_the_node() -> None:
    t = NodeTable()
    p = info(pod("p", cpu="1"))
    t.add_pod(p, "later", assumed=False)
    assert "later" in t.pending
    t.upsert_node(node("later"))
    assert t.req_cpu[t.row_of["later"]] == 1000 and not t.pending
    t.remove_node("later")
    assert p.uid in t.pending["later"]


def test_match_counters_follow_pods() -> None:
    t = table_of(node("a"), node("b"))
    sel = parse_label_selector("app=web")
    web = info(pod("w1", labels={"app": "web"}))
    t.add_pod(web, "a", assumed=False)
    counts = t.match_counts(frozenset({"default"}), sel)
    assert counts[t.row_of["a"]] == 1
    t.add_pod(info(pod("w2", labels={"app": "web"})), "b", assumed=True)
    t.add_pod(info(pod("w3", labels={"app": "web"}, namespace="batch")), "b", assumed=False)
    t.add_pod(info(pod("x", labels={"app": "db"})), "b", assumed=False)
    assert counts[t.row_of["b"]] == 1
    assert t.match_counts(None, sel)[t.row_of["b"]] == 2  # every namespace
    t.remove_pod(web.uid)
    assert counts[t.row_of["a"]] == 0
    deleting = pod("w4", labels={"app": "web"})
    deleting["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    t.add_pod(info(deleting), "a", assumed=False)
    assert counts[t.row_of["a"]] == 0  # terminating pods are not counted


def test_nominations_count_for_equal_or_lower_priority_only() -> None:
    t = table_of(node("a"), node("b"))
    high = info(pod("high", cpu="2", tier="reserved"))
    t.nominate(high, "a")
    rows = np.array([t.row_of["a"], t.row_of["b"]])
    extra = t.nominated_extra(rows, priority=0)
    assert extra is not None and list(extra[0]) == [2000, 0]
    assert t.nominated_extra(rows, priority=2_000_000) is None
    assert t.nominated_extra(rows, priority=0, exclude=high.uid) is None
    assert t.nominated_row(t.row_of["a"], 0) == (2000, high.memory, 0, 1)
    t.add_pod(high, "a", assumed=True)  # placed: the nomination is done
    assert not t.nominated


def test_overcommitted_reports_nodes_beyond_allocatable() -> None:
    t = table_of(node("a", cpu="1"))
    t.add_pod(info(pod("p", cpu="2")), "a", assumed=False)
    assert t.overcommitted() == ["a"]
