"""Every REST API of DESIGN §10 as a :class:`~.transport.Call` builder (no I/O).

One function per API; both clients call these and send the result, so a path is
spelled in one place.  Paths: ``/api/v1/projects/{project}/{plural}`` for
workloads, ``/api/v1/{segment}`` for platform kinds, ``/api/v1/clusters/{c}/nodes``
for nodes (see :mod:`.kinds`).  Names are percent-encoded by httpx; they are DNS
names anyway.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import httpx

from .errors import PinComputeError
from .kinds import KindRef, resolve_kind
from .transport import Call, parse_json

API = "/api/v1"


class MissingScope(PinComputeError, ValueError):
    """A project-scoped call without a project, or a node call without a cluster."""


@dataclass(frozen=True, slots=True)
class ObjectList:
    """One page of a list: its objects, the list's resourceVersion, the next page's token."""

    items: list[dict[str, Any]]
    resource_version: str = ""
    continue_: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def _seg(value: str) -> str:
    return quote(value, safe="")


def collection(ref: KindRef, *, project: str | None, cluster: str | None = None
               ) -> tuple[str, str]:
    """The (path, route template) of a kind's collection."""
    if ref.scope == "project":
        if not project:
            raise MissingScope(f"{ref.plural} belong to a project: pass project= (CLI: "
                               "--project/-p, PINCOMPUTE_PROJECT or the config's project)")
        return (f"{API}/projects/{_seg(project)}/{ref.segment}",
                f"{API}/projects/{{project}}/{ref.segment}")
    if ref.scope == "cluster":
        if not cluster and ref.kind == "NodePool":  # listed over every member cluster
            return f"{API}/{ref.segment}", f"{API}/{ref.segment}"
        if not cluster:
            raise MissingScope(f"{ref.plural} belong to a member cluster: pass cluster=")
        return (f"{API}/clusters/{_seg(cluster)}/{ref.segment}",
                f"{API}/clusters/{{cluster}}/{ref.segment}")
    return f"{API}/{ref.segment}", f"{API}/{ref.segment}"


def member(ref: KindRef, name: str, *, project: str | None, cluster: str | None = None,
           sub: str = "") -> tuple[str, str]:
    path, route = collection(ref, project=project, cluster=cluster)
    tail = f"/{sub}" if sub else ""
    return f"{path}/{_seg(name)}{tail}", f"{route}/{{name}}{tail}"


def _object(response: httpx.Response) -> dict[str, Any]:
    body = parse_json(response)
    return body if isinstance(body, dict) else {}


def _items(response: httpx.Response) -> list[dict[str, Any]]:
    body = parse_json(response)
    if isinstance(body, dict):
        items = body.get("items")
        return list(items) if isinstance(items, list) else []
    return list(body) if isinstance(body, list) else []


def _object_list(response: httpx.Response) -> ObjectList:
    body = parse_json(response) or {}
    md = body.get("metadata") or {}
    extra = {k: v for k, v in body.items() if k not in ("items", "metadata", "kind",
                                                        "apiVersion")}
    return ObjectList(items=list(body.get("items") or []),
                      resource_version=str(md.get("resourceVersion") or ""),
                      continue_=md.get("continue") or None, extra=extra)


def _nothing(_response: httpx.Response) -> None:
    return None


# -- objects ------------------------------------------------------------------------------------

def get(ref: KindRef, name: str, *, project: str | None, cluster: str | None = None
        ) -> Call[dict[str, Any]]:
    path, route = member(ref, name, project=project, cluster=cluster)
    return Call("GET", path, route, _object)


def list_(ref: KindRef, *, project: str | None, cluster: str | None = None,
          label_selector: str | None = None, limit: int | None = None,
          continue_: str | None = None) -> Call[ObjectList]:
    path, route = collection(ref, project=project, cluster=cluster)
    return Call("GET", path, route, _object_list, params={
        "labelSelector": label_selector, "limit": limit, "continue": continue_})


def watch(ref: KindRef, *, project: str | None, cluster: str | None = None,
          label_selector: str | None = None, resource_version: str | None = None,
          timeout_seconds: int | None = None) -> Call[None]:
    """The watch stream of a collection (newline-delimited JSON events)."""
    path, route = collection(ref, project=project, cluster=cluster)
    return Call("GET", path, route, _nothing, params={
        "watch": True, "labelSelector": label_selector, "resourceVersion": resource_version,
        "timeoutSeconds": timeout_seconds})


def ref_of(obj: Mapping[str, Any]) -> tuple[KindRef, str]:
    kind = obj.get("kind")
    name = (obj.get("metadata") or {}).get("name")
    if not isinstance(kind, str) or not kind:
        raise PinComputeError("the object has no kind")
    if not isinstance(name, str) or not name:
        raise PinComputeError(f"the {kind} has no metadata.name")
    return resolve_kind(kind), name


