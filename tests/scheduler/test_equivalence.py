from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from pincompute.scheduler.equivalence import EquivalenceCache

from .support import HOST, ZONE, framework, info, node, pod, table_of

CLASSES = [
    pod("plain", cpu="500m", memory="512Mi"),
    pod("big", cpu="2", memory="4Gi"),
    pod("selector", cpu="300m", node_selector={ZONE: "z1"}),
    pod("tolerant", cpu="300m", tolerations=[{"key": "dedicated", "operator": "Exists"}]),
    pod("spread", cpu="300m", labels={"app": "web"}, spread=[
        {"maxSkew": 1, "topologyKey": ZONE, "whenUnsatisfiable": "DoNotSchedule",
         "labelSelector": {"matchLabels": {"app": "web"}}},
        {"maxSkew": 1, "topologyKey": HOST, "whenUnsatisfiable": "ScheduleAnyway",
         "labelSelector": {"matchLabels": {"app": "web"}}}]),
    pod("soft", cpu="300m", labels={"app": "web"}, spread=[
        {"maxSkew": 1, "topologyKey": HOST, "whenUnsatisfiable": "ScheduleAnyway",
         "labelSelector": {"matchLabels": {"app": "web"}}}]),
    pod("anti", cpu="300m", labels={"app": "db"}, affinity={"podAntiAffinity": {
        "requiredDuringSchedulingIgnoredDuringExecution": [
            {"labelSelector": {"matchLabels": {"app": "db"}}, "topologyKey": HOST}]}}),
    pod("prefers", cpu="300m", affinity={"nodeAffinity": {
        "preferredDuringSchedulingIgnoredDuringExecution": [
            {"weight": 10, "preference": {"matchExpressions": [
                {"key": ZONE, "operator": "In", "values": ["z2"]}]}}]}}),
]

ops = st.lists(st.tuples(st.sampled_from(["place", "remove", "relabel", "taint", "cordon",
                                          "add-node", "drop-node", "nominate", "burst"]),
                         st.integers(0, 10_000), st.integers(0, len(CLASSES) - 1)),
               min_size=1, max_size=40)


def check(cache: EquivalenceCache, fw: object, probe: object) -> None:
    cached = cache.evaluate(probe, fw.active)  # type: ignore[attr-defined]
    fresh = cache.evaluate(probe, fw.active, cached=False)  # type: ignore[attr-defined]
    n = cache.table.n
    assert np.array_equal(cached.fails[:n] == 0, fresh.fails[:n] == 0)
    assert np.allclose(cached.masked[:n], fresh.masked[:n], equal_nan=True)
    assert (cached.best < 0) == (fresh.best < 0)
    if cached.best >= 0:
        # Picked incrementally, yet exactly argmax's pick: the first row holding the maximum.
        assert cached.best == int(np.argmax(cached.masked[:n]))
    if fresh.best >= 0:
        assert cached.masked[cached.best] == np.max(fresh.masked[:n]) or np.isclose(
            cached.masked[cached.best], np.max(fresh.masked[:n]))


