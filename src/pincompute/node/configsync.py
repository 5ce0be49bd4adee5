"""Keeps the ConfigMap and Secret volumes of a node's pods in step with their objects.

Theory of operation
-------------------
The kubelet refreshes a pod's configMap and secret volumes when the objects
change; this is the node agent's equivalent (DESIGN §8), for the ``process``
runtime only (a ``sim`` node has no files, and a fleet of thousands of sim
nodes must not hold thousands of config watches).

One :class:`ConfigSync` per process node agent holds an informer on ConfigMaps
and one on Secrets.  When a pod's sandbox is set up (:mod:`.podsandbox`) the
objects it shows are read from these caches (:meth:`ConfigSync.lookup`, the API
only on a miss) and the sandbox is registered for them (:meth:`track`): an
index ``(kind, namespace, name) → {pod uid: sandbox}``, so an event touches only
the pods using that object — no scan of the node's pods.  On every change the
runtime rewrites the affected volumes (:meth:`ContainerRuntime.update_config`:
atomically, :mod:`.configvolume`) in the event's own turn of the loop, well
within a second of the API write.  A change that lands between the read and the
registration is caught by :meth:`track` comparing what was written with the
cache.  Every pod also shows its namespace's discovery ConfigMap
(:data:`~pincompute.model.wellknown.DISCOVERY_CONFIGMAP`), tracked the same way.

The environment (``env``/``envFrom``) is fixed when a container starts, as in
Kubernetes; only volumes follow their objects.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from pincompute.kube.errors import NotFound
from pincompute.kube.protocol import KubeClient
from pincompute.kube.resource import CONFIGMAPS, SECRETS
from pincompute.model.wellknown import DISCOVERY_CONFIGMAP
from pincompute.runtime.informer import SharedInformer
from pincompute.runtime.logging import get_logger

from .containerruntime import ContainerRuntime, Sandbox

_log = get_logger(__name__)

Key = tuple[str, str, str]
"""(kind, namespace, name)."""
DISCOVERY_REF = ("ConfigMap", DISCOVERY_CONFIGMAP)
"""The (kind, name) of the discovery ConfigMap every pod of a process node shows."""


def _rv(obj: Mapping[str, Any] | None) -> str | None:
    return None if obj is None else (obj.get("metadata") or {}).get("resourceVersion")


class ConfigSync:
    """The config watches of one node agent and the pods that use each object."""

    def __init__(self, client: KubeClient, runtime: ContainerRuntime) -> None:
        self.client = client
        self.runtime = runtime
        self.informers = {"ConfigMap": SharedInformer(client, CONFIGMAPS),
                          "Secret": SharedInformer(client, SECRETS)}
        self._users: dict[Key, dict[str, Sandbox]] = {}
        self._tracked: dict[str, set[Key]] = {}
        self._written: dict[tuple[str, Key], str | None] = {}
        """(pod uid, key) → resourceVersion last written into that pod's volumes."""
        self.rewrites = 0
        """Volume rewrites done (for tests and metrics)."""
        for kind, informer in self.informers.items():
            self._watch(kind, informer)

    def _watch(self, kind: str, informer: SharedInformer) -> None:
        def changed(obj: dict[str, Any]) -> None:
            self._changed(kind, obj, obj)

        def updated(_old: dict[str, Any], obj: dict[str, Any]) -> None:
            self._changed(kind, obj, obj)

        def deleted(obj: dict[str, Any]) -> None:
            self._changed(kind, obj, None)

        informer.add_event_handler(on_add=changed, on_update=updated, on_delete=deleted)

    async def start(self) -> None:
        for informer in self.informers.values():
            informer.start()
        await asyncio.gather(*(i.wait_synced() for i in self.informers.values()))

    async def stop(self) -> None:
        await asyncio.gather(*(i.stop() for i in self.informers.values()))

    async def lookup(self, kind: str, namespace: str, name: str, *,
                     api: bool = True) -> Mapping[str, Any] | None:
        """The object as the cache has it; on a miss from the API (unless ``api`` False)."""
        obj = self.informers[kind].get(name, namespace=namespace)
        if obj is not None or not api:
            return obj
        resource = CONFIGMAPS if kind == "ConfigMap" else SECRETS
        try:
            return await self.client.get(resource, name, namespace=namespace)
        except NotFound:
            return None

    def track(self, sandbox: Sandbox, written: Mapping[tuple[str, str], Mapping[str, Any] | None],
              ) -> None:
        """Keep the volumes of ``sandbox`` showing the objects of ``written`` (what was
        written into them: (kind, name) → object or None) in step from now on."""
        keys = self._tracked.setdefault(sandbox.pod_uid, set())
        for (kind, name), obj in written.items():
            key = (kind, sandbox.namespace, name)
            keys.add(key)
            self._users.setdefault(key, {})[sandbox.pod_uid] = sandbox
            self._written[(sandbox.pod_uid, key)] = _rv(obj)
            current = self.informers[kind].get(name, namespace=sandbox.namespace)
            if current is not None and _rv(current) != _rv(obj):
                self._rewrite(sandbox, key, current)  # changed while the sandbox was made

    def forget(self, pod_uid: str) -> None:
        for key in self._tracked.pop(pod_uid, ()):
            users = self._users.get(key)
            if users is not None:
                users.pop(pod_uid, None)
                if not users:
                    del self._users[key]
            self._written.pop((pod_uid, key), None)

    def tracked(self, pod_uid: str) -> set[Key]:
        return set(self._tracked.get(pod_uid, ()))

    def _changed(self, kind: str, event_obj: Mapping[str, Any],
                 obj: Mapping[str, Any] | None) -> None:
        md = event_obj.get("metadata") or {}
        key = (kind, md.get("namespace") or "", md.get("name") or "")
        for sandbox in tuple(self._users.get(key, {}).values()):
            if obj is not None and self._written.get((sandbox.pod_uid, key)) == _rv(obj):
                continue  # a resync or the version the pod already shows
            self._rewrite(sandbox, key, obj)

    def _rewrite(self, sandbox: Sandbox, key: Key,
                 obj: Mapping[str, Any] | None) -> None:
        try:
            self.runtime.update_config(sandbox, key[0], key[2], obj)
        except Exception:
            _log.bind(pod=f"{sandbox.namespace}/{sandbox.name}").exception(
                "updating the volumes of %s %s failed", key[0], key[2])
            return
        self._written[(sandbox.pod_uid, key)] = _rv(obj)
        self.rewrites += 1


__all__ = ["DISCOVERY_REF", "ConfigSync", "Key"]
