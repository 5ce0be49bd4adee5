"""Errors as Kubernetes ``Status`` bodies: one shape for every failure the gateway answers.

Theory of operation
-------------------
Handlers raise :class:`pincompute.kube.errors.ApiError` subclasses (the same typed errors the
backends raise, so a store's Conflict passes through unchanged) and the exception handlers
here render them as ``Status`` bodies with the HTTP code of their reason.  Two more sources
are mapped to the same shape:

- FastAPI's request validation (query parameters, path parameters, bodies declared with a
  model) becomes ``422 Invalid`` with one cause per problem, the field named by its path
  (``query.limit``, ``body.replicas``);
- Starlette's own HTTP errors (unknown route 404, wrong method 405) keep their code.

Anything else that escapes a handler is a bug: it is logged with its traceback and answered
``500 InternalError`` without internals (the schemathesis test proves user input never
gets there).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from pincompute.kube.errors import (
    ApiError,
    BadRequest,
    Cause,
    Forbidden,
    MethodNotAllowed,
    NotFound,
    RequestEntityTooLarge,
    TooManyRequests,
    Unauthorized,
)
from pincompute.kube.errors import Invalid as InvalidError

_log = logging.getLogger(__name__)

_BY_CODE: dict[int, type[ApiError]] = {
    400: BadRequest, 401: Unauthorized, 403: Forbidden, 404: NotFound, 405: MethodNotAllowed,
    413: RequestEntityTooLarge, 422: InvalidError, 429: TooManyRequests,
}


def status_response(error: ApiError, *, headers: dict[str, str] | None = None) -> Response:
    """The ``Status`` body of ``error`` with its HTTP code."""
    return Response(orjson.dumps(error.to_status()), status_code=error.code,
                    media_type="application/json", headers=headers)


def field_path(loc: Sequence[Any]) -> str:
    """A pydantic location as a field path: ``("body", "spec", 0, "name")`` →
    ``body.spec[0].name``."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def validation_error(errors: Sequence[Any]) -> InvalidError:
    """FastAPI's validation errors as one Invalid naming every field."""
    causes = []
    for e in errors:
        loc = e.get("loc", ()) if isinstance(e, dict) else ()
        msg = e.get("msg", "invalid value") if isinstance(e, dict) else str(e)
        causes.append(Cause(field_path(loc), msg, "FieldValueInvalid"))
    message = "; ".join(f"{c.field}: {c.message}" if c.field else c.message for c in causes)
    return InvalidError(f"invalid request: {message}", causes=causes)


async def _on_api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    headers = getattr(exc, "headers", None)
    return status_response(exc, headers=headers)


async def _on_validation(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    return status_response(validation_error(exc.errors()))


async def _on_http(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    cls = _BY_CODE.get(exc.status_code)
    if exc.status_code == 404:
        error: ApiError = NotFound(f"the server could not find the requested resource "
                                   f"({request.method} {request.url.path})")
    elif cls is not None:
        error = cls(str(exc.detail))
    else:
        error = ApiError(str(exc.detail))
        return Response(orjson.dumps({**error.to_status(), "code": exc.status_code}),
                        status_code=exc.status_code, media_type="application/json")
    return status_response(error, headers=dict(exc.headers or {}))


async def _on_unexpected(request: Request, exc: Exception) -> Response:
    _log.exception("internal error serving %s %s", request.method, request.url.path)
    return status_response(ApiError("internal error; the gateway's log has the details"))


def install_error_handlers(app: FastAPI) -> None:
    """Render every error the app may meet as a ``Status`` body."""
    app.add_exception_handler(ApiError, _on_api_error)
    app.add_exception_handler(RequestValidationError, _on_validation)
    app.add_exception_handler(StarletteHTTPException, _on_http)
    app.add_exception_handler(Exception, _on_unexpected)


def rate_limited(retry_after: int, message: str) -> TooManyRequests:
    """A 429 carrying its ``Retry-After`` header."""
    error = TooManyRequests(message)
    error.headers = {"Retry-After": str(max(1, retry_after))}  # type: ignore[attr-defined]
    return error
