"""The disruption budget: may this pod of a PinApp be evicted now?

Shared by every voluntary disruption (the node provisioner in ``member``, remediation
and rotation in ``ops``), so it lives in ``model``, below the controller packages.

Theory of operation
-------------------
Voluntary disruptions — a node's drain, a rotation, rebalancing — ask
:func:`may_evict` before evicting a pod, as kubectl drain asks the Eviction API
with its PodDisruptionBudgets.  It walks up the pod's controlling owners (pod →
PinPod → PinApp); a pod of no PinApp, or of an app without
``spec.disruptionBudget``, may go.  Otherwise it counts the app's *available*
pods — controlled by one of the app's PinPods, not being deleted, Ready for at
least ``minReadySeconds`` — and allows the eviction only if one fewer still
meets the budget: ``minAvailable`` (a percentage rounds up, as a PDB's does) or
``replicas - maxUnavailable`` (rounds down).  A pod that is not available itself
costs nothing and may always go.

It reads the API.  A caller with informer caches may decide from them instead
(``decide`` of :func:`evict`), as the Kubernetes Eviction API decides from a
PodDisruptionBudget's status that the disruption controller computes from its
caches.  Either way two evictions in a row must see each other: every eviction
of an app in this process holds the app's lock from its decision until its
delete is committed, and records the pod (:func:`recently_evicted`) — a cache may
still show it available until its deletion arrives there, and a cached decision
does not count it (what a PDB's ``status.disruptedPods`` is for).  A refused
caller waits and asks again: the evicted replica's replacement becomes available
elsewhere, and then the next may go.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
import weakref
from collections.abc import Callable, Collection, Container, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from pincompute.kube import objects
from pincompute.kube.errors import Conflict, NotFound
from pincompute.kube.protocol import KubeClient, Preconditions
from pincompute.kube.resource import PODS

from .app import PinAppSpec
from .registry import PINAPPS, PINPODS
from .views import spec_view
from .wellknown import APP_UID_LABEL, OWNER_UID_LABEL


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    reason: str
    """``NoBudget`` (not an app's, or no budget), ``NotAvailable`` (the pod counts for
    nothing), ``WithinBudget`` or ``BudgetExceeded`` (refused)."""
    message: str = ""
    app: str = ""
    """The PinApp the decision is about (``namespace/name``), when the pod has one."""
    room: int | None = None
    """On ``WithinBudget``: how many more available pods may go after this one."""


def required_available(budget: Mapping[str, Any], replicas: int) -> int:
    """How many of ``replicas`` must stay available under ``budget``."""
    if budget.get("minAvailable") is not None:
        value = budget["minAvailable"]
        if isinstance(value, str):
            return math.ceil(int(value.rstrip("%")) * replicas / 100)
        return int(value)
    value = budget.get("maxUnavailable")
    if value is None:
        return replicas
    if isinstance(value, str):  # a percentage rounds down, as a PDB's maxUnavailable does
        value = math.floor(int(value.rstrip("%")) * replicas / 100)
    return max(0, replicas - int(value))


def pod_available(pod: Mapping[str, Any], *, min_ready_seconds: int, now: float) -> bool:
    """Ready, not being deleted, and ready for ``min_ready_seconds``."""
    if objects.is_deleting(pod):
        return False
    ready = objects.get_condition(pod, "Ready")
    if ready is None or ready.get("status") != "True":
        return False
    if min_ready_seconds <= 0:
        return True
    since = ready.get("lastTransitionTime")
    if not since:
        return False
    return now - objects.parse_time(str(since)).timestamp() >= min_ready_seconds


async def may_evict(client: KubeClient, pod: Mapping[str, Any]) -> Decision:
    """Whether ``pod`` may be evicted without taking its PinApp below its budget."""
    app = await _app_of(client, pod)
    if app is None:
        return Decision(True, "NoBudget", "the pod belongs to no PinApp")
    shard = app  # a member's PinApp is its own shard (the federation writes it so)
    budget = shard["spec"].get("disruptionBudget")
    if not budget:
        return Decision(True, "NoBudget", f"PinApp {objects.name_of(app)} has no budget")
    spec = spec_view(PinAppSpec, shard)
    now = time.time()
    if not pod_available(pod, min_ready_seconds=spec.min_ready_seconds, now=now):
        return Decision(True, "NotAvailable", "the pod is not available: evicting it "
                        "costs the app nothing")
    namespace = objects.namespace_of(app)
    pinpods = await client.list(PINPODS, namespace=namespace,
                                label_selector=f"{OWNER_UID_LABEL}={objects.uid_of(app)}")
    pods = await client.list(PODS, namespace=namespace,
                             label_selector=f"{APP_UID_LABEL}={objects.uid_of(app)}")
    return decide(pod, app, pinpods=pinpods.items, pods=pods.items, now=now)


def decide(pod: Mapping[str, Any], app: Mapping[str, Any], *,
           pinpods: Iterable[Mapping[str, Any]], pods: Iterable[Mapping[str, Any]],
           now: float, evicted: Container[str] = ()) -> Decision:
    """The decision on evicting ``pod`` (available) of ``app`` (with a budget), given
    the app's ``pinpods`` and ``pods`` (from the API or from caches) and the pods
    ``evicted`` (uids) that those may still show available."""
    spec = spec_view(PinAppSpec, app)
    owners = {objects.uid_of(p) for p in pinpods if not objects.is_deleting(p)}
    available = sum(
        1 for p in pods
        if (ref := objects.controller_of(p)) is not None and ref.get("uid") in owners
        and objects.uid_of(p) not in evicted
        and pod_available(p, min_ready_seconds=spec.min_ready_seconds, now=now))
    need = required_available(app["spec"]["disruptionBudget"],
                              0 if spec.stopped else spec.replicas)
    name = objects.name_of(app)
    if available - 1 >= need:
        return Decision(True, "WithinBudget",
                        f"PinApp {name}: {available} available, {need} required",
                        app=f"{objects.namespace_of(app)}/{name}", room=available - 1 - need)
    return exceeded(pod, app, available=available, need=need)


def exceeded(pod: Mapping[str, Any], app: Mapping[str, Any], *, available: int,
             need: int) -> Decision:
    """The refusal of evicting ``pod`` when ``app`` has ``available`` pods and needs
    ``need`` (also what a cached check refuses with)."""
    name = objects.name_of(app)
    return Decision(False, "BudgetExceeded",
                    f"evicting pod {objects.name_of(pod)} would leave PinApp {name} with "
                    f"{available - 1} available pods; its disruption budget needs {need}",
                    app=f"{objects.namespace_of(app)}/{name}")


_LOCKS: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()
"""App uid → the lock its evictions in this process take (kept while held or awaited)."""
EVICTED_FOR = 120.0
"""Seconds an evicted pod is not counted by cached decisions, whatever the caches show
(the Kubernetes disruption controller's DeletionTimeout): by then its deletion has reached
any live cache."""
_EVICTED: dict[str, dict[str, float]] = {}
"""App uid → the pods (uid → when) evicted in this process in the last EVICTED_FOR."""


def recently_evicted(app_uid: str) -> Collection[str]:
    """The uids of ``app_uid``'s pods evicted in this process that a cache may still show
    available (what a cached decision leaves out)."""
    return _EVICTED.get(app_uid, {}).keys()


def _record(app_uid: str, pod_uid: str) -> None:
    pods = _EVICTED.setdefault(app_uid, {})
    now = time.monotonic()
    for uid in [u for u, at in pods.items() if now - at > EVICTED_FOR]:
        del pods[uid]
    pods[pod_uid] = now


async def evict(client: KubeClient, pod: Mapping[str, Any], *,
                grace_period_seconds: int | None = None,
                decide: Callable[[Mapping[str, Any]], Decision | None] | None = None,
                ) -> Decision:
    """Decide and, if allowed, delete ``pod`` — one step among this process's evictors
    (drains of the node provisioner, remediation, rotation, the API).

    ``decide`` decides from caches (None from it: ask the API); without it
    :func:`may_evict` reads the API.  Between a decision and the delete another evictor
    could see the same room; so every eviction of one app holds the app's lock from
    its decision until its delete is committed, and the pod is recorded
    (:func:`recently_evicted`) for the caches that do not show its deletion yet.  (The
    Kubernetes Eviction API gets the same from the PodDisruptionBudget's
    resourceVersion and ``disruptedPods``.)"""
    app_uid = (objects.meta(pod).get("labels") or {}).get(APP_UID_LABEL, "")
    lock = _LOCKS.get(app_uid) if app_uid else None
    if app_uid and lock is None:
        lock = _LOCKS[app_uid] = asyncio.Lock()
    async with lock if lock is not None else contextlib.nullcontext():
        decision = (decide(pod) if decide is not None else None) or \
            await may_evict(client, pod)
        if decision.allowed:
            if app_uid:
                _record(app_uid, objects.uid_of(pod))
            # Gone already, or a new pod of that name: nothing to delete.
            with contextlib.suppress(NotFound, Conflict):
                await client.delete(PODS, objects.name_of(pod),
                                    namespace=objects.namespace_of(pod),
                                    grace_period_seconds=grace_period_seconds,
                                    preconditions=Preconditions(uid=objects.uid_of(pod)))
    return decision


async def _app_of(client: KubeClient, pod: Mapping[str, Any]) -> dict[str, Any] | None:
    ref = objects.controller_of(pod)
    if ref is None or ref.get("kind") != PINPODS.kind:
        return None
    namespace = objects.namespace_of(pod)
    try:
        pinpod = await client.get(PINPODS, ref["name"], namespace=namespace)
        if objects.uid_of(pinpod) != ref.get("uid"):
            return None
        app_ref = objects.controller_of(pinpod)
        if app_ref is None or app_ref.get("kind") != PINAPPS.kind:
            return None
        app = await client.get(PINAPPS, app_ref["name"], namespace=namespace)
    except NotFound:
        return None
    return app if objects.uid_of(app) == app_ref.get("uid") else None


__all__ = ["EVICTED_FOR", "Decision", "decide", "evict", "exceeded", "may_evict", "pod_available",
           "recently_evicted", "required_available"]
