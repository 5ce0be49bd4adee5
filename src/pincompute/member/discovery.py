"""Service discovery through a file: the ready endpoints of a project's PinApps.

Theory of operation
-------------------
Every pod of a project finds the ready endpoints of the project's apps in one
file (DESIGN §8), so a client needs no DNS, no API token and no library: it
reads JSON.  This controller writes, per project namespace that has (or had)
app pods, the ConfigMap :data:`~pincompute.model.wellknown.DISCOVERY_CONFIGMAP`
(``pincompute-discovery``) with one key,
:data:`~pincompute.model.wellknown.DISCOVERY_KEY` (``endpoints.json``)::

    {
      "web": [                                   <- the app's name
        {"ip": "127.0.16.5",                     <- the pod's address
         "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
         "zone": "zone-a",                       <- its node's zone ("" if unknown)
         "node": "zone-a-1-general-0",
         "pod": "web-7f9c-0"}
      ],
      "api": []                                  <- an app with no ready pod
    }

Apps are keys in name order, endpoints in pod-name order; the document is
deterministic, so an unchanged set of endpoints is never rewritten.  An endpoint
is a pod with an address, condition ``Ready`` true and not being deleted.  The
pods are found by their labels: :data:`~pincompute.model.wellknown.APP_LABEL` and
:data:`~pincompute.model.wellknown.APP_KIND_LABEL`, which
:func:`~pincompute.member.operator.workload_labels` hands down the ownership chain
(PinApp → PinPod → pod), selecting the kinds given (``pinapp`` by default).

Embedded node agents mount the ConfigMap into every pod of the namespace at
:data:`~pincompute.model.wellknown.DISCOVERY_MOUNT` and name the file in
``PINCOMPUTE_DISCOVERY_FILE``, and rewrite it atomically when the ConfigMap
changes (:mod:`pincompute.node.configsync`): a pod event here reaches the file
within a second.  On real clusters no agent of ours runs the pods, so the
controller adds the same mount (an optional configMap volume, which the kubelet
refreshes within its sync period) and variable to every pod the operators
create, as a pod admission hook (:func:`mount_discovery`,
:func:`~.operator.add_pod_admission`).

The endpoints are kept per namespace from pod events (:mod:`.discoveryindex`):
an event costs O(1), only a change of what a pod contributes enqueues its
namespace, a namespace is written at most every ``min_interval`` (0.2 s: a burst
of events is one write) or, for a large document, at most :data:`WRITE_RATE` bytes a
second (a namespace of 100,000 pods rewrites its megabyte once a second, not five
times: each write is a committed megabyte and its render reads every endpoint), and
a document larger than a ConfigMap holds is
truncated to the same number of endpoints per app, which the ConfigMap's
:data:`~pincompute.model.wellknown.DISCOVERY_TRUNCATED_ANNOTATION` states.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Mapping
from typing import Any

from pincompute.kube import objects
from pincompute.kube.errors import AlreadyExists, Conflict, Forbidden, NotFound
from pincompute.kube.protocol import KubeClient
from pincompute.kube.resource import CONFIGMAPS, NODES, PODS
from pincompute.kube.wellknown import APP_PART_OF_LABEL, ZONE_LABEL
from pincompute.model.wellknown import (
    APP_KIND_LABEL,
    APP_LABEL,
    DISCOVERY_CONFIGMAP,
    DISCOVERY_FILE_ENV,
    DISCOVERY_KEY,
    DISCOVERY_MOUNT,
    DISCOVERY_TRUNCATED_ANNOTATION,
    PART_OF,
)
from pincompute.runtime.controller import Controller
from pincompute.runtime.informer import SharedInformer
from pincompute.runtime.logging import get_logger
from pincompute.runtime.manager import Manager
from pincompute.runtime.reconciler import Request, Result

from .discoveryindex import DOCUMENT_LIMIT, NamespaceEndpoints, endpoint_json
from .operator import add_pod_admission
from .podtemplate import Backend

Obj = dict[str, Any]
DEFAULT_KINDS: tuple[str, ...] = ("pinapp",)
WRITE_RATE = 1_000_000
"""Bytes a second a namespace's document is rewritten at, at most (beyond ``min_interval``)."""

_log = get_logger(__name__)


