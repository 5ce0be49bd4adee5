"""An environment hosted on its own event loop in a thread, for synchronous callers.

Theory of operation
-------------------
A :class:`~pincompute.kubeenv.KubeEnv` lives on the event loop that started it: its
subprocesses are watched by that loop.  A session-scoped pytest fixture
(``tests/kubeenv_fixture.py``) must outlive the many event loops tests run in, so
:class:`KubeEnvThread` owns a private loop running forever in a daemon thread and
hands :meth:`KubeEnv.up` and :meth:`KubeEnv.down` to it
(:func:`asyncio.run_coroutine_threadsafe`).  Any test on any loop can then use the
clusters: it makes its own client per test with :meth:`KubeCluster.client`.  A start
that fails, times out or is interrupted stops what it started; :meth:`stop` ends the
loop and joins the thread.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

from .environment import KubeEnv

__all__ = ["KubeEnvThread"]

_T = TypeVar("_T")


class KubeEnvThread:
    """Runs a :class:`KubeEnv` on a private event loop in a thread, for synchronous callers.

    A session-scoped pytest fixture must outlive the many event loops tests run
    in; this owns the loop of the environment's subprocesses instead, so any test
    on any loop can use the clusters (a client is made per test with
    :meth:`KubeCluster.client`).
    """

    def __init__(self, env: KubeEnv) -> None:
        self.env = env
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name="kubeenv", daemon=True)
        self._started = False

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_forever()
        self._loop.run_until_complete(self._loop.shutdown_asyncgens())
        self._loop.close()

    def _call(self, coro: Coroutine[Any, Any, _T], timeout: float | None) -> _T:
        future = asyncio.run_coroutine_threadsafe(coro, self._loop)
        try:
            return future.result(timeout)
        except BaseException:
            future.cancel()
            raise

    def start(self, *, timeout: float | None = None) -> KubeEnv:
        """Start the environment; on any failure (also an interrupt) stop what started."""
        self._thread.start()
        self._started = True
        try:
            self._call(self.env.up(), timeout)
        except BaseException:
            self.stop()
            raise
        return self.env

    def stop(self, *, timeout: float = 120.0) -> None:
        """Stop the environment, then the loop and its thread; a no-op if not started."""
        if not self._started:
            return
        self._started = False
        try:
            self._call(self.env.down(), timeout)
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout)
