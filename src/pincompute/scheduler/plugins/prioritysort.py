"""PrioritySort (QueueSort): higher priority first, gang members together, then FIFO.

Theory of operation
-------------------
The active queue is a heap on :meth:`PrioritySort.sort_key`:

1. ``-priority`` — reserved before on-demand before preemptible (tier-derived
   priorities, :mod:`pincompute.scheduler.labels`), and any finer
   ``spec.priority`` within them;
2. the arrival of the pod's *group* (its first member to arrive), then the
   group's name — so the members of a gang leave the queue back to back and
   reach Permit together instead of interleaving with another gang's, which is
   what keeps two gangs from each holding part of the cluster;
3. the pod's own arrival order (first come, first served).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pincompute.scheduler.framework.handle import FrameworkHandle
from pincompute.scheduler.framework.interface import QueuedPod

NAME = "PrioritySort"


class PrioritySort:
    name = NAME

    def sort_key(self, qp: QueuedPod) -> tuple[Any, ...]:
        info = qp.info
        return (-info.priority, qp.first_seq, info.group, qp.seq)


def new(args: Mapping[str, Any], handle: FrameworkHandle) -> PrioritySort:
    return PrioritySort()
