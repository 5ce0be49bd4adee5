"""Taints and tolerations: whether a toleration matches a taint, as Kubernetes decides it.

Theory of operation
-------------------
One rule, Kubernetes' ``ToleratesTaint`` (``k8s.io/api/core/v1/toleration.go``), used by
every controller that reasons about taints one object at a time — the node lifecycle
controller (evictions after ``tolerationSeconds``), the PinDaemon planner (which nodes a
daemon runs on) — so they can never disagree.  The pod scheduler's vectorized filter
applies the same rule over its node arrays.  An empty ``effect`` matches every effect;
an empty ``key`` with ``Exists`` matches every taint; ``operator`` defaults to ``Equal``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def tolerates(toleration: Mapping[str, Any], taint: Mapping[str, Any]) -> bool:
    """Whether ``toleration`` tolerates ``taint`` (Kubernetes' ``ToleratesTaint``)."""
    effect = toleration.get("effect")
    if effect and effect != taint.get("effect"):
        return False
    key = toleration.get("key")
    operator = toleration.get("operator") or "Equal"
    if not key:
        return operator == "Exists"
    if key != taint.get("key"):
        return False
    if operator == "Exists":
        return True
    return bool((toleration.get("value") or "") == (taint.get("value") or ""))


__all__ = ["tolerates"]
