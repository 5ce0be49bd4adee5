"""Clusters, nodes and node pools: ``/api/v1/clusters``, ``/api/v1/clusters/{cluster}/nodes``,
``/api/v1/nodepools`` and ``/api/v1/clusters/{cluster}/nodepools``.

- **Clusters** are the host's MemberCluster objects; inline kubeconfigs are never shown.
  Adding one: a ``Kubeconfig`` connection is a MemberCluster the federation connects; an
  ``Embedded`` one is a store of the embedded region, which only the region can open (the
  context's cluster admin).  Removing one drains it first (the region's removal, or on a
  real host the draining taint, waiting for its workloads to leave) unless ``drain=false``.
- **Nodes** are read from the member cluster's node cache; cordon, uncordon and drain are
  in :mod:`pincompute.api.drain`.
- **Node pools** live in the member clusters: listed across all of them (each labelled
  with its cluster), changed in one.

Reads need any valid token; changes need platform admin.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from starlette.responses import Response

from pincompute.api import crud, drain
from pincompute.api.auth import Authenticated, Ctx, PlatformAdmin
from pincompute.api.body import JSON, json_response, object_body_schema, read_object
from pincompute.api.context import ApiContext, MemberHandleLike
from pincompute.api.simplify import simplify
from pincompute.kube.errors import Cause, NotFound, Unavailable, invalid
from pincompute.kube.resource import NODES, PODS, Resource
from pincompute.model.registry import MEMBERCLUSTERS, NODEPOOLS
from pincompute.model.wellknown import CLUSTER_NAME_LABEL

router = APIRouter(prefix="/api/v1")
REDACTED = "<redacted>"


def redact(mc: dict[str, Any]) -> dict[str, Any]:
    """A MemberCluster as shown: no inline kubeconfig."""
    out = crud.present(MEMBERCLUSTERS, mc)
    connection = (out.get("spec") or {}).get("connection") or {}
    if connection.get("kubeconfig"):
        out["spec"] = {**out["spec"], "connection": {**connection, "kubeconfig": REDACTED}}
    return out


def _member(ctx: ApiContext, cluster: str) -> MemberHandleLike:
    handle = ctx.members.get(cluster)
    if handle is not None:
        return handle
    if cluster in ctx.members.names():
        raise Unavailable(f'member cluster "{cluster}" is registered but not reachable now')
    raise NotFound(f'memberclusters.pincompute.io "{cluster}" not found',
                   kind="MemberCluster", name=cluster)


async def _synced(handle: MemberHandleLike, resource: Resource) -> crud.Target:
    inf = handle.informer(resource)
    await inf.wait_synced()
    return crud.Target(handle.client, inf)


# --- clusters ----------------------------------------------------------------------------------

@router.get("/clusters", tags=["MemberCluster"], summary="List the member clusters")
async def list_clusters(ctx: Ctx, _: Authenticated) -> Response:
    items = sorted(ctx.host_informer(MEMBERCLUSTERS).list(),
                   key=lambda mc: mc["metadata"]["name"])
    return json_response({"apiVersion": MEMBERCLUSTERS.api_version,
                          "kind": "MemberClusterList",
                          "metadata": {"resourceVersion":
                                       ctx.host_informer(MEMBERCLUSTERS).resource_version},
                          "items": [redact(mc) for mc in items]})


@router.get("/clusters/{cluster}", tags=["MemberCluster"], summary="Read a member cluster")
async def get_cluster(cluster: str, ctx: Ctx, _: Authenticated) -> Response:
    mc = ctx.host_informer(MEMBERCLUSTERS).get(cluster)
    if mc is None:
        raise NotFound(f'memberclusters.pincompute.io "{cluster}" not found',
                       kind="MemberCluster", name=cluster)
    return json_response(redact(mc))


@router.post("/clusters", status_code=201, tags=["MemberCluster"],
             summary="Add a member cluster (platform admin)",
             openapi_extra=object_body_schema("The MemberCluster"))
async def add_cluster(request: Request, ctx: Ctx, _: PlatformAdmin,
                      nodes: Annotated[int | None, Query(
                          ge=0, le=1000, description="Embedded clusters: nodes of its general "
                          "pool")] = None) -> Response:
    obj = await read_object(request)
    spec: dict[str, Any] = obj["spec"] if isinstance(obj.get("spec"), dict) else {}
    connection: dict[str, Any] = spec["connection"] if isinstance(
        spec.get("connection"), dict) else {}
    if connection.get("type", "Embedded") != "Embedded":
        created = await crud.create_object(ctx, request, MEMBERCLUSTERS, obj, namespace=None)
        return json_response(redact(created), status_code=201)
    md: dict[str, Any] = obj["metadata"] if isinstance(obj.get("metadata"), dict) else {}
    zone, name = spec.get("zone"), md.get("name")
    if not isinstance(zone, str) or not zone:
        raise invalid("MemberCluster", str(name or ""), [
            Cause("spec.zone", "Required value", "FieldValueRequired")])
    if name is not None and not isinstance(name, str):
        raise invalid("MemberCluster", "", [Cause("metadata.name", "must be a string")])
    if ctx.cluster_admin is None or not ctx.cluster_admin.embedded:
        raise invalid("MemberCluster", name or "", [Cause(
            "spec.connection.type", 'Unsupported value: "Embedded": only an embedded region '
            "opens embedded clusters; give a Kubeconfig connection", "FieldValueNotSupported")])
    request.state.audit_name = name
    try:
        added = await ctx.cluster_admin.add(zone=zone, name=name, nodes=nodes)
    except ValueError as e:
        raise invalid("MemberCluster", name or "", [Cause("metadata.name", str(e))]) from None
    request.state.audit_name = added
    mc = await ctx.host.get(MEMBERCLUSTERS, added)
    return json_response(redact(mc), status_code=201)


@router.patch("/clusters/{cluster}", tags=["MemberCluster"],
              summary="Merge-patch a member cluster: labels, taints, unschedulable "
                      "(platform admin)",
              openapi_extra=object_body_schema("A JSON merge patch"))
async def patch_cluster(cluster: str, request: Request, ctx: Ctx,
                        _: PlatformAdmin) -> Response:
    request.state.audit_name = cluster
    await crud.patch(ctx, request, MEMBERCLUSTERS, cluster, namespace=None)
    return json_response(redact(await ctx.host.get(MEMBERCLUSTERS, cluster)))


@router.delete("/clusters/{cluster}", tags=["MemberCluster"],
               summary="Drain and remove a member cluster (platform admin)")
async def remove_cluster(cluster: str, request: Request, ctx: Ctx, _: PlatformAdmin,
                         drain_first: Annotated[bool, Query(
                             alias="drain", description="Wait for its workloads to leave "
                             "first")] = True,
                         timeout_seconds: Annotated[int, Query(
                             alias="timeoutSeconds", ge=1, le=3600,
                             description="How long the drain may take (503 after)")] = 300
                         ) -> Response:
    request.state.audit_name = cluster
    mc = ctx.host_informer(MEMBERCLUSTERS).get(cluster) or \
        await ctx.host.get(MEMBERCLUSTERS, cluster)
    if ctx.cluster_admin is None:
        await ctx.host.delete(MEMBERCLUSTERS, cluster)
    else:
        try:
            await ctx.cluster_admin.remove(cluster, drain=drain_first,
                                           timeout=float(timeout_seconds))
        except TimeoutError as e:
            raise Unavailable(str(e)) from None
    return json_response({**redact(mc), "removed": True})


# --- nodes -------------------------------------------------------------------------------------

@router.get("/clusters/{cluster}/nodes", tags=["Node"], summary="The cluster's nodes")
async def list_nodes(cluster: str, ctx: Ctx, _: Authenticated,
                     label_selector: Annotated[str | None, Query(
                         alias="labelSelector", max_length=4096,
                         description="Kubernetes label selector")] = None) -> Response:
    target = await _synced(_member(ctx, cluster), NODES)
    return Response(ctx.read_cache.list_page(target.informer, namespace=None,
                                             label_selector=label_selector),
                    media_type=JSON)


@router.get("/clusters/{cluster}/nodes/{name}", tags=["Node"], summary="Read a node")
async def get_node(cluster: str, name: str, ctx: Ctx, _: Authenticated) -> Response:
    target = await _synced(_member(ctx, cluster), NODES)
    return crud.get(ctx, NODES, name, namespace=None, target=target)


@router.post("/clusters/{cluster}/nodes/{name}/cordon", tags=["Node"],
             summary="Mark the node unschedulable (platform admin)")
async def cordon(cluster: str, name: str, ctx: Ctx, _: PlatformAdmin) -> Response:
    node = await drain.set_unschedulable(_member(ctx, cluster).client, name, True)
    return json_response(simplify(node))


@router.post("/clusters/{cluster}/nodes/{name}/uncordon", tags=["Node"],
             summary="Mark the node schedulable again (platform admin)")
async def uncordon(cluster: str, name: str, ctx: Ctx, _: PlatformAdmin) -> Response:
    node = await drain.set_unschedulable(_member(ctx, cluster).client, name, False)
    return json_response(simplify(node))


@router.post("/clusters/{cluster}/nodes/{name}/drain", tags=["Node"],
             summary="Cordon the node and evict its pods within their disruption budgets "
                     "(platform admin)",
             description="Evicts every pod but the platform's daemon pods, each only if its "
                         "app's disruption budget allows, in passes until the node is empty "
                         "or `timeoutSeconds` passes. The answer says what was evicted, what "
                         "is still blocked and why (`blocked: [{pod, reason}]`), and "
                         "`complete`; calling again continues.")
async def drain_node(cluster: str, name: str, ctx: Ctx, _: PlatformAdmin,
                     timeout_seconds: Annotated[int, Query(
                         alias="timeoutSeconds", ge=0, le=3600,
                         description="How long to keep evicting (0: one pass)")] = 60
                     ) -> Response:
    handle = _member(ctx, cluster)
    await handle.client.get(NODES, name)  # 404 before anything changes
    result = await drain.drain(handle.client, handle.informer(PODS), name,
                               timeout=float(timeout_seconds))
    return json_response(result.to_dict())


# --- node pools --------------------------------------------------------------------------------

@router.get("/nodepools", tags=["NodePool"], summary="Node pools of every member cluster")
async def list_nodepools(ctx: Ctx, _: Authenticated,
                         cluster: Annotated[str | None, Query(
                             max_length=63, description="Only this member cluster's")] = None
                         ) -> Response:
    items: list[dict[str, Any]] = []
    for name in ctx.members.names():
        if cluster is not None and name != cluster:
            continue
        handle = ctx.members.get(name)
        if handle is None:
            continue
        target = await _synced(handle, NODEPOOLS)
        for pool in sorted(target.informer.list(), key=lambda p: p["metadata"]["name"]):
            out = crud.present(NODEPOOLS, pool)
            md = dict(out["metadata"])
            md["labels"] = {**(md.get("labels") or {}), CLUSTER_NAME_LABEL: name}
            items.append({**out, "metadata": md})
    return json_response({"apiVersion": NODEPOOLS.api_version, "kind": "NodePoolList",
                          "metadata": {}, "items": items})


@router.get("/clusters/{cluster}/nodepools/{name}", tags=["NodePool"],
            summary="Read a node pool")
async def get_nodepool(cluster: str, name: str, ctx: Ctx, _: Authenticated) -> Response:
    target = await _synced(_member(ctx, cluster), NODEPOOLS)
    return crud.get(ctx, NODEPOOLS, name, namespace=None, target=target)


@router.post("/clusters/{cluster}/nodepools", tags=["NodePool"], status_code=201,
             summary="Create a node pool (platform admin)",
             openapi_extra=object_body_schema("The NodePool"))
async def create_nodepool(cluster: str, request: Request, ctx: Ctx,
                          _: PlatformAdmin) -> Response:
    target = await _synced(_member(ctx, cluster), NODEPOOLS)
    return await crud.create(ctx, request, NODEPOOLS, namespace=None, target=target)


@router.put("/clusters/{cluster}/nodepools/{name}", tags=["NodePool"],
            summary="Replace a node pool (platform admin)",
            openapi_extra=object_body_schema("The whole NodePool"))
async def replace_nodepool(cluster: str, name: str, request: Request, ctx: Ctx,
                           _: PlatformAdmin) -> Response:
    target = await _synced(_member(ctx, cluster), NODEPOOLS)
    return await crud.replace(ctx, request, NODEPOOLS, name, namespace=None, target=target)


@router.patch("/clusters/{cluster}/nodepools/{name}", tags=["NodePool"],
              summary="Merge-patch a node pool: size, labels, taints (platform admin)",
              openapi_extra=object_body_schema("A JSON merge patch"))
async def patch_nodepool(cluster: str, name: str, request: Request, ctx: Ctx,
                         _: PlatformAdmin) -> Response:
    target = await _synced(_member(ctx, cluster), NODEPOOLS)
    return await crud.patch(ctx, request, NODEPOOLS, name, namespace=None, target=target)


@router.delete("/clusters/{cluster}/nodepools/{name}", tags=["NodePool"],
               summary="Delete a node pool: its nodes are drained and removed "
                       "(platform admin)")
async def delete_nodepool(cluster: str, name: str, request: Request, ctx: Ctx,
                          _: PlatformAdmin) -> Response:
    target = await _synced(_member(ctx, cluster), NODEPOOLS)
    return await crud.delete(ctx, request, NODEPOOLS, name, namespace=None, target=target)
