"""Node cordon, uncordon and drain, as ``kubectl`` does them, in a member cluster.

Theory of operation
-------------------
Cordon and uncordon set ``spec.unschedulable`` on the node: the scheduler places nothing
new there; running pods stay.  Drain cordons, then evicts every pod on the node but the
platform's daemon pods (which leave with the node, ``kubectl drain --ignore-daemonsets``)
and pods already going.  Each eviction asks the disruption budget first — the same rule
every voluntary disruption of PinCompute asks (the node provisioner's drains, rotations):
:func:`pincompute.model.disruption.evict` — and deletes the pod gracefully only if the
pod's PinApp keeps enough available replicas.  A refused pod waits: its app's replacement
replicas become available elsewhere (the operators recreate them on other nodes, the node
being cordoned), and a later pass evicts it.

A drain runs passes until the node holds no evictable pod or ``timeout`` passes; it answers
what it evicted, what is still blocked and why, and whether it completed.  Calling it
again continues (it is idempotent), so a client may drain in short calls.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pincompute.kube import objects
from pincompute.kube.protocol import KubeClient
from pincompute.kube.resource import NODES
from pincompute.model.disruption import evict
from pincompute.model.wellknown import DAEMON_POD_LABEL
from pincompute.runtime.informer import SharedInformer

NODE_INDEX = "pincompute.io/api-node"
PASS_INTERVAL = 0.5


def index_by_node(pod: Mapping[str, Any]) -> list[str]:
    node = (pod.get("spec") or {}).get("nodeName")
    return [node] if node else []


@dataclass
class DrainResult:
    node: str
    evicted: list[str] = field(default_factory=list)
    blocked: dict[str, str] = field(default_factory=dict)
    remaining: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {"node": self.node, "cordoned": True, "evicted": self.evicted,
                "blocked": [{"pod": k, "reason": v} for k, v in sorted(self.blocked.items())],
                "remaining": self.remaining, "complete": self.remaining == 0}


async def set_unschedulable(client: KubeClient, node: str, value: bool) -> dict[str, Any]:
    return await client.patch(NODES, node, {"spec": {"unschedulable": value or None}})


def evictable(pod: dict[str, Any]) -> bool:
    md = pod.get("metadata") or {}
    if objects.is_deleting(pod) or DAEMON_POD_LABEL in (md.get("labels") or {}):
        return False
    return (pod.get("status") or {}).get("phase") not in ("Succeeded", "Failed")


async def drain(client: KubeClient, pods: SharedInformer, node: str, *,
                timeout: float) -> DrainResult:
    """Cordon ``node`` and evict its pods within their disruption budgets."""
    await set_unschedulable(client, node, True)
    pods.add_indexer(NODE_INDEX, index_by_node)
    await pods.wait_synced()
    result = DrainResult(node)
    deadline = time.monotonic() + timeout
    asked: set[str] = set()
    while True:
        left = [p for p in pods.by_index(NODE_INDEX, node) if evictable(p)]
        result.remaining = len(left)
        for pod in left:
            key = objects.key_of(pod)
            if key in asked:
                continue  # deleted by us; the cache has not seen it yet
            decision = await evict(client, pod)  # asked and deleted in one step
            if not decision.allowed:
                result.blocked[key] = decision.message
                continue
            asked.add(key)
            result.blocked.pop(key, None)
            result.evicted.append(key)
        result.remaining = sum(1 for p in pods.by_index(NODE_INDEX, node)
                               if evictable(p) and objects.key_of(p) not in asked)
        if result.remaining == 0 or time.monotonic() >= deadline:
            return result
        await asyncio.sleep(PASS_INTERVAL)
