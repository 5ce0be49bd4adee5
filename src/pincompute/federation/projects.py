"""Projects become namespaces, in the host and in every member cluster.

A Project is a tenant (DESIGN §4): its workloads live in a namespace of the same
name in every cluster of the region, so the same name means the same tenant
wherever a shard lands.  This controller keeps that true:

* for a live Project, each cluster has a Namespace named after it, labelled
  ``pincompute.io/project=<name>``; a namespace of that name that is *not* so
  labelled belongs to someone else, and the Project reports the conflict rather
  than adopting it;
* the Project carries the finalizer ``pincompute.io/namespaces``, so deleting it
  first deletes its namespaces everywhere (which deletes their contents) and only
  then lets the Project go;
* ``status`` records, per cluster, whether its namespace is ready, and a
  ``Ready`` condition summarises them.

It is level-triggered: each reconcile looks at every cluster, so a namespace
deleted by hand, a member cluster that was down, or a crash mid-way are all
repaired by the next pass.  Namespace events in any cluster map back to their
Project through the label.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from typing import Any

from pincompute.kube import objects
from pincompute.kube.errors import AlreadyExists, NotFound
from pincompute.kube.protocol import KubeClient
from pincompute.kube.resource import NAMESPACES
from pincompute.model.platform import ProjectStatus
from pincompute.model.registry import PROJECTS
from pincompute.model.views import status_view
from pincompute.model.wellknown import PROJECT_LABEL
from pincompute.model.wellknown import PROJECT_NAMESPACES_FINALIZER as FINALIZER
from pincompute.runtime.controller import Controller
from pincompute.runtime.informer import SharedInformer
from pincompute.runtime.manager import Manager
from pincompute.runtime.reconciler import Request, Result

HOST = "host"


class ProjectReconciler:
    def __init__(self, *, host: KubeClient, clusters: Mapping[str, KubeClient],
                 projects: SharedInformer, namespaces: Mapping[str, SharedInformer]) -> None:
        # ``clusters`` includes the host under the name "host".
        self.host = host
        self.clusters = clusters
        self.projects = projects
        self.namespaces = namespaces

    async def reconcile(self, request: Request) -> Result | None:
        project = self.projects.get(request.name)
        if project is None:
            return None
        if objects.is_deleting(project):
            return await self._finalize(project)
        if not objects.has_finalizer(project, FINALIZER):
            md = objects.meta(project)
            patch = {"metadata": {"finalizers": [*(md.get("finalizers") or ()), FINALIZER],
                                  "resourceVersion": md["resourceVersion"]}}
            await self.host.patch(PROJECTS, request.name, patch)
            return None  # the update brings the project back with the finalizer
        states: dict[str, str] = {}
        for cluster, client in self.clusters.items():
            states[cluster] = await self._ensure_namespace(cluster, client, request.name)
        await self._write_status(project, states)
        return None

    async def _ensure_namespace(self, cluster: str, client: KubeClient, name: str) -> str:
        ns = self.namespaces[cluster].get(name)
        if ns is None:
            try:
                ns = await client.create(NAMESPACES, {
                    "metadata": {"name": name, "labels": {PROJECT_LABEL: name}}})
            except AlreadyExists:
                ns = await client.get(NAMESPACES, name)
        if (objects.meta(ns).get("labels") or {}).get(PROJECT_LABEL) != name:
            return "Conflict"
        if objects.is_deleting(ns):
            return "Terminating"
        return "Active"

    async def _write_status(self, project: dict[str, Any], states: dict[str, str]) -> None:
        updated = objects.deepcopy(project)
        status = updated.setdefault("status", {})
        status["namespaces"] = [{"cluster": c, "phase": p} for c, p in sorted(states.items())]
        status["phase"] = "Active"
        bad = sorted(c for c, p in states.items() if p != "Active")
        if not bad:
            objects.set_condition(updated, "Ready", True, reason="NamespacesActive",
                                  message=f"namespace {objects.name_of(project)} is active in "
                                          f"{len(states)} clusters",
                                  observed_generation=objects.meta(project).get("generation"))
        else:
            conflict = [c for c in bad if states[c] == "Conflict"]
            reason = "NamespaceConflict" if conflict else "NamespacesPending"
            message = (f"namespace {objects.name_of(project)} exists without the label "
                       f"{PROJECT_LABEL}={objects.name_of(project)} in: {', '.join(conflict)}"
                       if conflict else f"namespaces not active in: {', '.join(bad)}")
            objects.set_condition(updated, "Ready", False, reason=reason, message=message,
                                  observed_generation=objects.meta(project).get("generation"))
        if updated.get("status") != project.get("status"):
            # A Conflict propagates: the key is retried with back-off against the fresher
            # cached object.  A project deleted meanwhile needs no status.
            with contextlib.suppress(NotFound):
                await self.host.update_status(PROJECTS, updated)

    async def _finalize(self, project: dict[str, Any]) -> Result | None:
        name = objects.name_of(project)
        if status_view(ProjectStatus, project).phase != "Terminating":
            updated = objects.deepcopy(project)
            updated.setdefault("status", {})["phase"] = "Terminating"
            await self.host.update_status(PROJECTS, updated)
            return None  # the status write brings the project back
        remaining = []
        for cluster, client in self.clusters.items():
            ns = self.namespaces[cluster].get(name)
            if ns is None:
                continue
            if (objects.meta(ns).get("labels") or {}).get(PROJECT_LABEL) != name:
                continue  # not ours: never delete a namespace we did not create
            remaining.append(cluster)
            if not objects.is_deleting(ns):
                try:
                    await client.delete(NAMESPACES, name)
                except NotFound:
                    remaining.pop()
        if remaining:
            # Namespace deletion events bring us back; the requeue is a safety net.
            return Result(requeue_after=5.0)
        finalizers = [f for f in objects.meta(project).get("finalizers") or () if f != FINALIZER]
        with contextlib.suppress(NotFound):
            await self.host.patch(PROJECTS, name, {"metadata": {
                "finalizers": finalizers or None,
                "resourceVersion": objects.meta(project)["resourceVersion"]}})
        return None


def add_project_controller(manager: Manager, *, host: KubeClient,
                           members: Mapping[str, KubeClient], name: str = "projects",
                           workers: int = 2) -> Controller:
    """Wire the project controller into ``manager`` for a host and its member clusters."""
    clusters: dict[str, KubeClient] = {HOST: host, **members}
    projects = manager.informer(host, PROJECTS)
    namespaces = {name: manager.informer(client, NAMESPACES, label_selector=PROJECT_LABEL)
                  for name, client in clusters.items()}
    # The label-filtered informers do not see foreign namespaces of the same name,
    # which _ensure_namespace then meets as AlreadyExists and reads directly.
    reconciler = ProjectReconciler(host=host, clusters=clusters, projects=projects,
                                   namespaces=namespaces)
    controller = manager.controller(name, reconciler, workers=workers)
    controller.for_(projects)

    def to_project(ns: dict[str, Any]) -> list[Request]:
        label = (objects.meta(ns).get("labels") or {}).get(PROJECT_LABEL)
        return [Request("", label)] if label else []

    for informer in namespaces.values():
        controller.watches(informer, to_project)
    return controller