def object_project(obj: Mapping[str, Any], project: str | None) -> str | None:
    """The project an object goes to: its ``metadata.namespace``, else ``project``."""
    ns = (obj.get("metadata") or {}).get("namespace")
    return ns if isinstance(ns, str) and ns else project


def create(obj: Mapping[str, Any], *, project: str | None, cluster: str | None = None
           ) -> Call[dict[str, Any]]:
    ref, _ = ref_of(obj)
    path, route = collection(ref, project=object_project(obj, project), cluster=cluster)
    return Call("POST", path, route, _object, json=dict(obj))


def update(obj: Mapping[str, Any], *, project: str | None, cluster: str | None = None
           ) -> Call[dict[str, Any]]:
    ref, name = ref_of(obj)
    path, route = member(ref, name, project=object_project(obj, project), cluster=cluster)
    return Call("PUT", path, route, _object, json=dict(obj))


def patch(ref: KindRef, name: str, body: Mapping[str, Any], *, project: str | None,
          cluster: str | None = None) -> Call[dict[str, Any]]:
    """An RFC 7386 merge patch."""
    path, route = member(ref, name, project=project, cluster=cluster)
    return Call("PATCH", path, route, _object, json=dict(body),
                headers={"content-type": "application/merge-patch+json"})


def delete(ref: KindRef, name: str, *, project: str | None, cluster: str | None = None
           ) -> Call[dict[str, Any]]:
    path, route = member(ref, name, project=project, cluster=cluster)
    return Call("DELETE", path, route, _object)


# -- operations ---------------------------------------------------------------------------------

def operate(ref: KindRef, name: str, operation: str, body: Mapping[str, Any] | None = None,
            *, project: str | None) -> Call[dict[str, Any]]:
    """``POST .../{plural}/{name}/{operation}`` (pause, scale, restart-container, ...)."""
    if operation not in ref.operations:
        have = ", ".join(ref.operations) or "none"
        raise PinComputeError(f"{ref.kind} has no operation {operation!r} (it has: {have})")
    path, route = member(ref, name, project=project, sub=operation)
    return Call("POST", path, route, _object, json=dict(body or {}))


# -- debugging and insight ----------------------------------------------------------------------

def pods(ref: KindRef, name: str, *, project: str | None) -> Call[list[dict[str, Any]]]:
    path, route = member(ref, name, project=project, sub="pods")
    return Call("GET", path, route, _items)


def _pod_path(pod: str, project: str | None, sub: str) -> tuple[str, str]:
    if not project:
        raise MissingScope("pods belong to a project: pass project=")
    return (f"{API}/projects/{_seg(project)}/pods/{_seg(pod)}/{sub}",
            f"{API}/projects/{{project}}/pods/{{pod}}/{sub}")


def logs(pod: str, *, project: str | None, container: str | None = None,
         follow: bool = False, tail_lines: int | None = None,
         since_seconds: int | None = None, previous: bool = False) -> Call[str]:
    path, route = _pod_path(pod, project, "logs")
    return Call("GET", path, route, lambda r: r.text, params={
        "container": container, "follow": follow, "tailLines": tail_lines,
        "sinceSeconds": since_seconds, "previous": previous})


def exec_path(pod: str, *, project: str | None) -> tuple[str, str]:
    return _pod_path(pod, project, "exec")


def events(*, project: str | None, ref: KindRef | None = None, name: str | None = None,
           type_: str | None = None, reason: str | None = None, since: str | None = None,
           since_seconds: int | None = None, limit: int | None = None
           ) -> Call[list[dict[str, Any]]]:
    if ref is not None and name:
        path, route = member(ref, name, project=project, sub="events")
    else:
        if not project:
            raise MissingScope("events belong to a project: pass project=")
        path, route = f"{API}/projects/{_seg(project)}/events", f"{API}/projects/{{project}}/events"
    return Call("GET", path, route, _items, params={
        "type": type_, "reason": reason, "since": since, "sinceSeconds": since_seconds,
        "limit": limit})


def history(ref: KindRef, name: str, *, project: str | None) -> Call[list[dict[str, Any]]]:
    path, route = member(ref, name, project=project, sub="history")
    return Call("GET", path, route, _items)


def revisions(ref: KindRef, name: str, *, project: str | None) -> Call[list[dict[str, Any]]]:
    """A PinApp's revisions, oldest first (what ``rollback`` can go back to)."""
    if "rollback" not in ref.operations:
        raise PinComputeError(f"{ref.kind} has no revisions (only a PinApp has)")
    path, route = member(ref, name, project=project, sub="revisions")
    return Call("GET", path, route, _items)


# -- usage (``top``) ----------------------------------------------------------------------------

def top_pods(project: str, *, app: str | None = None) -> Call[list[dict[str, Any]]]:
    """Each pod's CPU (millicores) and memory (bytes) use and requests, with its samples."""
    return Call("GET", f"{API}/projects/{_seg(project)}/top/pods",
                f"{API}/projects/{{project}}/top/pods", _items, params={"app": app})