@settings(max_examples=40, deadline=None)
@given(ops=ops)
def test_incremental_refresh_equals_a_full_recompute(ops: list) -> None:
    t = table_of(*(node(f"n{i}", cpu="2", memory="4Gi", pods=6,
                        labels={ZONE: f"z{i % 3}"}) for i in range(40)))
    fw = framework(t)
    cache = fw.cache
    placed: list = []
    names = [f"n{i}" for i in range(40)]
    for step, (op, r, k) in enumerate(ops):
        if op == "place":
            p = info({**CLASSES[k], "metadata": {**CLASSES[k]["metadata"], "uid": f"s{step}",
                                                 "name": f"s{step}"}})
            alive = [nm for nm in names if nm in t.row_of]
            if alive:
                t.add_pod(p, alive[r % len(alive)], assumed=bool(r % 2))
                placed.append(p)
        elif op == "burst":
            # Enough rows change at once for the vectorized row update.
            alive = [nm for nm in names if nm in t.row_of]
            for j in range(min(9, len(alive))):
                cls = CLASSES[(k + j) % len(CLASSES)]
                p = info({**cls, "metadata": {**cls["metadata"], "uid": f"b{step}-{j}",
                                              "name": f"b{step}-{j}"}})
                t.add_pod(p, alive[(r + j) % len(alive)], assumed=False)
                placed.append(p)
        elif op == "remove" and placed:
            t.remove_pod(placed.pop(r % len(placed)).uid)
        elif op == "relabel":
            nm = names[r % len(names)]
            if nm in t.row_of:
                t.upsert_node(node(nm, cpu="2", memory="4Gi", pods=6, labels={ZONE: f"z{r % 4}"}))
        elif op == "taint":
            nm = names[r % len(names)]
            if nm in t.row_of:
                t.upsert_node(node(nm, cpu="2", memory="4Gi", pods=6, labels={ZONE: "z1"},
                                   taints=[("dedicated", "x", "NoSchedule")] if r % 2 else []))
        elif op == "cordon":
            nm = names[r % len(names)]
            if nm in t.row_of:
                t.upsert_node(node(nm, cpu="2", memory="4Gi", pods=6, labels={ZONE: "z0"},
                                   unschedulable=bool(r % 2)))
        elif op == "add-node":
            nm = f"x{step}"
            names.append(nm)
            t.upsert_node(node(nm, cpu="4", memory="8Gi", labels={ZONE: f"z{r % 3}"}))
        elif op == "drop-node":
            nm = names[r % len(names)]
            t.remove_node(nm)
        elif op == "nominate":
            alive = [nm for nm in names if nm in t.row_of]
            if alive:
                t.nominate(info(pod(f"nom{step}", cpu="1", tier="reserved", uid=f"nom{step}")),
                           alive[r % len(alive)])
        for cls in CLASSES:
            check(cache, fw, info(cls))


def test_one_binding_refreshes_one_row() -> None:
    t = table_of(*(node(f"n{i}") for i in range(100)))
    fw = framework(t)
    first = fw.cache.evaluate(info(pod("a")), fw.active)
    full = first.full_passes
    for i in range(20):
        p = info(pod(f"p{i}"))
        d = fw.schedule(p)
        assert d.status.ok
    entry = fw.cache.evaluate(info(pod("b")), fw.active)
    assert entry is first and entry.full_passes == full and entry.row_passes >= 20
    assert fw.cache.hits >= 20 and fw.cache.misses == 1


def test_the_pick_after_a_binding_is_the_first_best_row() -> None:
    # Equal nodes but rows 10-119, which are fuller.  Each binding lowers its row; the
    # next pick must be exactly argmax's: the first row holding the best score — the
    # next row (found near the last pick), row 120 (past the rows looked at, so by a
    # full pass), or a fuller row that a removal lifted back to the best score.
    t = table_of(*(node(f"n{i:03d}") for i in range(200)))
    for i in range(10, 120):
        t.add_pod(info(pod(f"pre{i}", cpu="1", uid=f"pre{i}")), f"n{i:03d}", assumed=False)
    fw = framework(t)
    probe = info(pod("probe", cpu="100m", memory="128Mi"))
    for i in range(300):
        d = fw.schedule(info(pod(f"p{i}", cpu="100m", memory="128Mi", uid=f"p{i}")))
        assert d.status.ok
        if i in (3, 130, 140):
            t.remove_pod(f"pre{115 - i % 7}")  # lifted in the same refresh as the binding
        if i == 150:
            t.remove_pod("p100")
        entry = fw.cache.evaluate(probe, fw.active)
        assert entry.best == int(np.argmax(entry.masked[:t.n])), i


def test_a_new_taint_invalidates_every_class() -> None:
    t = table_of(node("a"), node("b"))
    fw = framework(t)
    entry = fw.cache.evaluate(info(pod("p")), fw.active)
    passes = entry.full_passes
    t.upsert_node(node("b", taints=[("k", "v", "NoSchedule")]))
    again = fw.cache.evaluate(info(pod("p")), fw.active)
    assert again.best == t.row_of["a"]
    assert again is not entry or again.full_passes > passes


def test_the_cache_is_bounded() -> None:
    t = table_of(node("a"))
    fw = framework(t, max_classes=3)
    for i in range(10):
        fw.cache.evaluate(info(pod("p", cpu=f"{i + 1}m")), fw.active)
    assert len(fw.cache) == 3
