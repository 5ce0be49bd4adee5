"""Typed API errors, mirroring the Kubernetes ``Status`` reasons.

Every backend raises these and nothing else for API-level failures, so callers
handle a conflict or a missing object the same way whether the store is the
embedded one or a real kube-apiserver.  ``to_status``/``from_status`` convert to
and from the ``Status`` body the API server and our REST gateway speak.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar


@dataclass(frozen=True, slots=True)
class Cause:
    """One reason an object was rejected: the field path and what is wrong with it."""

    field: str
    message: str
    reason: str = "FieldValueInvalid"

    def to_dict(self) -> dict[str, str]:
        return {"field": self.field, "message": self.message, "reason": self.reason}


NAMESPACE_TERMINATING = "NamespaceTerminating"
"""The cause the API server gives for a create in a namespace being deleted."""


@dataclass(eq=False)
class ApiError(Exception):
    message: str
    causes: list[Cause] = field(default_factory=list)
    kind: str = ""
    name: str = ""

    code: ClassVar[int] = 500
    reason: ClassVar[str] = "InternalError"

    def __post_init__(self) -> None:
        Exception.__init__(self, self.message)

    def __str__(self) -> str:
        return self.message

    def to_status(self) -> dict[str, Any]:
        details: dict[str, Any] = {}
        if self.name:
            details["name"] = self.name
        if self.kind:
            details["kind"] = self.kind
        if self.causes:
            details["causes"] = [c.to_dict() for c in self.causes]
        status: dict[str, Any] = {
            "kind": "Status",
            "apiVersion": "v1",
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        }
        if details:
            status["details"] = details
        return status


class BadRequest(ApiError):
    code = 400
    reason = "BadRequest"


class Unauthorized(ApiError):
    code = 401
    reason = "Unauthorized"


class Forbidden(ApiError):
    code = 403
    reason = "Forbidden"


class NamespaceTerminating(Forbidden):
    """A create in a namespace being deleted (cause ``NamespaceTerminating``): not a rights
    problem, and nothing to retry hard — the namespace and what is in it are going."""


class NotFound(ApiError):
    code = 404
    reason = "NotFound"


class MethodNotAllowed(ApiError):
    code = 405
    reason = "MethodNotAllowed"


class AlreadyExists(ApiError):
    code = 409
    reason = "AlreadyExists"


class Conflict(ApiError):
    code = 409
    reason = "Conflict"


class Gone(ApiError):
    code = 410
    reason = "Expired"


class RequestEntityTooLarge(ApiError):
    """An object or request larger than the store takes (etcd's 1.5 MiB request limit)."""

    code = 413
    reason = "RequestEntityTooLarge"


class Invalid(ApiError):
    code = 422
    reason = "Invalid"


class TooManyRequests(ApiError):
    code = 429
    reason = "TooManyRequests"


class Unavailable(ApiError):
    code = 503
    reason = "ServiceUnavailable"


class ServerTimeout(ApiError):
    code = 504
    reason = "Timeout"


_BY_REASON: dict[str, type[ApiError]] = {
    cls.reason: cls
    for cls in (BadRequest, Unauthorized, Forbidden, NotFound, MethodNotAllowed, AlreadyExists,
                Conflict, Gone, RequestEntityTooLarge, Invalid, TooManyRequests, Unavailable,
                ServerTimeout)
}
_BY_CODE: dict[int, type[ApiError]] = {
    400: BadRequest, 401: Unauthorized, 403: Forbidden, 404: NotFound, 405: MethodNotAllowed,
    409: Conflict, 410: Gone, 413: RequestEntityTooLarge, 422: Invalid, 429: TooManyRequests,
    503: Unavailable, 504: ServerTimeout,
}


def from_status(status: dict[str, Any], *, code: int | None = None) -> ApiError:
    """Build the typed error a ``Status`` body describes."""
    reason = status.get("reason", "")
    cls = _BY_REASON.get(reason) or _BY_CODE.get(code or status.get("code", 500), ApiError)
    if reason == "Gone":
        cls = Gone
    details = status.get("details") or {}
    causes = [
        Cause(c.get("field", ""), c.get("message", ""), c.get("reason", "FieldValueInvalid"))
        for c in details.get("causes") or ()
    ]
    if cls is Forbidden and any(c.reason == NAMESPACE_TERMINATING for c in causes):
        cls = NamespaceTerminating
    return cls(status.get("message", reason or "error"), causes=causes,
               kind=details.get("kind", ""), name=details.get("name", ""))


def invalid(kind: str, name: str, causes: list[Cause]) -> Invalid:
    """An Invalid error whose message names every rejected field, as the API server's does."""
    parts = "; ".join(f"{c.field}: {c.message}" if c.field else c.message for c in causes)
    return Invalid(f'{kind} "{name}" is invalid: {parts}', causes=causes, kind=kind, name=name)
