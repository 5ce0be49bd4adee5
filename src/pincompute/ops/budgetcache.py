"""A refusal from the informer caches before the API is asked about a disruption budget.

Theory of operation
-------------------
:func:`~pincompute.model.disruption.may_evict` reads the API on purpose: two
evictions in a row must see each other.  But in a drain pass over hundreds of
nodes most answers are refusals — an app with ``maxUnavailable: 1`` whose last
evicted replica is not back yet refuses every other pod — and each refusal cost
two lists of the app's pods from the store.

:class:`BudgetCache` answers from the member's informers first, counting the
app's available pods in the pod cache (an index by app uid).  It only ever
*refuses*: when the cache shows no room, the pod waits for the next pass; when
it shows room, the caller asks :func:`may_evict`, which reads the API and has
the last word.  A stale cache cannot break a budget this way — it can only make a
pod wait one more pass (it shows a successor not yet Ready) or send the question
to the API (it still shows an evicted pod available).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from pincompute.kube import objects
from pincompute.model.app import PinAppSpec
from pincompute.model.disruption import Decision, exceeded, pod_available, required_available
from pincompute.model.views import spec_view
from pincompute.model.wellknown import APP_UID_LABEL
from pincompute.runtime.cache import index_by_field, index_by_label
from pincompute.runtime.informer import SharedInformer

BY_APP_UID = "ops:app-uid"
"""The pod informer index by the PinApp uid label."""
BY_UID = "ops:uid"
"""The PinApp informer index by uid."""


class BudgetCache:
    """Cached budget refusals for one member cluster's pods (see the module doc)."""

    def __init__(self, *, pods: SharedInformer, pinapps: SharedInformer) -> None:
        pods.add_indexer(BY_APP_UID, index_by_label(APP_UID_LABEL))
        pinapps.add_indexer(BY_UID, index_by_field("metadata", "uid"))
        self.pods = pods
        self.pinapps = pinapps
        self._ready: dict[str, set[str]] = {}
        """App uid → its pods Ready and not being deleted (kept from pod events, so a
        check costs O(1) for apps without ``minReadySeconds``)."""
        pods.add_event_handler(on_add=self._pod, on_update=lambda _old, new: self._pod(new),
                               on_delete=lambda pod: self._pod(pod, gone=True))

    def _pod(self, pod: Mapping[str, Any], *, gone: bool = False) -> None:
        uid = (objects.meta(pod).get("labels") or {}).get(APP_UID_LABEL)
        if not uid:
            return
        key = f"{objects.namespace_of(pod)}/{objects.name_of(pod)}"
        ready = self._ready.setdefault(uid, set())
        if not gone and pod_available(pod, min_ready_seconds=0, now=0.0):
            ready.add(key)
        else:
            ready.discard(key)
            if not ready:
                del self._ready[uid]

    def refusal(self, pod: Mapping[str, Any]) -> Decision | None:
        """A refusal if the caches show that evicting ``pod`` would break its app's
        budget; ``None``: ask the API."""
        uid: str = (objects.meta(pod).get("labels") or {}).get(APP_UID_LABEL) or ""
        apps = self.pinapps.by_index(BY_UID, uid) if uid else []
        if not apps or not (apps[0].get("spec") or {}).get("disruptionBudget"):
            return None
        app = apps[0]
        spec = spec_view(PinAppSpec, app)
        assert spec.disruption_budget is not None
        now = time.time()
        if not pod_available(pod, min_ready_seconds=spec.min_ready_seconds, now=now):
            return None  # evicting it costs nothing: the API check says so
        if spec.min_ready_seconds <= 0:
            available = len(self._ready.get(uid, ()))
        else:  # available depends on the clock: counted now
            available = 0
            for p in self.pods.by_index(BY_APP_UID, uid):
                available += pod_available(p, min_ready_seconds=spec.min_ready_seconds, now=now)
        need = required_available(app["spec"]["disruptionBudget"],
                                  0 if spec.stopped else spec.replicas)
        return None if available - 1 >= need else exceeded(pod, app, available=available,
                                                            need=need)


__all__ = ["BY_APP_UID", "BY_UID", "BudgetCache"]
