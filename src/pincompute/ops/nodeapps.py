"""Per node, how many pods of each app it runs, kept from pod events.

Theory of operation
-------------------
An application-aware pick (:class:`.rotationplan.Spread`) asks, for each node it
considers, which apps' pods it would move: at full size a pick looks at hundreds
of nodes of 40 pods each, once a second.  Counting them from the pod index at each
pick blocked the event loop that the whole region shares for half a second at a
time (every other controller's writes waited for it).  So the counts are kept
here, up to date with each pod event, in O(1) an event: a pod counts on its node
for its app (label :data:`~pincompute.model.wellknown.APP_UID_LABEL`) while it is
bound, not a daemon pod and not being deleted — the pods a drain would move.

The informer hands each update's previous version, so an update takes back what
that version counted and adds what the new one counts; nothing is remembered per
pod.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from typing import Any

from pincompute.kube import objects
from pincompute.model.wellknown import APP_UID_LABEL
from pincompute.runtime.informer import SharedInformer

from .draining import is_daemon_pod

_EMPTY: Counter[str] = Counter()


def _counted(pod: Mapping[str, Any]) -> tuple[str, str] | None:
    """(node, app uid) that ``pod`` counts for, if any."""
    node = (pod.get("spec") or {}).get("nodeName")
    if not node or objects.is_deleting(pod) or is_daemon_pod(pod):
        return None
    app = (objects.meta(pod).get("labels") or {}).get(APP_UID_LABEL)
    return (node, app) if app else None


class NodeApps:
    """Node name → its pods per app uid, from ``pods`` (a member's pod informer)."""

    def __init__(self, pods: SharedInformer) -> None:
        self.pods = pods
        self._nodes: dict[str, Counter[str]] = {}
        # (A synced informer replays an add for each pod it holds.)
        pods.add_event_handler(on_add=self._add, on_update=self._update,
                               on_delete=self._remove)

    def of(self, node: str) -> Mapping[str, int]:
        """The pods ``node`` runs, per app uid (read-only)."""
        return self._nodes.get(node, _EMPTY)

    def _add(self, pod: Mapping[str, Any]) -> None:
        counted = _counted(pod)
        if counted is not None:
            node, app = counted
            self._nodes.setdefault(node, Counter())[app] += 1

    def _remove(self, pod: Mapping[str, Any]) -> None:
        counted = _counted(pod)
        if counted is None:
            return
        node, app = counted
        apps = self._nodes.get(node)
        if apps is None:
            return
        apps[app] -= 1
        if apps[app] <= 0:
            del apps[app]
            if not apps:
                del self._nodes[node]

    def _update(self, old: Mapping[str, Any], new: Mapping[str, Any]) -> None:
        if _counted(old) != _counted(new):
            self._remove(old)
            self._add(new)


__all__ = ["NodeApps"]