def _labels(obj: Mapping[str, Any]) -> Mapping[str, str]:
    return (obj.get("metadata") or {}).get("labels") or {}


def app_of(pod: Mapping[str, Any], kinds: Collection[str]) -> str | None:
    """The app ``pod`` serves, when it belongs to one of ``kinds``."""
    labels = _labels(pod)
    if labels.get(APP_KIND_LABEL) not in kinds:
        return None
    return labels.get(APP_LABEL) or None


def is_ready_endpoint(pod: Mapping[str, Any]) -> bool:
    return bool((pod.get("status") or {}).get("podIP")) and not objects.is_deleting(pod) \
        and objects.condition_true(pod, "Ready")


def endpoint(pod: Mapping[str, Any], *, zone: str) -> Obj:
    """One entry of the file for a ready pod."""
    ports = []
    for c in (pod.get("spec") or {}).get("containers") or ():
        for p in c.get("ports") or ():
            entry: Obj = {"port": p.get("containerPort"), "protocol": p.get("protocol", "TCP")}
            if p.get("name"):
                entry = {"name": p["name"], **entry}
            ports.append(entry)
    return {"ip": pod["status"]["podIP"], "ports": ports, "zone": zone,
            "node": (pod.get("spec") or {}).get("nodeName") or "",
            "pod": objects.name_of(pod)}


Entry = tuple[str, Obj | None]
"""A pod's part of the file: its app and its endpoint (``None``: not a ready endpoint)."""


def pod_entry(pod: Mapping[str, Any], *, kinds: Collection[str],
              zone_of: Callable[[str], str] = lambda node: "") -> Entry | None:
    """What ``pod`` contributes to the file (``None``: it serves none of ``kinds``)."""
    app = app_of(pod, kinds)
    if app is None:
        return None
    if not is_ready_endpoint(pod):
        return app, None
    node = (pod.get("spec") or {}).get("nodeName") or ""
    return app, endpoint(pod, zone=zone_of(node) if node else "")


def render(entries: Mapping[str, Entry]) -> bytes:
    """The file's content from the entries of a namespace's pods, by pod name."""
    index = NamespaceEndpoints()
    for name, (app, entry) in entries.items():
        index.set(name, (app, None if entry is None else endpoint_json(entry)))
    return index.document().content


def document(pods: Collection[Mapping[str, Any]], *, kinds: Collection[str],
             zone_of: Callable[[str], str] = lambda node: "") -> bytes:
    """The file's content for a namespace's ``pods`` (``zone_of(node name) → zone``)."""
    entries: dict[str, Entry] = {}
    for pod in pods:
        entry = pod_entry(pod, kinds=kinds, zone_of=zone_of)
        if entry is not None:
            entries[objects.name_of(pod)] = entry
    return render(entries)


DISCOVERY_VOLUME = DISCOVERY_CONFIGMAP
"""The volume :func:`mount_discovery` adds (real clusters)."""


def mount_discovery(pod: Obj) -> Obj:
    """``pod`` with the discovery ConfigMap mounted (optional, read-only) at
    :data:`~pincompute.model.wellknown.DISCOVERY_MOUNT` in every container, and
    ``PINCOMPUTE_DISCOVERY_FILE`` naming the file — what embedded node agents do by
    themselves.  Changed in place; a pod that already has the volume is left alone."""
    spec = pod.setdefault("spec", {})
    volumes = spec.setdefault("volumes", [])
    if any(v.get("name") == DISCOVERY_VOLUME for v in volumes):
        return pod
    volumes.append({"name": DISCOVERY_VOLUME,
                    "configMap": {"name": DISCOVERY_CONFIGMAP, "optional": True}})
    path = f"{DISCOVERY_MOUNT}/{DISCOVERY_KEY}"
    for key in ("initContainers", "containers"):
        for c in spec.get(key) or ():
            mounts = c.setdefault("volumeMounts", [])
            if not any(str(m.get("mountPath", "")).rstrip("/") == DISCOVERY_MOUNT
                       for m in mounts):
                mounts.append({"name": DISCOVERY_VOLUME, "mountPath": DISCOVERY_MOUNT,
                               "readOnly": True})
            env = c.setdefault("env", [])
            if not any(e.get("name") == DISCOVERY_FILE_ENV for e in env):
                env.append({"name": DISCOVERY_FILE_ENV, "value": path})
    return pod


