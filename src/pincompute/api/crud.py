"""Create, read, update, patch, delete and watch a host kind: what every CRUD route does.

Theory of operation
-------------------
Routes for workloads (namespaced by project) and for platform kinds (cluster-scoped) differ
only in who may call them; the work is the same and lives here:

- **reads** — ``get`` and ``list`` from the host informer through the read cache
  (:mod:`.readcache`); ``watch`` from the informer, or the store when resuming
  (:mod:`.watch`);
- **writes** — to the host client.  The object is checked first: ``apiVersion``/``kind``
  filled in or matching the route's kind, ``metadata.namespace`` absent or the project's,
  ``metadata.name`` matching the path on update; then validated by the kind's model against
  the cached old object, so a bad object is a 422 naming every bad field on both backends
  (the store validates again; that costs a few microseconds, not a round trip).  Conflicts,
  missing objects and the store's own refusals pass through as their Status.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fastapi import Request
from starlette.responses import Response, StreamingResponse

from pincompute.kube.errors import BadRequest, Cause, invalid
from pincompute.kube.patch import check_depth, merge_patch
from pincompute.kube.protocol import KubeClient
from pincompute.kube.resource import Resource
from pincompute.kube.selectors import parse_label_selector
from pincompute.model import registry
from pincompute.runtime.informer import SharedInformer

from .body import JSON, json_response, read_object
from .context import ApiContext
from .simplify import simplify
from .watch import informer_stream, store_stream

NDJSON = "application/x-ndjson"
MAX_LIMIT = 10_000


def _check_envelope(resource: Resource, obj: dict[str, Any], *, namespace: str | None,
                    name: str | None) -> None:
    causes: list[Cause] = []
    api_version = obj.setdefault("apiVersion", resource.api_version)
    kind = obj.setdefault("kind", resource.kind)
    if api_version != resource.api_version:
        causes.append(Cause("apiVersion", f'Unsupported value: "{api_version}": this route '
                            f'takes "{resource.api_version}"', "FieldValueNotSupported"))
    if kind != resource.kind:
        causes.append(Cause("kind", f'Unsupported value: "{kind}": this route takes '
                            f'"{resource.kind}"', "FieldValueNotSupported"))
    md = obj.setdefault("metadata", {})
    if not isinstance(md, dict):
        raise invalid(resource.kind, "", [Cause("metadata", "must be an object",
                                                "FieldValueTypeInvalid")])
    ns = md.get("namespace")
    if namespace is not None and ns not in (None, "", namespace):
        causes.append(Cause("metadata.namespace", f'Invalid value: "{ns}": does not match the '
                            f'project "{namespace}" of the request'))
    if namespace is None and ns:
        causes.append(Cause("metadata.namespace", f"Invalid value: {ns!r}: "
                            f"{resource.kind} is not namespaced", "FieldValueForbidden"))
    if name is not None and md.get("name") not in (None, name):
        causes.append(Cause("metadata.name", f'Invalid value: "{md.get("name")}": does not '
                            f'match the name "{name}" in the path'))
    if name is None and not md.get("name") and not md.get("generateName"):
        causes.append(Cause("metadata.name", "Required value: name or generateName is "
                            "required", "FieldValueRequired"))
    if causes:
        raise invalid(resource.kind, str(md.get("name") or name or ""), causes)
    if namespace is not None:
        md["namespace"] = namespace
    if name is not None:
        md["name"] = name


def present(resource: Resource, obj: dict[str, Any]) -> dict[str, Any]:
    """An object as responses show it: simplified, with its apiVersion and kind."""
    out = simplify(obj)
    if "kind" not in out:
        out = {"apiVersion": resource.api_version, "kind": resource.kind, **out}
    return out


def validate(resource: Resource, obj: dict[str, Any], old: dict[str, Any] | None) -> None:
    """Raise Invalid (422, every bad field named) unless the object is valid for its kind."""
    if resource.kind in registry.KINDS:
        registry.validate(obj, old)


@dataclass(frozen=True, slots=True)
class Target:
    """Where a kind's objects are: a cluster's client and its informer of the kind."""

    client: KubeClient
    informer: SharedInformer


def host_target(ctx: ApiContext, resource: Resource) -> Target:
    return Target(ctx.host, ctx.host_informer(resource))


def _old(target: Target, name: str, namespace: str | None) -> dict[str, Any] | None:
    return target.informer.get(name, namespace=namespace)


async def create(ctx: ApiContext, request: Request, resource: Resource, *,
                 namespace: str | None, target: Target | None = None) -> Response:
    created = await create_object(ctx, request, resource, await read_object(request),
                                  namespace=namespace, target=target)
    return json_response(present(resource, created), status_code=201)


async def create_object(ctx: ApiContext, request: Request, resource: Resource,
                        obj: dict[str, Any], *, namespace: str | None,
                        target: Target | None = None) -> dict[str, Any]:
    """Check, validate and create ``obj``; returns the stored object (not simplified)."""
    target = target or host_target(ctx, resource)
    _check_envelope(resource, obj, namespace=namespace, name=None)
    request.state.audit_name = obj["metadata"].get("name") or obj["metadata"].get(
        "generateName")
    validate(resource, obj, None)
    created = await target.client.create(resource, obj, namespace=namespace)
    request.state.audit_name = created["metadata"]["name"]
    return created


async def replace(ctx: ApiContext, request: Request, resource: Resource, name: str, *,
                  namespace: str | None, target: Target | None = None) -> Response:
    target = target or host_target(ctx, resource)
    obj = await read_object(request)
    _check_envelope(resource, obj, namespace=namespace, name=name)
    old = _old(target, name, namespace)
    validate(resource, obj, old)
    updated = await target.client.update(resource, obj)
    return json_response(present(resource, updated))


async def patch(ctx: ApiContext, request: Request, resource: Resource, name: str, *,
                namespace: str | None, target: Target | None = None) -> Response:
    target = target or host_target(ctx, resource)
    body = await read_object(request)
    check_depth(body)
    for key in ("apiVersion", "kind"):
        if key in body and body[key] != getattr(resource, "api_version" if key == "apiVersion"
                                                else "kind"):
            raise BadRequest(f"{key}: a patch may not change it")
    md = body.get("metadata")
    if isinstance(md, dict):
        if md.get("name") not in (None, name):
            raise BadRequest("metadata.name: a patch may not rename an object")
        if "namespace" in md and md["namespace"] != namespace:
            raise BadRequest("metadata.namespace: a patch may not move an object")
    old = _old(target, name, namespace)
    if old is None:
        old = await target.client.get(resource, name, namespace=namespace)
    validate(resource, merge_patch(old, body), old)
    patched = await target.client.patch(resource, name, body, namespace=namespace)
    return json_response(present(resource, patched))


async def delete(ctx: ApiContext, request: Request, resource: Resource, name: str, *,
                 namespace: str | None, target: Target | None = None) -> Response:
    target = target or host_target(ctx, resource)
    gone = await target.client.delete(resource, name, namespace=namespace)
    return json_response(present(resource, gone))


def get(ctx: ApiContext, resource: Resource, name: str, *, namespace: str | None,
        target: Target | None = None) -> Response:
    inf = (target or host_target(ctx, resource)).informer
    return Response(ctx.read_cache.get(inf, name, namespace=namespace), media_type=JSON)


def list_or_watch(ctx: ApiContext, resource: Resource, *, namespace: str | None,
                  label_selector: str | None, limit: int | None, continue_token: str | None,
                  watch: bool, resource_version: str | None,
                  timeout_seconds: int | None) -> Response:
    inf = ctx.host_informer(resource)
    if watch:
        selector = parse_label_selector(label_selector)
        if resource_version and resource_version != "0":
            stream = store_stream(ctx.host, inf, namespace=namespace,
                                  label_selector=label_selector,
                                  resource_version=resource_version,
                                  timeout=timeout_seconds)
        else:
            stream = informer_stream(ctx.read_cache, inf, namespace=namespace,
                                     selector=selector, max_queue=ctx.settings.watch_queue,
                                     timeout=timeout_seconds,
                                     on_open=ctx.metrics.watches.inc)
        return StreamingResponse(stream, media_type=NDJSON)
    body = ctx.read_cache.list_page(inf, namespace=namespace, label_selector=label_selector,
                               limit=limit, continue_token=continue_token)
    return Response(body, media_type=JSON)
