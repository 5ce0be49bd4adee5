"""The gateway application: :func:`create_app` builds the FastAPI app over an ApiContext.

Theory of operation
-------------------
The app is the routers (one module per route family under :mod:`.routes`), the error
handlers (:mod:`.errors`: every failure a ``Status`` body) and one middleware
(:mod:`.middleware`: size limit, metrics, audit).  It starts nothing: the caller
(``pincompute.gateway``) starts the context's caches and audit log, then serves the app
(uvicorn), and stops them afterwards — so tests may drive the app in-process through
``httpx.ASGITransport`` too.

Unauthenticated routes: ``/healthz`` (the process answers), ``/readyz`` (the host caches
have listed), ``/metrics`` (Prometheus text) and ``/openapi.json``.  Everything else needs a
bearer token.  A router module added later registers itself with one ``include_router``
line in :data:`ROUTERS` order below.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.responses import ORJSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.requests import Request
from starlette.responses import Response

from pincompute.kube.errors import Unavailable
from pincompute.web import console_router

from .context import ApiContext, ctx_of
from .errors import install_error_handlers, status_response
from .middleware import GatewayMiddleware
from .routes import (
    audit,
    clusters,
    debug,
    insights,
    operations,
    platform,
    pods,
    projects,
    tokens,
    usage,
    workloads,
)

API_TITLE = "PinCompute API"
API_VERSION = "v1"


def create_app(ctx: ApiContext | None) -> FastAPI:
    """The gateway's FastAPI app over ``ctx`` (started by the caller).

    ``None`` builds the routes alone, for the OpenAPI document (:mod:`.openapi`).
    """
    app = FastAPI(title=API_TITLE, version=API_VERSION, docs_url=None, redoc_url=None,
                  default_response_class=ORJSONResponse,
                  description="PinCompute's REST API (DESIGN §10): workloads per project, "
                              "their operations, pods, logs and events; the platform's "
                              "projects, clusters, nodes and images. Errors are Kubernetes "
                              "Status bodies; authenticate with `Authorization: Bearer`.")
    app.state.ctx = ctx
    install_error_handlers(app)

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> Response:
        return Response(b"ok", media_type="text/plain")

    @app.get("/readyz", include_in_schema=False)
    async def readyz() -> Response:
        if ctx is None or not ctx.ready:
            return status_response(Unavailable("the gateway's caches are still loading"))
        return Response(b"ok", media_type="text/plain")

    @app.get("/metrics", include_in_schema=False)
    async def metrics(request: Request) -> Response:
        # the gateway's own series, then the controllers' (PinScaler, runtime) when the
        # assembly handed their registries in (ctx.extras["registries"])
        context = ctx_of(request)
        body = b"".join(generate_latest(r) for r in [
            context.metrics.registry, *context.extras.get("registries", ())])
        return Response(body, media_type=CONTENT_TYPE_LATEST)

    app.include_router(workloads.router)
    app.include_router(operations.router)
    app.include_router(pods.router)
    app.include_router(tokens.router)
    app.include_router(projects.router)
    app.include_router(clusters.router)
    app.include_router(platform.router)
    app.include_router(audit.router)
    app.include_router(debug.router)
    app.include_router(insights.router)
    app.include_router(usage.router)
    app.include_router(console_router())

    _declare_bearer_auth(app)
    if ctx is not None:
        app.add_middleware(GatewayMiddleware, metrics=ctx.metrics, audit=ctx.audit,
                           max_body_bytes=ctx.settings.max_body_bytes)
    return app


def _declare_bearer_auth(app: FastAPI) -> None:
    """Every operation in the document needs a bearer token (the unauthenticated probes are
    left out of it)."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            doc = build()
            doc.setdefault("components", {})["securitySchemes"] = {
                "bearer": {"type": "http", "scheme": "bearer",
                           "description": "An API token (`pincompute token create`)"}}
            doc["security"] = [{"bearer": []}]
            app.openapi_schema = doc
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
