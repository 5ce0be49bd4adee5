"""The embedded backend: an in-process, SQLite-persisted store for one cluster."""

from .client import EmbeddedClient
from .errors import StoreCorrupt, StoreInUse, StoreMisconfigured, StoreUnavailable
from .store import EmbeddedStore

__all__ = ["EmbeddedClient", "EmbeddedStore", "StoreCorrupt", "StoreInUse",
           "StoreMisconfigured", "StoreUnavailable"]
