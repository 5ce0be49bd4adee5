"""The PinSidecar operator: injection at pod creation, rolling upgrades, status.

Theory of operation
-------------------
Two parts, set up together by :func:`add_pinsidecar_controller`:

* the :class:`SidecarInjector`, a pod admission hook on the member cluster's
  client (:func:`pincompute.member.operator.add_pod_admission`): every pod an
  operator creates through :func:`~pincompute.member.operator.create_pod` gets
  the matching PinSidecars' containers and volumes (:mod:`.sidecarinjection`
  says why there and how).  It reads the PinSidecar and Namespace caches only;
  before they have synced it waits for them, so no pod is created without its
  sidecars;
* the reconciler of each PinSidecar: it finds the pods carrying it (an index on
  the injection record), writes the status (``matchedPods``, ``injectedPods``,
  ``updatedPods``, ``readyPods``) and rolls a new version out per
  ``updateStrategy``:

  - ``InPlace``: each outdated pod gets its injected containers replaced one
    at a time (:func:`~.sidecarinjection.next_step`), the next only once the
    previous one runs ready again; the node agent (or kubelet, images only)
    restarts only that container, never a main one.  At most
    ``maxUnavailable`` pods (of those carrying the sidecar, rounded down, at
    least one) are in update or have the sidecar not ready at once; an
    outdated pod whose sidecar is down already is updated at once (it costs no
    availability).  A change that cannot be made in place (volumes, containers
    added or removed, more than images on a real cluster) waits for the pod to
    be replaced, with a Warning Event;
  - ``Recreate``: outdated pods that have an owner are deleted, the same
    number at a time — their operator recreates them, with the new version;
  - ``OnDelete``: only new pods get the new version.

Pod updates carry the resourceVersion read from the cache, so a pass on a
stale cache meets a Conflict instead of acting twice.  Nothing is kept in
memory: where each pod's upgrade stands (which containers are current, which
one is restarting from which container id) is in its injection record, so a
restarted operator goes on where the last one stopped.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Mapping
from typing import Any

from pincompute.kube import objects
from pincompute.kube.errors import ApiError, Conflict, NotFound
from pincompute.kube.protocol import KubeClient, Preconditions
from pincompute.kube.resource import NAMESPACES, PODS
from pincompute.model.registry import PINSIDECARS
from pincompute.runtime.controller import Controller
from pincompute.runtime.events import EventRecorder
from pincompute.runtime.informer import SharedInformer
from pincompute.runtime.logging import get_logger
from pincompute.runtime.manager import Manager
from pincompute.runtime.reconciler import Request, Result

from .operator import (
    NORMAL,
    RECREATED,
    UPDATED_IN_PLACE,
    WARNING,
    add_pod_admission,
    event_recorder,
    observe,
    resolve_count,
)
from .podtemplate import Backend
from .sidecarinjection import (
    Sidecar,
    inject,
    injected,
    matches,
    next_step,
    parse_sidecar,
    sidecars_ready,
)

Obj = dict[str, Any]

BY_SIDECAR = "pinsidecar"
INJECTION_SKIPPED = "InjectionSkipped"
"""Event reason: a matching pod already used a container or volume name of the sidecar."""
NEEDS_RECREATE = "NeedsRecreate"
"""Event reason: an InPlace upgrade that cannot be made in place."""

_log = get_logger(__name__)


def by_sidecar(pod: Mapping[str, Any]) -> list[str]:
    """Index: the PinSidecars injected into a pod."""
    return list(injected(pod))


class SidecarCache:
    """Parsed PinSidecars, re-parsed only when one changes (injection is on a hot path)."""

    def __init__(self, informer: SharedInformer) -> None:
        self.informer = informer
        self._parsed: dict[str, tuple[str, Sidecar]] = {}

    def get(self, obj: Mapping[str, Any]) -> Sidecar:
        name = objects.name_of(obj)
        rv = objects.meta(obj).get("resourceVersion", "")
        hit = self._parsed.get(name)
        if hit is None or hit[0] != rv:
            hit = (rv, parse_sidecar(obj))
            self._parsed[name] = hit
        return hit[1]

    def all(self) -> list[tuple[Obj, Sidecar]]:
        live = [o for o in self.informer.list() if not objects.is_deleting(o)]
        if len(self._parsed) > 2 * len(live) + 16:
            self._parsed.clear()
        return [(o, self.get(o)) for o in live]


class SidecarInjector:
    """The pod admission hook: adds matching PinSidecars to a pod being created."""

    def __init__(self, *, cache: SidecarCache, namespaces: SharedInformer, backend: Backend,
                 recorder: EventRecorder) -> None:
        self.cache = cache
        self.namespaces = namespaces
        self.backend = backend
        self.recorder = recorder

    async def __call__(self, pod: Obj) -> Obj:
        for informer in (self.cache.informer, self.namespaces):
            if not informer.has_synced:
                await informer.wait_synced()
        objs = self.cache.all()
        if not objs:
            return pod
        ns = self.namespaces.get(pod["metadata"]["namespace"])
        ns_labels = (objects.meta(ns).get("labels") or {}) if ns is not None else {}
        pod, skipped = inject(pod, [s for _, s in objs], backend=self.backend,
                              namespace_labels=ns_labels)
        for obj, s in objs:
            if s.name in skipped:
                self.recorder.record(obj, WARNING, INJECTION_SKIPPED,
                                     f"pod {pod['metadata']['namespace']}/"
                                     f"{pod['metadata']['name']} already has a container or "
                                     "volume of the same name: not injected")
        return pod


class PinSidecarReconciler:
    """Status and upgrades of one PinSidecar; see the module docstring."""

    def __init__(self, *, client: KubeClient, backend: Backend, cache: SidecarCache,
                 pods: SharedInformer, namespaces: SharedInformer,
                 recorder: EventRecorder) -> None:
        self.client = client
        self.backend = backend
        self.cache = cache
        self.pods = pods
        self.namespaces = namespaces
        self.recorder = recorder

    def _ready(self, pod: Mapping[str, Any], sidecar: Sidecar) -> bool:
        return sidecars_ready(pod, sidecar.name, [c["name"] for c in sidecar.containers])

    def _matched(self, sidecar: Sidecar) -> int:
        count = 0
        ns_labels: dict[str, Mapping[str, str]] = {}
        for pod in self.pods.list():
            ns = objects.namespace_of(pod)
            if ns not in ns_labels:
                obj = self.namespaces.get(ns)
                ns_labels[ns] = (objects.meta(obj).get("labels") or {}) if obj else {}
            count += matches(sidecar, pod_labels=objects.meta(pod).get("labels") or {},
                             namespace_labels=ns_labels[ns])
        return count

    async def reconcile(self, request: Request) -> Result | None:
        obj = self.cache.informer.get(request.name)
        if obj is None or objects.is_deleting(obj):
            return None  # injected containers stay with their pods
        sidecar = self.cache.get(obj)
        pods = [p for p in self.pods.by_index(BY_SIDECAR, sidecar.name)
                if not objects.is_deleting(p)
                and (p.get("status") or {}).get("phase") not in ("Succeeded", "Failed")]
        outdated: list[tuple[bool, Obj]] = []
        updated = ready = unavailable = 0
        for pod in pods:
            record = injected(pod)[sidecar.name]
            is_ready = self._ready(pod, sidecar)
            ready += is_ready
            unavailable += not is_ready
            if record.get("version") == sidecar.version:
                updated += 1
            else:
                outdated.append((record.get("updating") == sidecar.version, pod))
        wake: float | None = None
        if outdated and sidecar.strategy != "OnDelete":
            budget = max(1, resolve_count(sidecar.max_unavailable, len(pods),
                                          round_up=False)) - unavailable
            outdated.sort(key=lambda e: (not e[0], objects.key_of(e[1])))
            for in_progress, pod in outdated:
                is_ready = self._ready(pod, sidecar)
                if in_progress and not is_ready:
                    wake = 1.0  # the updated container is starting
                    continue
                if is_ready:  # it goes down now: that takes budget (in-progress pods first)
                    if budget <= 0:
                        continue
                    budget -= 1
                wake = 1.0
                if await self._upgrade(obj, sidecar, pod) is False:
                    return Result(requeue=True)
        result = await self._status(obj, sidecar, injected_pods=len(pods), updated=updated,
                                    ready=ready)
        if result is not None:
            return result
        return Result(requeue_after=wake) if wake is not None else None

    async def _upgrade(self, obj: Obj, sidecar: Sidecar, pod: Obj) -> bool | None:
        """One step for one pod; False on a conflict (requeue)."""
        where = f"{objects.namespace_of(pod)}/{objects.name_of(pod)}"
        step = next_step(pod, sidecar, backend=self.backend)
        if sidecar.strategy == "Recreate" or step.kind == "recreate":
            if sidecar.strategy != "Recreate":
                self.recorder.record(obj, WARNING, NEEDS_RECREATE,
                                     f"pod {where}: the new version cannot be applied in "
                                     "place; it applies when the pod is replaced")
                return None
            if objects.controller_of(pod) is None:
                return None  # nobody would recreate it
            try:
                await self.client.delete(PODS, objects.name_of(pod),
                                         namespace=objects.namespace_of(pod),
                                         preconditions=Preconditions(uid=objects.uid_of(pod)))
            except (NotFound, Conflict):
                return None
            self.recorder.record(obj, NORMAL, RECREATED, f"deleted pod {where} to apply "
                                                         f"version {sidecar.version}")
            return None
        if step.kind != "container" or step.pod is None:
            return None
        try:
            await self.client.update(PODS, step.pod)
        except Conflict:
            return False
        except NotFound:
            return None
        except ApiError as exc:
            self.recorder.record(obj, WARNING, UPDATED_IN_PLACE,
                                 f"pod {where}: updating container {step.container}: {exc}")
            return None
        if step.container is not None:
            self.recorder.record(obj, NORMAL, UPDATED_IN_PLACE,
                                 f"pod {where}: container {step.container} updated in place "
                                 f"(version {sidecar.version})")
        return None

    async def _status(self, obj: Obj, sidecar: Sidecar, *, injected_pods: int, updated: int,
                      ready: int) -> Result | None:
        new = objects.deepcopy(obj)
        status = observe(new)
        status.update(matchedPods=self._matched(sidecar), injectedPods=injected_pods,
                      updatedPods=updated, readyPods=ready)
        if status == obj.get("status"):
            return None
        try:
            await self.client.update_status(PINSIDECARS, new)
        except Conflict:
            return Result(requeue=True)
        except NotFound:
            pass
        return None


def add_pinsidecar_controller(manager: Manager, *, client: KubeClient, backend: Backend,
                              name: str = "pinsidecars", identity: str | None = None
                              ) -> PinSidecarReconciler:
    """Run the PinSidecar operator (and its injector, on ``client``) in ``manager``."""
    informer = manager.informer(client, PINSIDECARS)
    namespaces = manager.informer(client, NAMESPACES)
    pods = manager.informer(client, PODS)
    pods.add_indexer(BY_SIDECAR, by_sidecar)
    recorder = event_recorder(client, operator=name, identity=identity or socket.gethostname())
    cache = SidecarCache(informer)
    injector = SidecarInjector(cache=cache, namespaces=namespaces, backend=backend,
                               recorder=recorder)
    remove = add_pod_admission(client, injector)
    reconciler = PinSidecarReconciler(client=client, backend=backend, cache=cache, pods=pods,
                                      namespaces=namespaces, recorder=recorder)
    controller: Controller = manager.controller(name, reconciler)
    controller.for_(informer)

    def to_sidecars(pod: Obj) -> list[Request]:
        return [Request("", n) for n in by_sidecar(pod)]

    controller.watches(pods, to_sidecars)

    async def close() -> None:
        try:
            await asyncio.Event().wait()
        finally:
            remove()
            await recorder.close()

    manager.add_runnable(close, name=f"{name}-injector", needs_leader=False)
    return reconciler


__all__ = [
    "BY_SIDECAR",
    "INJECTION_SKIPPED",
    "NEEDS_RECREATE",

    "PinSidecarReconciler",
    "SidecarCache",
    "SidecarInjector",
    "add_pinsidecar_controller",
    "by_sidecar",
]
