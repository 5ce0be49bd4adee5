"""``top``: resource usage of pods, apps and nodes, from the metrics store.

``GET /api/v1/projects/{project}/top/pods[?app=NAME]`` and ``.../top/apps`` (``viewer``),
``GET /api/v1/clusters/{cluster}/top/nodes`` (any authenticated caller, like the cluster's
nodes).  The numbers are the node agents' usage records
(:mod:`pincompute.model.usage`: one ConfigMap per node in each member's system
namespace), read through each member's shared informer on those records — the same
informer the PinScaler controller folds, so in an embedded region the gateway adds no watch —
with an index by the namespaces a record has pods of: a project's ``top`` decodes only the
records of nodes running its pods, never lists a store.
"""

from __future__ import annotations

import time
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Query
from starlette.responses import Response

from pincompute.api.auth import Authenticated, Ctx, ProjectViewer
from pincompute.api.body import JSON
from pincompute.api.context import ApiContext, MemberHandleLike
from pincompute.kube.errors import NotFound, Unavailable
from pincompute.kube.resource import CONFIGMAPS
from pincompute.model.usage import (
    USAGE_NAMESPACE,
    USAGE_SELECTOR,
    Located,
    app_rows,
    from_configmap,
    namespaces_of,
    node_rows,
    pod_rows,
)
from pincompute.runtime.informer import SharedInformer

router = APIRouter()

NAMESPACE_INDEX = "usage-namespaces"


async def _records(handle: MemberHandleLike) -> SharedInformer:
    inf = handle.informer(CONFIGMAPS, namespace=USAGE_NAMESPACE, label_selector=USAGE_SELECTOR)
    inf.add_indexer(NAMESPACE_INDEX, namespaces_of)
    await inf.wait_synced()
    return inf


async def _project_records(ctx: ApiContext, project: str) -> list[Located]:
    out: list[Located] = []
    for cluster in ctx.members.names():
        handle = ctx.members.get(cluster)
        if handle is None:
            continue
        inf = await _records(handle)
        for cm in inf.by_index(NAMESPACE_INDEX, project):
            usage = from_configmap(cm)
            if usage is not None:
                out.append((cluster, usage))
    return out


def _list(kind: str, items: list[dict[str, Any]]) -> Response:
    return Response(orjson.dumps({"apiVersion": "v1", "kind": kind, "items": items}),
                    media_type=JSON)


@router.get("/api/v1/projects/{project}/top/pods", tags=["Usage"],
            summary="CPU and memory use of the project's pods (and their own samples)")
async def top_pods(project: str, ctx: Ctx, _: ProjectViewer,
                   app: Annotated[str | None, Query(
                       max_length=253, description="Only this PinApp's pods")] = None
                   ) -> Response:
    records = await _project_records(ctx, project)
    return _list("PodUsageList", pod_rows(records, namespace=project, app=app, now=time.time()))


@router.get("/api/v1/projects/{project}/top/apps", tags=["Usage"],
            summary="CPU and memory use of the project's apps (their pods summed)")
async def top_apps(project: str, ctx: Ctx, _: ProjectViewer) -> Response:
    records = await _project_records(ctx, project)
    return _list("AppUsageList", app_rows(records, namespace=project))


@router.get("/api/v1/clusters/{cluster}/top/nodes", tags=["Usage"],
            summary="CPU and memory use of the cluster's nodes (their pods together)")
async def top_nodes(cluster: str, ctx: Ctx, _: Authenticated) -> Response:
    handle = ctx.members.get(cluster)
    if handle is None:
        if cluster in ctx.members.names():
            raise Unavailable(f'member cluster "{cluster}" is registered but not reachable now')
        raise NotFound(f'memberclusters.pincompute.io "{cluster}" not found',
                       kind="MemberCluster", name=cluster)
    inf = await _records(handle)
    records = [(cluster, u) for cm in inf.list(namespace=USAGE_NAMESPACE)
               if (u := from_configmap(cm)) is not None]
    return _list("NodeUsageList", node_rows(records))
