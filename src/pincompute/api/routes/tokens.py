"""Tokens: ``/api/v1/tokens`` — create (shown once), list, read, revoke.

A platform admin may mint any token (a platform admin's too) and see and revoke all.  A
project admin may mint tokens scoped to their project (with a role up to admin) and see and
revoke the tokens scoped to it.  Anyone may see and revoke their own token
(``/api/v1/tokens/self``).  The token itself is in the create response only.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Path, Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import Response

from pincompute.api.auth import Authenticated, Ctx, Principal, deny, has_role
from pincompute.api.body import json_response
from pincompute.api.context import ApiContext
from pincompute.api.tokens import TokenInfo
from pincompute.kube.errors import Cause, NotFound, invalid

router = APIRouter(prefix="/api/v1/tokens", tags=["Token"])

USER_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._@:-]{0,252}$"
PROJECT_PATTERN = r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$"


class TokenRequest(BaseModel):
    """A token to create."""

    model_config = ConfigDict(extra="forbid")

    user: Annotated[str, Field(pattern=USER_PATTERN, description="Whom the token stands for")]
    admin: bool = Field(False, description="A platform admin's token (platform admins only)")
    project: Annotated[str | None, Field(pattern=PROJECT_PATTERN,
                                         description="Scope the token to this project")] = None
    role: Literal["viewer", "editor", "admin"] | None = Field(
        None, description="The role in the project (with project; default viewer)")
    description: Annotated[str, Field(max_length=256,
                                      description="What the token is for")] = ""
    expires_in_seconds: Annotated[int | None, Field(
        alias="expiresInSeconds", ge=60, le=10 * 365 * 86400,
        description="Refused after this many seconds (default: never)")] = None


TokenId = Annotated[str, Path(pattern=r"^([0-9a-f]{12}|self)$",
                              description="The token's id; `self` is the caller's own token")]


def _may_manage(ctx: ApiContext, principal: Principal, info: TokenInfo) -> bool:
    if principal.admin or info.id == principal.token_id:
        return True
    return info.project is not None and has_role(ctx, principal, info.project, "admin")


@router.post("", status_code=201, summary="Create a token (the response holds it, once)",
             description="The answer's `token` is the secret, shown this once and never "
                         "stored (only its hash is). A platform admin may create any token, "
                         "a project admin tokens scoped to their project (`project` with "
                         "`role`).")
async def create_token(body: TokenRequest, request: Request, ctx: Ctx,
                       principal: Authenticated) -> Response:
    request.state.audit_name = body.user
    if body.role is not None and body.project is None:
        raise invalid("Token", body.user, [Cause("role", "Forbidden: role needs project",
                                                 "FieldValueForbidden")])
    if not principal.admin:
        if body.admin:
            raise deny(request, principal, "create platform admin tokens: needs platform "
                                           "admin")
        if body.project is None:
            raise deny(request, principal, "create unscoped tokens: needs platform admin")
        if not has_role(ctx, principal, body.project, "admin"):
            raise deny(request, principal, f'create tokens for project "{body.project}": '
                                           "needs role admin in the project")
    token, info = await ctx.tokens.create(
        user=body.user, admin=body.admin, project=body.project,
        role=body.role or ("viewer" if body.project else None), created_by=principal.user,
        description=body.description, expires_in=body.expires_in_seconds)
    request.state.audit_name = info.id
    return json_response({**info.to_dict(), "token": token}, status_code=201)


@router.get("", summary="List the tokens the caller may manage")
async def list_tokens(ctx: Ctx, principal: Authenticated) -> Response:
    items = [t.to_dict() for t in ctx.tokens.list() if _may_manage(ctx, principal, t)]
    return json_response({"items": items})


def _find(ctx: ApiContext, request: Request, principal: Principal, token_id: str) -> TokenInfo:
    if token_id == "self":
        token_id = principal.token_id
    info = ctx.tokens.get(token_id)
    if info is None or not _may_manage(ctx, principal, info):
        # Someone else's token is as invisible as one that does not exist.
        raise NotFound(f'token "{token_id}" not found', kind="Token", name=token_id)
    request.state.audit_name = token_id
    return info


@router.get("/{token_id}", summary="Read a token's record (never the token)")
async def get_token(token_id: TokenId, request: Request, ctx: Ctx,
                    principal: Authenticated) -> Response:
    return json_response(_find(ctx, request, principal, token_id).to_dict())


@router.delete("/{token_id}", summary="Revoke a token (refused from now on)")
async def revoke_token(token_id: TokenId, request: Request, ctx: Ctx,
                       principal: Authenticated) -> Response:
    info = _find(ctx, request, principal, token_id)
    await ctx.tokens.revoke(info.id)
    return json_response({**info.to_dict(), "revoked": True})
