"""SchedulingGates (PreEnqueue): pods with ``spec.schedulingGates`` wait outside the queue.

Theory of operation
-------------------
As in Kubernetes, a pod created with scheduling gates is not considered until
whoever owns the gates removes them all (an update to the pod, which the
scheduler sees through its informer and then queues the pod).  A gated pod
costs no scheduling attempts and holds no room.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pincompute.scheduler.framework.handle import FrameworkHandle
from pincompute.scheduler.framework.interface import SUCCESS, Status, unschedulable
from pincompute.scheduler.podinfo import PodInfo

NAME = "SchedulingGates"


class SchedulingGates:
    name = NAME

    def pre_enqueue(self, pod: PodInfo) -> Status:
        if pod.gated:
            return unschedulable("waiting for scheduling gates", resolvable=False, plugin=NAME)
        return SUCCESS


def new(args: Mapping[str, Any], handle: FrameworkHandle) -> SchedulingGates:
    return SchedulingGates()
