"""The gateway's request path around the handlers: size limit, metrics, audit.

Theory of operation
-------------------
One pure ASGI middleware (no per-request task or body copy, unlike Starlette's
``BaseHTTPMiddleware``) wraps every HTTP request:

1. **Size limit** — a declared ``Content-Length`` over the limit is answered 413 before the
   handler runs; a body sent without one is counted as it arrives and cut off at the limit
   with the same 413.
2. **Metrics** — the in-flight gauge, and on completion the latency histogram labelled by
   method, *route template* (``/api/v1/projects/{project}/pinapps/{name}``, so series stay
   few) and status code.
3. **Audit** — after the response: mutating methods and every 401/403 become an audit
   record (:mod:`.audit`).  Who comes from ``request.state.principal`` (set by
   authentication), which object from the route's path parameters (``project``, the plural
   in the template, ``name``; a create names its object in ``request.state.audit_name``),
   a denial's missing permission from ``request.state.denied``.

Websocket connections pass through untouched (their routes authorize and audit
themselves).
"""

from __future__ import annotations

import time
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from pincompute.kube.errors import RequestEntityTooLarge

from .audit import AuditLog
from .errors import status_response
from .metrics import ApiMetrics

MUTATING = frozenset({"POST", "PUT", "PATCH", "DELETE"})


class _TooLarge(Exception):
    pass


def object_of(route: str, params: dict[str, Any]) -> tuple[str | None, str | None]:
    """The kind (plural) and name a route template addresses: the literal segment before
    ``{name}``, else before the final parameter, else the last literal."""
    parts = [p for p in route.split("/") if p]
    resource = None
    if "{name}" in parts:
        i = parts.index("{name}")
        resource = parts[i - 1] if i else None
    elif parts and parts[-1].startswith("{") and len(parts) > 1:
        resource = parts[-2]
    elif parts:
        resource = parts[-1]
    name = params.get("name")
    return resource, str(name) if name is not None else None


class GatewayMiddleware:
    def __init__(self, app: ASGIApp, *, metrics: ApiMetrics, audit: AuditLog,
                 max_body_bytes: int) -> None:
        self.app = app
        self.metrics = metrics
        self.audit = audit
        self.max_body = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        method: str = scope["method"]
        for key, value in scope.get("headers", ()):
            if key == b"content-length":
                try:
                    size = int(value)
                except ValueError:
                    size = 0
                if size > self.max_body:
                    await self._too_large(scope, receive, send)
                    return
        seen = 0
        max_body = self.max_body

        async def limited_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > max_body:
                    raise _TooLarge
            return message

        code = 500
        started = False

        async def sending(message: Message) -> None:
            nonlocal code, started
            if message["type"] == "http.response.start":
                code = message["status"]
                started = True
            await send(message)

        t0 = time.perf_counter()
        self.metrics.in_flight.inc()
        try:
            await self.app(scope, limited_receive, sending)
        except _TooLarge:
            if not started:
                await self._too_large(scope, receive, send)
            code = 413
        finally:
            self.metrics.in_flight.dec()
            route = _route(scope)
            self.metrics.latency.labels(method, route, str(code)).observe(
                time.perf_counter() - t0)
            if method in MUTATING or code in (401, 403):
                self._audit(scope, method, route, code)

    async def _too_large(self, scope: Scope, receive: Receive, send: Send) -> None:
        error = RequestEntityTooLarge(f"the request body is larger than the limit of "
                                      f"{self.max_body} bytes")
        await status_response(error)(scope, receive, send)

    def _audit(self, scope: Scope, method: str, route: str, code: int) -> None:
        state = scope.get("state") or {}
        principal = state.get("principal")
        params = scope.get("path_params") or {}
        resource, name = object_of(route, params)
        denied = state.get("denied")
        if code in (401, 403):
            result = "denied"
        elif code < 400:
            result = "allowed"
        else:
            result = "failed"
        self.audit.record(
            user=principal.user if principal is not None else "system:anonymous",
            verb=method, route=route, path=scope.get("path", ""),
            project=params.get("project"), resource=resource,
            name=name or state.get("audit_name"), code=code, result=result,
            reason=str(denied or state.get("audit_reason") or ""))


def _route(scope: Scope) -> str:
    route = scope.get("route")
    path = getattr(route, "path", None)
    return str(path) if path else "unmatched"
