"""Platform kinds on the host: ``/api/v1/{nodeimages|rotations|pindaemons|pinsidecars}``.

Cluster-scoped kinds platform operators manage; the federation propagates PinDaemons and
PinSidecars to every member cluster, the ops controllers act on node images and rotations.
Anyone authenticated may read them (they say what the fleet runs, nothing of any tenant);
writes need platform admin.  The work is in :mod:`pincompute.api.crud`.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from pincompute.api import crud
from pincompute.api.auth import Authenticated, Ctx, PlatformAdmin, still_allowed
from pincompute.api.body import object_body_schema
from pincompute.api.routes.workloads import (
    LIST_DOC,
    PATCH_DOC,
    REPLACE_DOC,
    ContinueQ,
    LabelSelectorQ,
    LimitQ,
    ResourceVersionQ,
    TimeoutQ,
    WatchQ,
)
from pincompute.kube.resource import Resource
from pincompute.model.registry import NODEIMAGES, PINDAEMONS, PINSIDECARS, ROTATIONS

router = APIRouter(prefix="/api/v1")

PLATFORM_KINDS: tuple[Resource, ...] = (NODEIMAGES, ROTATIONS, PINDAEMONS, PINSIDECARS)


def _add(resource: Resource) -> None:
    plural, kind = resource.plural, resource.kind

    @router.get(f"/{plural}", name=f"list_{plural}", summary=f"List or watch {kind}s",
                tags=[kind], description=LIST_DOC.replace(
                    "Needs `viewer` in the project, for the whole stream.",
                    "Anyone authenticated may list and watch."))
    async def list_objects(ctx: Ctx, principal: Authenticated,
                           label_selector: LabelSelectorQ = None, limit: LimitQ = None,
                           continue_: ContinueQ = None,
                           watch: WatchQ = False, resource_version: ResourceVersionQ = None,
                           timeout_seconds: TimeoutQ = None) -> Response:
        return crud.list_or_watch(ctx, resource, namespace=None,
                                  label_selector=label_selector, limit=limit,
                                  continue_token=continue_, watch=watch,
                                  resource_version=resource_version,
                                  timeout_seconds=timeout_seconds,
                                  allowed=still_allowed(ctx, principal))

    @router.post(f"/{plural}", name=f"create_{plural}", status_code=201, tags=[kind],
                 summary=f"Create a {kind} (platform admin)",
                 description="The body is a whole object (`apiVersion`, `kind`, "
                             "`metadata.name`, `spec`); defaults are filled in and the spec "
                             "validated (422 naming the field).",
                 openapi_extra=object_body_schema(f"The {kind}"))
    async def create_object(request: Request, ctx: Ctx, _: PlatformAdmin) -> Response:
        return await crud.create(ctx, request, resource, namespace=None)

    @router.get(f"/{plural}/{{name}}", name=f"get_{plural}", summary=f"Read a {kind}",
                tags=[kind], description="The object with its status. Anyone "
                                         "authenticated may read the platform's kinds.")
    async def get_object(name: str, ctx: Ctx, _: Authenticated) -> Response:
        return crud.get(ctx, resource, name, namespace=None)

    @router.put(f"/{plural}/{{name}}", name=f"replace_{plural}", tags=[kind],
                summary=f"Replace a {kind} (platform admin; 409 on a stale resourceVersion)",
                description=REPLACE_DOC.removesuffix(" Needs `editor`."),
                openapi_extra=object_body_schema(f"The whole {kind}"))
    async def replace_object(name: str, request: Request, ctx: Ctx,
                             _: PlatformAdmin) -> Response:
        return await crud.replace(ctx, request, resource, name, namespace=None)

    @router.patch(f"/{plural}/{{name}}", name=f"patch_{plural}", tags=[kind],
                  summary=f"Merge-patch a {kind} (platform admin)",
                  description=PATCH_DOC.removesuffix(" Needs `editor`."),
                  openapi_extra=object_body_schema("A JSON merge patch"))
    async def patch_object(name: str, request: Request, ctx: Ctx,
                           _: PlatformAdmin) -> Response:
        return await crud.patch(ctx, request, resource, name, namespace=None)

    @router.delete(f"/{plural}/{{name}}", name=f"delete_{plural}", tags=[kind],
                   summary=f"Delete a {kind} (platform admin)")
    async def delete_object(name: str, request: Request, ctx: Ctx,
                            _: PlatformAdmin) -> Response:
        return await crud.delete(ctx, request, resource, name, namespace=None)


for _resource in PLATFORM_KINDS:
    _add(_resource)
