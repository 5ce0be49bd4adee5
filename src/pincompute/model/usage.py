"""The metrics store's record: one node's resource usage and custom samples, per pod.

Theory of operation
-------------------
Each node agent publishes what its pods use as **one ConfigMap per node**, in
the system namespace of its member cluster (:data:`USAGE_NAMESPACE`), named
:func:`configmap_name`, labelled :data:`USAGE_LABEL` ``=node``, its JSON under
:data:`USAGE_KEY`.  Writers (the node agents), readers (the scaler's usage
index, the API's ``top`` routes) and tests meet in this shape only, so it is
spelled once here, as plain dataclasses (the node agent imports it at no cost).

Why an object per node, not per pod or per app: the number of writes is the
number of nodes per reporting period (metrics-server's resolution, 15 s by
default), whatever the number of pods, and readers *watch* them — a host-side
reader keeps one informer per member on a labelled collection of a few
thousand small objects and folds each change into per-app sums, so a scaler's
read is a dictionary lookup and 1,000 scalers cost no listing at all.  A node
with 110 pods writes ~20 KB; a node with nothing changed since its last write
skips the write, and every :data:`REFRESH_SECONDS` it writes anyway so readers
can tell a live node from a dead one by :attr:`NodeUsage.time` (a record measuring
nothing — no pods, or idle sim pods — is not refreshed: when it goes stale, readers
lose nothing).

A pod's entry carries what the consumers need to treat incomplete data as the
HPA does: whether it is ready and running, its requests, and its usage (absent
until the first sample).  ``custom`` holds the app's own samples from the
node-local metrics endpoint (a counter already turned into its rate).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

import orjson

from .wellknown import SYSTEM_NAMESPACE

USAGE_NAMESPACE: Final = SYSTEM_NAMESPACE
USAGE_LABEL: Final = "pincompute.io/usage"
"""On the usage ConfigMaps: ``node``."""
USAGE_SELECTOR: Final = f"{USAGE_LABEL}=node"
USAGE_KEY: Final = "usage.json"
REFRESH_SECONDS: Final = 60.0
"""A node rewrites its record at least this often, changed or not."""
STALE_SECONDS: Final = 3 * REFRESH_SECONDS
"""A record older than this is a dead node's: readers ignore its pods' samples."""


def configmap_name(node: str) -> str:
    return f"usage-{node}"[:253]


@dataclass(frozen=True, slots=True)
class PodUsage:
    namespace: str
    name: str
    app: str = ""
    """The top-level workload (``pincompute.io/app``), empty if none."""
    app_kind: str = ""
    ready: bool = False
    running: bool = False
    cpu_request: int = 0
    """Millicores requested (limits where no request)."""
    memory_request: int = 0
    cpu: int | None = None
    """Millicores used (average over the last sample period); None: no sample yet."""
    memory: int | None = None
    """Bytes used; None: no sample yet."""
    containers: Mapping[str, tuple[int, int]] = field(default_factory=dict)
    """Per container: (millicores, bytes)."""
    custom: Mapping[str, float] = field(default_factory=dict)

    def encode(self) -> list[Any]:
        return [self.namespace, self.name, self.app, self.app_kind, int(self.ready),
                int(self.running), self.cpu_request, self.memory_request, self.cpu,
                self.memory, {k: list(v) for k, v in self.containers.items()},
                {k: v for k, v in self.custom.items() if math.isfinite(v)}]

    @classmethod
    def decode(cls, raw: list[Any]) -> PodUsage:
        return cls(namespace=raw[0], name=raw[1], app=raw[2], app_kind=raw[3],
                   ready=bool(raw[4]), running=bool(raw[5]), cpu_request=int(raw[6]),
                   memory_request=int(raw[7]), cpu=raw[8], memory=raw[9],
                   containers={k: (int(v[0]), int(v[1])) for k, v in raw[10].items()},
                   custom={k: float(v) for k, v in raw[11].items()})


@dataclass(frozen=True, slots=True)
class NodeUsage:
    node: str
    time: float
    """When sampled (epoch seconds)."""
    cpu: int = 0
    """Millicores used by the node's pods together."""
    memory: int = 0
    pods: tuple[PodUsage, ...] = ()

    def encode(self) -> bytes:
        return orjson.dumps({"node": self.node, "time": round(self.time, 3), "cpu": self.cpu,
                             "memory": self.memory, "pods": [p.encode() for p in self.pods]})

    @property
    def active(self) -> bool:
        """Whether any pod uses anything or has a custom sample (worth keeping fresh)."""
        return any(p.cpu or p.memory or p.custom for p in self.pods)

    def same_samples(self, other: NodeUsage | None) -> bool:
        return other is not None and other.pods == self.pods and other.cpu == self.cpu \
            and other.memory == self.memory

    @classmethod
    def decode(cls, data: bytes | str) -> NodeUsage:
        raw = orjson.loads(data)
        return cls(node=raw["node"], time=float(raw["time"]), cpu=int(raw.get("cpu") or 0),
                   memory=int(raw.get("memory") or 0),
                   pods=tuple(PodUsage.decode(p) for p in raw.get("pods") or ()))

    def configmap(self) -> dict[str, Any]:
        return {"apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": configmap_name(self.node), "namespace": USAGE_NAMESPACE,
                             "labels": {USAGE_LABEL: "node"}},
                "data": {USAGE_KEY: self.encode().decode()}}