def top_apps(project: str) -> Call[list[dict[str, Any]]]:
    """Each app's pods' use and requests, summed."""
    return Call("GET", f"{API}/projects/{_seg(project)}/top/apps",
                f"{API}/projects/{{project}}/top/apps", _items)


def top_nodes(cluster: str) -> Call[list[dict[str, Any]]]:
    """What each node of a member cluster's pods use together."""
    return Call("GET", f"{API}/clusters/{_seg(cluster)}/top/nodes",
                f"{API}/clusters/{{cluster}}/top/nodes", _items)


# -- platform -----------------------------------------------------------------------------------

def usage(project: str) -> Call[dict[str, Any]]:
    return Call("GET", f"{API}/projects/{_seg(project)}/usage",
                f"{API}/projects/{{project}}/usage", _object)


def members(project: str) -> Call[list[dict[str, Any]]]:
    return Call("GET", f"{API}/projects/{_seg(project)}/members",
                f"{API}/projects/{{project}}/members", _items)


def add_member(project: str, user: str, role: str) -> Call[list[dict[str, Any]]]:
    return Call("POST", f"{API}/projects/{_seg(project)}/members",
                f"{API}/projects/{{project}}/members", _items,
                json={"user": user, "role": role}, idempotent=True)


def remove_member(project: str, user: str) -> Call[list[dict[str, Any]]]:
    return Call("DELETE", f"{API}/projects/{_seg(project)}/members/{_seg(user)}",
                f"{API}/projects/{{project}}/members/{{user}}", _items)


def quota(project: str) -> Call[dict[str, Any]]:
    return Call("GET", f"{API}/projects/{_seg(project)}/quota",
                f"{API}/projects/{{project}}/quota", _object)


def set_quota(project: str, body: Mapping[str, Any]) -> Call[dict[str, Any]]:
    return Call("PUT", f"{API}/projects/{_seg(project)}/quota",
                f"{API}/projects/{{project}}/quota", _object, json=dict(body))


def node_operation(cluster: str, node: str, operation: str, *,
                   timeout_seconds: int | None = None) -> Call[dict[str, Any]]:
    path, route = member(resolve_kind("node"), node, project=None, cluster=cluster,
                         sub=operation)
    return Call("POST", path, route, _object, json={},
                params={"timeoutSeconds": timeout_seconds}, idempotent=True)


def add_cluster(zone: str, *, name: str | None = None, nodes: int | None = None
                ) -> Call[dict[str, Any]]:
    """An embedded member cluster in ``zone`` (a MemberCluster with an Embedded connection)."""
    body: dict[str, Any] = {"apiVersion": "pincompute.io/v1alpha1", "kind": "MemberCluster",
                            "metadata": {"name": name} if name else {}, "spec": {"zone": zone}}
    return Call("POST", f"{API}/clusters", f"{API}/clusters", _object, json=body,
                params={"nodes": nodes})


def remove_cluster(name: str, *, drain: bool = True, timeout_seconds: int | None = None
                   ) -> Call[dict[str, Any]]:
    return Call("DELETE", f"{API}/clusters/{_seg(name)}", f"{API}/clusters/{{name}}", _object,
                params={"drain": "true" if drain else "false",
                        "timeoutSeconds": timeout_seconds})


def audit(*, user: str | None = None, project: str | None = None,
          resource: str | None = None, verb: str | None = None, result: str | None = None,
          since: str | None = None, limit: int | None = None) -> Call[list[dict[str, Any]]]:
    return Call("GET", f"{API}/audit", f"{API}/audit", _items, params={
        "user": user, "project": project, "resource": resource, "verb": verb,
        "result": result, "since": since, "limit": limit})


def create_token(user: str, *, project: str | None = None, role: str | None = None,
                 admin: bool = False, expires_in_seconds: int | None = None,
                 description: str = "") -> Call[dict[str, Any]]:
    body: dict[str, Any] = {"user": user, "admin": admin}
    if project:
        body["project"] = project
    if role:
        body["role"] = role
    if description:
        body["description"] = description
    if expires_in_seconds is not None:
        body["expiresInSeconds"] = expires_in_seconds
    return Call("POST", f"{API}/tokens", f"{API}/tokens", _object, json=body)


def list_tokens() -> Call[list[dict[str, Any]]]:
    return Call("GET", f"{API}/tokens", f"{API}/tokens", _items)


def revoke_token(token_id: str) -> Call[dict[str, Any]]:
    return Call("DELETE", f"{API}/tokens/{_seg(token_id)}", f"{API}/tokens/{{id}}", _object)


def whoami() -> Call[dict[str, Any]]:
    """The caller's own token record: user, admin, project scope and role."""
    return Call("GET", f"{API}/tokens/self", f"{API}/tokens/{{id}}", _object)


def health(which: str) -> Call[str]:
    return Call("GET", f"/{which}", f"/{which}", lambda r: r.text)
