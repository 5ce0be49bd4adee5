"""Operation routes: ``POST /api/v1/projects/{project}/{plural}/{name}/<operation>``.

One literal route per (kind, operation) of :data:`pincompute.api.operations.OPERATIONS`,
plus ``pinapps/{name}/rollback`` and ``pinapps/{name}/restart-container`` (one replica).
Each needs ``editor`` in the project, writes one merge patch to the host object (validated
by the kind's model first) and answers the changed object.  ``GET pinapps/{name}/revisions``
(``viewer``) lists what a rollback can pick, from the shards' histories in the member caches.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import Response

from pincompute.api import crud, revisions
from pincompute.api.auth import Ctx, ProjectEditor, ProjectViewer
from pincompute.api.body import json_response
from pincompute.api.context import ApiContext
from pincompute.api.operations import (
    OPERATIONS,
    Operation,
    check_container,
    find_revision,
    restart_token,
    shard_revisions,
)
from pincompute.kube.errors import Cause, Conflict, NotFound, invalid
from pincompute.kube.patch import merge_patch
from pincompute.model import registry
from pincompute.model.registry import PINAPPS, PINPODS

router = APIRouter(prefix="/api/v1/projects/{project}")

ContainerName = Annotated[str, Field(min_length=1, max_length=63,
                                     pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")]


class ScaleRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    replicas: Annotated[int, Field(ge=0, le=100_000, description="The new replica count")]


class RestartContainerRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    container: ContainerName = Field(description="The container to restart")


class ReplicaRestartRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    pod: Annotated[str, Field(min_length=1, max_length=253,
                              description="The replica: a PinPod of the app (GET .../pods "
                                          "shows each pod's pincompute.io/workload label)")]
    container: ContainerName = Field(description="The container to restart")


class RollbackRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    revision: Annotated[str, Field(max_length=64, description=(
        "A revision hash or number; empty or 'previous': the one before the current"))] = ""


async def _apply(ctx: ApiContext, plural: str, project: str, name: str,
                 patch: dict[str, Any]) -> Response:
    resource = registry.lookup(plural)
    if ctx.host.info.backend != "embedded":  # the embedded store validates as the model does
        old = ctx.host_informer(resource).get(name, namespace=project)
        if old is None:
            old = await ctx.host.get(resource, name, namespace=project)
        crud.validate(resource, merge_patch(old, patch), old)
    patched = await ctx.host.patch(resource, name, patch, namespace=project)
    return json_response(crud.present(resource, patched))


def _add(plural: str, op: Operation) -> None:
    kind = registry.lookup(plural).kind
    path = f"/{plural}/{{name}}/{op.name}"
    opid = f"{op.name.replace('-', '_')}_{plural}"

    if op.name == "scale":
        @router.post(path, name=opid, summary=op.summary, tags=[kind])
        async def scale(project: str, name: str, body: ScaleRequest, ctx: Ctx,
                        _: ProjectEditor) -> Response:
            return await _apply(ctx, plural, project, name, op.patch(body.model_dump()))
    elif op.name == "restart-container":
        @router.post(path, name=opid, summary=op.summary, tags=[kind])
        async def restart_container(project: str, name: str, body: RestartContainerRequest,
                                    ctx: Ctx, _: ProjectEditor) -> Response:
            resource = registry.lookup(plural)
            obj = ctx.host_informer(resource).get(name, namespace=project) or \
                await ctx.host.get(resource, name, namespace=project)
            check_container(kind, name, obj.get("spec") or {}, body.container)
            return await _apply(ctx, plural, project, name, op.patch(body.model_dump()))
    else:
        @router.post(path, name=opid, summary=op.summary, tags=[kind])
        async def operate(project: str, name: str, ctx: Ctx, _: ProjectEditor) -> Response:
            return await _apply(ctx, plural, project, name, op.patch({}))


for _plural, _ops in OPERATIONS.items():
    for _op in _ops.values():
        _add(_plural, _op)


@router.post("/pinapps/{name}/rollback", name="rollback_pinapps", tags=["PinApp"],
             summary="Roll the app's template back to a revision of its history")
async def rollback(project: str, name: str, ctx: Ctx, _: ProjectEditor,
                   body: Annotated[RollbackRequest | None, Body()] = None) -> Response:
    target = body.revision if body is not None else ""
    app = await ctx.host.get(PINAPPS, name, namespace=project)  # the version to replace
    history = _history(ctx, project, name, app)
    entry = find_revision(history, target)
    if entry is None or not entry.get("template"):
        known = ", ".join(f"{e.get('number')} ({e.get('revision')})" for e in history)
        raise invalid("PinApp", name, [Cause("revision", (
            f"Not found: {target or 'previous'!r}: the app's history has "
            f"{known or 'no revisions yet'}"), "FieldValueNotFound")])
    # A merge patch would keep keys the old template had and the revision lacks: the
    # template is replaced whole, against the version read.  A conflict from a write that
    # left the spec alone (the federation's status and annotations) is retried on the new
    # version; a spec that moved meanwhile is the caller's 409.
    tries = _ROLLBACK_TRIES
    while True:
        current = {**app, "spec": {**(app.get("spec") or {}), "template": entry["template"]}}
        crud.validate(PINAPPS, current, app, client=ctx.host)
        try:
            updated = await ctx.host.update(PINAPPS, current)
            return json_response(crud.present(PINAPPS, updated))
        except Conflict:
            tries -= 1
            newer = await ctx.host.get(PINAPPS, name, namespace=project)
            if not tries or newer.get("spec") != app.get("spec"):
                raise
            app = newer


_ROLLBACK_TRIES = 5


def _history(ctx: ApiContext, project: str, name: str, app: dict[str, Any]
             ) -> list[Any]:
    """The app's revision history, from its shards in the ready member caches."""
    shards = []
    for cluster in ctx.members.names():
        inf = ctx.member_informer(cluster, PINAPPS)
        if inf is not None and inf.has_synced:
            shard = inf.get(name, namespace=project)
            if shard is not None:
                shards.append(shard)
    return list(shard_revisions(app, shards))


