"""One container of a pod on the node: its record, and starting, stopping and watching it.

Theory of operation
-------------------
The pod worker keeps a :class:`ContainerRecord` per container: the spec it runs
and the spec the Pod asks for (a hash tells them apart: per-container updates),
its state in the container table (:mod:`.containerlifecycle`), the running
instance, restart count and back-off, probe results, the last termination.
Every operation the worker's planner asks for is a method here, and every state
change goes through the table's :func:`~.containerlifecycle.transition`:

* :meth:`~ContainerRecord.start` launches an instance on the runtime, opening
  the next log attempt; a runtime refusal is an exit (code 128,
  ``StartError``) handled like any other;
* :meth:`~ContainerRecord.kill` sends SIGTERM and arms a SIGKILL for the end of
  the grace period the worker gives it (SIGKILL at once for no grace);
* :meth:`~ContainerRecord.stop` and :meth:`~ContainerRecord.update` move a
  container without a process (teardown; a new spec);
* an exit is learnt from the instance's ``exited`` future, and what it means —
  restart after back-off, replace with the new spec, or stop for good — is
  decided at once (:func:`~.containerlifecycle.exit_event`), the back-off delay
  coming from the container's :class:`~.backoff.Backoff`;
* probes (:mod:`.probes`) turn into ``started``/``ready``/``unhealthy`` facts on
  the record; a simulated runtime declares them instead (timers, no sockets).

What an operation needs of its pod — the context, the sandbox, a way to record
an event or ask for another sync — it gets through :class:`PodHandle` (the pod
worker), passed in rather than held, so the record stays small: a sim node holds
tens of thousands of them.
"""

from __future__ import annotations

import asyncio
import hashlib
import signal
import sys
import time
import types
from collections.abc import Coroutine, Iterable, Mapping
from typing import Any, Protocol

import orjson

from pincompute.kube.objects import now

from . import env as envmod
from .backoff import Backoff, BackoffPolicy
from .containerlifecycle import ContainerView, Event, State, exit_event, transition
from .containerruntime import ExitStatus, Instance, Sandbox, StartError
from .logs import LogNotFound, LogStore, LogWriter, attempts
from .probes import Handlers, ProbeKind, Prober, ProbeSpec
from .status import ContainerFacts, Termination
from .workercontext import WorkerContext

NO_ENV: Mapping[str, str] = types.MappingProxyType({})
"""The environment kept for a container nothing execs into (shared, empty)."""

PROBE_KINDS: tuple[ProbeKind, ...] = ("startup", "liveness", "readiness")

KILL_MESSAGES = {
    "Stopping": "Stopping container {name}",
    "Unhealthy": "Container {name} failed a probe, will be restarted",
    "SpecChanged": "Container {name} definition changed, will be restarted",
    "Removed": "Container {name} was removed from the pod",
}
"""The ``Killing`` event's message per kill reason."""


def spec_hash(container: Mapping[str, Any]) -> str:
    # Interned: the replicas of a workload run equal specs, and every record keeps one.
    return sys.intern(hashlib.blake2b(orjson.dumps(container, option=orjson.OPT_SORT_KEYS),
                                      digest_size=12).hexdigest())


class PodHandle(Protocol):
    """What a container's operations need of their pod (the pod worker)."""

    @property
    def ctx(self) -> WorkerContext: ...
    @property
    def name(self) -> str: ...
    @property
    def log_dir(self) -> str: ...
    @property
    def sandbox(self) -> Sandbox | None: ...
    @property
    def policy(self) -> str:
        """The pod's ``restartPolicy``."""
    @property
    def stopping(self) -> bool:
        """The pod is terminating."""

    def kick(self) -> None:
        """Sync the pod again (soon)."""

    def event(self, type_: str, reason: str, message: str) -> None:
        """Record an Event about the pod."""

    def in_background(self, coro: Coroutine[Any, Any, None]) -> None:
        """Run ``coro`` as a task the pod awaits when it shuts down."""


