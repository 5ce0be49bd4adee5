"""Health signals read from a Node (pure)."""

from __future__ import annotations

from typing import Any

from pincompute.model.wellknown import (
    NODE_DRAIN_ANNOTATION,
    PROBE_FAILURE_ANNOTATION,
    REPAIR_ANNOTATION,
)
from pincompute.ops.census import Census, scopes_of
from pincompute.ops.signals import node_signals

NOW = 1_800_000_000.0
OLD = "2020-01-01T00:00:00Z"


def node(*conditions: tuple[str, str], created: str = OLD, **annotations: str
         ) -> dict[str, Any]:
    return {"metadata": {"name": "n", "creationTimestamp": created, "annotations": annotations},
            "status": {"conditions": [{"type": t, "status": s, "reason": "R"}
                                      for t, s in conditions]}}


def test_conditions_annotations_and_repair_requests() -> None:
    assert not node_signals(node(("Ready", "True")), now=NOW, startup_grace=60).unhealthy
    bad = node_signals(node(("Ready", "Unknown")), now=NOW, startup_grace=60)
    assert bad.problems == ("Ready=Unknown (R)",) and not bad.manual
    assert node_signals(node(("Ready", "True"), ("KernelDeadlock", "True")), now=NOW,
                        startup_grace=60).unhealthy
    assert not node_signals(node(("Ready", "True"), ("MemoryPressure", "True")), now=NOW,
                            startup_grace=60).unhealthy
    probe = node_signals(node(("Ready", "True"), **{PROBE_FAILURE_ANNOTATION: "dns"}),
                         now=NOW, startup_grace=60)
    assert probe.problems == ("probe failure: dns",)
    manual = node_signals(node(("Ready", "True"), **{REPAIR_ANNOTATION: "disk noise"}),
                          now=NOW, startup_grace=60)
    assert manual.manual and manual.unhealthy
    # leaving its pool: someone else's business
    assert not node_signals(node(("Ready", "False"), **{NODE_DRAIN_ANNOTATION: OLD}),
                            now=NOW, startup_grace=60).unhealthy


def test_a_new_node_is_not_judged_by_readiness_during_its_startup_grace() -> None:
    young = node(("Ready", "False"), created="2027-01-15T08:00:00Z")
    created = 1800000000.0  # 2027-01-15T08:00:00Z
    assert not node_signals(young, now=created + 30, startup_grace=60).unhealthy
    assert node_signals(young, now=created + 61, startup_grace=60).unhealthy


def test_the_census_counts_per_scope_without_scans() -> None:
    census = Census()
    scopes = scopes_of(pool="general", zone="a")
    for i in range(5):
        census.observe(f"n{i}", scopes=scopes, unhealthy=i < 2, now=float(i))
    assert census.counts("pool/general") == (2, 5) and census.counts("zone/a") == (2, 5)
    assert census.get("n1").since == 1.0  # type: ignore[union-attr]
    census.observe("n1", scopes=scopes, unhealthy=True, now=9.0)
    assert census.get("n1").since == 1.0  # type: ignore[union-attr]  # first seen stays
    census.observe("n0", scopes=scopes, unhealthy=False, now=9.0)
    census.forget("n4")
    assert census.counts("cluster") == (1, 4) and census.unhealthy_in("pool/general") == ["n1"]
