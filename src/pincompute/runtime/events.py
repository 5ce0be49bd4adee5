"""Kubernetes Events any controller records: created, updated, back-off, failed...

Theory of operation
-------------------
Kind-agnostic: the node agent (Started, Killing, BackOff, Unhealthy) and the
member operators (Created, UpdatedInPlace, Recreated, FailedOver...) use it
alike, each with its own ``component``.  Transient happenings are Kubernetes
Events (permanent problems are conditions): ``pincompute events`` and the
console's timeline read them.  The recorder writes them in the background,
never blocking the caller, and aggregates repeats as the API server's event
series do: the same (object, reason, message) within ``dedupe_window`` seconds
bumps ``count`` on the existing Event instead of creating another, so a
crash-looping container produces one Event with a growing count rather than
thousands.  Losing an event (the API is down) is acceptable; they are advisory.
Sim nodes at scale switch the recorder off.

Some messages quote what the subject controls — a failing probe's output.  Keyed
on the message, a probe printing something new each time would make a new
Event each time, and the pod would decide how many objects the store holds.
Those reasons (:data:`AGGREGATED_REASONS`) are keyed on (object, reason) alone:
the one Event keeps the *latest* message and counts.  The store expires Events
after an hour (``--event-ttl``), so what a recorder writes is bounded either way.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Mapping
from typing import Any

from pincompute.kube.errors import ApiError, NotFound
from pincompute.kube.objects import now
from pincompute.kube.protocol import KubeClient
from pincompute.kube.resource import EVENTS

from .logging import get_logger

_log = get_logger(__name__)

AGGREGATED_REASONS = frozenset({"Unhealthy", "ProbeWarning"})
"""Reasons whose messages carry text the subject controls: one Event per (object, reason)."""


class EventRecorder:
    """Writes core Events in the background, aggregating repeats (see the module docstring)."""

    def __init__(self, client: KubeClient, *, component: str, host: str,
                 dedupe_window: float = 600.0, max_pending: int = 1000,
                 cluster_namespace: str = "default") -> None:
        self.client = client
        self.cluster_namespace = cluster_namespace
        """Where Events about cluster-scoped objects (Nodes, pools) go: ``default`` as in
        Kubernetes, or a namespace the caller knows exists."""
        self.component = component
        self.host = host
        self.dedupe_window = dedupe_window
        self.max_pending = max_pending
        self._recent: dict[tuple[str, str, str, str], tuple[float, str, str, int]] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    def record(self, obj: Mapping[str, Any], type_: str, reason: str, message: str) -> None:
        """Record an event about ``obj`` (``Normal`` or ``Warning``); returns at once."""
        if len(self._tasks) >= self.max_pending:
            return  # the API is not keeping up; events are advisory
        task = asyncio.get_running_loop().create_task(self._write(obj, type_, reason, message))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _write(self, obj: Mapping[str, Any], type_: str, reason: str,
                     message: str) -> None:
        md = obj.get("metadata") or {}
        namespace = md.get("namespace") or self.cluster_namespace
        key = (md.get("uid", ""), reason,
               "" if reason in AGGREGATED_REASONS else message, type_)
        stamp = now()
        seen = self._recent.get(key)
        t = time.monotonic()
        try:
            if seen is not None and t - seen[0] < self.dedupe_window:
                _, name, ns, count = seen
                self._recent[key] = (t, name, ns, count + 1)
                try:
                    await self.client.patch(EVENTS, name, {
                        "count": count + 1, "lastTimestamp": stamp, "message": message,
                    }, namespace=ns)
                    return
                except NotFound:
                    pass  # expired or deleted meanwhile: start a new one
            created = await self.client.create(EVENTS, {
                "apiVersion": "v1", "kind": "Event",
                "metadata": {"generateName": f"{md.get('name', 'object')}.",
                             "namespace": namespace},
                "involvedObject": {"apiVersion": obj.get("apiVersion", "v1"),
                                   "kind": obj.get("kind", ""), "name": md.get("name", ""),
                                   "namespace": md.get("namespace"), "uid": md.get("uid")},
                "reason": reason, "message": message, "type": type_, "count": 1,
                "firstTimestamp": stamp, "lastTimestamp": stamp,
                "source": {"component": self.component, "host": self.host},
                "reportingComponent": self.component, "reportingInstance": self.host,
            }, namespace=namespace)
            if len(self._recent) > 10_000:
                self._recent.clear()
            self._recent[key] = (t, created["metadata"]["name"], namespace, 1)
        except (ApiError, OSError) as exc:
            _log.debug("could not record event %s: %s", reason, exc)

    async def close(self) -> None:
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task


__all__ = ["AGGREGATED_REASONS", "EventRecorder"]
