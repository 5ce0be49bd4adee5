"""The embedded backend: an in-process, SQLite-persisted store for one cluster."""

from .client import EmbeddedClient
from .store import EmbeddedStore

__all__ = ["EmbeddedClient", "EmbeddedStore"]
