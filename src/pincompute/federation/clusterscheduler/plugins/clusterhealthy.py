"""ClusterHealthy: only healthy clusters take new placements.

A cluster is excluded while ``spec.unschedulable`` is set, while one of its
``Ready``, ``Reachable`` or ``Connected`` conditions is not True, or while its
``status.health`` is ``Unhealthy`` (:func:`~..clustertable.health_problem`,
evaluated once per MemberCluster change into the table's ``healthy`` column).
A cluster that reports none of these yet is taken to be healthy.  The
NoSchedule taints the health controller puts on failing clusters are
:mod:`.tainttoleration`'s business.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from pincompute.federation.clusterscheduler.interface import Context, Normalize

NAME = "ClusterHealthy"


class ClusterHealthy:
    name = NAME
    static = False
    normalize: Normalize = None

    def filter(self, ctx: Context, pos: np.ndarray) -> np.ndarray:
        return ctx.table.healthy[ctx.rows[pos]]

    def explain(self, ctx: Context, pos: np.ndarray) -> list[str]:
        return [ctx.facts(int(i)).unhealthy for i in pos]


def new(args: Mapping[str, Any]) -> ClusterHealthy:
    return ClusterHealthy()
