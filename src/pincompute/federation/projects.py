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
  ``Ready`` condition summarises them;
* on real clusters (``workload_access``), each of its namespaces gets the RoleBinding
  ``pincompute-controller``, granting the controllers' ServiceAccount the cluster's
  workload ClusterRole (pods, configmaps, events) there and only there: RBAC grants
  the controllers nothing in a namespace PinCompute does not own (see
  :mod:`pincompute.install`).  RBAC cannot tell our namespaces from others, so the
  checks are here: a binding is made, and a namespace deleted, only when the
  namespace carries the project's label.

It is level-triggered: each reconcile looks at every cluster, so a namespace
deleted by hand, a member cluster that was down, or a crash mid-way are all
repaired by the next pass.  Namespace events in any cluster map back to their
Project through the label.

The member clusters are the live :class:`~.clusterset.ClusterSet`: a member
registered while the federation runs gets every project's namespace as soon as
it is ready (the set's ``on_added`` enqueues every project); a registered member
that cannot be reached now is reported ``Disconnected`` (its namespaces cannot be
confirmed, so a deleted project waits for it); a removed member is let go — no
longer listed, never touched, and a reconcile that was using it when it went skips
it instead of failing.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable
from typing import Any, TypeVar

from pincompute.kube import objects
from pincompute.kube.errors import AlreadyExists, Conflict, Forbidden, NotFound
from pincompute.kube.protocol import KubeClient
from pincompute.kube.resource import NAMESPACES, ROLE_BINDINGS
from pincompute.model.platform import ProjectStatus
from pincompute.model.registry import PROJECTS
from pincompute.model.views import status_view
from pincompute.model.wellknown import (
    CONTROLLER_SERVICE_ACCOUNT,
    HOST_WORKLOAD_ROLE,
    MEMBER_WORKLOAD_ROLE,
    PROJECT_LABEL,
    SYSTEM_NAMESPACE,
    WORKLOAD_ROLEBINDING,
)
from pincompute.model.wellknown import PROJECT_NAMESPACES_FINALIZER as FINALIZER
from pincompute.runtime.controller import Controller
from pincompute.runtime.informer import FuncEventHandler, ResourceEventHandler, SharedInformer
from pincompute.runtime.manager import Manager
from pincompute.runtime.reconciler import Request, Result

from .clusterset import ClusterSet
from .member import MemberHandle

HOST = "host"
DISCONNECTED = "Disconnected"
FORBIDDEN = "Forbidden"
"""A cluster refused the namespace's RoleBinding (an install older than its RBAC)."""
#: How long a reconcile waits, after a (re)start, for the cluster set's first connections.
SYNC_WAIT = 60.0

T = TypeVar("T")


class ProjectReconciler:
    def __init__(self, *, host: KubeClient, clusters: ClusterSet, projects: SharedInformer,
                 host_namespaces: SharedInformer, sync_wait: float = SYNC_WAIT,
                 workload_access: bool = False) -> None:
        self.host = host
        self.workload_access = workload_access
        self.clusters = clusters
        self.projects = projects
        self.host_namespaces = host_namespaces
        self.sync_wait = sync_wait

    async def reconcile(self, request: Request) -> Result | None:
        if not self.clusters.synced:
            # After a restart, members are still connecting: do not report them
            # Disconnected (and flip every project's Ready) for a few seconds.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.sync_wait):
                    await self.clusters.wait_synced()
        project = self.projects.get(request.name)
        if project is None:
            return None
        if objects.is_deleting(project):
            return await self._finalize(project)
        if not objects.has_finalizer(project, FINALIZER):
            md = objects.meta(project)
            patch = {"metadata": {"finalizers": [*(md.get("finalizers") or ()), FINALIZER],
                                  "resourceVersion": md["resourceVersion"]}}
            with contextlib.suppress(Conflict):  # see _write_status
                await self.host.patch(PROJECTS, request.name, patch)
            return None  # the update brings the project back with the finalizer
        name = request.name
        states = {HOST: await self._ensure_namespace(self.host, self.host_namespaces, name,
                                                     workload_role=HOST_WORKLOAD_ROLE)}
        for cluster in self.clusters.names():
            member = self.clusters.get(cluster)
            if member is None:
                states[cluster] = DISCONNECTED
                continue
            state = await self._in_member(member, self._ensure_namespace(
                member.client, _namespaces(member), name, workload_role=MEMBER_WORKLOAD_ROLE))
            if state is not None:
                states[cluster] = state
        await self._write_status(project, states)
        return None

    async def _in_member(self, member: MemberHandle, work: Awaitable[T]) -> T | None:
        """Run ``work`` against a member; ``None`` if the member was let go meanwhile."""
        try:
            result: T = await work
        except Exception:
            if self.clusters.is_current(member):
                raise
            return None  # removed or rebuilt under us: not an error; on_added brings us back
        return result

    async def _ensure_namespace(self, client: KubeClient, namespaces: SharedInformer,
                                name: str, *, workload_role: str) -> str:
        ns = namespaces.get(name)
        if ns is None:
            try:
                ns = await client.create(NAMESPACES, {
                    "metadata": {"name": name, "labels": {PROJECT_LABEL: name}}})
            except AlreadyExists:
                ns = await client.get(NAMESPACES, name)
        if (objects.meta(ns).get("labels") or {}).get(PROJECT_LABEL) != name:
            return "Conflict"  # not ours: no binding, no deletion, ever
        if objects.is_deleting(ns):
            return "Terminating"
        if self.workload_access:
            try:
                await ensure_workload_binding(client, name, workload_role=workload_role)
            except Forbidden:
                return FORBIDDEN
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
            # A Conflict means our cache is behind the server; the newer version's event
            # is on its way and brings the key back, so it is not an error.  A project
            # deleted meanwhile needs no status.
            with contextlib.suppress(NotFound, Conflict):
                await self.host.update_status(PROJECTS, updated)

    async def _finalize(self, project: dict[str, Any]) -> Result | None:
        name = objects.name_of(project)
        if status_view(ProjectStatus, project).phase != "Terminating":
            updated = objects.deepcopy(project)
            updated.setdefault("status", {})["phase"] = "Terminating"
            with contextlib.suppress(Conflict):  # see _write_status
                await self.host.update_status(PROJECTS, updated)
            return None  # the status write brings the project back
        remaining = [HOST] if await _delete_namespace(self.host, self.host_namespaces,
                                                      name) else []
        for cluster in self.clusters.names():
            member = self.clusters.get(cluster)
            if member is None:
                # Registered but unreachable: its namespace cannot be confirmed gone.
                # (Deleting the MemberCluster lets it go.)
                remaining.append(cluster)
            elif await self._in_member(member, _delete_namespace(
                    member.client, _namespaces(member), name)):
                remaining.append(cluster)
        if remaining:
            # Namespace deletion events bring us back; the requeue is a safety net.
            return Result(requeue_after=5.0)
        finalizers = [f for f in objects.meta(project).get("finalizers") or () if f != FINALIZER]
        with contextlib.suppress(NotFound, Conflict):  # see _write_status
            await self.host.patch(PROJECTS, name, {"metadata": {
                "finalizers": finalizers or None,
                "resourceVersion": objects.meta(project)["resourceVersion"]}})
        return None


async def _delete_namespace(client: KubeClient, namespaces: SharedInformer, name: str) -> bool:
    """Delete our namespace ``name`` if it is there; whether it is still there."""
    ns = namespaces.get(name)
    if ns is None:
        return False
    if (objects.meta(ns).get("labels") or {}).get(PROJECT_LABEL) != name:
        return False  # not ours: never delete a namespace we did not create
    if not objects.is_deleting(ns):
        try:
            await client.delete(NAMESPACES, name)
        except NotFound:
            return False
    return True


def workload_binding(namespace: str, *, workload_role: str) -> dict[str, Any]:
    """The RoleBinding granting the controllers ``workload_role`` in ``namespace``."""
    return {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
            "metadata": {"name": WORKLOAD_ROLEBINDING, "namespace": namespace,
                         "labels": {PROJECT_LABEL: namespace}},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                        "name": workload_role},
            "subjects": [{"kind": "ServiceAccount", "name": CONTROLLER_SERVICE_ACCOUNT,
                          "namespace": SYSTEM_NAMESPACE}]}


