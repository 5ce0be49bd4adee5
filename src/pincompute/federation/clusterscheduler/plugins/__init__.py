"""The in-tree cluster scheduler plugins, one module each, registered by name.

Filters: :mod:`.apienablement`, :mod:`.clusterhealthy`, :mod:`.clusteraffinity`,
:mod:`.tainttoleration`, :mod:`.tierpool`, :mod:`.hardware`, :mod:`.resourcesfit`.
Scores: :mod:`.locality`, :mod:`.clusteraffinity` (preferences),
:mod:`.tainttoleration` (PreferNoSchedule), :mod:`.leastallocated`,
:mod:`.balancedallocation`, :mod:`.binpacking`, :mod:`.zonespread`, :mod:`.cost`.
Dividers: :mod:`.duplicated`, :mod:`.staticweight`, :mod:`.dynamicweight`,
:mod:`.aggregated`.
"""

from __future__ import annotations

from pincompute.federation.clusterscheduler.registry import Registry

from . import (
    aggregated,
    apienablement,
    balancedallocation,
    binpacking,
    clusteraffinity,
    clusterhealthy,
    cost,
    duplicated,
    dynamicweight,
    hardware,
    leastallocated,
    locality,
    resourcesfit,
    staticweight,
    tainttoleration,
    tierpool,
    zonespread,
)

_MODULES = (aggregated, apienablement, balancedallocation, binpacking, clusteraffinity,
            clusterhealthy, cost, duplicated, dynamicweight, hardware, leastallocated,
            locality, resourcesfit, staticweight, tainttoleration, tierpool, zonespread)


def in_tree() -> Registry:
    """A registry of every in-tree plugin."""
    return Registry({m.NAME: m.new for m in _MODULES})


__all__ = ["in_tree"]
