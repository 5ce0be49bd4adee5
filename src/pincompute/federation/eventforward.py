"""Member events, forwarded to the host workload: one history where users look.

Theory of operation
-------------------
The member operators record Events on the shards they run (scaled, failed,
rolled) and the kubelet or node agents on their pods.  Users look at the host
object, so the propagation controller calls :meth:`EventForwarder.forward` with a
host object's shards on every reconcile, and the forwarder keeps, on the host,
**one Event per (member cluster, reason)**: its count the sum of the member events
of that reason, its message the latest one prefixed with the cluster's name.  The
Event's name is derived from the host object, the cluster and the reason, so a
restarted controller updates the same Events instead of adding copies (no state
only in memory), and a burst of pod events becomes one line per reason.

Member events about a shard's pods are counted under the shard: the pods carry
the label :data:`~pincompute.model.wellknown.APP_LABEL` (their top-level
workload's name) and the pod-event index maps them to it, so no pod event is
copied one by one.

Member event informers are declared once (``ClusterSet.watch``) and indexed lazily
(an index added later indexes what is cached).  A member event wakes the host
object it is about through the shard's parent-uid label (:meth:`route`).
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Mapping
from typing import Any

from pincompute.kube import objects
from pincompute.kube.errors import AlreadyExists, NotFound
from pincompute.kube.protocol import KubeClient
from pincompute.kube.resource import EVENTS, PODS
from pincompute.model.registry import KINDS
from pincompute.model.wellknown import APP_LABEL, FORWARDED_EVENT_LABEL, PARENT_UID_LABEL
from pincompute.runtime.controller import Controller
from pincompute.runtime.informer import FuncEventHandler, ResourceEventHandler, SharedInformer
from pincompute.runtime.reconciler import Request

Obj = dict[str, Any]
SOURCE = "pincompute-federation"
_INDEX = "involved"
_WRITTEN_MAX = 100_000


def _involved(event: Mapping[str, Any]) -> list[str]:
    io = event.get("involvedObject") or event.get("regarding") or {}
    return [f"{io.get('kind')}/{io.get('namespace') or ''}/{io.get('name')}"]


def _app_of_pod(pod: Mapping[str, Any]) -> list[str]:
    app = (objects.meta(pod).get("labels") or {}).get(APP_LABEL)
    return [f"{objects.namespace_of(pod)}/{app}"] if app else []


def forwarded_name(host: Mapping[str, Any], cluster: str, reason: str) -> str:
    digest = hashlib.sha256(f"{objects.uid_of(host)}/{cluster}/{reason}".encode()).hexdigest()
    return f"{objects.name_of(host)[:200]}.{digest[:12]}"


class EventForwarder:
    def __init__(self, *, host: KubeClient, clusters: Any, pod_events: bool = True) -> None:
        self.host = host
        self.clusters = clusters
        self.pod_events = pod_events
        # What was last written per forwarded Event: only to spare writes (no host
        # informer of events: the controllers may read events only in project
        # namespaces). A restart starts empty and meets AlreadyExists once per Event.
        self._written: dict[str, tuple[int, str]] = {}
        self._routes: dict[str, tuple[Controller, SharedInformer]] = {}
        clusters.watch(EVENTS, self._handler_for)

    def route(self, kind: str, controller: Controller, workloads: SharedInformer) -> None:
        """Wake ``controller``'s host object when a member event is about its shard."""
        self._routes[kind] = (controller, workloads)

    def _handler_for(self, member: str) -> ResourceEventHandler:
        def on_event(event: Obj) -> None:
            io = event.get("involvedObject") or {}
            route = self._routes.get(io.get("kind") or "")
            handle = self.clusters.get(member)
            if route is None or handle is None:
                return
            controller, workloads = route
            shard = handle.informer(KINDS[io["kind"]].resource,
                                    label_selector=PARENT_UID_LABEL).get(
                io.get("name", ""), namespace=io.get("namespace"))
            uid = (objects.meta(shard).get("labels") or {}).get(PARENT_UID_LABEL) \
                if shard else None
            for parent in workloads.by_index("uid", uid) if uid else ():
                controller.enqueue(Request.for_object(parent))
        return FuncEventHandler(add=on_event, update=lambda _o, n: on_event(n))

    def _member_events(self, cluster: str, shard: Mapping[str, Any]) -> list[Obj]:
        handle = self.clusters.get(cluster)
        if handle is None:
            return []
        events = handle.informer(EVENTS)
        events.add_indexer(_INDEX, _involved)
        ns, name = objects.namespace_of(shard), objects.name_of(shard)
        found = list(events.by_index(_INDEX, f"{shard.get('kind')}/{ns}/{name}"))
        if self.pod_events:
            pods = handle.informer(PODS, label_selector=APP_LABEL)
            pods.add_indexer("app", _app_of_pod)
            for pod in pods.by_index("app", f"{ns}/{name}"):
                found.extend(events.by_index(_INDEX, f"Pod/{ns}/{objects.name_of(pod)}"))
        return found

    async def forward(self, host: Mapping[str, Any], shards: Mapping[str, Mapping[str, Any]]
                      ) -> None:
        """Fold each shard's member events into the host object's forwarded Events."""
        for cluster, shard in sorted(shards.items()):
            by_reason: dict[str, list[Obj]] = {}
            for event in self._member_events(cluster, shard):
                by_reason.setdefault(event.get("reason") or "Unknown", []).append(event)
            for reason, events in by_reason.items():
                await self._upsert(host, cluster, reason, events)

    async def _upsert(self, host: Mapping[str, Any], cluster: str, reason: str,
                      events: list[Obj]) -> None:
        latest = max(events, key=lambda e: e.get("lastTimestamp") or e.get("eventTime") or "")
        count = sum(int(e.get("count") or 1) for e in events)
        message = f"[{cluster}] {latest.get('message') or ''}"[:1024]
        name = forwarded_name(host, cluster, reason)
        ns = objects.namespace_of(host)
        if self._written.get(name) == (count, message):
            return
        type_ = latest.get("type") or "Normal"
        last = latest.get("lastTimestamp") or objects.now()
        try:
            await self.host.create(EVENTS, self._event(
                host, name=name, reason=reason, message=message, count=count, type_=type_,
                cluster=cluster, last=last,
                first=min(e.get("firstTimestamp") or e.get("lastTimestamp") or last
                          for e in events)), namespace=ns)
        except AlreadyExists:
            # Written before (by us, or before a restart): bring it up to date.
            with contextlib.suppress(NotFound):
                await self.host.patch(EVENTS, name, {"count": count, "message": message,
                                                     "type": type_, "lastTimestamp": last},
                                      namespace=ns)
        if len(self._written) >= _WRITTEN_MAX:
            self._written.clear()
        self._written[name] = (count, message)

    async def record(self, host: Mapping[str, Any], reason: str, message: str, *,
                     type_: str = "Normal") -> None:
        """An Event of the federation's own about ``host`` (rollout steps)."""
        stamp = objects.now()
        digest = hashlib.sha256(f"{objects.uid_of(host)}/{reason}/{message}/{stamp}".encode())
        name = f"{objects.name_of(host)[:200]}.{digest.hexdigest()[:12]}"
        with contextlib.suppress(AlreadyExists, NotFound):
            await self.host.create(EVENTS, self._event(
                host, name=name, reason=reason, message=message, count=1, type_=type_,
                cluster="", first=stamp, last=stamp), namespace=objects.namespace_of(host))

    @staticmethod
    def _event(host: Mapping[str, Any], *, name: str, reason: str, message: str, count: int,
               type_: str, cluster: str, first: str, last: str) -> Obj:
        md = objects.meta(host)
        labels = {FORWARDED_EVENT_LABEL: cluster} if cluster else {}
        return {"apiVersion": "v1", "kind": "Event",
                "metadata": {"name": name, "namespace": md["namespace"], "labels": labels},
                "involvedObject": {"apiVersion": host.get("apiVersion"),
                                   "kind": host.get("kind"), "name": md["name"],
                                   "namespace": md["namespace"], "uid": md["uid"]},
                "reason": reason, "message": message, "type": type_, "count": count,
                "firstTimestamp": first, "lastTimestamp": last,
                "source": {"component": SOURCE}}


__all__ = ["EventForwarder", "forwarded_name"]
