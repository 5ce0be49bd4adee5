"""Insights: what happened in a project and to one workload — DESIGN §10.

Theory of operation
-------------------
``GET /api/v1/projects/{project}/events``
    The project's Events on the host, oldest first: the controllers' own (admission,
    placement, rollouts) and those the federation forwards from the member clusters
    (one per cluster and reason, with a count; :mod:`pincompute.federation.eventforward`
    — labelled ``pincompute.io/forwarded-from``).  Filters: ``type`` (Normal or
    Warning), ``reason`` (comma-separated: any of them), ``since`` (RFC 3339) or
    ``sinceSeconds`` (an Event counts by its last occurrence), ``limit`` (the most
    recent N, default 500).
``GET .../{plural}/{name}/events``
    The same, about one workload (``involvedObject`` is it; Events of an earlier
    object of the same name, another uid, are left out).
``GET .../{plural}/{name}/history``
    The workload's state transitions with their times (admitted, queued, placed,
    rolled out, scaled, failed over...), derived from its conditions and its Events by
    :func:`pincompute.api.history.history`: ``{"kind": "History", "metadata": {...},
    "items": [{"time", "state", "reason", "message", "source", ...}]}``.

All three need ``viewer`` in the project.  Reads come from the host's shared Event
informer (one for every namespace), indexed by involved object, so a workload's
Events are an index lookup, not a scan; the index is added on first use.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from typing import Annotated, Any, Literal

import orjson
from fastapi import APIRouter, Query
from starlette.responses import Response

from pincompute.api.auth import Ctx, ProjectViewer
from pincompute.api.context import ApiContext
from pincompute.api.history import history, parse_time
from pincompute.api.simplify import simplify
from pincompute.kube import objects
from pincompute.kube.errors import BadRequest, Cause, NotFound, Unavailable
from pincompute.kube.resource import EVENTS, Resource
from pincompute.model import registry
from pincompute.runtime.informer import SharedInformer

router = APIRouter(prefix="/api/v1/projects/{project}")

WORKLOADS: dict[str, Resource] = {r.plural: r for r in registry.WORKLOAD_RESOURCES}
INVOLVED_INDEX = "api.involved"
"""Index of the host's Events: ``<namespace>/<kind>/<name>`` of the involved object."""
DEFAULT_LIMIT = 500
MAX_LIMIT = 10_000

TypeQ = Annotated[Literal["Normal", "Warning"] | None, Query(
    alias="type", description="Only Events of this type")]
ReasonQ = Annotated[str | None, Query(max_length=1024,
                                      description="Only these reasons (comma-separated)")]
SinceQ = Annotated[str | None, Query(max_length=64,
                                     description="Only Events last seen at or after this "
                                                 "RFC 3339 time")]
SinceSecondsQ = Annotated[int | None, Query(alias="sinceSeconds", ge=1, le=10 * 365 * 86400,
                                            description="Only Events of the last N seconds")]
LimitQ = Annotated[int, Query(ge=1, le=MAX_LIMIT, description="The most recent N Events")]


def involved_key(event: Mapping[str, Any]) -> list[str]:
    io = event.get("involvedObject") or event.get("regarding") or {}
    return [f"{io.get('namespace') or ''}/{io.get('kind')}/{io.get('name')}"]


async def _events_informer(ctx: ApiContext) -> SharedInformer:
    informer = ctx.host_informer(EVENTS)
    informer.add_indexer(INVOLVED_INDEX, involved_key)
    if not informer.has_synced:
        if not informer.running:
            informer.start()
        if not await informer.wait_synced():
            raise Unavailable("the host's Event cache stopped")
    return informer


def last_seen(event: Mapping[str, Any]) -> str:
    return str(event.get("lastTimestamp") or event.get("eventTime")
               or event.get("firstTimestamp")
               or objects.meta(event).get("creationTimestamp") or "")


def _since(since: str | None, since_seconds: int | None) -> dt.datetime | None:
    if since is not None:
        parsed = parse_time(since)
        if parsed is None:
            raise BadRequest(f"since: {since!r} is not an RFC 3339 time "
                             "(e.g. 2026-11-30T10:00:00Z)",
                             causes=[Cause("query.since", "not an RFC 3339 time")])
        return parsed
    if since_seconds is not None:
        return dt.datetime.now(dt.UTC) - dt.timedelta(seconds=since_seconds)
    return None


