"""Per-app usage sums, folded from the node usage records of every member cluster.

Theory of operation
-------------------
Node agents publish one usage record per node (:mod:`pincompute.model.usage`).
The scaler runs on the host and scales the *host* PinApp, whose pods live in
several member clusters, so it needs, per app, sums over pods in every zone.
:class:`UsageIndex` is fed by one informer per member cluster on the labelled
usage ConfigMaps (declared through the cluster set, as every federation reader
does) and keeps, per ``(namespace, app)``, an :class:`AppUsage` of running sums.
A record's change subtracts the node's previous contribution and adds the new
one — O(pods of that node) per event — so reading an app's aggregate is a
dictionary lookup: 1,000 scalers per interval do 1,000 lookups, no listing and
no per-scaler query (the benchmark's baseline does the listing).

Records of nodes that stopped reporting (older than
:data:`~pincompute.model.usage.STALE_SECONDS`) are dropped by :meth:`expire`,
which the scaler calls once per evaluation cycle (O(nodes), not per scaler): their
pods then count as *missing*, which the replica calculator treats conservatively.

The groups kept are those the replica calculator needs (:mod:`.replicas`): for
CPU, ready pods with a sample, running pods not ready, ready pods without a
sample; for memory and custom metrics, running pods with or without a sample.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pincompute.model.usage import STALE_SECONDS, NodeUsage, PodUsage, from_configmap
from pincompute.runtime.informer import FuncEventHandler, ResourceEventHandler

AppKey = tuple[str, str]
"""(namespace, app name)."""


@dataclass(slots=True)
class AppUsage:
    """Running sums over one app's reported pods."""

    reported: int = 0
    running: int = 0
    cpu_ready: int = 0
    """Ready pods with a CPU sample."""
    cpu_used: float = 0.0
    cpu_requested: float = 0.0
    cpu_unready: int = 0
    """Running pods that are not ready (their CPU is not counted)."""
    cpu_missing: int = 0
    """Ready pods without a sample."""
    mem_sampled: int = 0
    mem_used: float = 0.0
    mem_requested: float = 0.0
    mem_missing: int = 0
    custom: dict[str, list[float]] = field(default_factory=dict)
    """name -> [pods with the sample, Σ value]."""

    def fold(self, pod: PodUsage, sign: int) -> None:
        self.reported += sign
        if not pod.running:
            return
        self.running += sign
        if pod.ready and pod.cpu is not None:
            self.cpu_ready += sign
            self.cpu_used += sign * pod.cpu
            self.cpu_requested += sign * pod.cpu_request
        elif pod.ready:
            self.cpu_missing += sign
        else:
            self.cpu_unready += sign
        if pod.memory is not None:
            self.mem_sampled += sign
            self.mem_used += sign * pod.memory
            self.mem_requested += sign * pod.memory_request
        else:
            self.mem_missing += sign
        for name, value in pod.custom.items():
            entry = self.custom.setdefault(name, [0, 0.0])
            entry[0] += sign
            entry[1] += sign * value
            if entry[0] <= 0:
                del self.custom[name]

    def custom_missing(self, name: str) -> int:
        have = self.custom.get(name)
        return self.running - int(have[0]) if have else self.running

    @property
    def empty(self) -> bool:
        return self.reported <= 0


class UsageIndex:
    """Every member's node records, and per-app sums over them."""

    def __init__(self, *, clock: Callable[[], float] = time.time,
                 stale_seconds: float = STALE_SECONDS) -> None:
        self.clock = clock
        self.stale_seconds = stale_seconds
        self.nodes: dict[tuple[str, str], NodeUsage] = {}
        self.apps: dict[AppKey, AppUsage] = {}
        self.updates = 0

    def get(self, namespace: str, app: str) -> AppUsage | None:
        return self.apps.get((namespace, app))

    def set_node(self, cluster: str, usage: NodeUsage | None, *, node: str = "") -> None:
        key = (cluster, usage.node if usage is not None else node)
        old = self.nodes.pop(key, None)
        if old is not None:
            self._fold(old, -1)
        if usage is not None:
            self.nodes[key] = usage
            self._fold(usage, +1)
        self.updates += 1

    def _fold(self, usage: NodeUsage, sign: int) -> None:
        for pod in usage.pods:
            if not pod.app:
                continue
            key = (pod.namespace, pod.app)
            app = self.apps.get(key)
            if app is None:
                app = self.apps[key] = AppUsage()
            app.fold(pod, sign)
            if app.empty:
                del self.apps[key]

    def expire(self) -> int:
        """Drop records of nodes that stopped reporting; returns how many."""
        cutoff = self.clock() - self.stale_seconds
        stale = [k for k, u in self.nodes.items() if u.time < cutoff]
        for cluster, node in stale:
            self.set_node(cluster, None, node=node)
        return len(stale)

    def forget_cluster(self, cluster: str) -> None:
        for c, node in [k for k in self.nodes if k[0] == cluster]:
            self.set_node(c, None, node=node)

    def handler_for(self, cluster: str) -> ResourceEventHandler:
        """The informer handler of one member cluster's usage ConfigMaps."""

        def upsert(obj: dict[str, Any]) -> None:
            usage = from_configmap(obj)
            if usage is not None:
                self.set_node(cluster, usage)

        def delete(obj: dict[str, Any]) -> None:
            usage = from_configmap(obj)
            if usage is not None:
                self.set_node(cluster, None, node=usage.node)

        return FuncEventHandler(add=upsert, update=lambda _old, new: upsert(new), delete=delete)


__all__ = ["AppKey", "AppUsage", "UsageIndex"]