@router.get("/pinapps/{name}/revisions", name="revisions_pinapps", tags=["PinApp"],
            summary="The app's revisions: what a rollback can go back to",
            description="From the revision histories of the app's shards in the member "
                        "clusters, oldest first, as `{\"kind\": \"RevisionList\", "
                        "\"items\": [{number, revision, images, change, created, "
                        "current}]}`: `revision` is the template hash, `images` maps each "
                        "container to its image, `change` says what differs from the "
                        "revision before, `current` marks the one the app runs or rolls "
                        "out to. Roll back with `POST .../rollback {\"revision\": N}`. "
                        "Needs `viewer`.")
async def list_revisions(project: str, name: str, ctx: Ctx, _: ProjectViewer) -> Response:
    app = ctx.host_informer(PINAPPS).get(name, namespace=project)
    if app is None:
        raise NotFound(f'pinapps "{name}" not found', kind="pinapps", name=name)
    md = app.get("metadata") or {}
    return json_response({
        "apiVersion": "v1", "kind": "RevisionList",
        "metadata": {"kind": "PinApp", "name": name, "namespace": project,
                     "uid": md.get("uid")},
        "items": revisions.rows(_history(ctx, project, name, app))})


@router.post("/pinapps/{name}/restart-container", name="restart_container_pinapps",
             tags=["PinApp"], summary="Restart one container of one replica of the app")
async def restart_replica_container(project: str, name: str, body: ReplicaRestartRequest,
                                    request: Request, ctx: Ctx,
                                    _: ProjectEditor) -> Response:
    app = ctx.host_informer(PINAPPS).get(name, namespace=project) or \
        await ctx.host.get(PINAPPS, name, namespace=project)
    template_spec = ((app.get("spec") or {}).get("template") or {}).get("spec") or {}
    check_container("PinApp", name, template_spec, body.container)
    for cluster in ctx.members.names():
        handle = ctx.members.get(cluster)
        inf = ctx.member_informer(cluster, PINPODS)
        if handle is None or inf is None:
            continue
        await inf.wait_synced()
        replica = inf.get(body.pod, namespace=project)
        if replica is None or not _replica_of(replica, name):
            continue
        patch = {"spec": {"restarts": {body.container: restart_token()}}}
        patched = await handle.client.patch(PINPODS, body.pod, patch, namespace=project)
        request.state.audit_reason = f"replica {body.pod} in {cluster}"
        return json_response(crud.present(PINPODS, patched))
    raise NotFound(f'PinApp "{name}" has no replica "{body.pod}" in any member cluster',
                   kind="PinPod", name=body.pod)


def _replica_of(pinpod: dict[str, Any], app: str) -> bool:
    for ref in (pinpod.get("metadata") or {}).get("ownerReferences") or ():
        if ref.get("kind") == "PinApp" and ref.get("name") == app and ref.get("controller"):
            return True
    return False
