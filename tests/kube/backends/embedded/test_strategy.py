"""What the store sets and keeps on create and update, as tables (no store needed)."""

from __future__ import annotations

import uuid
from typing import Any

from pincompute.kube.backends.embedded import strategy
from pincompute.kube.resource import CONFIGMAPS, NAMESPACES, NODES, PODS


def test_create_drops_status_except_a_nodes_and_sets_initial_phases() -> None:
    cases = [(PODS, {"phase": "Pending"}), (NAMESPACES, {"phase": "Active"}),
             (NODES, {"capacity": {"cpu": "4"}})]
    for resource, expected in cases:
        obj: dict[str, Any] = {"metadata": {}, "status": {"capacity": {"cpu": "4"}}}
        strategy.prepare_for_create(resource, obj)
        assert obj["status"] == expected, resource
    cm: dict[str, Any] = {"metadata": {}, "data": {}}
    strategy.prepare_for_create(CONFIGMAPS, cm)
    assert "status" not in cm


def test_stamp_new_assigns_server_fields_and_drops_client_ones() -> None:
    md: dict[str, Any] = {"name": "a", "resourceVersion": "7", "uid": "mine",
                          "deletionTimestamp": "2020-01-01T00:00:00Z",
                          "deletionGracePeriodSeconds": 3, "generation": 9}
    strategy.stamp_new(md)
    assert md["generation"] == 1 and md["uid"] != "mine" and len(md["uid"]) == 36
    assert md["creationTimestamp"].endswith("Z")
    assert not {"resourceVersion", "deletionTimestamp", "deletionGracePeriodSeconds"} & set(md)


def test_update_keeps_system_metadata_and_the_status_subresource() -> None:
    old = {"metadata": {"name": "p", "namespace": "ns", "uid": "u1", "generation": 2,
                        "creationTimestamp": "t0", "labels": {"a": "1"}},
           "spec": {"x": 1}, "status": {"phase": "Running"}}
    new: dict[str, Any] = {"metadata": {"name": "p", "namespace": "ns", "uid": "other",
                                        "generation": 99, "labels": {"a": "2"},
                                        "deletionTimestamp": "t1"},
                           "spec": {"x": 2}, "status": {"phase": "Failed"}}
    strategy.prepare_for_update(PODS, new, old)
    assert new["metadata"] == {"name": "p", "namespace": "ns", "uid": "u1", "generation": 2,
                               "creationTimestamp": "t0", "labels": {"a": "2"}}
    assert new["status"] == {"phase": "Running"}
    strategy.bump_generation(new, old)
    assert new["metadata"]["generation"] == 3


def test_generation_moves_only_when_more_than_metadata_and_status_changed() -> None:
    old = {"metadata": {"generation": 4, "labels": {}}, "spec": {"x": 1}, "status": {}}
    same: dict[str, Any] = {"metadata": {"generation": 4, "labels": {"new": "label"}},
                            "spec": {"x": 1}, "status": {"phase": "Running"}}
    strategy.bump_generation(same, old)
    assert same["metadata"]["generation"] == 4
    data_change: dict[str, Any] = {"metadata": {"generation": 4}, "spec": {"x": 1},
                                   "data": {"k": "v"}}
    strategy.bump_generation(data_change, old)
    assert data_change["metadata"]["generation"] == 5


def test_status_update_takes_only_the_status() -> None:
    current = {"metadata": {"name": "p", "labels": {"a": "1"}}, "spec": {"x": 1},
               "status": {"phase": "Pending"}}
    sent = {"metadata": {"name": "p", "labels": {"a": "changed"}}, "spec": {"x": 2},
            "status": {"phase": "Running"}}
    result = strategy.prepare_for_status_update(sent, current)
    assert result == {"metadata": {"name": "p", "labels": {"a": "1"}}, "spec": {"x": 1},
                      "status": {"phase": "Running"}}
    cleared = strategy.prepare_for_status_update({"metadata": {}}, dict(current))
    assert "status" not in cleared


def test_new_uids_are_distinct_version_4_uuids() -> None:
    uids = [strategy.new_uid() for _ in range(2000)]  # several reads of the random pool
    assert len(set(uids)) == len(uids)
    for uid in uids:
        parsed = uuid.UUID(uid)
        assert str(parsed) == uid
        assert parsed.version == 4 and parsed.variant == uuid.RFC_4122
