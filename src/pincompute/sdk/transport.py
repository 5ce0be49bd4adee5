"""What both clients share: a call described without I/O, retries, hooks, error mapping.

Theory of operation
-------------------
Every API is a :class:`Call`: method, path, query, body, the *route* (the path
template, for metrics) and how to read the answer.  The sync :class:`~.client.Client`
and the async :class:`~.aio.AsyncClient` build the same calls (:mod:`.routes`) and
only differ in how they send them, so the two cannot drift apart.

Sending is wrapped in ``stamina`` retries with exponential back-off and jitter
(:class:`RetryPolicy`).  What is retried is decided per failure by
:meth:`RetryPolicy.backoff`: a connection that never opened (any method — nothing
was sent), a 502/503/504 or a timeout on an idempotent call, and a 429 whose
``Retry-After`` is short enough, waited exactly.  Anything else is raised at once.

:class:`Hooks` let a caller log or measure every attempt: ``on_request`` before
it is sent, ``on_response`` after (with its status, or the error, and seconds).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import httpx
import orjson

from pincompute import __version__

from .errors import (
    ApiError,
    RateLimited,
    ServerError,
    Timeout,
    Unreachable,
    error_from_response,
)

T = TypeVar("T")
USER_AGENT = f"pincompute-sdk/{__version__}"
_log = logging.getLogger("pincompute.sdk")
_IDEMPOTENT = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS"})


def parse_json(response: httpx.Response) -> Any:
    return orjson.loads(response.content) if response.content else None


@dataclass(frozen=True, slots=True)
class Call(Generic[T]):
    """One API request, described (no I/O): the clients send it and parse the answer."""

    method: str
    path: str
    route: str
    """The path template (``/api/v1/projects/{project}/{plural}/{name}``), for metrics."""
    parse: Callable[[httpx.Response], T]
    params: Mapping[str, Any] | None = None
    json: Any = None
    headers: Mapping[str, str] | None = None
    idempotent: bool | None = None
    """Whether a 5xx or a timeout may be retried (default: by method)."""

    @property
    def retry_safe(self) -> bool:
        return self.method in _IDEMPOTENT if self.idempotent is None else self.idempotent

    def query(self) -> dict[str, str]:
        out: dict[str, str] = {}
        for key, value in (self.params or {}).items():
            if value is None or value is False:
                continue
            out[key] = "true" if value is True else str(value)
        return out


@dataclass(frozen=True, slots=True)
class CallRecord:
    """One attempt of a call, as the hooks see it."""

    method: str
    route: str
    path: str
    attempt: int
    status_code: int | None = None
    seconds: float = 0.0
    error: Exception | None = None


@dataclass(frozen=True, slots=True)
class Hooks:
    """Callbacks for logging and metrics; exceptions they raise propagate."""

    on_request: Callable[[CallRecord], None] | None = None
    on_response: Callable[[CallRecord], None] | None = None


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How transient failures are retried (``attempts=1``: never)."""

    attempts: int = 5
    timeout: float = 30.0
    """Seconds all attempts of one call may take together."""
    wait_initial: float = 0.1
    wait_max: float = 5.0
    wait_jitter: float = 0.5
    max_rate_limit_wait: float = 10.0
    """A 429 asking to wait longer than this is raised (:class:`RateLimited`) rather than
    waited out."""

    def backoff(self, call: Call[Any]) -> Callable[[Exception], bool | float]:
        """stamina's back-off hook for ``call``: retry (True, or seconds to wait) or not."""
        def hook(error: Exception) -> bool | float:
            if isinstance(error, RateLimited):
                return error.retry_after if error.retry_after <= self.max_rate_limit_wait \
                    else False
            if isinstance(error, Unreachable):
                return bool(getattr(error, "before_sending", False)) or call.retry_safe
            if isinstance(error, Timeout):
                return call.retry_safe
            if isinstance(error, ServerError):
                return call.retry_safe and error.status_code in (502, 503, 504)
            return False
        return hook


@dataclass(frozen=True, slots=True)
class Settings:
    """Where and how a client talks to the gateway."""

    server: str
    token: str | None = None
    project: str | None = None
    timeout: float = 30.0
    """Seconds to connect, and between bytes of an answer (streams wait as long as they
    need for the next line)."""
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    hooks: Hooks = field(default_factory=Hooks)
    verify: bool | str = True
    """TLS verification: True, False, or a CA bundle's path."""

    def headers(self) -> dict[str, str]:
        headers = {"user-agent": USER_AGENT, "accept": "application/json"}
        if self.token:
            headers["authorization"] = f"Bearer {self.token}"
        return headers

    def httpx_timeout(self) -> httpx.Timeout:
        return httpx.Timeout(self.timeout, connect=min(self.timeout, 10.0))

    def stream_timeout(self) -> httpx.Timeout:
        """Connecting and the answer's head within the timeout; then no limit between
        lines."""
        return httpx.Timeout(self.timeout, connect=min(self.timeout, 10.0), read=None)


def transport_error(error: httpx.TransportError, *, server: str) -> Exception:
    """An httpx failure as the SDK's :class:`Unreachable` or :class:`Timeout`."""
    if isinstance(error, httpx.TimeoutException):
        out: Exception = Timeout(f"{server} did not answer in time ({type(error).__name__})")
    else:
        before = isinstance(error, httpx.ConnectError)
        reason = str(error) or type(error).__name__
        out = Unreachable(f"cannot reach {server}: {reason}")
        out.before_sending = before  # type: ignore[attr-defined]
    return out


def check(response: httpx.Response) -> httpx.Response:
    """``response`` if it succeeded; else raise its :class:`ApiError` (body read already)."""
    if response.is_success:
        return response
    raise _error(response)


def _error(response: httpx.Response) -> ApiError:
    body: Any
    try:
        body = orjson.loads(response.content)
    except orjson.JSONDecodeError:
        body = response.text
    return error_from_response(response.status_code, body, response.headers)


def record(call: Call[Any], *, attempt: int, started: float, hooks: Hooks,
           status_code: int | None = None, error: Exception | None = None) -> None:
    rec = CallRecord(method=call.method, route=call.route, path=call.path, attempt=attempt,
                     status_code=status_code, seconds=time.monotonic() - started, error=error)
    _log.debug("%s %s -> %s in %.3fs (attempt %d)", call.method, call.path,
               status_code if error is None else type(error).__name__, rec.seconds, attempt)
    if hooks.on_response is not None:
        hooks.on_response(rec)


def announce(call: Call[Any], *, attempt: int, hooks: Hooks) -> float:
    if hooks.on_request is not None:
        hooks.on_request(CallRecord(method=call.method, route=call.route, path=call.path,
                                    attempt=attempt))
    return time.monotonic()
