"""``GET /api/v1/audit``: the audit log, newest first, filtered (platform admins)."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query
from starlette.responses import Response

from pincompute.api.auth import Ctx, PlatformAdmin
from pincompute.api.body import json_response

router = APIRouter(prefix="/api/v1", tags=["Audit"])


@router.get("/audit", summary="Audit records: mutating calls and denials, newest first",
            description="Every mutating call (allowed, denied or failed), every denial and "
                        "every exec, with who, when, what and the answer's code, filtered by "
                        "the parameters (all of them must match). Platform admins only.")
async def audit(ctx: Ctx, _: PlatformAdmin,
                user: Annotated[str | None, Query(max_length=253,
                                                  description="Only this caller's")] = None,
                project: Annotated[str | None, Query(
                    max_length=63, description="Only calls on this project")] = None,
                resource: Annotated[str | None, Query(max_length=63,
                                                      description="A plural, e.g. pinapps")
                                    ] = None,
                verb: Annotated[Literal["POST", "PUT", "PATCH", "DELETE", "GET"] | None,
                                Query(description="Only this HTTP method")] = None,
                result: Annotated[Literal["allowed", "denied", "failed"] | None,
                                  Query(description="Only calls with this outcome")] = None,
                since: Annotated[str | None, Query(
                    max_length=40, pattern=r"^\d{4}-\d\d-\d\dT[0-9:.]+Z$",
                    description="RFC 3339 UTC time: records at or after it")] = None,
                limit: Annotated[int, Query(ge=1, le=10_000,
                                            description="Most records answered")] = 500
                ) -> Response:
    items = ctx.audit.query(user=user, project=project, resource=resource, verb=verb,
                            result=result, since=since, limit=limit)
    return json_response({"items": items})
