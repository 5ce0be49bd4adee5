"""The manager: runs shared informers, many controllers, and leader election.

Theory of operation
-------------------
A component (the federation control plane, a member cluster's operators, the
scheduler) is one :class:`Manager`.  It owns

* an :class:`~pincompute.runtime.informer.InformerFactory`, so every controller it
  runs shares one informer per collection;
* a :class:`~pincompute.runtime.metrics.RuntimeMetrics` registry;
* its controllers and any other long-running *runnables* (plain coroutine
  functions), each marked as needing leadership or not;
* optionally a :class:`~pincompute.runtime.leaderelection.LeaderElector`.

:meth:`Manager.run` (or ``async with manager``) starts, in order:

1. the informers, and waits until they have all listed — on every replica,
   leader or not, so a standby takes over with a warm cache;
2. the runnables and controllers that do not need leadership;
3. if leader election is configured, the elector, and once it leads, the
   controllers and runnables that need leadership (without leader election they
   start at once).

Shutdown (:meth:`Manager.stop`, cancellation, a signal, or losing the lease)
goes the other way: the controllers stop taking keys and get ``shutdown_timeout``
seconds, together, to finish the reconciles in flight, after which those are
cancelled; runnables are cancelled; the lease is released (only after our
reconciles stopped, so a successor never overlaps with them); informers stop.

A runnable that raises, or controllers that cannot start, also shut the manager
down, and :meth:`run` raises that error.

**Child managers** are how a manager grows and shrinks while it runs.  A group
of controllers that comes and goes together — everything of one member cluster,
say — is built on its own :class:`Manager` (its own informers; metrics may be
shared) and run by its parent with :meth:`Manager.add_child`, before or after the
parent started: it starts with its group (at once if that group already runs,
gated on the parent's leadership by default) and
:meth:`Manager.remove_child` stops it — its controllers drain with their grace
period, its runnables are cancelled, its informers stop — while the parent and
its other children carry on.  Controllers themselves are only added before a
start: their informers' first list gates the start, which a running manager is
past, and a child is the unit that starts (and is stopped) as a whole.  Runnables
added while running start at once when their group runs.  At the parent's
shutdown the children stop together with its own controllers, with the same
grace period (none after losing the lease: a successor may already lead), a
failing child fails the parent like any runnable, and the lease is released
only after every child has stopped.

Losing the lease is fatal for the manager, as in controller-runtime: it shuts
down at once (no grace period: a successor may already lead) and :meth:`run`
raises :class:`LeadershipLost`.  A supervisor (systemd, Kubernetes,
``pincompute up``) restarts the process, which campaigns again from a clean
slate — simpler and safer than trying to restart controllers in place, and
correct because everything is level-triggered.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from types import TracebackType

from pincompute.kube.protocol import KubeClient
from pincompute.kube.resource import Resource

from .controller import Controller
from .informer import InformerFactory, SharedInformer
from .leaderelection import LeaderElectionConfig, LeaderElector
from .logging import get_logger
from .metrics import RuntimeMetrics
from .reconciler import ReconcileFunc, Reconciler
from .workqueue import RateLimiter

Runnable = Callable[[], Awaitable[None]]

_log = get_logger(__name__)


class LeadershipLost(RuntimeError):
    """The manager lost its lease and shut down; the process should restart."""


@dataclass(slots=True)
class _RunnableEntry:
    name: str
    fn: Runnable
    needs_leader: bool
    task: asyncio.Task[None] | None = None
    child: Manager | None = None


class Manager:
    """Runs informers, controllers and runnables, with optional leader election."""

    def __init__(self, *, name: str = "manager", metrics: RuntimeMetrics | None = None,
                 informers: InformerFactory | None = None,
                 leader_election: LeaderElectionConfig | None = None,
                 leader_election_client: KubeClient | None = None,
                 shutdown_timeout: float = 30.0, sync_timeout: float | None = 120.0) -> None:
        if leader_election is not None and leader_election_client is None:
            raise ValueError("leader_election needs leader_election_client")
        self.name = name
        self.metrics = metrics if metrics is not None else RuntimeMetrics()
        self.informers = informers if informers is not None else InformerFactory(
            metrics=self.metrics)
        self.shutdown_timeout = shutdown_timeout
        self.sync_timeout = sync_timeout
        self._controllers: list[tuple[Controller, bool]] = []
        self._runnables: list[_RunnableEntry] = []
        self._elector: LeaderElector | None = None
        self._elector_task: asyncio.Task[None] | None = None
        if leader_election is not None:
            assert leader_election_client is not None
            self._elector = LeaderElector(
                leader_election_client, leader_election,
                on_started_leading=self._on_started_leading,
                on_stopped_leading=self._on_stopped_leading, metrics=self.metrics)
        self._stop = asyncio.Event()
        self._grace: float | None = None
        """The grace period :meth:`stop` asked for (``None``: ``shutdown_timeout``)."""
        self._groups_started: set[bool] = set()
        """The groups (by ``needs_leader``) whose runnables have been started."""
        self._started = asyncio.Event()
        self._lost_leadership = False
        self._leader_started = False
        self._leader_start_task: asyncio.Task[None] | None = None
        self._running = False
        self._stopped = False
        self._run_task: asyncio.Task[None] | None = None
        self._failure: BaseException | None = None
        self._log = _log.bind(manager=name)

    # -- building --

    def informer(self, client: KubeClient, resource: Resource, *,
                 namespace: str | None = None, label_selector: str | None = None,
                 field_selector: str | None = None) -> SharedInformer:
        """The shared informer for a collection (see :class:`InformerFactory`)."""
        return self.informers.informer(client, resource, namespace=namespace,
                                       label_selector=label_selector,
                                       field_selector=field_selector)

    def controller(self, name: str, reconciler: Reconciler | ReconcileFunc, *,
                   workers: int = 1, rate_limiter: RateLimiter | None = None,
                   reconcile_timeout: float | None = None,
                   needs_leader: bool = True) -> Controller:
        """Create a controller reporting into this manager's metrics, and add it."""
        ctrl = Controller(name, reconciler, workers=workers, rate_limiter=rate_limiter,
                          metrics=self.metrics, reconcile_timeout=reconcile_timeout)
        self.add(ctrl, needs_leader=needs_leader)
        return ctrl

    def add(self, controller: Controller, *, needs_leader: bool = True) -> None:
        if self._running:
            raise RuntimeError("add controllers before the manager starts")
        if any(c.name == controller.name for c, _ in self._controllers):
            raise ValueError(f"a controller named {controller.name!r} already exists")
        self._controllers.append((controller, needs_leader))

    def add_runnable(self, fn: Runnable, *, name: str = "",
                     needs_leader: bool = True) -> None:
        """Run ``fn()`` as a task while the manager runs (cancelled at shutdown).

        Added while the manager runs, it starts at once if its group already has.
        """
        self._add_entry(_RunnableEntry(name or getattr(fn, "__qualname__", "runnable"),
                                       fn, needs_leader))

    def add_child(self, child: Manager, *, needs_leader: bool = True) -> None:
        """Run the manager ``child`` while this one runs, before or after it started.

        It starts with its group (gated on this manager's leadership unless
        ``needs_leader`` is false) and stops at this manager's shutdown, with its
        controllers, or earlier by :meth:`remove_child`.  ``child`` must not have
        leader election of its own: it acts under this manager's.
        """
        if child is self or child._elector is not None:
            raise ValueError("a child manager runs under its parent's leadership, "
                             "without an elector of its own")
        if child._running or child._stopped:
            raise RuntimeError(f"manager {child.name} has already run")
        if any(e.child is child or e.name == child.name for e in self._runnables):
            raise ValueError(f"a runnable named {child.name!r} already exists")
        self._add_entry(_RunnableEntry(child.name, child.run, needs_leader, child=child))

    async def remove_child(self, child: Manager) -> None:
        """Stop a child (graceful, as a shutdown) and wait until it has stopped.

        Its failure, if it fails on the way, fails this manager as always.
        """
        entry = next((e for e in self._runnables if e.child is child), None)
        if entry is None:
            raise LookupError(f"manager {child.name} is not a child of {self.name}")
        self._runnables.remove(entry)
        child.stop()
        if entry.task is not None:
            await asyncio.gather(entry.task, return_exceptions=True)

    def _add_entry(self, entry: _RunnableEntry) -> None:
        if self._stopped:
            raise RuntimeError(f"manager {self.name} has stopped")
        self._runnables.append(entry)
        if entry.needs_leader in self._groups_started:
            self._start_runnable(entry)

    @property
    def controllers(self) -> list[Controller]:
        return [c for c, _ in self._controllers]

    @property
    def children(self) -> list[Manager]:
        """The child managers (see :meth:`add_child`)."""
        return [e.child for e in self._runnables if e.child is not None]

    # -- state --

    @property
    def elector(self) -> LeaderElector | None:
        return self._elector

    @property
    def is_leader(self) -> bool:
        """Whether leader-gated work may run (always true without leader election)."""
        return self._elector.is_leader if self._elector is not None else self._running

    async def wait_started(self) -> None:
        """Wait until informers synced and non-gated work started."""
        await self._started.wait()

    def stop(self, *, grace_period: float | None = None) -> None:
        """Ask the manager to shut down (returns at once; :meth:`run` finishes the job).

        ``grace_period``: seconds the reconciles in flight get to finish (default
        ``shutdown_timeout``).
        """
        if grace_period is not None and not self._stop.is_set():
            self._grace = grace_period
        self._stop.set()

    # -- running --

    async def run(self, *, handle_signals: bool = False) -> None:
        """Run until :meth:`stop`, cancellation or (with ``handle_signals``) SIGINT/SIGTERM."""
        if self._running or self._stopped:
            raise RuntimeError("a manager runs once")
        self._running = True
        loop = asyncio.get_running_loop()
        if handle_signals:
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, self.stop)
        try:
            await self._start()
            await self._stop.wait()
        finally:
            if handle_signals:
                for sig in (signal.SIGINT, signal.SIGTERM):
                    loop.remove_signal_handler(sig)
            # Shut down even when cancelled or failed: reconciles in flight get their
            # grace period and the lease is released either way.
            await self._shutdown()
        if self._failure is not None:
            raise self._failure
        if self._lost_leadership:
            raise LeadershipLost(f"manager {self.name} lost its lease")

    async def __aenter__(self) -> Manager:
        task = asyncio.get_running_loop().create_task(self.run(), name=f"manager {self.name}")
        self._run_task = task
        started = asyncio.ensure_future(self._started.wait())
        await asyncio.wait((started, task), return_when=asyncio.FIRST_COMPLETED)
        started.cancel()
        if task.done():
            task.result()  # raise what made it fail
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()
        if self._run_task is not None:
            await self._run_task

    async def _start(self) -> None:
        self.informers.start()
        try:
            async with asyncio.timeout(self.sync_timeout):
                synced = await self.informers.wait_synced()
        except TimeoutError:
            raise TimeoutError(f"manager {self.name}: informers did not sync within "
                               f"{self.sync_timeout}s") from None
        if not synced:
            raise RuntimeError(f"manager {self.name}: an informer stopped before syncing")
        await self._start_group(needs_leader=False)
        if self._elector is None:
            await self._start_group(needs_leader=True)
            self._leader_started = True
        else:
            self._elector_task = asyncio.get_running_loop().create_task(
                self._elector.run(), name=f"manager {self.name} leader election")
            self._elector_task.add_done_callback(self._elector_done)
        self._started.set()
        self._log.info("started %d controllers", len(self._controllers))

    async def _start_group(self, *, needs_leader: bool) -> None:
        # Marked before the tasks are made, with no await between: a runnable added
        # meanwhile is either in this loop or started by _add_entry, never neither.
        self._groups_started.add(needs_leader)
        for entry in tuple(self._runnables):
            if entry.needs_leader == needs_leader:
                self._start_runnable(entry)
        await asyncio.gather(*(c.start(sync_timeout=self.sync_timeout)
                               for c, gated in self._controllers if gated == needs_leader))

    def _start_runnable(self, entry: _RunnableEntry) -> None:
        if entry.task is None:
            entry.task = asyncio.get_running_loop().create_task(
                self._run_runnable(entry), name=f"manager {self.name} {entry.name}")

    async def _run_runnable(self, entry: _RunnableEntry) -> None:
        try:
            await entry.fn()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            # A runnable that dies takes the manager down (run() raises its error):
            # silently running without it would be worse than restarting.
            self._log.exception("runnable %s failed, shutting down", entry.name)
            self._fail(exc)

    def _on_started_leading(self) -> None:
        if self._stop.is_set():
            return
        self._log.info("leading: starting leader-only controllers")
        self._leader_started = True
        self._leader_start_task = asyncio.get_running_loop().create_task(
            self._start_leader_group(), name=f"manager {self.name} start leader group")

    async def _start_leader_group(self) -> None:
        try:
            await self._start_group(needs_leader=True)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self._log.exception("starting leader-only controllers failed, shutting down")
            self._fail(exc)

    def _fail(self, exc: BaseException) -> None:
        if self._failure is None:
            self._failure = exc
        self.stop()

    def _elector_done(self, task: asyncio.Task[None]) -> None:
        if task.cancelled():
            return
        exc = task.exception()
        if exc is not None:
            # Without a working elector we can neither lead safely nor ever lead.
            self._log.error("leader election failed, shutting down: %r", exc)
            self._fail(exc)

    def _on_stopped_leading(self) -> None:
        if self._stop.is_set():
            return  # our own shutdown released the lease
        self._log.error("lost the lease, shutting down")
        self._lost_leadership = True
        self.stop()

    async def _shutdown(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        self._stop.set()
        self._log.info("shutting down")
        if self._leader_start_task is not None:
            self._leader_start_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._leader_start_task
        # 1. Controllers, ours and the children's: stop taking keys; one shared grace
        #    period for in-flight work.  After losing the lease there is no grace: a
        #    successor may already lead.
        grace = 0.0 if self._lost_leadership else (
            self._grace if self._grace is not None else self.shutdown_timeout)
        children = [e for e in self._runnables if e.child is not None]
        for entry in children:
            assert entry.child is not None
            entry.child.stop(grace_period=grace)
        results = await asyncio.gather(
            *(c.shutdown(grace_period=grace) for c, _ in self._controllers),
            *(e.task for e in children if e.task is not None),
            return_exceptions=True)
        for (ctrl, _), res in zip(self._controllers, results, strict=False):
            if res is False:
                self._log.warning("controller %s: reconciles were cancelled at shutdown",
                                  ctrl.name)
            elif isinstance(res, BaseException):
                self._log.error("controller %s failed to shut down: %r", ctrl.name, res)
        # 2. Runnables.
        tasks = [e.task for e in self._runnables if e.task is not None and not e.task.done()]
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        # 3. The lease, now that nothing we run acts as leader.
        if self._elector_task is not None:
            self._elector_task.cancel()
            await asyncio.gather(self._elector_task, return_exceptions=True)
        # 4. Informers last: controllers read caches until the end.
        await self.informers.stop()
        self._running = False
        self._log.info("stopped")

    def __repr__(self) -> str:
        return f"<Manager {self.name} controllers={len(self._controllers)}>"

