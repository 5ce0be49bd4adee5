"""The SDK's exceptions: one class per way a call can fail, built from the gateway's answer.

The gateway answers every failure with a Kubernetes-style ``Status`` body
(``{"kind": "Status", "reason": ..., "message": ..., "code": ..., "details":
{"causes": [{"field", "message", "reason"}]}}``).  :func:`error_from_response`
turns it into the exception of its status code, so a caller writes ``except
NotFound`` rather than comparing numbers, and an :class:`Invalid` carries the
field at fault in :attr:`ApiError.causes`.  Failures that never reached an
answer — the server is down, a timeout — are :class:`Unreachable` and
:class:`Timeout`; all of them derive from :class:`PinComputeError`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


class PinComputeError(Exception):
    """Anything the SDK raises."""


@dataclass(frozen=True, slots=True)
class Cause:
    """One reason a request was refused: the field path and what is wrong with it."""

    field: str
    message: str
    reason: str = ""

    def __str__(self) -> str:
        return f"{self.field}: {self.message}" if self.field else self.message


class ApiError(PinComputeError):
    """The gateway refused or failed a request (it answered with a ``Status``)."""

    status_code: int = 0

    def __init__(self, message: str, *, status_code: int | None = None, reason: str = "",
                 causes: tuple[Cause, ...] = (), kind: str = "", name: str = "",
                 body: Mapping[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        if status_code is not None:
            self.status_code = status_code
        self.reason = reason
        self.causes = causes
        self.kind = kind
        self.name = name
        self.body = dict(body or {})

    def __str__(self) -> str:
        return self.message


class BadRequest(ApiError):
    status_code = 400


class Unauthorized(ApiError):
    """No token, a wrong one, or a revoked one (401)."""

    status_code = 401


class Forbidden(ApiError):
    """The token's user lacks the permission named in the message (403)."""

    status_code = 403


class NotFound(ApiError):
    status_code = 404


class Conflict(ApiError):
    """A stale ``resourceVersion``, or the object already exists (409)."""

    status_code = 409


class AlreadyExists(Conflict):
    """A create of a name that is taken (409, reason ``AlreadyExists``)."""


class Gone(ApiError):
    """A watch's ``resourceVersion`` is too old (410): list again and watch from there."""

    status_code = 410


class TooLarge(ApiError):
    status_code = 413


class Invalid(ApiError):
    """The object or a parameter is invalid (422); :attr:`causes` name the fields."""

    status_code = 422

    def __str__(self) -> str:
        if not self.causes or all(str(c) in self.message for c in self.causes):
            return self.message
        return f"{self.message} ({'; '.join(str(c) for c in self.causes)})"


class RateLimited(ApiError):
    """Too many requests (429); retry after :attr:`retry_after` seconds."""

    status_code = 429

    def __init__(self, message: str, *, retry_after: float = 1.0, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.retry_after = retry_after


class ServerError(ApiError):
    """The gateway failed (5xx); 502, 503 and 504 are retried before this is raised."""

    status_code = 500


class Unreachable(PinComputeError):
    """The gateway could not be reached (refused, DNS, TLS, connection lost)."""


class Timeout(PinComputeError):
    """The gateway did not answer within the timeout."""


_BY_CODE: dict[int, type[ApiError]] = {
    400: BadRequest, 401: Unauthorized, 403: Forbidden, 404: NotFound, 409: Conflict,
    410: Gone, 413: TooLarge, 422: Invalid, 429: RateLimited,
}


def error_from_response(status_code: int, body: Any, headers: Mapping[str, str]) -> ApiError:
    """The exception for a failed response (``body``: its parsed JSON, or text)."""
    status = body if isinstance(body, Mapping) else {}
    details = status.get("details") if isinstance(status.get("details"), Mapping) else {}
    assert isinstance(details, Mapping)
    message = status.get("message") or status.get("detail") or (
        body.strip()[:300] if isinstance(body, str) and body.strip() else "")
    if not isinstance(message, str):  # FastAPI's own 422 has a list in "detail"
        message = "; ".join(_detail_line(d) for d in message) if isinstance(message, list) \
            else str(message)
    reason = str(status.get("reason") or "")
    causes = tuple(Cause(field=str(c.get("field", "")), message=str(c.get("message", "")),
                         reason=str(c.get("reason", "")))
                   for c in details.get("causes") or () if isinstance(c, Mapping))
    if not causes and isinstance(status.get("detail"), list):
        causes = tuple(Cause(field=".".join(str(p) for p in d.get("loc", ())[1:]),
                             message=str(d.get("msg", "")))
                       for d in status["detail"] if isinstance(d, Mapping))
    kw: dict[str, Any] = {"status_code": status_code, "reason": reason, "causes": causes,
                          "kind": str(details.get("kind") or ""),
                          "name": str(details.get("name") or ""), "body": status}
    message = message or f"HTTP {status_code}"
    if status_code == 429:
        return RateLimited(message, retry_after=_retry_after(headers, details), **kw)
    if status_code == 409 and reason == "AlreadyExists":
        return AlreadyExists(message, **kw)
    cls = _BY_CODE.get(status_code, ServerError if status_code >= 500 else ApiError)
    return cls(message, **kw)


def _detail_line(detail: Any) -> str:
    if isinstance(detail, Mapping):
        where = ".".join(str(p) for p in detail.get("loc", ()))
        return f"{where}: {detail.get('msg', '')}" if where else str(detail.get("msg", ""))
    return str(detail)


def _retry_after(headers: Mapping[str, str], details: Mapping[str, Any]) -> float:
    for value in (headers.get("retry-after"), details.get("retryAfterSeconds")):
        try:
            if value is not None:
                return max(0.0, float(value))
        except (TypeError, ValueError):
            continue
    return 1.0
