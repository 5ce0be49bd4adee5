"""The discovery document kept from pod events: changes, order, and truncation."""

from __future__ import annotations

import json

from pincompute.member.discovery import document, endpoint
from pincompute.member.discoveryindex import NamespaceEndpoints, endpoint_json


def ep(pod: str, ip: str) -> bytes:
    return endpoint_json({"ip": ip, "ports": [], "zone": "z", "node": "n", "pod": pod})


def test_only_a_change_of_what_a_pod_contributes_changes_the_document() -> None:
    index = NamespaceEndpoints()
    assert index.set("web-1", ("web", ep("web-1", "127.0.0.2")))
    assert index.set("web-0", ("web", ep("web-0", "127.0.0.1")))
    assert not index.set("web-0", ("web", ep("web-0", "127.0.0.1")))  # a resync
    assert index.set("api-0", ("api", None))  # not ready: the app is listed, empty
    doc = json.loads(index.document().content)
    assert list(doc) == ["api", "web"]
    assert doc["api"] == []
    assert [e["pod"] for e in doc["web"]] == ["web-0", "web-1"]
    assert index.set("web-0", None)  # gone
    assert [e["pod"] for e in json.loads(index.document().content)["web"]] == ["web-1"]
    assert index.set("api-0", None)
    assert not index.set("api-0", None)
    assert list(json.loads(index.document().content)) == ["web"]
    assert index.document().cap is None


def test_the_index_writes_what_the_document_function_writes() -> None:
    pods = [{"metadata": {"name": f"web-{i}", "labels": {}}, "spec": {"nodeName": "n"},
             "status": {"podIP": f"127.0.0.{i}"}} for i in range(3)]
    index = NamespaceEndpoints()
    for pod in reversed(pods):
        index.set(pod["metadata"]["name"], ("web", endpoint_json(endpoint(pod, zone="z"))))
    doc = json.loads(index.document().content)
    assert doc == {"web": [endpoint(p, zone="z") for p in pods]}
    assert json.loads(document([], kinds={"pinapp"})) == {}


def test_a_document_over_the_limit_keeps_the_same_number_of_endpoints_per_app() -> None:
    index = NamespaceEndpoints()
    for app, count in (("big", 50), ("mid", 8), ("small", 2)):
        for i in range(count):
            index.set(f"{app}-{i:03d}", (app, ep(f"{app}-{i:03d}", f"127.0.1.{i}")))
    whole = index.document()
    assert whole.cap is None and whole.largest == 50
    limit = len(whole.content) // 4
    capped = index.document(limit=limit)
    assert capped.cap is not None and 2 <= capped.cap < 50
    assert len(capped.content) - 1 <= limit  # the trailing newline is not data
    doc = json.loads(capped.content)
    assert len(doc["big"]) == capped.cap
    assert [e["pod"] for e in doc["big"]] == [f"big-{i:03d}" for i in range(capped.cap)]
    assert len(doc["mid"]) == min(8, capped.cap)
    assert len(doc["small"]) == 2  # an app with fewer keeps all of its own
    # One byte short of the whole document: only the largest app loses one.
    assert index.document(limit=len(whole.content) - 2).cap == 49
    assert index.document(limit=len(whole.content) - 1).cap is None
    assert index.document(limit=10).cap == 0