def _grants(binding: dict[str, Any]) -> tuple[object, ...]:
    subjects = [(s.get("kind"), s.get("name"), s.get("namespace"))
                for s in binding.get("subjects") or ()]
    ref = binding.get("roleRef") or {}
    return (ref.get("kind"), ref.get("name"), sorted(subjects, key=str))


async def ensure_workload_binding(client: KubeClient, namespace: str, *,
                                  workload_role: str) -> None:
    """Make the namespace's workload RoleBinding exist and grant exactly what it should.

    The caller has checked the namespace is a project's: this is the only place the
    controllers extend their own rights, and they do so only there.  One GET when it
    is right (the steady state); a binding edited by hand is replaced (its roleRef is
    immutable) at the project's next reconcile.
    """
    want = workload_binding(namespace, workload_role=workload_role)
    try:
        have = await client.get(ROLE_BINDINGS, WORKLOAD_ROLEBINDING, namespace=namespace)
    except NotFound:
        have = None
    if have is not None:
        if _grants(have) == _grants(want):
            return
        with contextlib.suppress(NotFound):
            await client.delete(ROLE_BINDINGS, WORKLOAD_ROLEBINDING, namespace=namespace)
    with contextlib.suppress(AlreadyExists):  # a racing replica made it; the next pass checks
        await client.create(ROLE_BINDINGS, want, namespace=namespace)


