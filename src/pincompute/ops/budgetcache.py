"""Disruption budgets decided from the informer caches.

Theory of operation
-------------------
:func:`~pincompute.model.disruption.may_evict` reads the API: two lists of the
app's pods and PinPods from the store per question.  In a drain pass over
hundreds of nodes that was a third of the process at full size.
:class:`BudgetCache` answers from one member's informers instead, as the
Kubernetes Eviction API answers from a PodDisruptionBudget's status that the
disruption controller computes from its caches.  It is handed to
:func:`~pincompute.model.disruption.evict` as ``decide``, so its answer is still
given under the app's eviction lock and the allowed pod is recorded: the pods
this process evicted are left out of the count until the caches show them going
(:func:`~pincompute.model.disruption.recently_evicted`), and two evictions in a
row see each other even before their deletions reach the informers.

A cache behind the store errs on the safe side for the pods it has not seen
become Ready (a successor counts only once the cache shows it); what it can miss
is a pod that failed a moment ago — which an API read a moment before the delete
misses as well.  Refusals are cheap: each app's Ready pods are kept from pod
events, so an app with no room refuses in O(1); an allowance counts the app's
pods and live PinPods from their indexes (O(replicas), no decoding).  An app the
caches do not show yet is left to the API.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from pincompute.kube import objects
from pincompute.model.app import PinAppSpec
from pincompute.model.disruption import (
    Decision,
    decide,
    exceeded,
    pod_available,
    recently_evicted,
    required_available,
)
from pincompute.model.views import spec_view
from pincompute.model.wellknown import APP_UID_LABEL, OWNER_UID_LABEL
from pincompute.runtime.cache import index_by_field, index_by_label
from pincompute.runtime.informer import SharedInformer

BY_APP_UID = "ops:app-uid"
"""The pod informer index by the PinApp uid label."""
BY_UID = "ops:uid"
"""The PinApp informer index by uid."""
BY_OWNER_UID = "ops:owner-uid"
"""The PinPod informer index by the owning PinApp's uid label."""


class BudgetCache:
    """Budget decisions for one member cluster's pods from its informers (see the module
    doc)."""

    def __init__(self, *, pods: SharedInformer, pinpods: SharedInformer,
                 pinapps: SharedInformer) -> None:
        pods.add_indexer(BY_APP_UID, index_by_label(APP_UID_LABEL))
        pinpods.add_indexer(BY_OWNER_UID, index_by_label(OWNER_UID_LABEL))
        pinapps.add_indexer(BY_UID, index_by_field("metadata", "uid"))
        self.pods = pods
        self.pinpods = pinpods
        self.pinapps = pinapps
        self._ready: dict[str, set[str]] = {}
        """App uid → its pods (uids) Ready and not being deleted, kept from pod events: at
        most that many are available, so a refusal costs O(1) for apps without
        ``minReadySeconds``."""
        pods.add_event_handler(on_add=self._pod, on_update=lambda _old, new: self._pod(new),
                               on_delete=lambda pod: self._pod(pod, gone=True))

    def _pod(self, pod: Mapping[str, Any], *, gone: bool = False) -> None:
        uid = (objects.meta(pod).get("labels") or {}).get(APP_UID_LABEL)
        if not uid:
            return
        key = objects.uid_of(pod)
        ready = self._ready.setdefault(uid, set())
        if not gone and pod_available(pod, min_ready_seconds=0, now=0.0):
            ready.add(key)
        else:
            ready.discard(key)
            if not ready:
                del self._ready[uid]

    @property
    def has_synced(self) -> bool:
        return self.pods.has_synced and self.pinpods.has_synced and self.pinapps.has_synced

    def decide(self, pod: Mapping[str, Any]) -> Decision | None:
        """Whether ``pod`` may be evicted, from the caches; ``None``: ask the API (the
        caches do not show its app).  Call it under the app's eviction lock (as
        :func:`~pincompute.model.disruption.evict` does)."""
        uid: str = (objects.meta(pod).get("labels") or {}).get(APP_UID_LABEL) or ""
        if not uid:
            return None  # not an app's pod as far as labels tell: the API walks its owners
        apps = self.pinapps.by_index(BY_UID, uid)
        if not apps:
            return None
        app = apps[0]
        namespace = objects.namespace_of(app)
        if objects.namespace_of(pod) != namespace:
            return None  # a label claims another namespace's app: the API walks the owners
        if not (app.get("spec") or {}).get("disruptionBudget"):
            return Decision(True, "NoBudget", f"PinApp {objects.name_of(app)} has no budget")
        spec = spec_view(PinAppSpec, app)
        now = time.time()
        if not pod_available(pod, min_ready_seconds=spec.min_ready_seconds, now=now):
            return Decision(True, "NotAvailable", "the pod is not available: evicting it "
                            "costs the app nothing")
        need = required_available(app["spec"]["disruptionBudget"],
                                  0 if spec.stopped else spec.replicas)
        evicted = recently_evicted(uid)
        if spec.min_ready_seconds <= 0:
            # At most this many are available: no room means a refusal at once.
            ready = self._ready.get(uid, set())
            most = len(ready) - sum(1 for p in evicted if p in ready)
            if most - 1 < need:
                return exceeded(pod, app, available=most, need=need)
        # The indexes span namespaces; only the app's own counts (labels can be written by
        # anyone in their own namespace).
        return decide(pod, app, now=now, evicted=evicted, pinpods=[
            p for p in self.pinpods.by_index(BY_OWNER_UID, uid)
            if objects.namespace_of(p) == namespace], pods=[
            p for p in self.pods.by_index(BY_APP_UID, uid)
            if objects.namespace_of(p) == namespace])


__all__ = ["BY_APP_UID", "BY_OWNER_UID", "BY_UID", "BudgetCache"]
