"""A workload's pods across every member cluster, from the members' pod caches.

Theory of operation
-------------------
Pods live in the member clusters, made by the member operators from the shards the
federation placed there.  Every pod a workload owns carries, from the operators' labels,
the owning workload (``pincompute.io/workload-kind`` and ``pincompute.io/workload``) and the
top-level workload it serves (``pincompute.io/app-kind`` and ``pincompute.io/app``: a
PinApp's replicas are PinPods, whose pods name the PinApp there).  The gateway adds one
index to each member's shared pod informer, keyed ``namespace/kind/name`` on both pairs, so
the pods of a workload are one index read per member cluster.

Each pod is answered simplified, with two labels added so a user sees where it runs:
``pincompute.io/cluster`` (the member cluster) and ``topology.kubernetes.io/zone`` (the
cluster's zone, from its MemberCluster).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from pincompute.kube.resource import PODS
from pincompute.kube.wellknown import ZONE_LABEL
from pincompute.model.registry import MEMBERCLUSTERS
from pincompute.model.wellknown import (
    APP_KIND_LABEL,
    APP_LABEL,
    CLUSTER_NAME_LABEL,
    WORKLOAD_KIND_LABEL,
    WORKLOAD_NAME_LABEL,
)

from .context import ApiContext
from .simplify import simplify

WORKLOAD_INDEX = "pincompute.io/api-workload"


def index_by_workload(pod: Mapping[str, Any]) -> list[str]:
    md = pod.get("metadata") or {}
    labels = md.get("labels") or {}
    ns = md.get("namespace", "")
    out = []
    if labels.get(WORKLOAD_KIND_LABEL) and labels.get(WORKLOAD_NAME_LABEL):
        out.append(f"{ns}/{labels[WORKLOAD_KIND_LABEL]}/{labels[WORKLOAD_NAME_LABEL]}")
    if labels.get(APP_KIND_LABEL) and labels.get(APP_LABEL):
        key = f"{ns}/{labels[APP_KIND_LABEL]}/{labels[APP_LABEL]}"
        if key not in out:
            out.append(key)
    return out


def with_location(pod: Mapping[str, Any], *, cluster: str, zone: str) -> dict[str, Any]:
    out = simplify(dict(pod))
    md = dict(out.get("metadata") or {})
    md["labels"] = {**(md.get("labels") or {}), CLUSTER_NAME_LABEL: cluster,
                    **({ZONE_LABEL: zone} if zone else {})}
    out["metadata"] = md
    if "kind" not in out:
        out = {"apiVersion": "v1", "kind": "Pod", **out}
    return out


async def workload_pods(ctx: ApiContext, *, namespace: str, kind: str,
                        name: str) -> bytes:
    """``{"items": [pod, ...]}`` of the workload's pods in every ready member cluster."""
    key = f"{namespace}/{kind.lower()}/{name}"
    clusters = ctx.host_informer(MEMBERCLUSTERS)
    parts: list[bytes] = []
    for cluster in ctx.members.names():
        inf = ctx.member_informer(cluster, PODS)
        if inf is None:
            continue
        inf.add_indexer(WORKLOAD_INDEX, index_by_workload)
        await inf.wait_synced()
        mc = clusters.get(cluster) or {}
        zone = str((mc.get("spec") or {}).get("zone") or "")
        pods = sorted(inf.by_index(WORKLOAD_INDEX, key),
                      key=lambda p: p["metadata"]["name"])
        parts.extend(orjson.dumps(with_location(p, cluster=cluster, zone=zone))
                     for p in pods)
    return b'{"apiVersion":"v1","kind":"PodList","items":[' + b",".join(parts) + b"]}"
