"""Workload CRUD: ``/api/v1/projects/{project}/{plural}`` and ``/{name}`` (DESIGN §10).

One set of routes per workload kind (pinpods, pinapps, pinscalers, pinjobs, pintrainingjobs,
pincronjobs), written with literal plurals rather than a ``{plural}`` parameter so each kind
has its own operations in the OpenAPI document and no other route family (operations,
pods, logs, events) has to be ordered around a catch-all.  A project is a namespace on the
host; reads need ``viewer`` in the project, writes ``editor``.  The work is in
:mod:`pincompute.api.crud`.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from starlette.responses import Response

from pincompute.api import crud
from pincompute.api.auth import Ctx, ProjectEditor, ProjectViewer, still_allowed
from pincompute.api.body import object_body_schema
from pincompute.kube.resource import Resource
from pincompute.model import registry

router = APIRouter(prefix="/api/v1/projects/{project}")

WORKLOADS: dict[str, Resource] = {r.plural: r for r in registry.WORKLOAD_RESOURCES}

LabelSelectorQ = Annotated[str | None, Query(alias="labelSelector", max_length=4096,
                                             description="Kubernetes label selector")]
LimitQ = Annotated[int | None, Query(ge=0, le=crud.MAX_LIMIT,
                                     description="Most items per page (0: all)")]
ContinueQ = Annotated[str | None, Query(alias="continue", max_length=4096,
                                        description="Token from the previous page")]
WatchQ = Annotated[bool, Query(description="Stream changes as newline-delimited JSON")]
ResourceVersionQ = Annotated[str | None, Query(alias="resourceVersion", max_length=64,
                                               description="Watch from this version")]
TimeoutQ = Annotated[int | None, Query(alias="timeoutSeconds", ge=1, le=3600,
                                       description="End a watch after this long")]

LIST_DOC = ("A list (`items`, `metadata.resourceVersion`, `metadata.continue`), paged with "
            "`limit` and `continue`; with `watch=true` a stream of newline-delimited JSON "
            "events (`ADDED`, `MODIFIED`, `DELETED`, `ERROR`), resumed from "
            "`resourceVersion`. Needs `viewer` in the project, for the whole stream.")
REPLACE_DOC = ("The body is the whole object; a `metadata.resourceVersion` that is not the "
               "current one is refused with 409 Conflict (read, change, write again). Needs "
               "`editor`.")
PATCH_DOC = ("A JSON merge patch (RFC 7386; `application/merge-patch+json` or "
             "`application/json`): keys set replace, `null` removes, objects merge. The "
             "result is validated like a replacement. Needs `editor`.")


def _add(resource: Resource) -> None:
    plural, kind = resource.plural, resource.kind

    @router.get(f"/{plural}", name=f"list_{plural}", summary=f"List or watch {kind}s",
                tags=[kind], description=LIST_DOC)
    async def list_objects(project: str, ctx: Ctx, principal: ProjectViewer,
                           label_selector: LabelSelectorQ = None, limit: LimitQ = None,
                           continue_: ContinueQ = None, watch: WatchQ = False,
                           resource_version: ResourceVersionQ = None,
                           timeout_seconds: TimeoutQ = None) -> Response:
        return crud.list_or_watch(ctx, resource, namespace=project,
                                  label_selector=label_selector, limit=limit,
                                  continue_token=continue_, watch=watch,
                                  resource_version=resource_version,
                                  timeout_seconds=timeout_seconds,
                                  allowed=still_allowed(ctx, principal, project=project))

    @router.post(f"/{plural}", name=f"create_{plural}", summary=f"Create a {kind}",
                 tags=[kind], status_code=201,
                 description="The body is a whole object (`apiVersion`, `kind`, "
                             "`metadata.name`, `spec`); `metadata.namespace`, if given, must be "
                             "the project. Defaults are filled in and the spec validated (422 "
                             "naming the field). Needs `editor`; counts against the project's "
                             "mutation rate.",
                 openapi_extra=object_body_schema(f"The {kind} to create"))
    async def create_object(project: str, request: Request, ctx: Ctx,
                            _: ProjectEditor) -> Response:
        return await crud.create(ctx, request, resource, namespace=project)

    @router.get(f"/{plural}/{{name}}", name=f"get_{plural}", summary=f"Read a {kind}",
                tags=[kind], description="The object with its status, from the gateway's "
                                         "cache. Needs `viewer`.")
    async def get_object(project: str, name: str, ctx: Ctx, _: ProjectViewer) -> Response:
        return crud.get(ctx, resource, name, namespace=project)

    @router.put(f"/{plural}/{{name}}", name=f"replace_{plural}",
                summary=f"Replace a {kind} (409 if metadata.resourceVersion is stale)",
                tags=[kind], description=REPLACE_DOC,
                openapi_extra=object_body_schema(f"The whole {kind}"))
    async def replace_object(project: str, name: str, request: Request, ctx: Ctx,
                             _: ProjectEditor) -> Response:
        return await crud.replace(ctx, request, resource, name, namespace=project)

    @router.patch(f"/{plural}/{{name}}", name=f"patch_{plural}",
                  summary=f"Merge-patch a {kind} (RFC 7386)", tags=[kind],
                  description=PATCH_DOC, openapi_extra=object_body_schema("A JSON merge patch"))
    async def patch_object(project: str, name: str, request: Request, ctx: Ctx,
                           _: ProjectEditor) -> Response:
        return await crud.patch(ctx, request, resource, name, namespace=project)

    @router.delete(f"/{plural}/{{name}}", name=f"delete_{plural}", summary=f"Delete a {kind}",
                   tags=[kind], description="Deletes the object; its pods in the member "
                                            "clusters go with it. Needs `editor`.")
    async def delete_object(project: str, name: str, request: Request, ctx: Ctx,
                            _: ProjectEditor) -> Response:
        return await crud.delete(ctx, request, resource, name, namespace=project)


for _resource in registry.WORKLOAD_RESOURCES:
    _add(_resource)
