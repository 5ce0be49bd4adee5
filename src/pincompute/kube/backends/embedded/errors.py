"""Why an embedded store cannot be opened: typed errors with a one-line answer.

A store that cannot start must say so in one line that names its file and what to do
(the CLI prints the message as is), not end in a traceback.  Each error's message is
complete on its own.
"""

from __future__ import annotations


class StoreUnavailable(RuntimeError):
    """The store cannot be opened; ``str(error)`` is the one line to show."""


class StoreInUse(StoreUnavailable):
    """Another process holds the store's directory lock."""


class StoreCorrupt(StoreUnavailable):
    """The database file fails its integrity check or cannot be read."""


class StoreMisconfigured(StoreUnavailable):
    """SQLite did not accept the settings durability depends on (WAL, synchronous)."""


__all__ = ["StoreCorrupt", "StoreInUse", "StoreMisconfigured", "StoreUnavailable"]
