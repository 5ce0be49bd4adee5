"""kwok, the node simulator: its stages, and the Node objects it is given to simulate.

Theory of operation
-------------------
kwok makes Node and Pod objects look alive without kubelets: *stages* (Stage
documents) say which objects to change, when and how (a Node turns Ready and has its
heartbeat renewed, a Pod bound to a kwok node turns Running, a Job's Pod Succeeds, a
deleted Pod goes).  The kwok binary has none of its own and refuses to start without
them.  ``tools/build-kube.sh`` writes ``kwok-stages.yaml`` next to the binaries,
copied from the pinned kwok module; :func:`stages` prefers that copy and otherwise
falls back to the package's own ``kwok-stages.yaml`` (package data): the stages
``kwokctl`` installs by default (kwok v0.8.0, ``kustomize/stage/{node/fast,
node/heartbeat-with-lease,pod/fast}``).  There is no KwokConfiguration document: one
would replace kwok's defaults, not amend them; options are flags (see
:mod:`pincompute.kubeenv.components`), and kwok runs with HOME in the cluster's
directory so that a developer's ``~/.kwok/kwok.yaml`` is not read.

The nodes are not discovered: the environment creates one Node per member of each
:class:`NodePool` (:func:`node_manifests`), labelled as a real kubelet and a cloud's
node pool would (zone, instance type, pool, hostname, os, arch) and annotated so kwok
manages it, with the pool's cpu/memory/pods as capacity.  kwok then keeps it Ready
(:func:`node_ready`).
"""

from __future__ import annotations

import functools
from collections.abc import Iterator, Mapping
from importlib import resources
from pathlib import Path
from typing import Any

from .specs import ClusterSpec, NodePool
from .wellknown import (
    ARCH_LABEL,
    HOSTNAME_LABEL,
    INSTANCE_TYPE_LABEL,
    KWOK_ANNOTATION,
    KWOK_ANNOTATION_VALUE,
    KWOK_TYPE_LABEL,
    KWOK_TYPE_VALUE,
    OS_LABEL,
    POOL_LABEL,
    ZONE_LABEL,
)

__all__ = ["STAGES_FILE", "default_stages", "node_manifests", "node_names", "node_ready",
           "stages"]

#: The stages file's name, both next to the binaries and in this package.
STAGES_FILE = "kwok-stages.yaml"
_PACKAGE = __name__.rpartition(".")[0]
#: What kwok's simulated nodes report about themselves.
_NODE_INFO = {"architecture": "amd64", "operatingSystem": "linux", "kubeletVersion": "kwok",
              "kubeProxyVersion": "kwok", "containerRuntimeVersion": "kwok",
              "kernelVersion": "kwok", "osImage": "kwok", "machineID": "", "systemUUID": "",
              "bootID": ""}


@functools.cache
def default_stages() -> bytes:
    """The package's copy of kwok's default stages."""
    return resources.files(_PACKAGE).joinpath(STAGES_FILE).read_bytes()


def stages(bin_dir: Path) -> bytes:
    """The stages to give kwok: those build-kube.sh extracted from kwok's own source into
    ``bin_dir``, else the package's copy."""
    shipped = bin_dir / STAGES_FILE
    return shipped.read_bytes() if shipped.is_file() else default_stages()


def _nodes(spec: ClusterSpec) -> Iterator[tuple[str, NodePool]]:
    for pool in spec.node_pools:
        for i in range(pool.nodes):
            yield f"{spec.name}-{pool.name}-{i}", pool


def node_names(spec: ClusterSpec) -> tuple[str, ...]:
    """The names of the cluster's kwok nodes, pool by pool."""
    return tuple(name for name, _ in _nodes(spec))


def node_manifests(spec: ClusterSpec) -> list[dict[str, Any]]:
    """The Node objects to create so that kwok simulates the cluster's node pools."""
    nodes = []
    for name, pool in _nodes(spec):
        labels = {
            KWOK_TYPE_LABEL: KWOK_TYPE_VALUE, HOSTNAME_LABEL: name, OS_LABEL: "linux",
            ARCH_LABEL: "amd64", POOL_LABEL: pool.name,
            INSTANCE_TYPE_LABEL: pool.instance_type, **pool.labels,
        }
        if spec.zone:
            labels[ZONE_LABEL] = spec.zone
        capacity = {"cpu": pool.cpu, "memory": pool.memory, "pods": str(pool.pods)}
        nodes.append({
            "apiVersion": "v1", "kind": "Node",
            "metadata": {"name": name, "labels": labels,
                         "annotations": {KWOK_ANNOTATION: KWOK_ANNOTATION_VALUE}},
            "spec": {},
            "status": {"capacity": capacity, "allocatable": dict(capacity),
                       "nodeInfo": dict(_NODE_INFO)},
        })
    return nodes


def node_ready(node: Mapping[str, Any]) -> bool:
    """Whether a Node object's Ready condition is True."""
    return any(c.get("type") == "Ready" and c.get("status") == "True"
               for c in (node.get("status") or {}).get("conditions") or ())