def from_configmap(obj: Mapping[str, Any]) -> NodeUsage | None:
    """The record in a usage ConfigMap, or None if it holds none (or garbage)."""
    raw = (obj.get("data") or {}).get(USAGE_KEY)
    if not raw:
        return None
    try:
        return NodeUsage.decode(raw)
    except (orjson.JSONDecodeError, KeyError, IndexError, TypeError, ValueError):
        return None


def namespaces_of(obj: Mapping[str, Any]) -> list[str]:
    """The namespaces a usage ConfigMap has pods of (an informer index: top per project)."""
    usage = from_configmap(obj)
    return sorted({p.namespace for p in usage.pods}) if usage is not None else []


Located = tuple[str, NodeUsage]
"""A record with the member cluster it came from."""


def pod_rows(records: Iterable[Located], *, namespace: str, app: str | None = None,
             now: float | None = None) -> list[dict[str, Any]]:
    """``top pods``: one row per pod of ``namespace`` (and ``app``), by name."""
    rows = []
    for cluster, usage in records:
        for pod in usage.pods:
            if pod.namespace != namespace or (app is not None and pod.app != app):
                continue
            rows.append({"name": pod.name, "namespace": pod.namespace, "app": pod.app,
                         "appKind": pod.app_kind, "node": usage.node, "cluster": cluster,
                         "ready": pod.ready, "cpuMillicores": pod.cpu,
                         "memoryBytes": pod.memory, "cpuRequestMillicores": pod.cpu_request,
                         "memoryRequestBytes": pod.memory_request,
                         "containers": [{"name": c, "cpuMillicores": v[0], "memoryBytes": v[1]}
                                        for c, v in sorted(pod.containers.items())],
                         "custom": dict(pod.custom), "sampledAt": usage.time,
                         "stale": now is not None and now - usage.time > STALE_SECONDS})
    return sorted(rows, key=lambda r: (r["name"], r["cluster"]))


def app_rows(records: Iterable[Located], *, namespace: str) -> list[dict[str, Any]]:
    """``top apps``: per app of ``namespace``, its pods' usage summed (pods without an app
    label are left out)."""
    apps: dict[tuple[str, str], dict[str, Any]] = {}
    for _cluster, usage in records:
        for pod in usage.pods:
            if pod.namespace != namespace or not pod.app:
                continue
            row = apps.setdefault((pod.app_kind, pod.app), {
                "name": pod.app, "kind": pod.app_kind, "namespace": namespace, "pods": 0,
                "readyPods": 0, "cpuMillicores": 0, "memoryBytes": 0,
                "cpuRequestMillicores": 0, "memoryRequestBytes": 0})
            row["pods"] += 1
            row["readyPods"] += int(pod.ready)
            row["cpuMillicores"] += pod.cpu or 0
            row["memoryBytes"] += pod.memory or 0
            row["cpuRequestMillicores"] += pod.cpu_request
            row["memoryRequestBytes"] += pod.memory_request
    return [apps[k] for k in sorted(apps, key=lambda k: (k[1], k[0]))]


def node_rows(records: Iterable[Located]) -> list[dict[str, Any]]:
    """``top nodes``: per node, what its pods use together."""
    return sorted(({"name": u.node, "cluster": c, "cpuMillicores": u.cpu,
                    "memoryBytes": u.memory, "pods": len(u.pods), "sampledAt": u.time}
                   for c, u in records), key=lambda r: (r["cluster"], r["name"]))


__all__ = ["REFRESH_SECONDS", "STALE_SECONDS", "USAGE_KEY", "USAGE_LABEL", "USAGE_NAMESPACE",
           "USAGE_SELECTOR", "Located", "NodeUsage", "PodUsage", "app_rows", "configmap_name",
           "from_configmap", "namespaces_of", "node_rows", "pod_rows"]
