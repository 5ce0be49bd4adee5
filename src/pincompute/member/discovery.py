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

A pod event maps to its namespace through an index of the pod informer, so a
reconcile reads only that namespace's app pods.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from typing import Any

import orjson

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
    PART_OF,
)
from pincompute.runtime.controller import Controller
from pincompute.runtime.informer import SharedInformer
from pincompute.runtime.logging import get_logger
from pincompute.runtime.manager import Manager
from pincompute.runtime.reconciler import Request, Result

from .operator import add_pod_admission
from .podtemplate import Backend

Obj = dict[str, Any]
BY_DISCOVERY_NAMESPACE = "discovery-namespace"
DEFAULT_KINDS: tuple[str, ...] = ("pinapp",)

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
    apps: dict[str, list[Obj]] = {}
    for name in sorted(entries):
        app, entry = entries[name]
        endpoints = apps.setdefault(app, [])
        if entry is not None:
            endpoints.append(entry)
    return orjson.dumps(apps, option=orjson.OPT_SORT_KEYS | orjson.OPT_INDENT_2) + b"\n"


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


def configmap(namespace: str, content: str) -> Obj:
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": DISCOVERY_CONFIGMAP, "namespace": namespace,
                         "labels": {APP_PART_OF_LABEL: PART_OF}},
            "data": {DISCOVERY_KEY: content}}


class DiscoveryReconciler:
    """Writes one namespace's discovery ConfigMap (requests name the ConfigMap)."""

    def __init__(self, *, client: KubeClient, pods: SharedInformer, nodes: SharedInformer,
                 kinds: Collection[str] = DEFAULT_KINDS, zone: str = "") -> None:
        self.client = client
        self.pods = pods
        self.nodes = nodes
        self.kinds = frozenset(kinds)
        self.zone = zone
        self._written: dict[str, str] = {}
        """Namespace → the content last written (or found), to skip unchanged ones."""
        self._entries: dict[str, dict[str, tuple[str, str, Entry]]] = {}
        """Namespace → pod name → (resourceVersion, zone, entry) of the last pass: every pod
        event re-renders its whole namespace, so a pod unchanged since is not re-read."""

    def _zone_of(self, node_name: str) -> str:
        node = self.nodes.get(node_name)
        zone = _labels(node).get(ZONE_LABEL) if node is not None else None
        return zone or self.zone

    def _current_entries(self, namespace: str) -> dict[str, Entry]:
        """The namespace's entries, reusing last pass's for pods whose resourceVersion and
        node zone are unchanged (what :func:`document` computes, without redoing it)."""
        previous = self._entries.get(namespace, {})
        kept: dict[str, tuple[str, str, Entry]] = {}
        zones: dict[str, str] = {}

        def zone_of(node: str) -> str:
            zone = zones.get(node)
            if zone is None:
                zone = zones[node] = self._zone_of(node)
            return zone

        for pod in self.pods.by_index(BY_DISCOVERY_NAMESPACE, namespace):
            md = pod["metadata"]
            node = (pod.get("spec") or {}).get("nodeName") or ""
            zone = zone_of(node) if node else ""
            rv = md.get("resourceVersion") or ""
            hit = previous.get(md["name"])
            if hit is not None and hit[0] == rv and hit[1] == zone:
                kept[md["name"]] = hit
                continue
            entry = pod_entry(pod, kinds=self.kinds, zone_of=zone_of)
            if entry is not None:
                kept[md["name"]] = (rv, zone, entry)
        self._entries[namespace] = kept
        return {name: entry for name, (_, _, entry) in kept.items()}

    async def reconcile(self, request: Request) -> Result | None:
        namespace = request.namespace
        content = render(self._current_entries(namespace)).decode()
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
        if current is None:
            try:
                await self.client.create(CONFIGMAPS, configmap(namespace, content),
                                         namespace=namespace)
            except NotFound:
                return None  # the namespace is going
            except AlreadyExists:
                return Result(requeue=True)
        elif (current.get("data") or {}).get(DISCOVERY_KEY) != content:
            updated = objects.deepcopy(current)
            updated["data"] = {**(updated.get("data") or {}), DISCOVERY_KEY: content}
            try:
                await self.client.update(CONFIGMAPS, updated)
            except Conflict:
                return Result(requeue=True)
            except NotFound:
                return None
        self._written[namespace] = content
        return None


def add_discovery_controller(manager: Manager, *, client: KubeClient,
                             backend: Backend = "embedded", name: str = "discovery",
                             kinds: Collection[str] = DEFAULT_KINDS, zone: str = "",
                             workers: int = 2) -> DiscoveryReconciler:
    """Run the discovery file writer for the member cluster ``client`` in ``manager``
    (on ``kubernetes``, also the admission hook mounting the file into new pods)."""
    wanted = frozenset(kinds)
    if backend == "kubernetes":
        add_pod_admission(client, _admit)
    pods = manager.informer(client, PODS)
    nodes = manager.informer(client, NODES)

    def by_namespace(pod: Mapping[str, Any]) -> list[str]:
        return [objects.namespace_of(pod)] if app_of(pod, wanted) else []

    pods.add_indexer(BY_DISCOVERY_NAMESPACE, by_namespace)
    reconciler = DiscoveryReconciler(client=client, pods=pods, nodes=nodes, kinds=wanted,
                                     zone=zone)
    controller: Controller = manager.controller(name, reconciler, workers=workers)

    def to_namespace(pod: Obj) -> list[Request]:
        if not app_of(pod, wanted):
            return []
        return [Request(objects.namespace_of(pod), DISCOVERY_CONFIGMAP)]

    controller.watches(pods, to_namespace)
    return reconciler


__all__ = ["BY_DISCOVERY_NAMESPACE", "DEFAULT_KINDS", "DISCOVERY_VOLUME", "DiscoveryReconciler",
           "Entry", "add_discovery_controller", "app_of", "configmap", "document",
           "endpoint", "is_ready_endpoint", "mount_discovery", "pod_entry", "render"]
