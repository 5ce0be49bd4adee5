"""Projects: ``/api/v1/projects`` (+ ``/{project}``, ``/members``, ``/quota``, ``/usage``).

Who may do what: anyone authenticated lists the projects they have a role in (platform
admins: all); a project's viewers read it, its members, quota and usage; its admins change
its members; platform admins create, change (quota included) and delete projects.
Usage is what the federation's admission records on the Project (``status.usage`` per tier:
the requests of admitted workloads; ``status.queued``: workloads waiting for quota), shown
beside the quota.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import Response

from pincompute.api import crud
from pincompute.api.auth import (
    Authenticated,
    Ctx,
    PlatformAdmin,
    ProjectAdmin,
    ProjectViewer,
    visible_projects,
)
from pincompute.api.body import JSON, json_response, object_body_schema, read_object
from pincompute.api.context import ApiContext
from pincompute.kube.errors import NotFound
from pincompute.model.registry import PROJECTS
from pincompute.model.wellknown import TIERS

router = APIRouter(prefix="/api/v1/projects", tags=["Project"])

USER_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._@:-]{0,252}$"
UserPath = Annotated[str, Path(pattern=USER_PATTERN, description="A user name")]


class Member(BaseModel):
    model_config = ConfigDict(extra="forbid")
    user: Annotated[str, Field(pattern=USER_PATTERN, description="The user's name")]
    role: Annotated[Literal["viewer", "editor", "admin"],
                    Field(description="Their role in the project")] = "viewer"


class MembersRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    members: Annotated[list[Member], Field(max_length=10_000,
                                           description="Every member, each once")]


@router.get("", summary="List the projects the caller has a role in")
async def list_projects(ctx: Ctx, principal: Authenticated) -> Response:
    inf = ctx.host_informer(PROJECTS)
    items = sorted(visible_projects(ctx, principal), key=lambda p: p["metadata"]["name"])
    return Response(ctx.read_cache.list_body(inf, (ctx.read_cache.encode(inf, p)
                                                   for p in items)), media_type=JSON)


@router.post("", status_code=201, summary="Create a project (platform admin)",
             openapi_extra=object_body_schema("The Project"))
async def create_project(request: Request, ctx: Ctx, _: PlatformAdmin) -> Response:
    return await crud.create(ctx, request, PROJECTS, namespace=None)


@router.get("/{project}", summary="Read a project")
async def get_project(project: str, ctx: Ctx, _: ProjectViewer) -> Response:
    return crud.get(ctx, PROJECTS, project, namespace=None)


@router.put("/{project}", summary="Replace a project (platform admin)",
            openapi_extra=object_body_schema("The whole Project"))
async def replace_project(project: str, request: Request, ctx: Ctx,
                          _: PlatformAdmin) -> Response:
    return await crud.replace(ctx, request, PROJECTS, project, namespace=None)


@router.patch("/{project}", summary="Merge-patch a project (platform admin)",
              openapi_extra=object_body_schema("A JSON merge patch"))
async def patch_project(project: str, request: Request, ctx: Ctx,
                        _: PlatformAdmin) -> Response:
    return await crud.patch(ctx, request, PROJECTS, project, namespace=None)


@router.delete("/{project}", summary="Delete a project and everything in it (platform admin)")
async def delete_project(project: str, request: Request, ctx: Ctx,
                         _: PlatformAdmin) -> Response:
    return await crud.delete(ctx, request, PROJECTS, project, namespace=None)


def _project(ctx: ApiContext, project: str) -> dict[str, Any]:
    obj = ctx.host_informer(PROJECTS).get(project)
    if obj is None:
        raise NotFound(f'projects.pincompute.io "{project}" not found', kind="Project",
                       name=project)
    return obj


@router.get("/{project}/members", summary="The project's members and their roles")
async def get_members(project: str, ctx: Ctx, _: ProjectViewer) -> Response:
    members = (_project(ctx, project).get("spec") or {}).get("members") or []
    return json_response({"items": members})


async def _write_members(ctx: ApiContext, project: str,
                         members: list[dict[str, Any]]) -> Response:
    old = await ctx.host.get(PROJECTS, project)
    new = {**old, "spec": {**(old.get("spec") or {}), "members": members}}
    crud.validate(PROJECTS, new, old, client=ctx.host)
    updated = await ctx.host.update(PROJECTS, new)
    return json_response({"items": (updated.get("spec") or {}).get("members") or []})


@router.put("/{project}/members", summary="Replace the project's members (project admin)")
async def replace_members(project: str, body: MembersRequest, ctx: Ctx,
                          _: ProjectAdmin) -> Response:
    return await _write_members(ctx, project, [m.model_dump() for m in body.members])


@router.post("/{project}/members", summary="Add a member or change their role (project admin)")
async def add_member(project: str, body: Member, request: Request, ctx: Ctx,
                     _: ProjectAdmin) -> Response:
    request.state.audit_name = body.user
    members = [m for m in (_project(ctx, project).get("spec") or {}).get("members") or []
               if m.get("user") != body.user]
    return await _write_members(ctx, project, [*members, body.model_dump()])


@router.delete("/{project}/members/{user}", summary="Remove a member (project admin)")
async def remove_member(project: str, user: UserPath, request: Request, ctx: Ctx,
                        _: ProjectAdmin) -> Response:
    request.state.audit_name = user
    members = (_project(ctx, project).get("spec") or {}).get("members") or []
    if not any(m.get("user") == user for m in members):
        raise NotFound(f'user "{user}" is not a member of project "{project}"',
                       kind="ProjectMember", name=user)
    return await _write_members(ctx, project, [m for m in members if m.get("user") != user])


@router.get("/{project}/quota", summary="The project's quota per tier")
async def get_quota(project: str, ctx: Ctx, _: ProjectViewer) -> Response:
    return json_response((_project(ctx, project).get("spec") or {}).get("quota") or {})


@router.put("/{project}/quota", summary="Set the project's quota per tier (platform admin)",
            openapi_extra=object_body_schema("The quota: {tier: {cpu, memory, gpu, pods}}"))
async def put_quota(project: str, request: Request, ctx: Ctx, _: PlatformAdmin) -> Response:
    quota = await read_object(request)
    old = await ctx.host.get(PROJECTS, project)
    new = {**old, "spec": {**(old.get("spec") or {}), "quota": quota}}
    crud.validate(PROJECTS, new, old, client=ctx.host)
    updated = await ctx.host.update(PROJECTS, new)
    return json_response((updated.get("spec") or {}).get("quota") or {})


@router.get("/{project}/usage", summary="Usage and quota per tier")
async def get_usage(project: str, ctx: Ctx, _: ProjectViewer) -> Response:
    obj = _project(ctx, project)
    quota = (obj.get("spec") or {}).get("quota") or {}
    status = obj.get("status") or {}
    usage = status.get("usage") or {}
    queued = status.get("queued") or {}
    tiers = {tier: {"quota": quota.get(tier), "used": usage.get(tier) or {},
                    "queued": int(queued.get(tier) or 0)} for tier in TIERS}
    return json_response({"project": project, "tiers": tiers})