async def _admit(pod: Obj) -> Obj:
    return mount_discovery(pod)


def configmap(namespace: str, content: str, *, truncated: str | None = None) -> Obj:
    metadata: Obj = {"name": DISCOVERY_CONFIGMAP, "namespace": namespace,
                     "labels": {APP_PART_OF_LABEL: PART_OF}}
    if truncated is not None:
        metadata["annotations"] = {DISCOVERY_TRUNCATED_ANNOTATION: truncated}
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": metadata,
            "data": {DISCOVERY_KEY: content}}


class DiscoveryReconciler:
    """Writes one namespace's discovery ConfigMap (requests name the ConfigMap).

    Its pod and node handlers keep :attr:`index` (:mod:`.discoveryindex`) and enqueue a
    namespace only when what one of its pods contributes changed; a reconcile writes the
    namespace's document, at most once per ``min_interval`` (a burst of pod events makes
    one write, not one per pod)."""

    def __init__(self, *, client: KubeClient, pods: SharedInformer, nodes: SharedInformer,
                 kinds: Collection[str] = DEFAULT_KINDS, zone: str = "",
                 min_interval: float = 0.2, limit: int = DOCUMENT_LIMIT) -> None:
        self.client = client
        self.pods = pods
        self.nodes = nodes
        self.kinds = frozenset(kinds)
        self.zone = zone
        self.min_interval = min_interval
        self.limit = limit
        self.index: dict[str, NamespaceEndpoints] = {}
        self.enqueue: Callable[[str], None] = lambda namespace: None
        self._written: dict[str, str] = {}
        """Namespace → the content last written (or found), to skip unchanged ones."""
        self._next_write: dict[str, float] = {}
        """Namespace → when (monotonic) its document may be written again."""
        self._truncated: dict[str, int | None] = {}
        self._on_node: dict[str, set[tuple[str, str]]] = {}
        """Node name → the (namespace, pod) app pods bound to it, for zone changes."""
        self._zones: dict[str, str] = {}
        """Node name → the zone its pods' entries were made with."""

    def _zone_of(self, node_name: str) -> str:
        node = self.nodes.get(node_name)
        zone = _labels(node).get(ZONE_LABEL) if node is not None else None
        return zone or self.zone

    # -- handlers: the index follows the pods --

    def pod_changed(self, pod: Mapping[str, Any], *, gone: bool = False) -> None:
        namespace, name = objects.namespace_of(pod), objects.name_of(pod)
        node = (pod.get("spec") or {}).get("nodeName") or ""
        entry = None if gone else pod_entry(pod, kinds=self.kinds, zone_of=self._zone_of)
        if node:
            on_node = self._on_node.setdefault(node, set())
            if entry is None:
                on_node.discard((namespace, name))
                if not on_node:
                    del self._on_node[node]
                    self._zones.pop(node, None)
            else:
                on_node.add((namespace, name))
                self._zones.setdefault(node, self._zone_of(node))
        index = self.index.get(namespace)
        if index is None:
            if entry is None:
                return
            index = self.index[namespace] = NamespaceEndpoints()
        value = None if entry is None else (
            entry[0], None if entry[1] is None else endpoint_json(entry[1]))
        if index.set(name, value):
            self.enqueue(namespace)

    def node_changed(self, node: Mapping[str, Any]) -> None:
        """A node's zone label changed: its pods' entries are remade."""
        name = objects.name_of(node)
        if name not in self._on_node or self._zones.get(name) == self._zone_of(name):
            return
        self._zones[name] = self._zone_of(name)
        for namespace, pod_name in list(self._on_node[name]):
            pod = self.pods.get(pod_name, namespace=namespace)
            if pod is not None:
                self.pod_changed(pod)

    # -- writes --

    async def reconcile(self, request: Request) -> Result | None:
        namespace = request.namespace
        wait = self._next_write.get(namespace, -1e9) - time.monotonic()
        if wait > 0:
            return Result(requeue_after=wait)
        index = self.index.get(namespace)
        doc = (index or NamespaceEndpoints()).document(limit=self.limit)
        if index is not None and not len(index):
            del self.index[namespace]
        content = doc.content.decode()
        if self._written.get(namespace) == content:
            return None
        try:
            current = await self.client.get(CONFIGMAPS, DISCOVERY_CONFIGMAP, namespace=namespace)
        except NotFound:
            current = None
        except Forbidden:
            # On real clusters the controller may write only where PinCompute owns the
            # namespace (projects, the system namespace): elsewhere there is no file to keep.
            _log.info("discovery: not allowed in namespace %s; skipping it", namespace)
            self._written[namespace] = content
            return None
        truncated = None if doc.cap is None else \
            f"{doc.cap} endpoints per app of up to {doc.largest}"
        if (doc.cap is None) != (self._truncated.get(namespace) is None):
            if doc.cap is not None:  # once as it starts, not at every change of the cap
                _log.warning("discovery: namespace %s has more endpoints than a ConfigMap "
                             "holds; the file keeps %s (see the ConfigMap's annotation %s)",
                             namespace, truncated, DISCOVERY_TRUNCATED_ANNOTATION)
            else:
                _log.info("discovery: namespace %s holds all its endpoints again", namespace)
        self._truncated[namespace] = doc.cap
        self._next_write[namespace] = time.monotonic() + max(
            self.min_interval, len(doc.content) / WRITE_RATE)
        if current is None:
            try:
                await self.client.create(CONFIGMAPS, configmap(namespace, content,
                                                               truncated=truncated),
                                         namespace=namespace)
            except NotFound:
                return None  # the namespace is going
            except AlreadyExists:
                return Result(requeue=True)
        elif (current.get("data") or {}).get(DISCOVERY_KEY) != content or \
                _annotations(current).get(DISCOVERY_TRUNCATED_ANNOTATION) != truncated:
            updated = objects.deepcopy(current)
            updated["data"] = {**(updated.get("data") or {}), DISCOVERY_KEY: content}
            annotations = dict(_annotations(current))
            annotations.pop(DISCOVERY_TRUNCATED_ANNOTATION, None)
            if truncated is not None:
                annotations[DISCOVERY_TRUNCATED_ANNOTATION] = truncated
            updated["metadata"]["annotations"] = annotations or None
            try:
                await self.client.update(CONFIGMAPS, updated)
            except Conflict:
                return Result(requeue=True)
            except NotFound:
                return None
        self._written[namespace] = content
        return None


