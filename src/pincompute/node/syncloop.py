"""A level-triggered, single-flight sync loop: what makes a pod worker a reconciler.

Theory of operation
-------------------
Anything that may matter to a :class:`SyncLoop` only *kicks* it; a kick starts a
task running :meth:`SyncLoop.sync` — which looks at everything, like a
reconciler — unless one runs already, in which case the loop is marked dirty and
the task passes again when the pass ends.  So no change is lost and two passes
never overlap.  A pass that fails is logged and retried a second later.

An idle loop keeps no task (a finished task still holds its frame's result):
what stays armed is at most one wake-up timer (:meth:`SyncLoop.wake_at`, the
earliest time asked for wins) and the callbacks of whoever will kick it.  That
is what lets a sim node hold tens of thousands of pod workers.

Work that must not hold a pass up but must end before the owner stops (a prober
shutting down) runs :meth:`~SyncLoop.in_background`; :meth:`~SyncLoop.halt`
cancels the timer and the pass under way, and waits for that work.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import time
from collections.abc import Coroutine
from typing import Any

RETRY_AFTER_FAILURE = 1.0
"""Seconds until a failed pass is tried again."""


class SyncLoop(abc.ABC):
    """Subclasses implement :meth:`sync` and :meth:`sync_failed` and say what they are."""

    __slots__ = ("_bg", "_dirty", "_task", "_wake")

    def __init__(self) -> None:
        self._dirty = False
        self._task: asyncio.Task[None] | None = None
        self._wake: asyncio.TimerHandle | None = None
        self._bg: set[asyncio.Task[Any]] | None = None

    @abc.abstractmethod
    async def sync(self) -> None:
        """One pass: look at everything and act."""

    @abc.abstractmethod
    def sync_failed(self) -> None:
        """A pass raised (log it; the loop retries)."""

    def loop_name(self) -> str:
        """The name of the pass's task."""
        return type(self).__name__

    def kick(self) -> None:
        """Sync again: now, or after the pass under way."""
        self._dirty = True
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(),
                                                                name=self.loop_name())

    @property
    def kicked(self) -> bool:
        """Another pass is due after this one (something kicked meanwhile)."""
        return self._dirty

    async def wait_idle(self) -> None:
        """Until no pass runs or is due."""
        while self._task is not None:
            await asyncio.shield(self._task)

    def wake_at(self, at: float) -> None:
        """Kick at monotonic time ``at`` (the event loop's clock), unless due earlier."""
        if self._wake is not None:
            if self._wake.when() <= at:
                return
            self._wake.cancel()
        self._wake = asyncio.get_running_loop().call_at(at, self._woken)

    def in_background(self, coro: Coroutine[Any, Any, None]) -> None:
        """Run ``coro`` beside the passes; :meth:`halt` waits for it."""
        task = asyncio.get_running_loop().create_task(coro)
        if self._bg is None:
            self._bg = set()
        self._bg.add(task)
        task.add_done_callback(self._bg.discard)

    async def halt(self, *, background: bool) -> None:
        """Cancel the wake-up and the pass under way; with ``background``, await that work."""
        if self._wake is not None:
            self._wake.cancel()
            self._wake = None
        task = self._task
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        for task in list(self._bg or ()) if background else ():
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    def _woken(self) -> None:
        self._wake = None
        self.kick()

    async def _run(self) -> None:
        try:
            while self._dirty:
                self._dirty = False
                try:
                    await self.sync()
                except asyncio.CancelledError:
                    raise
                except Exception:
                    self.sync_failed()
                    self.wake_at(time.monotonic() + RETRY_AFTER_FAILURE)
        finally:
            self._task = None


__all__ = ["RETRY_AFTER_FAILURE", "SyncLoop"]
