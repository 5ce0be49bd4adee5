"""``GET /api/v1/projects/{project}/{pinapps|pinpods|pinjobs|pintrainingjobs}/{name}/pods``:
a workload's pods across every member cluster (:mod:`pincompute.api.pods`); ``viewer``."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.responses import Response

from pincompute.api.auth import Ctx, ProjectViewer
from pincompute.api.body import JSON
from pincompute.api.pods import workload_pods
from pincompute.kube.errors import NotFound
from pincompute.kube.resource import Resource
from pincompute.model import registry

router = APIRouter(prefix="/api/v1/projects/{project}")

POD_OWNERS = ("pinapps", "pinpods", "pinjobs", "pintrainingjobs")


def _add(resource: Resource) -> None:
    @router.get(f"/{resource.plural}/{{name}}/pods", name=f"pods_of_{resource.plural}",
                tags=[resource.kind],
                summary=f"The {resource.kind}'s pods in every member cluster, with node, "
                        "IP, cluster and zone")
    async def pods(project: str, name: str, ctx: Ctx, _: ProjectViewer) -> Response:
        if ctx.host_informer(resource).get(name, namespace=project) is None:
            raise NotFound(f'{resource.plural}.{resource.group} "{name}" not found',
                           kind=resource.kind, name=name)
        body = await workload_pods(ctx, namespace=project, kind=resource.kind, name=name)
        return Response(body, media_type=JSON)


for _plural in POD_OWNERS:
    _add(registry.lookup(_plural))
