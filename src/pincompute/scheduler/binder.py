"""Binders: how a decision becomes ``spec.nodeName`` in the API.

Theory of operation
-------------------
A :class:`Binder` writes one binding and raises
:class:`~pincompute.kube.errors.ApiError` when the API refuses it; the scheduler
then forgets the assumed pod and retries it later.  Bindings run concurrently
and off the decision path (the scheduler keeps many in flight, which lets a
persisted store put them in one group commit), but a pod is only ever bound to
a node the node table already accounts it to: assume first, then bind.

:class:`BindingBinder` (the default) posts a ``Binding`` to the
``pods/binding`` subresource, as kube-scheduler does; both backends implement
it, so the same scheduler binds in an embedded cluster and as a secondary
scheduler on a real one.  The server refuses a pod that is already bound, being
deleted, or not the one decided on (the binding carries its uid).

:class:`PatchBinder` is the older embedded-only way: a JSON merge patch of
``spec.nodeName`` whose ``metadata.resourceVersion`` is a precondition, so a pod
that changed since the scheduler looked at it is not bound on stale grounds.  If
the precondition fails, the binder reads the pod once: when only its status or
metadata bookkeeping changed (the scheduler's own condition updates do that) and
it is still unbound, same uid, same spec and labels, the patch is retried
against the new version; otherwise the conflict stands.  A real API server
does not let ``spec.nodeName`` be patched, so it serves only embedded stores.
"""

from __future__ import annotations

from typing import Any, Protocol

from pincompute.kube.errors import Conflict
from pincompute.kube.protocol import KubeClient
from pincompute.kube.resource import PODS

from .podinfo import PodInfo


class Binder(Protocol):
    async def bind(self, pod: PodInfo, node: str) -> None:
        """Bind ``pod`` to ``node``; raise ApiError if the API refuses."""
        ...


def _same_pod(seen: dict[str, Any], current: dict[str, Any]) -> bool:
    sm = seen.get("metadata") or {}
    cm = current.get("metadata") or {}
    return (sm.get("uid") == cm.get("uid") and seen.get("spec") == current.get("spec")
            and sm.get("labels") == cm.get("labels") and not cm.get("deletionTimestamp")
            and not (current.get("spec") or {}).get("nodeName"))


class BindingBinder:
    """Binds through the ``pods/binding`` subresource (embedded and real clusters)."""

    def __init__(self, client: KubeClient) -> None:
        self.client = client

    async def bind(self, pod: PodInfo, node: str) -> None:
        md = pod.obj.get("metadata") or {}
        await self.client.create_subresource(PODS, pod.name, "binding", {
            "apiVersion": "v1", "kind": "Binding",
            "metadata": {"name": pod.name, "namespace": pod.namespace, "uid": md.get("uid")},
            "target": {"apiVersion": "v1", "kind": "Node", "name": node},
        }, namespace=pod.namespace)


class PatchBinder:
    """Binds by merge-patching ``spec.nodeName`` with a resourceVersion precondition."""

    def __init__(self, client: KubeClient) -> None:
        self.client = client
        self.retried = 0

    async def bind(self, pod: PodInfo, node: str) -> None:
        md = pod.obj.get("metadata") or {}
        try:
            await self._patch(pod, node, md.get("resourceVersion") or "")
        except Conflict:
            current = await self.client.get(PODS, pod.name, namespace=pod.namespace)
            if not _same_pod(pod.obj, current):
                raise
            self.retried += 1
            await self._patch(pod, node, current["metadata"]["resourceVersion"])

    async def _patch(self, pod: PodInfo, node: str, rv: str) -> None:
        patch: dict[str, Any] = {"spec": {"nodeName": node}}
        if rv:
            patch["metadata"] = {"resourceVersion": rv}
        await self.client.patch(PODS, pod.name, patch, namespace=pod.namespace)
