"""kwok's stages and the Nodes it is given, without running kwok."""

from __future__ import annotations

from pathlib import Path

import yaml

from pincompute.kubeenv import ClusterSpec, NodePool
from pincompute.kubeenv.kwok import default_stages, node_manifests, node_names, node_ready, stages
from pincompute.kubeenv.wellknown import (
    INSTANCE_TYPE_LABEL,
    KWOK_ANNOTATION,
    KWOK_ANNOTATION_VALUE,
    POOL_LABEL,
    ZONE_LABEL,
)


def test_the_package_carries_kwoks_default_stages() -> None:
    docs = list(yaml.safe_load_all(default_stages()))
    assert [(d["kind"], d["metadata"]["name"]) for d in docs] == [
        ("Stage", "node-initialize"), ("Stage", "node-heartbeat-with-lease"),
        ("Stage", "pod-ready"), ("Stage", "pod-complete"), ("Stage", "pod-delete")]


def test_stages_shipped_with_the_binaries_win(tmp_path: Path) -> None:
    assert stages(tmp_path) == default_stages()
    (tmp_path / "kwok-stages.yaml").write_bytes(b"kind: Stage\n")
    assert stages(tmp_path) == b"kind: Stage\n"


def test_nodes_are_labelled_annotated_and_sized_by_their_pool() -> None:
    spec = ClusterSpec("m", zone="zone-q", node_pools=(
        NodePool("small", nodes=2, cpu="2", memory="4Gi", pods=10, labels={"x": "y"}),
        NodePool("big", instance_type="kwok.big", cpu="64")))
    nodes = node_manifests(spec)
    assert [n["metadata"]["name"] for n in nodes] == list(node_names(spec)) == [
        "m-small-0", "m-small-1", "m-big-0"]
    small = nodes[0]
    assert small["metadata"]["annotations"] == {KWOK_ANNOTATION: KWOK_ANNOTATION_VALUE}
    labels = small["metadata"]["labels"]
    assert labels[POOL_LABEL] == "small" and labels[ZONE_LABEL] == "zone-q"
    assert labels["x"] == "y" and labels["type"] == "kwok"
    assert small["status"]["capacity"] == {"cpu": "2", "memory": "4Gi", "pods": "10"}
    assert small["status"]["allocatable"] == small["status"]["capacity"]
    assert nodes[2]["metadata"]["labels"][INSTANCE_TYPE_LABEL] == "kwok.big"
    assert ZONE_LABEL not in node_manifests(ClusterSpec("h", node_pools=(NodePool("p"),)))[0][
        "metadata"]["labels"]


def test_node_ready_reads_the_ready_condition() -> None:
    assert node_ready({"status": {"conditions": [{"type": "Ready", "status": "True"}]}})
    assert not node_ready({"status": {"conditions": [{"type": "Ready", "status": "Unknown"}]}})
    assert not node_ready({})