def _annotations(obj: Mapping[str, Any]) -> Mapping[str, str]:
    return (obj.get("metadata") or {}).get("annotations") or {}


def add_discovery_controller(manager: Manager, *, client: KubeClient,
                             backend: Backend = "embedded", name: str = "discovery",
                             kinds: Collection[str] = DEFAULT_KINDS, zone: str = "",
                             workers: int = 2, min_interval: float = 0.2) -> DiscoveryReconciler:
    """Run the discovery file writer for the member cluster ``client`` in ``manager``
    (on ``kubernetes``, also the admission hook mounting the file into new pods)."""
    wanted = frozenset(kinds)
    if backend == "kubernetes":
        add_pod_admission(client, _admit)
    pods = manager.informer(client, PODS)
    nodes = manager.informer(client, NODES)
    reconciler = DiscoveryReconciler(client=client, pods=pods, nodes=nodes, kinds=wanted,
                                     zone=zone, min_interval=min_interval)
    controller: Controller = manager.controller(name, reconciler, workers=workers)
    reconciler.enqueue = lambda namespace: controller.enqueue(
        Request(namespace, DISCOVERY_CONFIGMAP))
    pods.add_event_handler(on_add=reconciler.pod_changed,
                           on_update=lambda _old, new: reconciler.pod_changed(new),
                           on_delete=lambda pod: reconciler.pod_changed(pod, gone=True))
    nodes.add_event_handler(on_add=reconciler.node_changed,
                            on_update=lambda _old, new: reconciler.node_changed(new))
    return reconciler


__all__ = ["DEFAULT_KINDS", "DISCOVERY_VOLUME", "WRITE_RATE", "DiscoveryReconciler",
           "Entry", "add_discovery_controller", "app_of", "configmap", "document",
           "endpoint", "is_ready_endpoint", "mount_discovery", "pod_entry", "render"]
