"""Draining a node within every application's disruption budget.

Theory of operation
-------------------
Remediation and rotation both empty nodes before they go.  :func:`evict_pods`
makes one pass over a node's pods (from an informer index, no scan): each pod not
yet being deleted is evicted — deleted with its own grace period, the node agent
stopping its containers gracefully — only if
:func:`~pincompute.model.disruption.may_evict` allows it, so no PinApp drops
below its ``disruptionBudget``; a refusal is kept with the app that refused
(callers report it and come back: the evicted replica's replacement becomes
available elsewhere, and then the next may go).  Decisions are one at a time and
an app is asked once per pass, before any of its pods goes (:class:`PassMemo`
counts the rest), so two evictions of one app always see each other; the deletes
of a node's pass then go together, not one commit after another.  Daemon pods (platform agents) stay
until the node itself goes, as ``kubectl drain --ignore-daemonsets`` leaves them.
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
from pincompute.model.disruption import Decision, may_evict
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
    """What one drain pass learned of the apps' budgets, shared by its nodes.

    An app that refused is not asked again in the pass (its next pod would be refused
    too until the evicted replica's successor is available).  An app the API allowed
    with room for ``n`` more gives its next ``n`` pods in the pass without asking again
    (the read is milliseconds old, as a PodDisruptionBudget's ``disruptionsAllowed`` is
    at best), and then refuses."""

    refused: dict[str, tuple[str, str]] = field(default_factory=dict)
    """App uid → the refusal's message and the app (``namespace/name``)."""
    room: dict[str, tuple[int, str]] = field(default_factory=dict)
    """App uid → how many more of its available pods may go in this pass, and the app."""

    def refuse(self, app_uid: str, message: str, app: str) -> None:
        self.room.pop(app_uid, None)
        self.refused[app_uid] = (message, app)

    def spend(self, app_uid: str, *, pod: str) -> bool:
        """Take one eviction of the app's remembered room; whether there was one."""
        if app_uid not in self.room:
            return False
        left, app = self.room.pop(app_uid)
        self._after(app_uid, left - 1, app=app, pod=pod)
        return True

    def allowed(self, app_uid: str, room: int | None, *, app: str, pod: str) -> None:
        """The API allowed evicting ``pod`` leaving ``room`` more (None: no budget)."""
        if room is not None:
            self._after(app_uid, room, app=app, pod=pod)

    def _after(self, app_uid: str, left: int, *, app: str, pod: str) -> None:
        if left > 0:
            self.room[app_uid] = (left, app)
        else:
            self.refuse(app_uid, f"PinApp {app}: its budget has no room until pod {pod} "
                        "is replaced", app)


async def evict_pods(client: KubeClient, pods: Sequence[Mapping[str, Any]], *,
                     respect_budgets: bool = True, limit: int | None = None,
                     memo: PassMemo | None = None,
                     precheck: Callable[[Mapping[str, Any]], Decision | None] | None = None,
                     ) -> DrainPass:
    """One eviction pass over a node's ``pods``; at most ``limit`` evictions.

    ``memo`` (:class:`PassMemo`) is shared by the passes over several nodes in one go.
    ``precheck`` (:meth:`.budgetcache.BudgetCache.refusal`) may refuse from a cache
    before the API is asked; only the API (or room it gave in this pass) allows.
    """
    out = DrainPass(remaining=len(workload_pods(pods)))
    memo = PassMemo() if memo is None else memo
    evicting: list[Mapping[str, Any]] = []
    for pod in workload_pods(pods):
        if objects.is_deleting(pod):
            continue
        if limit is not None and len(out.evicted) >= limit:
            break
        if respect_budgets:
            app_uid = (objects.meta(pod).get("labels") or {}).get(APP_UID_LABEL, "")
            if app_uid and app_uid in memo.refused:
                message, app = memo.refused[app_uid]
                out.blocked.append(message)
                if app and app not in out.blocked_by:
                    out.blocked_by.append(app)
                continue
            if not (app_uid and memo.spend(app_uid, pod=objects.name_of(pod))):
                decision = (precheck(pod) if precheck is not None else None) or \
                    await may_evict(client, pod)
                if not decision.allowed:
                    out.blocked.append(decision.message)
                    if app_uid:
                        memo.refuse(app_uid, decision.message, decision.app)
                    if decision.app and decision.app not in out.blocked_by:
                        out.blocked_by.append(decision.app)
                    continue
                if app_uid:
                    memo.allowed(app_uid, decision.room, app=decision.app,
                                 pod=objects.name_of(pod))
        evicting.append(pod)
        out.evicted.append(f"{objects.namespace_of(pod)}/{objects.name_of(pod)}")
    # Decided one by one, deleted together: each app's decisions in this pass are made
    # before any of its pods goes (the API once, then the memo), so the deletes need not
    # wait for each other's commit.
    await asyncio.gather(*(_delete(client, pod) for pod in evicting))
    return out


async def _delete(client: KubeClient, pod: Mapping[str, Any]) -> None:
    with contextlib.suppress(NotFound, Conflict):  # gone, or a new pod of that name
        await client.delete(PODS, objects.name_of(pod), namespace=objects.namespace_of(pod),
                            preconditions=Preconditions(uid=objects.uid_of(pod)))


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
