"""Status bodies become the SDK's exceptions, with their causes and Retry-After."""

from __future__ import annotations

from pincompute.sdk import AlreadyExists, Conflict, Invalid, RateLimited, ServerError
from pincompute.sdk.errors import error_from_response


def _status(code: int, reason: str, **details: object) -> dict[str, object]:
    return {"kind": "Status", "status": "Failure", "message": f"{reason} message",
            "reason": reason, "code": code, "details": details}


def test_invalid_carries_the_fields() -> None:
    error = error_from_response(422, _status(422, "Invalid", name="web", kind="PinApp", causes=[
        {"field": "spec.replicas", "message": "must be >= 0", "reason": "FieldValueInvalid"}]),
        {})
    assert isinstance(error, Invalid)
    assert (error.kind, error.name) == ("PinApp", "web")
    assert error.causes[0].field == "spec.replicas"
    assert "spec.replicas: must be >= 0" in str(error)


def test_conflicts_and_already_exists() -> None:
    assert type(error_from_response(409, _status(409, "Conflict"), {})) is Conflict
    assert isinstance(error_from_response(409, _status(409, "AlreadyExists"), {}),
                      AlreadyExists)


def test_rate_limited_reads_retry_after() -> None:
    error = error_from_response(429, _status(429, "TooManyRequests"), {"retry-after": "3"})
    assert isinstance(error, RateLimited) and error.retry_after == 3.0


def test_a_body_that_is_not_a_status_still_says_something() -> None:
    error = error_from_response(502, "<html>bad gateway</html>", {})
    assert isinstance(error, ServerError) and error.status_code == 502
    assert "bad gateway" in str(error)
