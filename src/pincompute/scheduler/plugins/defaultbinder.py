"""DefaultBinder (Bind): write the decision through the scheduler's :class:`~..binder.Binder`.

Theory of operation
-------------------
Binding is the only extension point that talks to the API, and it is
asynchronous: the scheduler runs many bindings concurrently, off the decision
path.  This plugin delegates to the configured binder (a merge patch of
``spec.nodeName`` on the embedded store, the ``pods/binding`` subresource on a
real cluster) and turns its errors into a status, so the scheduler can forget
the assumed pod and retry it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pincompute.kube.errors import ApiError
from pincompute.scheduler.framework.handle import FrameworkHandle
from pincompute.scheduler.framework.interface import SUCCESS, Code, CycleState, Status
from pincompute.scheduler.podinfo import PodInfo

NAME = "DefaultBinder"


class DefaultBinder:
    name = NAME

    def __init__(self, handle: FrameworkHandle) -> None:
        self.handle = handle

    async def bind(self, state: CycleState, pod: PodInfo, node: str) -> Status:
        binder = self.handle.binder
        if binder is None:
            return Status(Code.ERROR, ("no binder configured",), NAME)
        try:
            await binder.bind(pod, node)
        except ApiError as e:
            return Status(Code.ERROR, (f"binding rejected: {e.message}",), NAME)
        return SUCCESS


def new(args: Mapping[str, Any], handle: FrameworkHandle) -> DefaultBinder:
    return DefaultBinder(handle)
