"""The node's Events: the kind-agnostic recorder of :mod:`pincompute.runtime.events`."""

from __future__ import annotations

from pincompute.runtime.events import AGGREGATED_REASONS, EventRecorder

__all__ = ["AGGREGATED_REASONS", "EventRecorder"]
