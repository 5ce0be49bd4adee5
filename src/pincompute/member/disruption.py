"""The disruption budget, as the member operators use it.

Moved to :mod:`pincompute.model.disruption` so that ``ops``
shares it: every voluntary disruption asks the same function."""

from __future__ import annotations

from pincompute.model.disruption import Decision, may_evict, pod_available, required_available

__all__ = ["Decision", "may_evict", "pod_available", "required_available"]
