"""Wiring the PinScaler controller into a manager (called from the controller table).

The controller reads member clusters only through a *member watch*: the
region's live cluster set, passed in by the assembly as anything with
``watch(resource, handler_for, namespace=, label_selector=)`` and
``subscribe(on_removed=)`` — so this package imports no other controller
package, as the layer rules require.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Protocol

from pincompute.kube.protocol import KubeClient
from pincompute.kube.resource import CONFIGMAPS, Resource
from pincompute.model.registry import PINAPPS, PINSCALERS
from pincompute.model.usage import USAGE_NAMESPACE, USAGE_SELECTOR
from pincompute.runtime.controller import Controller, generation_changed
from pincompute.runtime.events import EventRecorder
from pincompute.runtime.informer import ResourceEventHandler
from pincompute.runtime.manager import Manager
from pincompute.runtime.reconciler import Request

from .controller import DEFAULT_INTERVAL, ScalerReconciler
from .metrics import ScalerMetrics
from .prometheus import PrometheusSource
from .usageindex import UsageIndex

TARGET_INDEX = "scale-target"


class MemberWatch(Protocol):
    def watch(self, resource: Resource, handler_for: Callable[[str], ResourceEventHandler], *,
              namespace: str | None = None, label_selector: str | None = None,
              field_selector: str | None = None) -> None: ...

    def subscribe(self, *, on_added: Callable[[Any], None] | None = None,
                  on_removed: Callable[[Any], None] | None = None,
                  on_state: Callable[[str], None] | None = None) -> Any: ...


def _target(obj: Mapping[str, Any]) -> Iterable[str]:
    ns = (obj.get("metadata") or {}).get("namespace") or ""
    name = ((obj.get("spec") or {}).get("scaleTargetRef") or {}).get("name")
    return [f"{ns}/{name}"] if name else []


def add_scaler_controller(manager: Manager, *, host: KubeClient, members: MemberWatch,
                          name: str = "pinscalers", identity: str = "",
                          interval: float = DEFAULT_INTERVAL,
                          prometheus_url: str | None = None,
                          clock: Callable[[], float] = time.time, workers: int = 4,
                          metrics: ScalerMetrics | None = None) -> ScalerReconciler:
    """Add the controller; returns its reconciler (tests read its index and histories)."""
    scalers = manager.informer(host, PINSCALERS)
    scalers.add_indexer(TARGET_INDEX, _target)
    apps = manager.informer(host, PINAPPS)
    index = UsageIndex(clock=clock)
    members.watch(CONFIGMAPS, index.handler_for, namespace=USAGE_NAMESPACE,
                  label_selector=USAGE_SELECTOR)
    members.subscribe(on_removed=lambda handle: index.forget_cluster(handle.name))
    recorder = EventRecorder(host, component="pinscaler-controller", host=identity or name)
    source = PrometheusSource(default_server=prometheus_url, ttl=max(0.1, interval / 2))
    reconciler = ScalerReconciler(
        host=host, scalers=scalers, apps=apps, index=index, prometheus=source,
        recorder=recorder, interval=interval, clock=clock,
        metrics=metrics or ScalerMetrics(registry=manager.metrics.registry))
    controller = Controller(name, reconciler, workers=workers, metrics=manager.metrics)
    controller.for_(scalers, predicate=generation_changed)

    def scalers_of(app: Mapping[str, Any]) -> list[Request]:
        md = app.get("metadata") or {}
        key = f"{md.get('namespace', '')}/{md.get('name', '')}"
        return [Request.for_object(s) for s in scalers.by_index(TARGET_INDEX, key)]

    controller.watches(apps, scalers_of, predicate=generation_changed)
    manager.add(controller)

    async def close_when_stopped() -> None:
        try:
            await asyncio.Event().wait()
        finally:
            await recorder.close()
            await source.close()

    manager.add_runnable(close_when_stopped, name=f"{name}-close", needs_leader=False)
    return reconciler


__all__ = ["TARGET_INDEX", "MemberWatch", "add_scaler_controller"]
