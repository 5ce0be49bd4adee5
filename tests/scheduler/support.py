"""Builders for scheduler tests: nodes, pods, tables, frameworks and a hand-driven clock.

Objects are the raw dicts the API carries, as the scheduler sees them.  The
:class:`ManualTimers` replace the event loop's ``call_later`` so Permit timeouts
and backoffs are driven by the test, never by wall-clock time.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any

import numpy as np

from pincompute.kube.errors import NotFound
from pincompute.kube.resource import PODS
from pincompute.runtime import SharedInformer
from pincompute.scheduler.framework import ClassContext, Framework, Profile
from pincompute.scheduler.nodetable import NodeTable
from pincompute.scheduler.plugins import in_tree
from pincompute.scheduler.podinfo import PodInfo

Obj = dict[str, Any]
_uids = itertools.count(1)

ZONE = "topology.kubernetes.io/zone"
HOST = "kubernetes.io/hostname"


def node(name: str, *, cpu: str = "4", memory: str = "16Gi", pods: int = 110, gpu: int = 0,
         labels: Mapping[str, str] | None = None,
         taints: Iterable[tuple[str, str, str]] = (), unschedulable: bool = False) -> Obj:
    alloc: dict[str, Any] = {"cpu": cpu, "memory": memory, "pods": str(pods)}
    if gpu:
        alloc["nvidia.com/gpu"] = str(gpu)
    spec: dict[str, Any] = {}
    if taints:
        spec["taints"] = [{"key": k, "value": v, "effect": e} for k, v, e in taints]
    if unschedulable:
        spec["unschedulable"] = True
    return {"apiVersion": "v1", "kind": "Node",
            "metadata": {"name": name, "labels": {HOST: name, **(labels or {})}},
            "spec": spec, "status": {"allocatable": alloc, "capacity": alloc}}


def pod(name: str, *, namespace: str = "default", cpu: str | None = "100m",
        memory: str | None = "128Mi", gpu: int = 0, labels: Mapping[str, str] | None = None,
        annotations: Mapping[str, str] | None = None, tier: str | None = None,
        priority: int | None = None, node_selector: Mapping[str, str] | None = None,
        affinity: Mapping[str, Any] | None = None,
        tolerations: Iterable[Mapping[str, Any]] = (),
        spread: Iterable[Mapping[str, Any]] = (), scheduler: str = "pincompute",
        node_name: str | None = None, gated: bool = False, uid: str | None = None,
        grace: int | None = None) -> Obj:
    requests: dict[str, Any] = {}
    if cpu is not None:
        requests["cpu"] = cpu
    if memory is not None:
        requests["memory"] = memory
    if gpu:
        requests["nvidia.com/gpu"] = str(gpu)
    all_labels = dict(labels or {})
    if tier is not None:
        all_labels["pincompute.io/tier"] = tier
    md: dict[str, Any] = {"name": name, "namespace": namespace,
                          "uid": uid or f"uid-{next(_uids)}"}
    if all_labels:
        md["labels"] = all_labels
    if annotations:
        md["annotations"] = dict(annotations)
    spec: dict[str, Any] = {
        "schedulerName": scheduler,
        "containers": [{"name": "main", "image": "img", "resources": {"requests": requests}}],
    }
    if priority is not None:
        spec["priority"] = priority
    if node_selector:
        spec["nodeSelector"] = dict(node_selector)
    if affinity:
        spec["affinity"] = dict(affinity)
    if tolerations:
        spec["tolerations"] = [dict(t) for t in tolerations]
    if spread:
        spec["topologySpreadConstraints"] = [dict(c) for c in spread]
    if node_name:
        spec["nodeName"] = node_name
    if gated:
        spec["schedulingGates"] = [{"name": "example.com/wait"}]
    if grace is not None:
        spec["terminationGracePeriodSeconds"] = grace
    return {"apiVersion": "v1", "kind": "Pod", "metadata": md, "spec": spec,
            "status": {"phase": "Pending"}}


def info(obj: Obj) -> PodInfo:
    return PodInfo.from_pod(obj)


def for_api(obj: Obj) -> Obj:
    """The object without the uid (the store assigns it)."""
    out = dict(obj)
    out["metadata"] = {k: v for k, v in obj["metadata"].items() if k != "uid"}
    out.pop("status", None)
    return out


def table_of(*nodes: Obj) -> NodeTable:
    table = NodeTable()
    for n in nodes:
        table.upsert_node(n)
    return table


def gang(group: str, min_member: int, timeout: float | None = None) -> dict[str, Any]:
    """Labels and annotations making a pod a member of ``group``."""
    annotations = {"pincompute.io/pod-group-min-member": str(min_member)}
    if timeout is not None:
        annotations["pincompute.io/pod-group-timeout-seconds"] = str(timeout)
    return {"labels": {"pincompute.io/pod-group": group}, "annotations": annotations}


class ManualTimers:
    """A ``call_later`` whose timers fire only when the test advances the clock."""

    class Handle:
        def __init__(self, timers: ManualTimers, at: float, fn: Callable[[], None]) -> None:
            self.at = at
            self.fn = fn
            self.cancelled = False

        def cancel(self) -> None:
            self.cancelled = True

    def __init__(self) -> None:
        self.now = 0.0
        self._handles: list[ManualTimers.Handle] = []

    def clock(self) -> float:
        return self.now

    def call_later(self, delay: float, fn: Callable[[], None]) -> ManualTimers.Handle:
        handle = ManualTimers.Handle(self, self.now + delay, fn)
        self._handles.append(handle)
        return handle

    def advance(self, seconds: float) -> None:
        self.now += seconds
        while True:
            due = sorted((h for h in self._handles if not h.cancelled and h.at <= self.now),
                         key=lambda h: h.at)
            if not due:
                break
            for h in due:
                self._handles.remove(h)
                if not h.cancelled:
                    h.fn()

    @property
    def pending(self) -> int:
        return sum(1 for h in self._handles if not h.cancelled)


def framework(table: NodeTable, *, profile: Profile | None = None,
              timers: ManualTimers | None = None, **kw: Any) -> Framework:
    timers = timers or ManualTimers()
    fw = Framework(profile or Profile(), in_tree(), table=table, clock=timers.clock,
                   call_later=timers.call_later, **kw)
    return fw


async def eventually(check: Callable[[], Awaitable[bool] | bool], *, timeout: float = 20.0,
                     what: str = "condition") -> None:
    """Wait until ``check()`` holds (an event-driven test's guard, not a timing assertion)."""
    async with asyncio.timeout(timeout):
        while True:
            got = check()
            if isinstance(got, Awaitable):
                got = await got
            if got:
                return
            await asyncio.sleep(0.01)


def passes(plugin: Any, p: PodInfo, table: NodeTable) -> dict[str, bool]:
    """Node name -> whether ``plugin.filter`` passes it (all rows at once)."""
    ok = plugin.filter(ClassContext(), p, table, slice(0, table.n))
    return {table.names[r]: bool(ok[r]) for r in table.node_rows()}


def scores(plugin: Any, p: PodInfo, table: NodeTable) -> dict[str, float]:
    raw = plugin.score(ClassContext(), p, table, slice(0, table.n))
    return {table.names[r]: float(raw[r]) for r in table.node_rows()}


def explain(plugin: Any, p: PodInfo, table: NodeTable) -> dict[str, int]:
    """The reasons ``plugin`` gives for every node it rejects."""
    ctx = ClassContext()
    ok = plugin.filter(ctx, p, table, slice(0, table.n))
    rows = np.array([r for r in table.node_rows() if not ok[r]], dtype=np.intp)
    return dict(plugin.explain(ctx, p, table, rows)) if rows.shape[0] else {}


class FakeKubelet:
    """Finishes pods being deleted, as a node agent does once containers stopped.

    ``hold`` keeps terminating pods around until :meth:`release` (to observe the
    window in which victims are still terminating).
    """

    def __init__(self, client: Any) -> None:
        self.client = client
        self.informer = SharedInformer(client, PODS)
        self.informer.add_event_handler(on_add=self._seen, on_update=lambda o, n: self._seen(n))
        self.hold = False
        self.finished: list[str] = []
        self._held: list[Obj] = []
        self._tasks: set[asyncio.Task[None]] = set()

    def _seen(self, obj: Obj) -> None:
        if not obj["metadata"].get("deletionTimestamp"):
            return
        if self.hold:
            self._held.append(obj)
            return
        self._finish(obj)

    def _finish(self, obj: Obj) -> None:
        task = asyncio.ensure_future(self._delete(obj))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _delete(self, obj: Obj) -> None:
        md = obj["metadata"]
        try:
            await self.client.delete(PODS, md["name"], namespace=md["namespace"],
                                     grace_period_seconds=0)
            self.finished.append(md["name"])
        except NotFound:
            pass

    def release(self) -> None:
        self.hold = False
        held, self._held = self._held, []
        for obj in held:
            self._finish(obj)

    def start(self) -> None:
        self.informer.start()

    async def stop(self) -> None:
        await self.informer.stop()
        for t in list(self._tasks):
            t.cancel()