def select(events: Iterable[Mapping[str, Any]], *, type_: str | None,
           reasons: frozenset[str] | None, since: dt.datetime | None,
           limit: int) -> list[Mapping[str, Any]]:
    """The Events passing the filters, oldest first, the most recent ``limit`` of them."""
    chosen: list[tuple[dt.datetime, Mapping[str, Any]]] = []
    epoch = dt.datetime.min.replace(tzinfo=dt.UTC)
    for event in events:
        if type_ is not None and event.get("type") != type_:
            continue
        if reasons is not None and event.get("reason") not in reasons:
            continue
        seen = parse_time(last_seen(event)) or epoch
        if since is not None and seen < since:
            continue
        chosen.append((seen, event))
    chosen.sort(key=lambda pair: pair[0])
    return [event for _, event in chosen[-limit:]]


def _reasons(reason: str | None) -> frozenset[str] | None:
    if reason is None:
        return None
    names = frozenset(r.strip() for r in reason.split(",") if r.strip())
    return names or None


def _event_list(items: list[Mapping[str, Any]]) -> Response:
    body = {"apiVersion": "v1", "kind": "EventList", "metadata": {},
            "items": [simplify(dict(e)) for e in items]}
    return Response(orjson.dumps(body), media_type="application/json")


def _workload(plural: str) -> Resource:
    resource = WORKLOADS.get(plural)
    if resource is None:
        raise NotFound(f"no workload kind {plural!r} (one of: {', '.join(sorted(WORKLOADS))})",
                       causes=[Cause("plural", "unknown workload kind")])
    return resource


def _object_events(informer: SharedInformer, resource: Resource, project: str, name: str,
                   uid: str | None) -> list[dict[str, Any]]:
    events = informer.by_index(INVOLVED_INDEX, f"{project}/{resource.kind}/{name}")
    if uid is None:
        return events
    # Events of an earlier object of the same name belong to its history, not this one's.
    return [e for e in events if (e.get("involvedObject") or {}).get("uid") in (None, "", uid)]


@router.get("/events", name="project_events", tags=["Events"],
            summary="The project's Events (the controllers' and the member clusters')",
            description="Oldest first: the controllers' own (admission, placement, "
                        "rollouts) and those forwarded from the member clusters (one per "
                        "cluster and reason, with a count; labelled "
                        "`pincompute.io/forwarded-from`). `reason` takes several, "
                        "comma-separated; an Event counts by its last occurrence for "
                        "`since`/`sinceSeconds`. Needs `viewer`.")
async def project_events(project: str, ctx: Ctx, _: ProjectViewer, type_: TypeQ = None,
                         reason: ReasonQ = None, since: SinceQ = None,
                         since_seconds: SinceSecondsQ = None,
                         limit: LimitQ = DEFAULT_LIMIT) -> Response:
    informer = await _events_informer(ctx)
    return _event_list(select(informer.list(namespace=project), type_=type_,
                              reasons=_reasons(reason), since=_since(since, since_seconds),
                              limit=limit))


@router.get("/{plural}/{name}/events", name="object_events", tags=["Events"],
            summary="The Events about one workload",
            description="As the project's Events, about the object `{plural}/{name}` only "
                        "(Events of an earlier object of the same name are left out). Needs "
                        "`viewer`.")
async def object_events(project: str, plural: str, name: str, ctx: Ctx, _: ProjectViewer,
                        type_: TypeQ = None, reason: ReasonQ = None, since: SinceQ = None,
                        since_seconds: SinceSecondsQ = None,
                        limit: LimitQ = DEFAULT_LIMIT) -> Response:
    resource = _workload(plural)
    obj = ctx.host_informer(resource).get(name, namespace=project)
    informer = await _events_informer(ctx)
    events = _object_events(informer, resource, project, name,
                            objects.uid_of(obj) if obj is not None else None)
    return _event_list(select(events, type_=type_, reasons=_reasons(reason),
                              since=_since(since, since_seconds), limit=limit))


@router.get("/{plural}/{name}/history", name="object_history", tags=["Events"],
            summary="A workload's state transitions with their times",
            description="Admitted, queued, placed, rolled out, scaled, failed over...: "
                        "derived from the object's conditions and its Events, oldest first, "
                        "as `{\"kind\": \"History\", \"items\": [{time, state, reason, "
                        "message, source, ...}]}`. Needs `viewer`.")
async def object_history(project: str, plural: str, name: str, ctx: Ctx,
                         _: ProjectViewer) -> Response:
    resource = _workload(plural)
    obj = ctx.host_informer(resource).get(name, namespace=project)
    if obj is None:
        raise NotFound(f'{resource.plural} "{name}" not found', kind=resource.plural,
                       name=name)
    informer = await _events_informer(ctx)
    events = _object_events(informer, resource, project, name, objects.uid_of(obj))
    md = objects.meta(obj)
    body = {"apiVersion": "v1", "kind": "History",
            "metadata": {"kind": resource.kind, "name": name, "namespace": project,
                         "uid": md.get("uid"), "generation": md.get("generation")},
            "items": [e.to_json() for e in history(obj, events)]}
    return Response(orjson.dumps(body), media_type="application/json")
