"""Authentication and authorization: bearer tokens to principals, roles to permissions.

Theory of operation
-------------------
Every route but the health probes, the metrics and the OpenAPI document depends on
:func:`authenticate`: the ``Authorization: Bearer <token>`` header is looked up in the token
store (:mod:`.tokens`; one cache read) and becomes a :class:`Principal`, kept on
``request.state.principal`` for the audit log.  A missing or bad token is 401.  The same
dependency applies the per-identity rate limit (:mod:`.ratelimit`).

Authorization is by role.  A platform admin may do anything.  Otherwise a principal's role
in a project is its token's scope (a project-scoped token stands for its user in that one
project only) or, for an unscoped token, the user's entry in the Project's
``spec.members``.  Roles are ordered ``viewer < editor < admin``:

========  ==================================================================
viewer    read the project's workloads, pods, events, usage
editor    also create, change, delete and operate workloads
admin     also change the project's members and mint tokens for the project
========  ==================================================================

Routes declare what they need with the dependencies below (:data:`ProjectViewer`,
:data:`ProjectEditor`, :data:`ProjectAdmin` read the ``{project}`` path parameter;
:data:`PlatformAdmin`; :data:`Authenticated` for anyone with a valid token).  A denial is
``403 Forbidden`` whose message names the missing permission; a project the caller has no
role in is a 403 whether it exists or not, so a tenant cannot probe for other tenants'
projects.  Denials reach the audit log through ``request.state`` like every mutation.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Request

from pincompute.kube.errors import Forbidden, Unauthorized
from pincompute.model.registry import PROJECTS

from .context import ApiContext, get_ctx

ROLE_RANK: dict[str, int] = {"viewer": 1, "editor": 2, "admin": 3}
"""Project roles, weakest first; a role includes every weaker one."""


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: a user, and what their token lets them do."""

    user: str
    admin: bool = False
    """A platform admin."""
    token_id: str = ""
    scope_project: str | None = None
    """A project-scoped token's project (the principal has no role elsewhere)."""
    scope_role: str | None = None

    @property
    def identity(self) -> str:
        """The key rate limits count by."""
        return f"user:{self.user}"


def role_in(ctx: ApiContext, principal: Principal, project: str) -> str | None:
    """The principal's role in ``project`` (platform admins: ``admin``), or ``None``."""
    if principal.admin:
        return "admin"
    if principal.scope_project is not None:
        return principal.scope_role if principal.scope_project == project else None
    obj = ctx.host_informer(PROJECTS).get(project)
    if obj is None:
        return None
    for member in (obj.get("spec") or {}).get("members") or ():
        if member.get("user") == principal.user:
            role: str = member.get("role", "viewer")
            return role
    return None


def visible_projects(ctx: ApiContext, principal: Principal) -> list[dict[str, Any]]:
    """The Project objects the principal has a role in (all of them for platform admins)."""
    projects = ctx.host_informer(PROJECTS).list()
    if principal.admin:
        return projects
    return [p for p in projects
            if role_in(ctx, principal, p["metadata"]["name"]) is not None]


def has_role(ctx: ApiContext, principal: Principal, project: str, role: str) -> bool:
    have = role_in(ctx, principal, project)
    return have is not None and ROLE_RANK.get(have, 0) >= ROLE_RANK[role]


def _bearer(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    # Browsers cannot set headers on websockets or EventSource: the token may come as a
    # query parameter there (the console's exec and log streams).
    return request.query_params.get("access_token") or None


def principal_for(ctx: ApiContext, token: str | None) -> Principal | None:
    """The principal a token stands for, ``None`` if it is not a valid token."""
    if not token:
        return None
    info = ctx.tokens.lookup(token)
    if info is None:
        return None
    return Principal(user=info.user, admin=info.admin, token_id=info.id,
                     scope_project=info.project, scope_role=info.role)


async def authenticate(request: Request) -> Principal:
    """Dependency: the caller's principal (401 without a valid token); rate limited."""
    ctx = get_ctx(request)
    principal = principal_for(ctx, _bearer(request))
    if principal is None:
        request.state.denied = "unauthenticated"
        ctx.limiter.hit_anonymous(request.client.host if request.client else "unknown")
        raise Unauthorized("a valid bearer token is required (Authorization: Bearer <token>)")
    request.state.principal = principal
    ctx.limiter.hit_identity(principal.identity)
    return principal


Authenticated = Annotated[Principal, Depends(authenticate)]


def deny(request: Request, principal: Principal, permission: str) -> Forbidden:
    """A 403 naming the missing permission (and marked for the audit log)."""
    request.state.denied = permission
    return Forbidden(f'user "{principal.user}" is not allowed to {permission}')


def _verb(request: Request) -> str:
    return {"GET": "read", "HEAD": "read"}.get(request.method, "change")


def require_project_role(role: str) -> Any:
    """A dependency: the caller needs at least ``role`` in the path's ``{project}``."""

    async def dependency(request: Request, project: str,
                         principal: Principal = Depends(authenticate)) -> Principal:
        ctx = get_ctx(request)
        if not has_role(ctx, principal, project, role):
            raise deny(request, principal, f'{_verb(request)} in project "{project}": '
                                           f"needs role {role} in the project")
        if request.method not in ("GET", "HEAD"):
            ctx.limiter.hit_project(project)
        return principal

    dependency.__name__ = f"require_project_{role}"
    return dependency


async def require_platform_admin(request: Request,
                                 principal: Principal = Depends(authenticate)) -> Principal:
    """Dependency: the caller must be a platform admin."""
    if not principal.admin:
        raise deny(request, principal, f"{_verb(request)} platform resources: "
                                       "needs platform admin")
    return principal


ProjectViewer = Annotated[Principal, Depends(require_project_role("viewer"))]
ProjectEditor = Annotated[Principal, Depends(require_project_role("editor"))]
ProjectAdmin = Annotated[Principal, Depends(require_project_role("admin"))]
PlatformAdmin = Annotated[Principal, Depends(require_platform_admin)]
Ctx = Annotated[ApiContext, Depends(get_ctx)]
