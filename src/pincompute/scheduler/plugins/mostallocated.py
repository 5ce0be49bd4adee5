"""MostAllocated (Score): prefer the fullest nodes that still fit — bin packing.

Theory of operation
-------------------
The mirror of LeastAllocated: per resource ``requested_after * 100 /
allocatable`` (clipped at 100), averaged with the resource weights.  Packing
pods onto fewer nodes leaves whole nodes idle for large pods and lets node pools
scale in — what batch, GPU and preemptible pools want.  Enable it instead of
LeastAllocated in a profile (:meth:`~pincompute.scheduler.framework.profile.Profile.with_plugins`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pincompute.scheduler.framework.handle import FrameworkHandle

from .allocation import AllocationScore, parse_resources

NAME = "MostAllocated"


class MostAllocated(AllocationScore):
    name = NAME
    prefer_full = True


def new(args: Mapping[str, Any], handle: FrameworkHandle) -> MostAllocated:
    return MostAllocated(parse_resources(args))
