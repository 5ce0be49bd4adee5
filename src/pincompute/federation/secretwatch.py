"""The host Secrets that hold member kubeconfigs, watched so a rotation reconnects.

A MemberCluster whose connection is a ``kubeconfigSecretRef`` depends on a
Secret's contents, which change without the MemberCluster changing.  The cluster
set therefore tells :class:`KubeconfigSecrets` which Secret each member uses
(:meth:`~KubeconfigSecrets.track`); it keeps one informer per namespace that
holds such a Secret (usually just ``pincompute-system``), started when the first
member uses it and stopped when the last one stops, and calls ``on_change(member)``
for every member whose Secret was added, changed or deleted.  The cluster set then
re-reads the connection; an unchanged fingerprint costs nothing.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pincompute.kube import objects
from pincompute.kube.protocol import KubeClient
from pincompute.kube.resource import SECRETS
from pincompute.runtime.informer import FuncEventHandler, SharedInformer
from pincompute.runtime.metrics import RuntimeMetrics

SecretRef = tuple[str, str]
"""``(namespace, name)`` of a Secret."""


@dataclass(slots=True)
class _Namespace:
    informer: SharedInformer
    users: dict[str, set[str]] = field(default_factory=dict)  # secret name -> members


class KubeconfigSecrets:
    """Which member uses which Secret, and a watch on each namespace in use."""

    def __init__(self, host: KubeClient, *, on_change: Callable[[str], None],
                 metrics: RuntimeMetrics | None = None) -> None:
        self.host = host
        self.on_change = on_change
        self.metrics = metrics
        self._namespaces: dict[str, _Namespace] = {}
        self._ref_of: dict[str, SecretRef] = {}

    def ref_of(self, member: str) -> SecretRef | None:
        return self._ref_of.get(member)

    @property
    def watched(self) -> list[str]:
        """The namespaces watched now."""
        return list(self._namespaces)

    async def track(self, member: str, ref: SecretRef | None) -> None:
        """Record that ``member`` uses the Secret ``ref`` (``None``: no Secret any more)."""
        old = self._ref_of.get(member)
        if old == ref:
            return
        if old is not None:
            del self._ref_of[member]
            ns = self._namespaces[old[0]]
            users = ns.users.get(old[1], set())
            users.discard(member)
            if not users:
                ns.users.pop(old[1], None)
            if not ns.users:  # nobody's kubeconfig is in that namespace any more
                del self._namespaces[old[0]]
                await ns.informer.stop()
        if ref is None:
            return
        namespace, secret = ref
        ns = self._namespaces.get(namespace) or self._watch(namespace)
        ns.users.setdefault(secret, set()).add(member)
        self._ref_of[member] = ref

    async def stop(self) -> None:
        namespaces, self._namespaces = list(self._namespaces.values()), {}
        self._ref_of.clear()
        await asyncio.gather(*(ns.informer.stop() for ns in namespaces))

    def _watch(self, namespace: str) -> _Namespace:
        # A bare informer, not a factory's: the factory would keep it after it stops.
        informer = SharedInformer(self.host, SECRETS, namespace=namespace, metrics=self.metrics)
        ns = self._namespaces[namespace] = _Namespace(informer)

        def changed(obj: dict[str, Any]) -> None:
            for member in ns.users.get(objects.name_of(obj), ()):
                self.on_change(member)

        informer.add_event_handler(FuncEventHandler(
            add=changed, update=lambda old, new: changed(new), delete=changed))
        informer.start()
        return ns