class ContainerRecord:
    """Everything the node knows about one container of the pod."""

    __slots__ = (
        "attempt", "backoff", "backoff_until", "desired", "env", "ever_started", "instance",
        "kill_reason", "kill_timer", "last_termination", "log", "name", "prober", "ready",
        "removed", "replacing", "restart_count", "sidecar", "spec", "spec_hash", "started",
        "started_time", "state", "termination", "timers", "unhealthy", "waiting_message",
        "waiting_reason",
    )

    def __init__(self, spec: Mapping[str, Any], policy: BackoffPolicy) -> None:
        self.name: str = spec["name"]
        self.spec: Mapping[str, Any] = spec
        self.desired: Mapping[str, Any] = spec
        self.spec_hash = spec_hash(spec)
        self.sidecar = spec.get("type") == "sidecar"
        self.state = State.WAITING
        self.instance: Instance | None = None
        self.attempt = 0
        self.restart_count = 0
        self.ever_started = False
        self.started_time = ""
        self.ready = False
        self.started = False
        self.unhealthy: str | None = None
        self.replacing = False
        self.kill_reason: str | None = None
        self.kill_timer: asyncio.TimerHandle | None = None
        # A tuple, empty (one shared object) unless a simulated delay is pending.
        self.timers: tuple[asyncio.TimerHandle, ...] = ()
        self.backoff = Backoff(policy)
        self.backoff_until: float | None = None
        self.termination: Termination | None = None
        self.last_termination: Termination | None = None
        self.waiting_reason = ""
        self.waiting_message = ""
        self.prober: Prober | None = None
        self.log: LogWriter | None = None
        self.removed = False
        self.env: Mapping[str, str] = NO_ENV

    def adopt(self, spec: Mapping[str, Any]) -> None:
        """Run ``spec`` from the next start on."""
        self.spec = spec
        self.desired = spec
        self.spec_hash = spec_hash(spec)
        self.sidecar = spec.get("type") == "sidecar"

    @property
    def outdated(self) -> bool:
        return self.desired is not self.spec and spec_hash(self.desired) != self.spec_hash

    @property
    def alive(self) -> bool:
        """Its process runs and has not been signalled."""
        return self.state in (State.STARTING, State.RUNNING)

    def view(self) -> ContainerView:
        """What the planner sees of it."""
        return ContainerView(name=self.name, sidecar=self.sidecar, state=self.state,
                             ready=self.ready, backoff_until=self.backoff_until,
                             unhealthy=self.unhealthy, outdated=self.outdated)

    def facts(self) -> ContainerFacts:
        """What the status is made of."""
        return ContainerFacts(
            name=self.name, type="sidecar" if self.sidecar else "main",
            image=str(self.spec.get("image", "")), state=self.state, ready=self.ready,
            started=self.started, restart_count=self.restart_count,
            ever_started=self.ever_started, started_at=self.started_time,
            container_id=self.instance.container_id if self.instance is not None else "",
            waiting_reason=self.waiting_reason, waiting_message=self.waiting_message,
            termination=self.termination, last_termination=self.last_termination)

    # -- without a process ---------------------------------------------------------------------

    def stop(self) -> None:
        """Teardown of a container that runs no process: it never runs again."""
        self.state = transition(self.state, Event.STOP)
        self.termination = self.last_termination
        self.backoff_until = None
        if self.waiting_reason == "CrashLoopBackOff":
            self.waiting_reason = ""
            self.waiting_message = ""

    def update(self) -> None:
        """Run the new spec from the next start (the container runs no process)."""
        self.state = transition(self.state, Event.UPDATE)
        self.adopt(self.desired)
        self.backoff.reset()
        self.backoff_until = None
        self.waiting_reason = ""
        self.waiting_message = ""
        self.termination = None

    # -- start ---------------------------------------------------------------------------------

    def prepare_start(self) -> None:
        """Before building the environment: a restart runs the newest spec."""
        if self.state is State.BACKOFF or self.outdated:
            self.adopt(self.desired)

    def config_failed(self, pod: PodHandle, exc: Exception) -> None:
        """Its environment could not be built: wait, retrying, as the kubelet does."""
        self.state = transition(transition(self.state, Event.START), Event.EXITED_RESTART)
        self.backoff_until = time.monotonic() + self.backoff.next_delay(ran_for=0.0)
        self.waiting_reason = "CreateContainerConfigError"
        self.waiting_message = str(exc)
        pod.event("Warning", "Failed", f"Error: {exc}")

    async def start(self, pod: PodHandle, sandbox: Sandbox, *, pod_object: Mapping[str, Any],
                    environment: Mapping[str, str]) -> None:
        """Launch the next instance (``pod_object``: the pod as the environment saw it)."""
        ctx = pod.ctx
        argv = envmod.command_line(self.spec, environment)
        log = None
        if ctx.logs is not None:
            log = ctx.logs.open_writer(pod.log_dir, self.name, self.attempt)
        attempt = self.attempt
        self.attempt += 1
        if self.ever_started or attempt > 0:
            self.restart_count += 1
        self.ever_started = True
        try:
            inst = await ctx.runtime.start(sandbox, self.spec, pod=pod_object, env=environment,
                                           argv=argv, attempt=attempt, log=log)
        except StartError as exc:
            if log is not None and ctx.logs is not None:
                ctx.logs.close_writer(log)
            self.state = transition(self.state, Event.START)
            stamp = now()
            pod.event("Warning", "Failed", f"Error: {exc}")
            self.exited(pod, ExitStatus(128, "StartError", str(exc), None, stamp),
                        started_at=stamp, ran_for=0.0, container_id="")
            return
        self.state = transition(self.state, Event.START)
        self.instance = inst
        self.env = environment
        self.log = log
        self.started_time = inst.started_time
        self.waiting_reason = ""
        self.waiting_message = ""
        self.termination = None
        inst.on_exit(ContainerRecord._on_exit, self, pod, inst)
        if ctx.runtime.simulated:
            self.env = NO_ENV  # nothing execs into a simulated container; keep nothing
        pod.event("Normal", "Started", f"Started container {self.name}")
        self._watch_health(pod, sandbox, inst, environment)

    def _watch_health(self, pod: PodHandle, sandbox: Sandbox, inst: Instance,
                      environment: Mapping[str, str]) -> None:
        def started() -> None:
            if self.instance is inst and self.state is State.STARTING:
                self.state = transition(self.state, Event.STARTED)
                self.started = True
                pod.kick()

        def ready(ok: bool, message: str = "") -> None:
            if self.instance is inst and self.ready != ok:
                self.ready = ok
                if not ok and message:
                    pod.event("Warning", "Unhealthy", f"Readiness probe failed: {message}")
                pod.kick()

        def unhealthy(message: str) -> None:
            if self.instance is inst and self.unhealthy is None:
                self.unhealthy = message
                pod.event("Warning", "Unhealthy", message)
                pod.kick()

        ctx = pod.ctx
        loop = asyncio.get_running_loop()
        if ctx.runtime.simulated:
            # Immediate ones are not kept: a fired handle is dead weight per container.
            if inst.started_after > 0:
                self.timers += (loop.call_later(inst.started_after, started),)
            else:
                loop.call_soon(started)
            if inst.ready_at is not None:
                delay = inst.ready_at - time.monotonic()
                if delay > 0:
                    self.timers += (loop.call_later(delay, ready, True),)
                else:
                    loop.call_soon(ready, True)
            return
        specs = {kind: ProbeSpec.from_container(self.spec, kind, scale=ctx.probe_scale)
                 for kind in PROBE_KINDS}
        if not any(specs.values()):
            started()
            ready(True)
            return
        ports = {str(p["name"]): int(p["containerPort"]) for p in self.spec.get("ports") or ()
                 if p.get("name")}
        handlers = Handlers(host=sandbox.ip, ports=ports,
                            execute=ctx.runtime.exec_probe(sandbox, self.spec, environment))
        self.prober = Prober(specs, handlers, on_started=started, on_unhealthy=unhealthy,
                             on_ready=ready)
        self.prober.start()

    # -- stop ----------------------------------------------------------------------------------

    def kill(self, pod: PodHandle, reason: str, *, grace: float) -> None:
        """Signal a live instance to stop: SIGTERM, SIGKILL after ``grace`` seconds."""
        inst = self.instance
        if inst is None or not self.alive:
            return
        self.state = transition(self.state, Event.KILL)
        self.kill_reason = reason
        self.replacing = reason == "SpecChanged"
        self.stop_prober(pod)
        grace = max(0.0, grace)
        message = KILL_MESSAGES.get(reason, KILL_MESSAGES["Stopping"])
        pod.event("Normal", "Killing", message.format(name=self.name))
        if grace <= 0:
            inst.signal(signal.SIGKILL)
            return
        inst.signal(signal.SIGTERM)
        self.kill_timer = asyncio.get_running_loop().call_later(grace, inst.signal,
                                                                signal.SIGKILL)

    def kill_by(self, deadline: float) -> None:
        """Bring an armed SIGKILL forward to ``deadline`` (monotonic), if it is later."""
        if self.kill_timer is not None and self.instance is not None and \
                self.kill_timer.when() > deadline:
            self.kill_timer.cancel()
            self.kill_timer = asyncio.get_running_loop().call_at(
                deadline, self.instance.signal, signal.SIGKILL)

    # -- exits ---------------------------------------------------------------------------------

    def _on_exit(self, pod: PodHandle, inst: Instance, status: ExitStatus) -> None:
        if self.instance is not inst:
            return
        self.exited(pod, status, started_at=inst.started_time,
                    ran_for=time.monotonic() - inst.started_at, container_id=inst.container_id)
        pod.kick()

    def exited(self, pod: PodHandle, status: ExitStatus, *, started_at: str, ran_for: float,
               container_id: str) -> None:
        """The instance ended: decide what that means (restart, replace, done) now."""
        self.stop_prober(pod)
        self.cancel_timers()
        self.close_log(pod.ctx.logs)
        teardown = pod.stopping or self.kill_reason == "Stopping" or self.removed
        event = exit_event(policy=pod.policy, sidecar=self.sidecar, succeeded=status.succeeded,
                           teardown=teardown, replacing=self.replacing)
        self.state = transition(self.state, event)
        term = Termination(status, started_at, container_id)
        if self.state is State.TERMINATED:
            self.termination = term
        else:
            self.last_termination = term
            self.termination = None
        if self.state is State.BACKOFF:
            delay = self.backoff.next_delay(ran_for=ran_for)
            self.backoff_until = time.monotonic() + delay
            self.waiting_reason = "CrashLoopBackOff"
            self.waiting_message = (f"back-off {delay:g}s restarting failed "
                                    f"container={self.name} pod={pod.name}")
            pod.event("Warning", "BackOff", "Back-off restarting failed container "
                      f"{self.name} in pod {pod.name}")
        elif self.state is State.WAITING:
            self.adopt(self.desired)
            self.backoff.reset()
            self.backoff_until = None
        if status.reason == "OOMKilled":
            pod.event("Warning", "OOMKilled", f"Container {self.name} exceeded its memory "
                      "limit and was killed")
        self.instance = None
        self.ready = False
        self.started = False
        self.unhealthy = None
        self.replacing = False
        self.kill_reason = None

    # -- clean-up ------------------------------------------------------------------------------

    def stop_prober(self, pod: PodHandle) -> None:
        prober, self.prober = self.prober, None
        if prober is not None:
            pod.in_background(prober.stop())

    def cancel_timers(self) -> None:
        for t in self.timers:
            t.cancel()
        self.timers = ()
        if self.kill_timer is not None:
            self.kill_timer.cancel()
            self.kill_timer = None

    def close_log(self, logs: LogStore | None) -> None:
        log, self.log = self.log, None
        if log is not None and logs is not None:
            logs.close_writer(log)


