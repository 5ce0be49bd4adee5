from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from pincompute.scheduler.framework import Deps
from pincompute.scheduler.plugins.nodeaffinity import NodeAffinity
from pincompute.scheduler.podinfo import term_matches
from tests.scheduler.support import explain, info, node, passes, pod, scores, table_of


def required(*terms: dict) -> dict:
    return {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution":
                             {"nodeSelectorTerms": list(terms)}}}


def test_terms_are_ored_and_expressions_anded() -> None:
    t = table_of(node("a", labels={"zone": "z1", "cores": "16"}),
                 node("b", labels={"zone": "z2", "cores": "4"}), node("c"))
    p = info(pod("p", affinity=required(
        {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["z1", "z9"]},
                              {"key": "cores", "operator": "Gt", "values": ["8"]}]},
        {"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["c"]}]})))
    assert passes(NodeAffinity(), p, t) == {"a": True, "b": False, "c": True}
    assert explain(NodeAffinity(), p, t) == {"node(s) didn't match Pod's node affinity/selector": 1}


def test_empty_terms_match_nothing_and_absent_affinity_skips() -> None:
    t = table_of(node("a"))
    assert passes(NodeAffinity(), info(pod("p", affinity=required())), t) == {"a": False}
    assert NodeAffinity().filter_deps(info(pod("q")), t) == Deps.NONE
    assert NodeAffinity().score_deps(info(pod("q")), t) == Deps.NONE


def test_preferred_terms_add_weights_normalized_to_100() -> None:
    t = table_of(node("a", labels={"disk": "ssd", "zone": "z1"}),
                 node("b", labels={"disk": "ssd"}), node("c"))
    p = info(pod("p", affinity={"nodeAffinity": {
        "preferredDuringSchedulingIgnoredDuringExecution": [
            {"weight": 30, "preference": {"matchExpressions": [
                {"key": "disk", "operator": "In", "values": ["ssd"]}]}},
            {"weight": 10, "preference": {"matchExpressions": [
                {"key": "zone", "operator": "Exists"}]}}]}}))
    plugin = NodeAffinity()
    raw = scores(plugin, p, t)
    assert raw == {"a": 40.0, "b": 30.0, "c": 0.0}
    feasible = np.ones(t.n, dtype=bool)
    norm = plugin.normalize(np.array([raw[t.names[r]] for r in range(t.n)]), feasible)
    assert norm[t.row_of["a"]] == 100.0 and norm[t.row_of["b"]] == 75.0


ops = st.sampled_from(["In", "NotIn", "Exists", "DoesNotExist", "Gt", "Lt"])
values = st.sampled_from(["1", "5", "10", "x"])
keys = st.sampled_from(["k1", "k2", "k3"])


@st.composite
def expressions(draw: st.DrawFn) -> dict:
    op = draw(ops)
    expr = {"key": draw(keys), "operator": op}
    if op in ("In", "NotIn"):
        expr["values"] = draw(st.lists(values, min_size=1, max_size=3))
    elif op in ("Gt", "Lt"):
        expr["values"] = [draw(st.sampled_from(["0", "3", "7"]))]
    return expr


@settings(max_examples=60, deadline=None)
@given(labels=st.lists(st.dictionaries(keys, values, max_size=3), min_size=1, max_size=8),
       terms=st.lists(st.lists(expressions(), min_size=0, max_size=3), max_size=3))
def test_vector_evaluation_matches_the_scalar_reference(labels: list, terms: list) -> None:
    t = table_of(*(node(f"n{i}", labels=lab) for i, lab in enumerate(labels)))
    p = info(pod("p", affinity=required(*({"matchExpressions": e} for e in terms))))
    got = passes(NodeAffinity(), p, t)
    assert p.required_terms is not None
    for i in range(len(labels)):
        facts = t.facts[t.row_of[f"n{i}"]]
        assert facts is not None
        want = any(term_matches(term, facts.labels, facts.name) for term in p.required_terms)
        assert got[f"n{i}"] == want
