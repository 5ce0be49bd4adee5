"""Node images: the catalog resolved into status, and into the pools that name them.

Theory of operation
-------------------
A host-side controller over the NodeImage objects of the region.  Each reconcile
of an image resolves it against the whole catalog (:mod:`.imagecatalog`; the
catalog is small, read from the informer) and writes ``status``: ``phase``
(``Ready`` or ``Invalid`` with the reason in ``message``), ``ancestors``,
``resolved`` and the number of NodePools that name it.

A NodePool lives in its member cluster and names its image (``spec.nodeImage``);
the controller writes the image resolved into each such pool, in every member
cluster, as the annotation :data:`RESOLVED_IMAGE_ANNOTATION`.  That is the whole
hand-over: on embedded clusters the node agent host makes *new* nodes of the pool
from it (labels, taints, daemons the node waits for, health-probe settings);
running nodes keep what they were made with until a Rotation replaces them (the
pool's status counts the nodes running its image: ``updatedNodes``).  An image
that turns Invalid leaves the pools' last good resolution in place.

Changes reach every image they affect: an image's change enqueues its
descendants; a member's pool changing enqueues the image it names; a member
joining enqueues every image.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Mapping
from typing import Any

from pincompute.kube import objects
from pincompute.kube.errors import Conflict, NotFound
from pincompute.kube.protocol import KubeClient
from pincompute.model.registry import NODEIMAGES, NODEPOOLS
from pincompute.model.wellknown import RESOLVED_IMAGE_ANNOTATION, SYSTEM_NAMESPACE
from pincompute.runtime.controller import Controller
from pincompute.runtime.events import EventRecorder
from pincompute.runtime.informer import FuncEventHandler, SharedInformer
from pincompute.runtime.logging import get_logger
from pincompute.runtime.manager import Manager
from pincompute.runtime.reconciler import Request, Result

from .imagecatalog import descendants, resolve
from .members import Members

_log = get_logger(__name__)


def pool_image(pool: Mapping[str, Any]) -> str:
    return str((pool.get("spec") or {}).get("nodeImage") or "")


class NodeImageReconciler:
    def __init__(self, *, host: KubeClient, images: SharedInformer, members: Members,
                 recorder: EventRecorder, retry: float = 2.0) -> None:
        self.host = host
        self.images = images
        self.members = members
        self.recorder = recorder
        self.retry = retry

    def catalog(self) -> dict[str, dict[str, Any]]:
        return {objects.name_of(i): i.get("spec") or {} for i in self.images.list()
                if not objects.is_deleting(i)}

    async def reconcile(self, request: Request) -> Result | None:
        image = self.images.get(request.name)
        if image is None or objects.is_deleting(image):
            return None
        resolution = resolve(request.name, self.catalog())
        pools = 0
        unreachable = False
        for member in list(self.members):
            try:
                informer = member.informer(NODEPOOLS)
            except LookupError:
                unreachable = True
                continue
            for pool in informer.list():
                if pool_image(pool) != request.name or objects.is_deleting(pool):
                    continue
                pools += 1
                if resolution.resolved is not None:
                    await self._annotate(member.client, pool, resolution.resolved)
        status: dict[str, Any] = {"phase": resolution.phase, "ancestors": resolution.ancestors,
                                  "pools": pools,
                                  "observedGeneration": objects.meta(image).get("generation")}
        if resolution.message:
            status["message"] = resolution.message
        if resolution.resolved is not None:
            status["resolved"] = resolution.resolved
        old = image.get("status") or {}
        if {k: v for k, v in old.items() if k != "conditions"} != status:
            if resolution.phase == "Invalid" and old.get("phase") != "Invalid":
                self.recorder.record(image, "Warning", "InvalidImage", resolution.message)
            updated = objects.deepcopy(image)
            updated["status"] = status
            with contextlib.suppress(NotFound):
                await self.host.update_status(NODEIMAGES, updated)
        return Result(requeue_after=self.retry) if unreachable else None

    async def _annotate(self, client: KubeClient, pool: Mapping[str, Any],
                        resolved: Mapping[str, Any]) -> None:
        value = json.dumps(resolved, sort_keys=True, separators=(",", ":"))
        if (objects.meta(pool).get("annotations") or {}).get(RESOLVED_IMAGE_ANNOTATION) == value:
            return
        with contextlib.suppress(NotFound, Conflict):
            await client.patch(NODEPOOLS, objects.name_of(pool), {
                "metadata": {"annotations": {RESOLVED_IMAGE_ANNOTATION: value}}})
        _log.info("pool %s: image %s resolved", objects.name_of(pool), resolved.get("name"))


def add_node_image_controller(manager: Manager, *, host: KubeClient, clusters: Members,
                              recorder: EventRecorder | None = None,
                              name: str = "nodeimages",
                              events_namespace: str = SYSTEM_NAMESPACE) -> Controller:
    images = manager.informer(host, NODEIMAGES)
    reconciler = NodeImageReconciler(
        host=host, images=images, members=clusters,
        recorder=recorder or EventRecorder(host, component="nodeimage-controller",
                                           host="pincompute",
                                           cluster_namespace=events_namespace))
    controller = manager.controller(name, reconciler)
    controller.for_(images)

    def affected(image: dict[str, Any]) -> list[Request]:
        return [Request("", n) for n in descendants(objects.name_of(image),
                                                    reconciler.catalog())]

    controller.watches(images, affected)

    def pool_changed(pool: dict[str, Any]) -> None:
        if pool_image(pool):
            controller.enqueue(Request("", pool_image(pool)))

    def handler_for(_member: str) -> FuncEventHandler:
        return FuncEventHandler(add=pool_changed, update=lambda _old, new: pool_changed(new))

    clusters.watch(NODEPOOLS, handler_for)

    def member_added(_member: Any) -> None:
        for image in images.list():
            controller.enqueue(Request("", objects.name_of(image)))

    clusters.subscribe(on_added=member_added)
    return controller


__all__ = ["NodeImageReconciler", "add_node_image_controller", "pool_image"]
