"""The PinCompute Python SDK: a typed client of the REST gateway (DESIGN §10), sync and async.

    from pincompute.sdk import Client
    with Client.from_config() as pc:            # ~/.pincompute/config.yaml + PINCOMPUTE_*
        pc.apply(app)                           # create or update
        pc.scale("hello-web", 5)
        for line in pc.logs("hello-web-x7k2p", follow=True):
            print(line)

Every API has a method on :class:`Client` and the same one, awaited, on
:class:`AsyncClient`.  Kinds are named as users type them (``"app"``,
``"pinapps"``, ``"PinApp"``).  Failures raise :class:`~.errors.NotFound`,
:class:`~.errors.Conflict`, :class:`~.errors.Forbidden`, :class:`~.errors.Invalid`
(with :attr:`~.errors.ApiError.causes`), :class:`~.errors.RateLimited`
(with ``retry_after``), :class:`~.errors.Unauthorized`, ... all subclasses of
:class:`~.errors.PinComputeError`.  Transient failures are retried with back-off
and jitter first (:class:`~.transport.RetryPolicy`).  The SDK is versioned with
the package (:data:`__version__`) and speaks only HTTP: it imports no controller
and no assembly module.
"""

from pincompute import __version__

from .aio import AsyncClient
from .base import ApplyResult
from .client import Client
from .config import Config, ConfigError, config_path, load_config, write_config
from .errors import (
    AlreadyExists,
    ApiError,
    BadRequest,
    Cause,
    Conflict,
    Forbidden,
    Gone,
    Invalid,
    NotFound,
    PinComputeError,
    RateLimited,
    ServerError,
    Timeout,
    TooLarge,
    Unauthorized,
    Unreachable,
)
from .kinds import KINDS, KindRef, UnknownKind, parse_object_ref, resolve_kind
from .routes import MissingScope, ObjectList
from .transport import CallRecord, Hooks, RetryPolicy
from .watch import WatchEvent

_LAZY = {"AsyncExecSession", "ExecResult", "ExecSession"}


def __getattr__(name: str) -> object:
    """The exec session classes, loaded on first use (they bring the websocket library)."""
    if name in _LAZY:
        from . import exec as exec_module

        return getattr(exec_module, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "KINDS",
    "AlreadyExists",
    "ApiError",
    "ApplyResult",
    "AsyncClient",
    "AsyncExecSession",
    "BadRequest",
    "CallRecord",
    "Cause",
    "Client",
    "Config",
    "ConfigError",
    "Conflict",
    "ExecResult",
    "ExecSession",
    "Forbidden",
    "Gone",
    "Hooks",
    "Invalid",
    "KindRef",
    "MissingScope",
    "NotFound",
    "ObjectList",
    "PinComputeError",
    "RateLimited",
    "RetryPolicy",
    "ServerError",
    "Timeout",
    "TooLarge",
    "Unauthorized",
    "UnknownKind",
    "Unreachable",
    "WatchEvent",
    "__version__",
    "config_path",
    "load_config",
    "parse_object_ref",
    "resolve_kind",
    "write_config",
]
