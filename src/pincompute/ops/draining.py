"""Draining a node within every application's disruption budget.

Theory of operation
-------------------
Remediation and rotation both empty nodes before they go.  :func:`evict_pods`
makes one pass over a node's pods (from an informer index, no scan): each pod not
yet being deleted is evicted — deleted with its own grace period, the node agent
stopping its containers gracefully — only if its disruption budget allows it, so no
PinApp drops below its ``disruptionBudget``; a refusal is kept with the app that refused
(callers report it and come back: the evicted replica's replacement becomes
available elsewhere, and then the next may go).  Each eviction is decided — by
the caller's caches (:class:`.budgetcache.BudgetCache`) or a read of the API —
and deleted in one step under its app's lock
(:func:`~pincompute.model.disruption.evict`), so two evictions of one app — this
drain's or another evictor's in the process — always see each other.  Daemon pods
(platform agents) stay until the node itself goes, as ``kubectl drain
--ignore-daemonsets`` leaves them.
A node is drained when no other pod is bound to it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pincompute.kube import objects
from pincompute.kube.errors import Conflict, NotFound
from pincompute.kube.protocol import KubeClient, Preconditions
from pincompute.kube.resource import PODS
from pincompute.model.disruption import Decision, evict
from pincompute.model.wellknown import APP_UID_LABEL, DAEMON_POD_LABEL, NODE_POOL_LABEL
from pincompute.runtime.cache import index_by_field, index_by_label

BY_NODE = "ops:spec.nodeName"
"""The pod informer index by node that ops adds (:data:`by_node`)."""
by_node = index_by_field("spec", "nodeName")
BY_POOL = "ops:pool"
"""The node informer index by pool that ops adds (:data:`by_pool`)."""
by_pool = index_by_label(NODE_POOL_LABEL)


def is_daemon_pod(pod: Mapping[str, Any]) -> bool:
    return (objects.meta(pod).get("labels") or {}).get(DAEMON_POD_LABEL) == "true"


def workload_pods(pods: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """The pods a drain must move (all but daemon pods)."""
    return [p for p in pods if not is_daemon_pod(p)]


@dataclass(slots=True)
class DrainPass:
    """What one pass over a node did."""

    remaining: int = 0
    """Workload pods still bound to the node (being deleted or not)."""
    evicted: list[str] = field(default_factory=list)
    blocked: list[str] = field(default_factory=list)
    """Why pods stayed: each a disruption budget's message."""
    blocked_by: list[str] = field(default_factory=list)
    """The apps (``namespace/name``) whose budgets refused, in order, without repeats."""

    @property
    def drained(self) -> bool:
        return self.remaining == 0


@dataclass(slots=True)
class PassMemo:
    """What one drain pass learned of the apps' budgets, shared by its nodes: the apps
    that refused are not asked again in the pass (their next pod would be refused too
    until the evicted replica's successor is available), nor is an app whose last room
    an eviction of this pass used.

    It only ever remembers *refusals*.  Remembering the room a decision gave, to spend
    it without asking again, was tried and broke a budget at full size: a pass over
    hundreds of nodes lasts seconds, and another evictor (the node provisioner draining
    a leaving node) took the same room meanwhile.  Every allowed eviction is decided
    afresh under the app's lock and deleted before the next decision."""

    refused: dict[str, tuple[str, str]] = field(default_factory=dict)
    """App uid → the refusal's message and the app (``namespace/name``)."""

    def refuse(self, app_uid: str, message: str, app: str) -> None:
        self.refused[app_uid] = (message, app)

    def allowed(self, app_uid: str, room: int | None, *, app: str, pod: str) -> None:
        """A decision allowed evicting ``pod`` leaving ``room`` more (None: no budget)."""
        if room == 0:
            self.refuse(app_uid, f"PinApp {app}: its budget has no room until pod {pod} "
                        "is replaced", app)


