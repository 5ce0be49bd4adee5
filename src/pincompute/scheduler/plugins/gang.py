"""Gang (PreFilter, PostFilter, Permit, Unreserve): all of a pod group, or none of it.

Theory of operation
-------------------
A pod group is the pods labelled ``pincompute.io/pod-group=<name>`` in one
namespace; annotation ``pincompute.io/pod-group-min-member`` says how many must
run together (see :mod:`pincompute.scheduler.labels`).  Following the
coscheduling plugin of kubernetes-sigs/scheduler-plugins:

* **PreFilter** rejects a member while fewer than ``minMember`` pods of the
  group exist (no room is reserved for a group that cannot complete), and
  while the group is *denied* (below).
* **Permit**: a member that passed the filters is reserved on its node and
  *waits* until ``minMember`` members are reserved or bound; the member that
  completes the count allows all waiting siblings at once, and they bind.  A
  waiting member gives up after the group's timeout (annotation
  ``pincompute.io/pod-group-timeout-seconds``, else the plugin's
  ``timeout_seconds``).
* **Release.**  When a member cannot be placed (PostFilter), or a waiting
  member times out or is rejected (Unreserve), every waiting sibling is
  rejected and its reservation released: a partial group never sits on room.
  The group is then *denied* until a cluster event that could add room
  (node added or grown, a pod deleted), so its remaining queued members do not
  reserve again one by one in the same burst.

Two gangs cannot deadlock: the queue sort keeps a group's members together, and
even when they interleave, the first member of either group that does not fit
releases its whole group's reservations, so the other group can complete.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pincompute.scheduler.framework.diagnosis import Diagnosis
from pincompute.scheduler.framework.handle import FrameworkHandle
from pincompute.scheduler.framework.interface import (
    ASSIGNED_POD_DELETE,
    NODE_ADD,
    NODE_ALLOCATABLE,
    NODE_LABEL,
    NODE_TAINT,
    NODE_UNSCHEDULABLE,
    SUCCESS,
    UNASSIGNED_POD_ADD,
    CycleState,
    PostFilterResult,
    Status,
    unschedulable,
    wait,
)
from pincompute.scheduler.podinfo import PodInfo

NAME = "Gang"
DEFAULT_TIMEOUT = 60.0
# Events that may add room; they lift a group's denial.
CAPACITY_EVENTS = frozenset((NODE_ADD, NODE_ALLOCATABLE, NODE_LABEL, NODE_TAINT,
                             NODE_UNSCHEDULABLE, ASSIGNED_POD_DELETE))


class Gang:
    name = NAME

    def __init__(self, handle: FrameworkHandle, *,
                 timeout_seconds: float = DEFAULT_TIMEOUT) -> None:
        self.handle = handle
        self.timeout = timeout_seconds
        self._members: dict[str, set[str]] = {}   # group -> uids of existing pods
        self._denied: dict[str, int] = {}         # group -> capacity epoch when denied
        self._epoch = 0
        self._releasing: set[str] = set()
        self.released = 0

    # -- which pods exist (fed by the scheduler from its informer) --

    def on_pod_seen(self, pod: PodInfo) -> None:
        if pod.group:
            if pod.terminal or pod.deleting:
                self.on_pod_gone(pod)
            else:
                self._members.setdefault(pod.group, set()).add(pod.uid)

    def on_pod_gone(self, pod: PodInfo) -> None:
        if pod.group:
            members = self._members.get(pod.group)
            if members is not None:
                members.discard(pod.uid)
                if not members:
                    del self._members[pod.group]

    def on_cluster_event(self, event: str) -> None:
        if event in CAPACITY_EVENTS:
            self._epoch += 1
            self._denied.clear()

    def group_size(self, group: str) -> int:
        return len(self._members.get(group, ()))

    def placed(self, group: str) -> int:
        """Members reserved (assumed, incl. waiting) or bound."""
        return len(self.handle.table.groups.get(group, ()))

    # -- extension points --

    def pre_filter(self, state: CycleState, pod: PodInfo) -> Status:
        if not pod.group or pod.min_member <= 1:
            return SUCCESS
        size = max(self.group_size(pod.group), 1)
        if size < pod.min_member:
            return unschedulable(f'pod group "{pod.group}" has {size} pod(s), fewer '
                                 f"than minMember {pod.min_member}", resolvable=False)
        if self._denied.get(pod.group) == self._epoch:
            return unschedulable(f'pod group "{pod.group}" was rejected and waits for '
                                 "the cluster to change", resolvable=False)
        return SUCCESS

    def permit(self, state: CycleState, pod: PodInfo, node: str) -> Status:
        if not pod.group or pod.min_member <= 1:
            return SUCCESS
        if self.placed(pod.group) >= pod.min_member:
            for wp in self.handle.waiting:
                if wp.info.group == pod.group:
                    wp.allow(NAME)
            return SUCCESS
        timeout = pod.group_timeout if pod.group_timeout is not None else self.timeout
        return wait(timeout)

    def timeout_message(self, pod: PodInfo) -> str:
        timeout = pod.group_timeout if pod.group_timeout is not None else self.timeout
        return (f'pod group "{pod.group}": {self.placed(pod.group)} of minMember '
                f"{pod.min_member} members could be placed within {timeout:g}s")

    def reserve(self, state: CycleState, pod: PodInfo, node: str) -> Status:
        return SUCCESS

    def unreserve(self, state: CycleState, pod: PodInfo, node: str) -> None:
        if pod.group and pod.min_member > 1:
            self.release(pod.group, f'pod group "{pod.group}" was rejected: member '
                                    f'"{pod.name}" lost its reservation')

    def post_filter(self, state: CycleState, pod: PodInfo,
                    diagnosis: Diagnosis) -> PostFilterResult:
        if pod.group and pod.min_member > 1:
            self.release(pod.group, f'pod group "{pod.group}" was rejected: member '
                                    f'"{pod.name}" is unschedulable')
        return PostFilterResult(unschedulable("gang released", plugin=NAME))

    def release(self, group: str, message: str) -> None:
        """Reject every waiting member of ``group`` (their reservations are released)."""
        self._denied[group] = self._epoch
        if group in self._releasing:
            return  # a member released by this very release: its siblings are being handled
        self._releasing.add(group)
        try:
            for wp in self.handle.waiting:
                if wp.info.group == group and not wp.done:
                    self.released += 1
                    wp.reject(NAME, message)
        finally:
            self._releasing.discard(group)

    def events(self) -> frozenset[str]:
        return CAPACITY_EVENTS | {UNASSIGNED_POD_ADD}


def new(args: Mapping[str, Any], handle: FrameworkHandle) -> Gang:
    return Gang(handle, timeout_seconds=float(args.get("timeout_seconds", DEFAULT_TIMEOUT)))
