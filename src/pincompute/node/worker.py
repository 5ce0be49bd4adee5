"""The pod worker: runs one pod on the node, from its first sync to its release.

Theory of operation
-------------------
There is one :class:`PodWorker` per pod bound to the node (keyed by the pod's
uid).  It is level-triggered like a reconciler (:mod:`.syncloop`): anything that
may matter — a new version of the Pod object, a process exit, a probe result, a
timer — only *kicks* it, and a kick runs a sync pass, which looks at everything;
passes never overlap and no kick is lost.  An idle pod costs no task: only its
timers (back-off, deadline, simulated delays) and its instances' exit callbacks
stay armed, which is what lets a sim node hold many pods.

The worker orchestrates; each part is a module of its own:

* where the pod is in its life — :mod:`.podlifecycle`, a table:
  ``SYNCING → TERMINATING → TERMINATED → GONE``;
* its sandbox (network, config objects, volumes) — :mod:`.podsandbox`;
* what to do to its containers next — the planner,
  :func:`.containerlifecycle.plan`, over a snapshot of the containers;
* doing it (start, kill, stop, update), exits and probes — the container
  records, :mod:`.containerrunner`;
* its status — :mod:`.status`.

A sync pass, in order:

1. a deletion, eviction or rejection not acted on yet is a ``STOP``: the grace
   period starts (a shorter one later — a second delete — brings the SIGKILLs
   forward);
2. ``SYNCING`` without a sandbox: set it up (after a back-off while that fails;
   a network refusal rejects the pod);
3. compare each container's spec in the Pod with the one it runs (a hash), to
   update only the containers that changed, never the whole pod;
4. plan and apply until nothing immediate is left; once the planner finds every
   container terminated for good: ``CONTAINERS_DONE``;
5. ``TERMINATED``: tear the sandbox down (once); a pod being deleted is then
   deleted for good (``delete`` with grace 0, which only the node does, after
   its containers are stopped);
6. write the status if it changed — once per burst of passes;
7. gone from the API and torn down: ``RELEASE`` — logs removed, the agent told.

Stopping a container sends SIGTERM and arms a SIGKILL for the end of its grace
period: during pod teardown the pod's grace period is shared (main containers
first, sidecars get what is left, at least ``sidecar_min_grace``); a container
restarted by a failed probe or a spec change gets its
``terminationGracePeriodSeconds``.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from collections.abc import Mapping
from typing import Any

from pincompute.kube.errors import ApiError, Conflict, NotFound
from pincompute.kube.objects import now
from pincompute.kube.protocol import Preconditions
from pincompute.kube.resource import PODS
from pincompute.runtime.logging import get_logger

from . import podsandbox
from .containerlifecycle import PROCESS_STATES, Kill, PodView, Start, Stop, Update, plan
from .containerrunner import ContainerRecord, initial_records, reconcile_spec
from .containerruntime import Sandbox
from .env import ConfigError
from .logs import LogStore
from .network import NetworkError
from .podlifecycle import (
    FINISHED_STATES,
    PodEvent,
    PodState,
    grace_period,
    kill_grace,
    pod_transition,
)
from .status import OWNED_STATUS_KEYS, TERMINAL_PHASES, overruled, pod_status, status_digest
from .syncloop import SyncLoop
from .workercontext import WorkerContext

_log = get_logger(__name__)


class PodWorker(SyncLoop):
    # Slots: a sim node holds thousands of workers, and per-instance dicts add up.
    __slots__ = (
        "_deadline_timer", "_done", "_last_status", "_previous_ip", "_rejection", "_retry_at",
        "_sandbox_failures", "adopted_terminal", "ctx", "deleted_by_us", "failed", "gone",
        "initialized", "keep_logs", "name", "namespace", "pod", "records", "requests",
        "sandbox", "sandbox_error", "start_time", "state", "stop_deadline", "stop_reason",
        "stop_started", "torn_down", "uid",
    )

    def __init__(self, ctx: WorkerContext, pod: Mapping[str, Any], *,
                 rejection: tuple[str, str] | None = None) -> None:
        super().__init__()
        self.ctx = ctx
        self.pod: Mapping[str, Any] = pod
        md = pod["metadata"]
        self.uid: str = md["uid"]
        self.namespace: str = md.get("namespace") or ""
        self.name: str = md["name"]
        self.state = PodState.SYNCING
        self.requests: tuple[int, int] = (0, 0)
        """(cpu millis, memory bytes) the pod was admitted with."""
        self.sandbox: Sandbox | None = None
        self.initialized = False
        """Every sidecar has been up once (the planner's ordering gate is open)."""
        self.torn_down = False
        """The sandbox has been removed."""
        self.gone = False
        """The Pod object is gone from the API (or the agent let the pod go)."""
        self.deleted_by_us = False
        """The final delete (grace 0) has been sent."""
        self.stop_started: float | None = None
        self.stop_deadline: float | None = None
        """Monotonic times: when the stop began, and when its grace period ends."""
        self.stop_reason: tuple[str, str] | None = None
        """(reason, message) of a node-side stop: eviction, rejection."""
        self.failed = False
        self.start_time: str | None = None
        self.sandbox_error: str | None = None
        self._sandbox_failures = 0
        self._rejection = rejection
        self._retry_at: float | None = None
        self.keep_logs = False
        self._deadline_timer: asyncio.TimerHandle | None = None
        self._last_status: bytes | None = None
        """A digest of the status last written (not the status: it is in the API)."""
        self._done: asyncio.Event | None = None
        status = pod.get("status") or {}
        # A pod that finished before this agent (re)started stays finished.
        self.adopted_terminal = status.get("phase") in TERMINAL_PHASES
        self._previous_ip: str | None = status.get("podIP")
        self.records: dict[str, ContainerRecord] = initial_records(
            pod, ctx.backoff, ctx.logs, self.log_dir, terminated=self.adopted_terminal)
        if self.adopted_terminal:
            self.state = PodState.TERMINATED
            self.torn_down = True

    # -- inputs --------------------------------------------------------------------------------

    def update(self, pod: Mapping[str, Any]) -> None:
        """A new version of the Pod object (shared, read-only)."""
        self.pod = pod
        if overruled(pod.get("status") or {}):
            # The control plane marked the pod not ready while this node was silent: the
            # status last written is no longer the API's, write ours again.
            self._last_status = None
        self.kick()

    def delete(self) -> None:
        """The Pod object is gone from the API: stop everything now and clean up."""
        self.gone = True
        if self.stop_started is None:
            self._stop(grace=0.0)
        self.kick()

    def evict(self, reason: str, message: str) -> None:
        """Stop the pod for a node-side reason (it ends Failed with ``reason``)."""
        if self.stop_reason is None:
            self.stop_reason = (reason, message)
            self.failed = True
        self.kick()

    # -- what the container records need (containerrunner.PodHandle) -------------------------

    @property
    def log_dir(self) -> str:
        """The pod's directory in the node's log store."""
        return LogStore.pod_dir_name(self.namespace, self.name, self.uid)

    @property
    def policy(self) -> str:
        return (self.pod.get("spec") or {}).get("restartPolicy") or "Always"

    @property
    def stopping(self) -> bool:
        """A stop was asked (the pod is, or was, TERMINATING)."""
        return self.stop_started is not None

    def event(self, type_: str, reason: str, message: str) -> None:
        if self.ctx.events is not None:
            self.ctx.events.record(self.pod, type_, reason, message)

    # -- state -----------------------------------------------------------------------------------

    @property
    def finished(self) -> bool:
        """Every container has terminated for good (TERMINATED or GONE)."""
        return self.state in FINISHED_STATES

    @property
    def deleting(self) -> bool:
        return self.gone or bool((self.pod.get("metadata") or {}).get("deletionTimestamp"))

    @property
    def done(self) -> asyncio.Event:
        """Set once the worker has nothing left to do (GONE)."""
        if self._done is None:
            self._done = asyncio.Event()
        return self._done

    @property
    def _log(self) -> Any:
        return _log.bind(pod=f"{self.namespace}/{self.name}")

    def _move(self, event: PodEvent) -> None:
        self.state = pod_transition(self.state, event)

    def _stop(self, *, grace: float) -> None:
        t = time.monotonic()
        self.stop_started = t
        self.stop_deadline = t + max(0.0, grace)
        self._move(PodEvent.STOP)

    def _kill(self, rec: ContainerRecord, reason: str) -> None:
        rec.kill(self, reason, grace=kill_grace(
            self.pod, reason=reason, sidecar=rec.sidecar, deleting=self.deleting,
            stop_deadline=self.stop_deadline, now=time.monotonic(),
            sidecar_min_grace=self.ctx.sidecar_min_grace))

    # -- the sync loop -------------------------------------------------------------------------

    def loop_name(self) -> str:
        return f"pod {self.namespace}/{self.name}"

    def sync_failed(self) -> None:
        self._log.exception("pod sync failed; retrying")

    async def sync(self) -> None:
        """One pass (see the module's docstring for the steps)."""
        if self.state is PodState.GONE:
            return
        if self.adopted_terminal:
            await self._release_if_gone()
            return
        self._take_stop()
        if self._rejection is not None:
            rejection, self._rejection = self._rejection, None
            self._reject(*rejection)
        if self.state is PodState.SYNCING and self.sandbox is None:
            await self._set_up_sandbox()
        records = reconcile_spec(self.records, (self.pod.get("spec") or {}).get("containers")
                                 or (), self.ctx.backoff)
        if records is not None:
            self.records = records
        if self.sandbox is not None or self.stopping:
            await self._plan_and_apply()
        # Let callbacks queued by starts (simulated delays of 0) land before the status.
        await asyncio.sleep(0)
        if self.state is PodState.TERMINATED and not self.torn_down:
            await self._tear_down()
        if not self.kicked:
            # Another pass is due at once (a start or probe result just landed): write
            # the status after it, once, rather than now and again.
            await self._write_status()
        if self.state is PodState.TERMINATED and self.deleting and not self.gone and \
                not self.deleted_by_us:
            await self._finish_deletion()
        await self._release_if_gone()

    def _take_stop(self) -> None:
        """A deletion or eviction begins the stop; a shorter grace period (a second delete) wins."""
        if self.stop_started is None:
            if self.deleting or self.stop_reason is not None:
                self._stop(grace=grace_period(self.pod, deleting=self.deleting))
        elif self.deleting and self.stop_deadline is not None:
            deadline = self.stop_started + grace_period(self.pod, deleting=True)
            if deadline < self.stop_deadline:
                self.stop_deadline = deadline
                self._move(PodEvent.STOP)
                for rec in self.records.values():
                    rec.kill_by(deadline)

    async def _plan_and_apply(self) -> None:
        for _ in range(2 * len(self.records) + 4):
            view = PodView(containers=[r.view() for r in self.records.values() if not r.removed],
                           now=time.monotonic(), stopping=self.stopping,
                           initialized=self.initialized)
            p = plan(view)
            self.initialized = p.initialized
            immediate = False
            for action in p.actions:
                rec = self.records[action.name]
                if isinstance(action, Start):
                    await self._start(rec)
                elif isinstance(action, Kill):
                    self._kill(rec, action.reason)
                elif isinstance(action, Stop):
                    rec.stop()
                    immediate = True
                elif isinstance(action, Update):
                    rec.update()
                    immediate = True
            self._reap_removed()
            if p.finished:
                self._move(PodEvent.CONTAINERS_DONE)
            if p.wake_at is not None:
                self.wake_at(p.wake_at)
            if not immediate:
                return

    async def _start(self, rec: ContainerRecord) -> None:
        sandbox = self.sandbox
        if sandbox is None:
            return
        rec.prepare_start()
        pod = podsandbox.pod_for_env(self.ctx, self.pod, sandbox)
        try:
            environment = await podsandbox.container_environment(self.ctx, pod, sandbox,
                                                                 rec.spec)
        except (ConfigError, ApiError) as exc:
            rec.config_failed(self, exc)
            return
        await rec.start(self, sandbox, pod_object=pod, environment=environment)

    def _reap_removed(self) -> None:
        """Containers no longer in the Pod: stopped, then forgotten."""
        for name, rec in list(self.records.items()):
            if not rec.removed:
                continue
            if rec.alive:
                self._kill(rec, "Removed")
            elif rec.state not in PROCESS_STATES:
                rec.cancel_timers()
                rec.close_log(self.ctx.logs)
                del self.records[name]

    # -- sandbox -------------------------------------------------------------------------------

    async def _set_up_sandbox(self) -> None:
        if self.sandbox_error is not None and self._retry_at is not None and \
                time.monotonic() < self._retry_at:
            return
        try:
            self.sandbox = await podsandbox.set_up(self.ctx, self.pod,
                                                   previous_ip=self._previous_ip)
        except NetworkError as exc:
            self._reject(exc.reason, str(exc))
            return
        except podsandbox.SandboxError as exc:
            self._sandbox_failures += 1
            self.sandbox_error = str(exc)
            self._retry_at = time.monotonic() + podsandbox.retry_delay(self._sandbox_failures)
            self.wake_at(self._retry_at)
            for rec in self.records.values():
                rec.waiting_message = f"sandbox: {exc}"
            self.event("Warning", "FailedCreatePodSandBox", str(exc))
            return
        self.sandbox_error = None
        for rec in self.records.values():
            rec.waiting_message = ""
        self.start_time = (self.pod.get("status") or {}).get("startTime") or now()
        deadline = (self.pod.get("spec") or {}).get("activeDeadlineSeconds")
        if deadline:
            self._deadline_timer = asyncio.get_running_loop().call_later(
                float(deadline), self.evict, "DeadlineExceeded",
                "Pod was active on the node longer than the specified deadline")

    def _reject(self, reason: str, message: str) -> None:
        """Refuse the pod (network, admission): it ends Failed without running."""
        self._log.warning("rejecting pod: %s: %s", reason, message)
        self.stop_reason = (reason, message)
        self.failed = True
        self._stop(grace=0.0)
        self.event("Warning", reason, message)

    async def _tear_down(self) -> None:
        self.torn_down = True
        if self._deadline_timer is not None:
            self._deadline_timer.cancel()
        for rec in self.records.values():
            rec.cancel_timers()
        await podsandbox.tear_down(self.ctx, self.uid, self.sandbox)

    # -- the end -------------------------------------------------------------------------------

    async def _finish_deletion(self) -> None:
        self.deleted_by_us = True
        try:
            await self.ctx.client.delete(PODS, self.name, namespace=self.namespace,
                                         grace_period_seconds=0,
                                         preconditions=Preconditions(uid=self.uid))
        except (NotFound, Conflict):
            pass  # already gone, or a new pod of the same name: not ours to delete
        except ApiError as exc:
            self.deleted_by_us = False
            self._log.warning("could not finish deleting the pod: %s", exc)
            self.wake_at(time.monotonic() + 1.0)

    async def _release_if_gone(self) -> None:
        if not (self.gone and self.torn_down and self.state is PodState.TERMINATED):
            return
        for rec in self.records.values():
            rec.close_log(self.ctx.logs)
        if self.ctx.logs is not None and not self.keep_logs:
            self.ctx.logs.remove_pod(self.log_dir)
        self._move(PodEvent.RELEASE)
        self.done.set()
        if self.ctx.on_done is not None:
            self.ctx.on_done(self)

    # -- status --------------------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        previous = self.pod.get("status") or {}
        facts = [r.facts() for r in self.records.values() if not r.removed]
        reason = message = None
        if self.stop_reason is not None:
            reason, message = self.stop_reason
        elif self.sandbox_error is not None:
            message = self.sandbox_error
        return pod_status(previous, facts, initialized=self.initialized,
                          finished=self.finished, stopping=self.stopping,
                          host_ip=self.ctx.node_ip,
                          pod_ip=self.sandbox.ip if self.sandbox is not None else None,
                          start_time=self.start_time, reason=reason, message=message,
                          failed=self.failed and self.finished)

    async def _write_status(self) -> None:
        if self.gone:
            return
        new = self.status()
        digest = status_digest(new)
        if digest == self._last_status:
            return
        patch: dict[str, Any] = {k: new.get(k) for k in OWNED_STATUS_KEYS}
        try:
            await self.ctx.client.patch(PODS, self.name, {"status": patch},
                                        namespace=self.namespace, subresource="status")
        except NotFound:
            return
        except ApiError as exc:
            self._log.warning("status write failed, retrying: %s", exc)
            self.wake_at(time.monotonic() + 1.0)
            return
        self._last_status = digest

    # -- shutdown ------------------------------------------------------------------------------

    async def shutdown(self, *, grace: float) -> None:
        """Agent shutdown: stop the containers (no API writes), remove the sandbox.

        The logs stay, for the agent's next run to serve.
        """
        self.gone = True
        self.keep_logs = True
        if self.stop_started is None:
            self._stop(grace=grace)
        self.kick()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(grace + 10.0):
                await self.done.wait()
        if not self.done.is_set():
            for rec in self.records.values():
                if rec.instance is not None:
                    rec.instance.signal(signal.SIGKILL)
            if not self.torn_down:
                await self._tear_down()
        await self.halt(background=True)

    async def abandon(self) -> None:
        """Drop the worker without stopping anything (simulated containers: nothing runs)."""
        self.gone = True
        self.keep_logs = True
        if self._deadline_timer is not None:
            self._deadline_timer.cancel()
        for rec in self.records.values():
            rec.cancel_timers()
            inst, rec.instance = rec.instance, None  # detached first: its exit is not news
            if inst is not None:
                inst.abandon()
        await self.halt(background=False)

    def usage(self) -> dict[str, Any]:
        """Current CPU/memory use per running container."""
        out: dict[str, Any] = {}
        if self.sandbox is None:
            return out
        for rec in self.records.values():
            if rec.instance is None:
                continue
            u = self.ctx.runtime.usage(self.sandbox, rec.instance)
            if u is not None:
                out[rec.name] = {"cpuMillis": u.cpu_millis, "memoryBytes": u.memory_bytes,
                                 "cpuSeconds": u.cpu_seconds}
        return out


__all__ = ["PodWorker"]