def _namespaces(member: MemberHandle) -> SharedInformer:
    return member.informer(NAMESPACES, label_selector=PROJECT_LABEL)


def _to_project(ns: dict[str, Any]) -> list[Request]:
    label = (objects.meta(ns).get("labels") or {}).get(PROJECT_LABEL)
    return [Request("", label)] if label else []


def add_project_controller(manager: Manager, *, host: KubeClient, clusters: ClusterSet,
                           name: str = "projects", workers: int = 2,
                           workload_access: bool = False) -> Controller:
    """Wire the project controller into ``manager`` for a host and its cluster set.

    ``workload_access``: give each project namespace the controllers' workload
    RoleBinding (real clusters; the embedded store has no authorization).
    """
    projects = manager.informer(host, PROJECTS)
    # The label-filtered informers do not see foreign namespaces of the same name,
    # which _ensure_namespace then meets as AlreadyExists and reads directly.
    host_namespaces = manager.informer(host, NAMESPACES, label_selector=PROJECT_LABEL)
    reconciler = ProjectReconciler(host=host, clusters=clusters, projects=projects,
                                   host_namespaces=host_namespaces,
                                   workload_access=workload_access)
    controller = manager.controller(name, reconciler, workers=workers)
    controller.for_(projects)
    controller.watches(host_namespaces, _to_project)

    def enqueue(ns: dict[str, Any]) -> None:
        for request in _to_project(ns):
            controller.enqueue(request)

    def moved(old: dict[str, Any], new: dict[str, Any]) -> None:
        enqueue(old)
        enqueue(new)

    def handler_for(member: str) -> ResourceEventHandler:
        return FuncEventHandler(add=enqueue, update=moved, delete=enqueue)

    def every_project(*_: object) -> None:
        for key in projects.keys():
            controller.enqueue(Request.from_key(key))

    def state_changed(member: str) -> None:
        # Ready and let-go are on_added/on_removed; here: a member that became
        # unreachable (report it Disconnected) or was deregistered before it ever was.
        state = clusters.state(member)
        if state is None or (state.phase == "Failed" and state.attempts == 1):
            every_project()

    clusters.watch(NAMESPACES, handler_for, label_selector=PROJECT_LABEL)
    # A member that came owes every project a namespace; one that went leaves statuses.
    clusters.subscribe(on_added=every_project, on_removed=every_project,
                       on_state=state_changed)
    return controller
