"""Pods held at Permit: reserved on a node, waiting for plugins to allow or reject them.

Theory of operation
-------------------
A Permit plugin may answer *wait* with a timeout (the gang plugin does, until
enough members of the group are reserved).  The pod then stays assumed on its
node — its room is held — and becomes a :class:`WaitingPod`.  Every plugin that
asked it to wait must :meth:`~WaitingPod.allow` it; any one may
:meth:`~WaitingPod.reject` it; a plugin's timeout rejects it on that plugin's
behalf.  The outcome is delivered once, to the ``on_done`` callback the
scheduler gave, which binds the pod or releases its reservation.

Timers come from a ``call_later(delay, fn)`` function (the event loop's by
default), so synchronous tests can drive time themselves.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from typing import Any, Protocol

from pincompute.scheduler.podinfo import PodInfo

from .interface import SUCCESS, CycleState, Status, unschedulable


class Cancellable(Protocol):
    def cancel(self) -> None: ...


CallLater = Callable[[float, Callable[[], None]], Cancellable]
DoneCallback = Callable[["WaitingPod", Status], None]


class WaitingPod:
    __slots__ = ("_done", "_on_done", "_timers", "info", "node", "pending", "state")

    def __init__(self, info: PodInfo, node: str, state: CycleState,
                 timeouts: dict[str, float], *, call_later: CallLater,
                 on_done: DoneCallback,
                 timeout_message: Callable[[str], str] | None = None) -> None:
        self.info = info
        self.node = node
        self.state = state
        self.pending = set(timeouts)
        self._on_done = on_done
        self._done = False
        self._timers: dict[str, Cancellable] = {}
        message = timeout_message or (lambda p: f"{p}: timed out waiting at permit")
        for plugin, timeout in timeouts.items():
            self._timers[plugin] = call_later(
                max(timeout, 0.0), functools.partial(self._time_out, plugin, message))

    @property
    def done(self) -> bool:
        return self._done

    def allow(self, plugin: str) -> None:
        if self._done:
            return
        self.pending.discard(plugin)
        timer = self._timers.pop(plugin, None)
        if timer is not None:
            timer.cancel()
        if not self.pending:
            self._finish(SUCCESS)

    def reject(self, plugin: str, message: str) -> None:
        if self._done:
            return
        self._finish(unschedulable(message, plugin=plugin))

    def _time_out(self, plugin: str, message: Callable[[str], str]) -> None:
        self.reject(plugin, message(plugin))

    def _finish(self, status: Status) -> None:
        self._done = True
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()
        self._on_done(self, status)


class WaitingPods:
    """Waiting pods by uid."""

    def __init__(self) -> None:
        self._pods: dict[str, WaitingPod] = {}

    def add(self, wp: WaitingPod) -> None:
        self._pods[wp.info.uid] = wp

    def remove(self, uid: str) -> WaitingPod | None:
        return self._pods.pop(uid, None)

    def get(self, uid: str) -> WaitingPod | None:
        return self._pods.get(uid)

    def __iter__(self) -> Iterator[WaitingPod]:
        return iter(list(self._pods.values()))

    def __len__(self) -> int:
        return len(self._pods)

    def __contains__(self, uid: Any) -> bool:
        return uid in self._pods