async def evict_pods(client: KubeClient, pods: Sequence[Mapping[str, Any]], *,
                     respect_budgets: bool = True, limit: int | None = None,
                     memo: PassMemo | None = None,
                     decide: Callable[[Mapping[str, Any]], Decision | None] | None = None,
                     ) -> DrainPass:
    """One eviction pass over a node's ``pods``; at most ``limit`` evictions.

    ``memo`` (:class:`PassMemo`) is shared by the passes over several nodes in one go.
    ``decide`` (:meth:`.budgetcache.BudgetCache.decide`) decides from caches instead of
    the API.

    The node's apps are worked on side by side, each app's pods in turn: a node holds
    pods of tens of apps, and one after the other each eviction waited for the last
    one's commit (a node of 40 pods took seconds to empty).  One app's evictions stay in
    order, under its lock, and its refusal spares the asking for its next pod."""
    memo = PassMemo() if memo is None else memo
    movable = workload_pods(pods)
    by_app: dict[str, list[Mapping[str, Any]]] = {}
    for pod in movable:
        if objects.is_deleting(pod):
            continue
        app_uid = (objects.meta(pod).get("labels") or {}).get(APP_UID_LABEL, "") \
            if respect_budgets else ""
        # A pod of no app (or budgets ignored) is a group of its own: nothing to order.
        by_app.setdefault(app_uid or f"pod:{objects.uid_of(pod)}", []).append(pod)
    left = limit  # evictions left (None: no limit), reserved before each one starts

    async def one_app(group: list[Mapping[str, Any]]) -> DrainPass:
        nonlocal left
        out = DrainPass()
        for pod in group:
            if left is not None:
                if left <= 0:
                    break
                left -= 1
            if not await _evict_one(client, pod, respect_budgets=respect_budgets, memo=memo,
                                    decide=decide, out=out) and left is not None:
                left += 1  # refused: the slot is free again
        return out

    try:
        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(one_app(g)) for g in by_app.values()]
    except ExceptionGroup as errors:  # the others were stopped; callers expect the error
        raise errors.exceptions[0] from None
    result = DrainPass(remaining=len(movable))
    for task in tasks:  # in the order the apps' pods came
        part = task.result()
        result.evicted.extend(part.evicted)
        result.blocked.extend(part.blocked)
        for app in part.blocked_by:
            if app not in result.blocked_by:
                result.blocked_by.append(app)
    return result


async def _evict_one(client: KubeClient, pod: Mapping[str, Any], *, respect_budgets: bool,
                     memo: PassMemo,
                     decide: Callable[[Mapping[str, Any]], Decision | None] | None,
                     out: DrainPass) -> bool:
    """Evict ``pod`` if its budget allows (recorded in ``out``); whether it went."""
    if respect_budgets:
        app_uid = (objects.meta(pod).get("labels") or {}).get(APP_UID_LABEL, "")
        if app_uid and app_uid in memo.refused:
            message, app = memo.refused[app_uid]
            out.blocked.append(message)
            if app and app not in out.blocked_by:
                out.blocked_by.append(app)
            return False
        # Decided and, if allowed, deleted in one step (the app's lock held between).
        decision = await evict(client, pod, decide=decide)
        if not decision.allowed:
            out.blocked.append(decision.message)
            if app_uid:
                memo.refuse(app_uid, decision.message, decision.app)
            if decision.app and decision.app not in out.blocked_by:
                out.blocked_by.append(decision.app)
            return False
        if app_uid:
            memo.allowed(app_uid, decision.room, app=decision.app, pod=objects.name_of(pod))
    else:
        with contextlib.suppress(NotFound, Conflict):  # gone, or a new pod of that name
            await client.delete(PODS, objects.name_of(pod),
                                namespace=objects.namespace_of(pod),
                                preconditions=Preconditions(uid=objects.uid_of(pod)))
    out.evicted.append(f"{objects.namespace_of(pod)}/{objects.name_of(pod)}")
    return True


__all__ = [
    "BY_NODE",
    "BY_POOL",
    "DrainPass",
    "PassMemo",
    "by_node",
    "by_pool",
    "evict_pods",
    "is_daemon_pod",
    "workload_pods",
]
