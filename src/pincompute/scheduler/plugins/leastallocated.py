"""LeastAllocated (Score): prefer nodes with the most room left — spreads load.

Theory of operation
-------------------
kube-scheduler's default ``NodeResourcesFit`` scoring strategy: per resource,
``(allocatable - requested_after) * 100 / allocatable`` (0 when the pod would
not fit or nothing is allocatable), averaged with the resource weights.  It
depends on the node and its own pods only, so after a binding only that node's
score is recomputed.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pincompute.scheduler.framework.handle import FrameworkHandle

from .allocation import AllocationScore, parse_resources

NAME = "LeastAllocated"


class LeastAllocated(AllocationScore):
    name = NAME
    prefer_full = False


def new(args: Mapping[str, Any], handle: FrameworkHandle) -> LeastAllocated:
    return LeastAllocated(parse_resources(args))