def initial_records(pod: Mapping[str, Any], policy: BackoffPolicy, logs: LogStore | None,
                    log_dir: str, *, terminated: bool) -> dict[str, ContainerRecord]:
    """The records of a pod new to this agent, which may have run it before.

    After an agent restart the restart count goes on (from the status), and the
    next instance's log follows the last one's, so ``--previous`` shows what ran
    before.  ``terminated``: the pod finished before (its containers are done).
    """
    status = pod.get("status") or {}
    restarts = {c.get("name"): int(c.get("restartCount") or 0)
                for c in status.get("containerStatuses") or ()}
    records: dict[str, ContainerRecord] = {}
    for c in (pod.get("spec") or {}).get("containers") or ():
        rec = ContainerRecord(c, policy)
        rec.restart_count = restarts.get(rec.name, 0)
        if logs is not None:
            try:
                found = attempts(logs.container_dir(log_dir, rec.name))
            except LogNotFound:  # a name that is no path component: the sandbox refuses it
                found = []
            rec.attempt = found[-1] + 1 if found else 0
        if terminated:
            rec.state = State.TERMINATED
        records[rec.name] = rec
    return records


def reconcile_spec(records: dict[str, ContainerRecord], containers: Iterable[Mapping[str, Any]],
                   policy: BackoffPolicy) -> dict[str, ContainerRecord] | None:
    """The records for the Pod's containers now, or None if nothing changed.

    Records are kept in spec order; a new container gets a record, a changed one
    its ``desired`` spec, and one no longer in the Pod is marked ``removed`` (kept
    last, until its process has exited).
    """
    desired = {c["name"]: c for c in containers}
    if list(desired) == [n for n, r in records.items() if not r.removed] and all(
            records[n].desired is c for n, c in desired.items()):
        return None
    ordered: dict[str, ContainerRecord] = {}
    for name, c in desired.items():
        rec = records.get(name)
        if rec is None:
            rec = ContainerRecord(c, policy)
        else:
            rec.desired = c
            rec.removed = False
        ordered[name] = rec
    for name, rec in records.items():
        if name not in desired:
            rec.removed = True
            ordered[name] = rec
    return ordered


__all__ = ["KILL_MESSAGES", "NO_ENV", "ContainerRecord", "PodHandle", "initial_records",
           "reconcile_spec", "spec_hash"]
