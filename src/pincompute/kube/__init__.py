"""The Kubernetes API protocol: resources, objects, selectors, errors, and backends."""

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
)
from .protocol import (
    ADDED,
    BOOKMARK,
    DELETED,
    MODIFIED,
    KubeClient,
    ObjectList,
    Preconditions,
    WatchEvent,
)
from .resource import Resource

__all__ = [
    "ADDED", "BOOKMARK", "DELETED", "MODIFIED",
    "AlreadyExists", "ApiError", "BadRequest", "Cause", "Conflict", "Forbidden", "Gone",
    "Invalid", "KubeClient", "NotFound", "ObjectList", "Preconditions", "Resource", "WatchEvent",
]
