"""Tables from the kinds' printer columns; ages; formats."""

from __future__ import annotations

import datetime as dt

from pincompute.cli.output import age, headers, lookup, node_status, row
from pincompute.sdk import resolve_kind

APP = {"metadata": {"name": "web", "creationTimestamp": "2026-01-01T00:00:00Z",
                    "labels": {"pincompute.io/cluster": "zone-a-1"}},
       "spec": {"replicas": 3, "tier": "ondemand"},
       "status": {"readyReplicas": 2, "updatedReplicas": 3, "availableReplicas": 2,
                  "phase": "Progressing"}}


def test_rows_follow_the_printer_columns() -> None:
    ref = resolve_kind("app")
    assert headers(ref, wide=False) == ["NAME", "TIER", "REPLICAS", "READY", "UPDATED",
                                        "AVAILABLE", "AGE"]
    assert row(ref, APP, wide=False)[:6] == ["web", "ondemand", "3", "2", "3", "2"]
    assert "PHASE" in headers(ref, wide=True)
    assert row(ref, APP, wide=True)[6] == "Progressing"


def test_lookup_reads_escaped_label_keys() -> None:
    assert lookup(APP, ".metadata.labels.pincompute\\.io/cluster") == "zone-a-1"
    assert lookup(APP, ".status.missing.deeper") is None


def test_ages_as_kubectl_shows_them() -> None:
    now = dt.datetime(2026, 1, 1, 0, 0, 0, tzinfo=dt.UTC)

    def at(**ago: float) -> str:
        return (now - dt.timedelta(**ago)).isoformat().replace("+00:00", "Z")

    assert age(at(seconds=42), now=now) == "42s"
    assert age(at(minutes=5), now=now) == "5m"
    assert age(at(hours=3), now=now) == "3h"
    assert age(at(days=2), now=now) == "2d"
    assert age(None) == "-"


def test_node_status() -> None:
    node = {"status": {"conditions": [{"type": "Ready", "status": "True"}]},
            "spec": {"unschedulable": True}}
    assert node_status(node) == "Ready,SchedulingDisabled"
    assert node_status({}) == "NotReady"
