"""The pod worker: runs one pod's containers on a runtime and reports its status.

Theory of operation
-------------------
There is one :class:`PodWorker` per pod bound to the node (keyed by the pod's
uid).  It is level-triggered like a reconciler: anything that may matter — a
new version of the Pod object, a process exit, a probe result, a timer — only
*kicks* it, and a kick runs :meth:`PodWorker._sync`, which looks at everything:

1. create the pod's sandbox (network, identity, volumes) the first time;
2. compare each container's spec in the Pod with the spec it runs (a hash), to
   find containers to update in place — only those, never the whole pod;
3. ask the planner (:func:`.containerlifecycle.plan`) for the next actions and apply them
   (start, kill, stop, update), every state change going through the
   transition table;
4. when every container has terminated for good, tear the sandbox down; if the
   pod was being deleted, finish the deletion (``delete`` with grace 0, which
   only the node does, after its containers are stopped);
5. write the pod's status (:mod:`.status`) if it changed.

Kicks that arrive while a sync runs mark the worker dirty and it syncs again,
so no change is lost and two syncs never overlap.  An idle pod costs no task:
only its timers (back-off, deadline, simulated delays) and its instances' exit
callbacks stay armed, which is what lets a sim node hold many pods.

An exit is learnt from the instance's ``exited`` future; what it means — restart
after back-off, replace with the new spec, or stop for good — is decided there
and then (:func:`.containerlifecycle.exit_event`), with the back-off delay from the
container's :class:`~.backoff.Backoff`.  Stopping a container sends SIGTERM
and arms a SIGKILL for the end of its grace period: during pod teardown the pod's
grace period is shared (main containers first, sidecars get what is left, at
least ``sidecar_min_grace``); a container restarted by a failed probe or a spec
change gets its ``terminationGracePeriodSeconds``.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import signal
import time
import types
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from pincompute.kube.errors import ApiError, Conflict, NotFound
from pincompute.kube.objects import now
from pincompute.kube.protocol import KubeClient, Preconditions
from pincompute.kube.resource import CONFIGMAPS, PODS, SECRETS
from pincompute.runtime.logging import get_logger

from . import env as envmod
from .backoff import Backoff, BackoffPolicy
from .containerlifecycle import (
    PROCESS_STATES,
    ContainerView,
    Event,
    Kill,
    PodView,
    Start,
    State,
    Stop,
    Update,
    exit_event,
    plan,
    transition,
)
from .containerruntime import ContainerRuntime, ExitStatus, Instance, Sandbox, StartError
from .events import EventRecorder
from .logs import LogStore, LogWriter, attempts
from .network import NetworkError, Networking
from .probes import Handlers, Prober, ProbeSpec
from .status import ContainerFacts, Termination, pod_status, status_digest

_log = get_logger(__name__)

OWNED_STATUS_KEYS = ("phase", "conditions", "containerStatuses", "reason", "message", "podIP",
                     "podIPs", "hostIP", "hostIPs", "startTime")
TERMINAL_PHASES = ("Succeeded", "Failed")
_NO_ENV: Mapping[str, str] = types.MappingProxyType({})


def spec_hash(container: Mapping[str, Any]) -> str:
    return hashlib.blake2b(orjson.dumps(container, option=orjson.OPT_SORT_KEYS),
                           digest_size=12).hexdigest()


@dataclass(slots=True)
class WorkerContext:
    """What a pod worker needs from its node agent."""

    client: KubeClient
    runtime: ContainerRuntime
    networking: Networking
    node_name: str
    node_ip: str
    allocatable: Mapping[str, str]
    backoff: BackoffPolicy = field(default_factory=BackoffPolicy)
    probe_scale: float = 1.0
    logs: LogStore | None = None
    events: EventRecorder | None = None
    sidecar_min_grace: float = 2.0
    on_done: Callable[[PodWorker], None] | None = None
    """Called once a worker has nothing left to do (pod gone, sandbox removed)."""


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
        self.timers: list[asyncio.TimerHandle] = []
        self.backoff = Backoff(policy)
        self.backoff_until: float | None = None
        self.termination: Termination | None = None
        self.last_termination: Termination | None = None
        self.waiting_reason = ""
        self.waiting_message = ""
        self.prober: Prober | None = None
        self.log: LogWriter | None = None
        self.removed = False
        self.env: Mapping[str, str] = _NO_ENV

    def adopt(self, spec: Mapping[str, Any]) -> None:
        """Run ``spec`` from the next start on."""
        self.spec = spec
        self.desired = spec
        self.spec_hash = spec_hash(spec)
        self.sidecar = spec.get("type") == "sidecar"

    @property
    def outdated(self) -> bool:
        return self.desired is not self.spec and spec_hash(self.desired) != self.spec_hash

    def facts(self) -> ContainerFacts:
        return ContainerFacts(
            name=self.name, type="sidecar" if self.sidecar else "main",
            image=str(self.spec.get("image", "")), state=self.state, ready=self.ready,
            started=self.started, restart_count=self.restart_count,
            ever_started=self.ever_started, started_at=self.started_time,
            container_id=self.instance.container_id if self.instance is not None else "",
            waiting_reason=self.waiting_reason, waiting_message=self.waiting_message,
            termination=self.termination, last_termination=self.last_termination)


class PodWorker:
    # Slots: a sim node holds thousands of workers, and per-instance dicts add up.
    __slots__ = (
        "_bg", "_deadline_timer", "_dirty", "_done", "_last_status", "_previous_ip",
        "_rejection", "_retry_at", "_sandbox_failures", "_task", "_wake", "adopted_terminal",
        "ctx", "deleted_by_us", "failed", "finished", "gone", "initialized", "keep_logs",
        "name", "namespace", "pod", "records", "requests", "sandbox", "sandbox_error",
        "start_time", "stop_deadline", "stop_reason", "stop_started", "torn_down", "uid",
    )

    def __init__(self, ctx: WorkerContext, pod: Mapping[str, Any], *,
                 rejection: tuple[str, str] | None = None) -> None:
        self.ctx = ctx
        self.pod: Mapping[str, Any] = pod
        md = pod["metadata"]
        self.uid: str = md["uid"]
        self.namespace: str = md.get("namespace") or ""
        self.name: str = md["name"]
        self.records: dict[str, ContainerRecord] = {}
        self.requests: tuple[int, int] = (0, 0)
        """(cpu millis, memory bytes) the pod was admitted with."""
        self.sandbox: Sandbox | None = None
        self.initialized = False
        self.finished = False
        self.torn_down = False
        self.gone = False
        self.deleted_by_us = False
        self.stop_started: float | None = None
        self.stop_deadline: float | None = None
        self.stop_reason: tuple[str, str] | None = None
        self.failed = False
        self.start_time: str | None = None
        self.sandbox_error: str | None = None
        self._sandbox_failures = 0
        self._rejection = rejection
        self._retry_at: float | None = None
        self.keep_logs = False
        self._dirty = False
        self._task: asyncio.Task[None] | None = None
        self._wake: asyncio.TimerHandle | None = None
        self._deadline_timer: asyncio.TimerHandle | None = None
        self._last_status: bytes | None = None
        """A digest of the status last written (not the status: it is in the API)."""
        self._bg: set[asyncio.Task[Any]] | None = None
        self._done: asyncio.Event | None = None
        status = pod.get("status") or {}
        # A pod that finished before this agent (re)started stays finished.
        self.adopted_terminal = status.get("phase") in TERMINAL_PHASES
        self._previous_ip: str | None = status.get("podIP")
        restarts = {c.get("name"): int(c.get("restartCount") or 0)
                    for c in status.get("containerStatuses") or ()}
        for c in (pod.get("spec") or {}).get("containers") or ():
            rec = ContainerRecord(c, ctx.backoff)
            # After an agent restart the count goes on, and the next instance's log
            # follows the last one's (so ``--previous`` shows what ran before).
            rec.restart_count = restarts.get(rec.name, 0)
            if ctx.logs is not None:
                found = attempts(ctx.logs.container_dir(self.log_dir, rec.name))
                rec.attempt = found[-1] + 1 if found else 0
            self.records[rec.name] = rec
        if self.adopted_terminal:
            self.finished = True
            self.torn_down = True
            for rec in self.records.values():
                rec.state = State.TERMINATED

    # -- inputs --------------------------------------------------------------------------------

    def update(self, pod: Mapping[str, Any]) -> None:
        """A new version of the Pod object (shared, read-only)."""
        self.pod = pod
        self.kick()

    def delete(self) -> None:
        """The Pod object is gone from the API: stop everything now and clean up."""
        self.gone = True
        if self.stop_started is None:
            self._begin_stop(grace=0.0)
        self.kick()

    def evict(self, reason: str, message: str) -> None:
        """Stop the pod for a node-side reason (it ends Failed with ``reason``)."""
        if self.stop_reason is None:
            self.stop_reason = (reason, message)
            self.failed = True
        self.kick()

    @property
    def log_dir(self) -> str:
        """The pod's directory in the node's log store."""
        return LogStore.pod_dir_name(self.namespace, self.name, self.uid)

    @property
    def _log(self) -> Any:
        return _log.bind(pod=f"{self.namespace}/{self.name}")

    @property
    def done(self) -> asyncio.Event:
        """Set once the worker has nothing left to do (pod gone, sandbox removed)."""
        if self._done is None:
            self._done = asyncio.Event()
        return self._done

    def kick(self) -> None:
        self._dirty = True
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(
                self._run(), name=f"pod {self.namespace}/{self.name}")

    async def wait_idle(self) -> None:
        while self._task is not None:
            await asyncio.shield(self._task)

    # -- the sync loop -------------------------------------------------------------------------

    async def _run(self) -> None:
        try:
            while self._dirty:
                self._dirty = False
                try:
                    await self._sync()
                except asyncio.CancelledError:
                    raise
                except Exception:
                    self._log.exception("pod sync failed; retrying")
                    self._arm_wake(time.monotonic() + 1.0)
        finally:
            # An idle pod keeps no task (a finished task still holds its frame's result).
            self._task = None

    @property
    def deleting(self) -> bool:
        return self.gone or bool((self.pod.get("metadata") or {}).get("deletionTimestamp"))

    @property
    def stopping(self) -> bool:
        return self.stop_started is not None

    @property
    def policy(self) -> str:
        return (self.pod.get("spec") or {}).get("restartPolicy") or "Always"

    def _begin_stop(self, *, grace: float) -> None:
        t = time.monotonic()
        self.stop_started = t
        self.stop_deadline = t + max(0.0, grace)

    def _grace(self) -> float:
        spec = self.pod.get("spec") or {}
        md = self.pod.get("metadata") or {}
        if self.deleting and md.get("deletionGracePeriodSeconds") is not None:
            return float(md["deletionGracePeriodSeconds"])
        return float(spec.get("terminationGracePeriodSeconds", 30))

    async def _sync(self) -> None:
        if self.adopted_terminal:
            await self._finish_if_gone()
            return
        if self.stop_started is None and (self.deleting or self.stop_reason is not None):
            self._begin_stop(grace=self._grace())
        elif self.deleting and self.stop_started is not None and self.stop_deadline is not None:
            deadline = self.stop_started + self._grace()
            if deadline < self.stop_deadline:
                # A shorter grace period (a second delete) wins.
                self.stop_deadline = deadline
                self._shorten_kills()
        if self._rejection is not None:
            rejection, self._rejection = self._rejection, None
            self._reject(*rejection)
        if self.sandbox is None and not self.stopping and not self.finished:
            await self._create_sandbox()
        self._reconcile_spec()
        if self.sandbox is not None or self.stopping:
            await self._plan_and_apply()
        # Let callbacks queued by starts (simulated delays of 0) land before the status.
        await asyncio.sleep(0)
        if self.finished and not self.torn_down:
            await self._teardown()
        if not self._dirty:
            # Another pass is due at once (a start or probe result just landed): write
            # the status after it, once, rather than now and again.
            await self._write_status()
        if self.finished and self.deleting and not self.gone and not self.deleted_by_us:
            await self._finish_deletion()
        await self._finish_if_gone()

    async def _finish_if_gone(self) -> None:
        if self.gone and self.finished and not self.torn_down:
            await self._teardown()
        if self.gone and self.torn_down and not self.done.is_set():
            for rec in self.records.values():
                self._close_log(rec)
            if self.ctx.logs is not None and not self.keep_logs:
                self.ctx.logs.remove_pod(self.log_dir)
            self.done.set()
            if self.ctx.on_done is not None:
                self.ctx.on_done(self)

    async def _plan_and_apply(self) -> None:
        for _ in range(2 * len(self.records) + 4):
            now_ = time.monotonic()
            view = PodView(
                containers=[ContainerView(
                    name=r.name, sidecar=r.sidecar, state=r.state, ready=r.ready,
                    backoff_until=r.backoff_until, unhealthy=r.unhealthy,
                    outdated=r.outdated) for r in self.records.values() if not r.removed],
                now=now_, stopping=self.stopping, initialized=self.initialized)
            p = plan(view)
            self.initialized = p.initialized
            immediate = False
            for action in p.actions:
                rec = self.records[action.name]
                if isinstance(action, Start):
                    await self._start(rec)
                elif isinstance(action, Kill):
                    self._kill(rec, action.reason, p.teardown)
                elif isinstance(action, Stop):
                    self._stop(rec)
                    immediate = True
                elif isinstance(action, Update):
                    self._update(rec)
                    immediate = True
            self._reap_removed()
            if p.finished:
                self.finished = True
            if p.wake_at is not None:
                self._arm_wake(p.wake_at)
            if not immediate:
                return

    # -- sandbox -------------------------------------------------------------------------------

    async def _configs(self) -> dict[tuple[str, str], Mapping[str, Any] | None]:
        wanted: set[tuple[str, str]] = set()
        spec = self.pod.get("spec") or {}
        for c in spec.get("containers") or ():
            wanted |= envmod.references(c)
        for v in spec.get("volumes") or ():
            if v.get("configMap"):
                wanted.add(("ConfigMap", v["configMap"].get("name", "")))
            if v.get("secret"):
                wanted.add(("Secret", v["secret"].get("secretName", "")))
        out: dict[tuple[str, str], Mapping[str, Any] | None] = {}
        for kind, name in wanted:
            resource = CONFIGMAPS if kind == "ConfigMap" else SECRETS
            try:
                out[(kind, name)] = await self.ctx.client.get(resource, name,
                                                              namespace=self.namespace)
            except NotFound:
                out[(kind, name)] = None
        return out

    async def _create_sandbox(self) -> None:
        if self.sandbox_error is not None and self._retry_at is not None and \
                time.monotonic() < self._retry_at:
            return
        try:
            network = self.ctx.networking.setup(dict(self.pod), ip=self._previous_ip)
        except NetworkError as exc:
            self._reject(exc.reason, str(exc))
            return
        try:
            configs = await self._configs()
            self.sandbox = await self.ctx.runtime.create_sandbox(self.pod, network,
                                                                 configs=configs)
        except (StartError, ApiError, OSError) as exc:
            self.ctx.networking.teardown(self.uid)
            self._sandbox_failures += 1
            delay = min(30.0, 0.5 * 2 ** min(self._sandbox_failures, 6))
            self.sandbox_error = str(exc)
            self._retry_at = time.monotonic() + delay
            self._arm_wake(self._retry_at)
            for rec in self.records.values():
                rec.waiting_message = f"sandbox: {exc}"
            self._event("Warning", "FailedCreatePodSandBox", str(exc))
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
        self._begin_stop(grace=0.0)
        self._event("Warning", reason, message)

    async def _teardown(self) -> None:
        self.torn_down = True
        if self._deadline_timer is not None:
            self._deadline_timer.cancel()
        for rec in self.records.values():
            self._cancel_timers(rec)
        if self.sandbox is not None:
            try:
                await self.ctx.runtime.destroy_sandbox(self.sandbox)
            except Exception:
                self._log.exception("destroying the sandbox failed")
        self.ctx.networking.teardown(self.uid)

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
            self._arm_wake(time.monotonic() + 1.0)

    # -- spec changes --------------------------------------------------------------------------

    def _reconcile_spec(self) -> None:
        desired = {c["name"]: c for c in (self.pod.get("spec") or {}).get("containers") or ()}
        if list(desired) == [n for n, r in self.records.items() if not r.removed] and all(
                self.records[n].desired is c for n, c in desired.items()):
            return
        ordered: dict[str, ContainerRecord] = {}
        for name, c in desired.items():
            rec = self.records.get(name)
            if rec is None:
                rec = ContainerRecord(c, self.ctx.backoff)
            else:
                rec.desired = c
                rec.removed = False
            ordered[name] = rec
        for name, rec in self.records.items():
            if name not in desired:
                rec.removed = True
                ordered[name] = rec
        self.records = ordered

    def _reap_removed(self) -> None:
        for name, rec in list(self.records.items()):
            if not rec.removed:
                continue
            if rec.state in (State.STARTING, State.RUNNING):
                self._kill(rec, "Removed", teardown=False)
            elif rec.state not in PROCESS_STATES:
                self._cancel_timers(rec)
                self._close_log(rec)
                del self.records[name]

    # -- actions -------------------------------------------------------------------------------

    def _base_env(self, rec: ContainerRecord) -> dict[str, str]:
        assert self.sandbox is not None
        base = {
            "HOSTNAME": self.name,
            "PINCOMPUTE_POD_NAME": self.name,
            "PINCOMPUTE_POD_NAMESPACE": self.namespace,
            "PINCOMPUTE_POD_UID": self.uid,
            "PINCOMPUTE_POD_IP": self.sandbox.ip,
            "PINCOMPUTE_NODE_NAME": self.ctx.node_name,
            "PINCOMPUTE_HOST_IP": self.ctx.node_ip,
            "PINCOMPUTE_CONTAINER_NAME": rec.name,
        }
        base.update(self.ctx.runtime.container_env(self.sandbox, rec.spec))
        return base

    def _pod_for_env(self) -> dict[str, Any]:
        assert self.sandbox is not None
        pod = dict(self.pod)
        status = dict(pod.get("status") or {})
        status.update(podIP=self.sandbox.ip, hostIP=self.ctx.node_ip,
                      podIPs=[{"ip": self.sandbox.ip}])
        pod["status"] = status
        return pod

    async def _start(self, rec: ContainerRecord) -> None:
        if self.sandbox is None:
            return
        if rec.state is State.BACKOFF or rec.outdated:
            rec.adopt(rec.desired)  # a restart runs the newest spec
        pod = self._pod_for_env()
        try:
            configs = await self._configs() if envmod.references(rec.spec) else {}
            environment = envmod.build(pod, rec.spec, base=self._base_env(rec), configs=configs,
                                       node_allocatable=self.ctx.allocatable)
        except (envmod.ConfigError, ApiError) as exc:
            # As the kubelet: wait (retrying) rather than fail, whatever the policy.
            rec.state = transition(transition(rec.state, Event.START), Event.EXITED_RESTART)
            rec.backoff_until = time.monotonic() + rec.backoff.next_delay(ran_for=0.0)
            rec.waiting_reason = "CreateContainerConfigError"
            rec.waiting_message = str(exc)
            self._event("Warning", "Failed", f"Error: {exc}")
            return
        argv = envmod.command_line(rec.spec, environment)
        log = None
        if self.ctx.logs is not None:
            log = self.ctx.logs.open_writer(self.log_dir, rec.name, rec.attempt)
        attempt = rec.attempt
        rec.attempt += 1
        if rec.ever_started or attempt > 0:
            rec.restart_count += 1
        rec.ever_started = True
        try:
            inst = await self.ctx.runtime.start(self.sandbox, rec.spec, pod=pod,
                                                env=environment, argv=argv, attempt=attempt,
                                                log=log)
        except StartError as exc:
            if log is not None and self.ctx.logs is not None:
                self.ctx.logs.close_writer(log)
            rec.state = transition(rec.state, Event.START)
            stamp = now()
            self._event("Warning", "Failed", f"Error: {exc}")
            self._exited(rec, ExitStatus(128, "StartError", str(exc), None, stamp),
                         started_at=stamp, ran_for=0.0, container_id="")
            return
        rec.state = transition(rec.state, Event.START)
        rec.instance = inst
        rec.env = environment
        rec.log = log
        rec.started_time = inst.started_time
        rec.waiting_reason = ""
        rec.waiting_message = ""
        rec.termination = None
        inst.exited.add_done_callback(functools.partial(self._on_exit, rec, inst))
        if self.ctx.runtime.simulated:
            rec.env = _NO_ENV  # nothing execs into a simulated container; keep nothing
        self._event("Normal", "Started", f"Started container {rec.name}")
        self._watch_health(rec, inst, environment)

    def _watch_health(self, rec: ContainerRecord, inst: Instance,
                      environment: Mapping[str, str]) -> None:
        def started() -> None:
            if rec.instance is inst and rec.state is State.STARTING:
                rec.state = transition(rec.state, Event.STARTED)
                rec.started = True
                self.kick()

        def ready(ok: bool, message: str = "") -> None:
            if rec.instance is inst and rec.ready != ok:
                rec.ready = ok
                if not ok and message:
                    self._event("Warning", "Unhealthy", f"Readiness probe failed: {message}")
                self.kick()

        def unhealthy(message: str) -> None:
            if rec.instance is inst and rec.unhealthy is None:
                rec.unhealthy = message
                self._event("Warning", "Unhealthy", message)
                self.kick()

        loop = asyncio.get_running_loop()
        if self.ctx.runtime.simulated:
            # Immediate ones are not kept: a fired handle is dead weight per container.
            if inst.started_after > 0:
                rec.timers.append(loop.call_later(inst.started_after, started))
            else:
                loop.call_soon(started)
            if inst.ready_at is not None:
                delay = inst.ready_at - time.monotonic()
                if delay > 0:
                    rec.timers.append(loop.call_later(delay, ready, True))
                else:
                    loop.call_soon(ready, True)
            return
        assert self.sandbox is not None
        specs = {kind: ProbeSpec.from_container(rec.spec, kind, scale=self.ctx.probe_scale)
                 for kind in ("startup", "liveness", "readiness")}
        if not any(specs.values()):
            started()
            ready(True)
            return
        ports = {str(p["name"]): int(p["containerPort"]) for p in rec.spec.get("ports") or ()
                 if p.get("name")}
        handlers = Handlers(host=self.sandbox.ip, ports=ports,
                            execute=self.ctx.runtime.exec_probe(self.sandbox, rec.spec,
                                                                environment))
        rec.prober = Prober(specs, handlers, on_started=started, on_unhealthy=unhealthy,
                            on_ready=ready)
        rec.prober.start()

    def _kill(self, rec: ContainerRecord, reason: str, teardown: bool) -> None:
        inst = rec.instance
        if inst is None or rec.state not in (State.STARTING, State.RUNNING):
            return
        rec.state = transition(rec.state, Event.KILL)
        rec.kill_reason = reason
        rec.replacing = reason == "SpecChanged"
        self._stop_prober(rec)
        if reason == "Stopping" and self.stop_deadline is not None:
            grace = self.stop_deadline - time.monotonic()
            if rec.sidecar and self._grace() > 0:
                grace = max(grace, self.ctx.sidecar_min_grace)
        else:
            grace = float((self.pod.get("spec") or {}).get("terminationGracePeriodSeconds", 30))
        grace = max(0.0, grace)
        messages = {"Stopping": f"Stopping container {rec.name}",
                    "Unhealthy": f"Container {rec.name} failed a probe, will be restarted",
                    "SpecChanged": f"Container {rec.name} definition changed, will be "
                                   "restarted",
                    "Removed": f"Container {rec.name} was removed from the pod"}
        self._event("Normal", "Killing", messages.get(reason, f"Stopping container {rec.name}"))
        if grace <= 0:
            inst.signal(signal.SIGKILL)
            return
        inst.signal(signal.SIGTERM)
        rec.kill_timer = asyncio.get_running_loop().call_later(grace, inst.signal,
                                                               signal.SIGKILL)

    def _stop(self, rec: ContainerRecord) -> None:
        rec.state = transition(rec.state, Event.STOP)
        rec.termination = rec.last_termination
        rec.backoff_until = None
        if rec.waiting_reason == "CrashLoopBackOff":
            rec.waiting_reason = ""
            rec.waiting_message = ""

    def _update(self, rec: ContainerRecord) -> None:
        rec.state = transition(rec.state, Event.UPDATE)
        rec.adopt(rec.desired)
        rec.backoff.reset()
        rec.backoff_until = None
        rec.waiting_reason = ""
        rec.waiting_message = ""
        rec.termination = None

    # -- exits ---------------------------------------------------------------------------------

    def _on_exit(self, rec: ContainerRecord, inst: Instance,
                 fut: asyncio.Future[ExitStatus]) -> None:
        if rec.instance is not inst:
            return
        if fut.cancelled() or fut.exception() is not None:
            status = ExitStatus(137, "Error", "the runtime lost the container", None, now())
        else:
            status = fut.result()
        self._exited(rec, status, started_at=inst.started_time,
                     ran_for=time.monotonic() - inst.started_at,
                     container_id=inst.container_id)
        self.kick()

    def _exited(self, rec: ContainerRecord, status: ExitStatus, *, started_at: str,
                ran_for: float, container_id: str) -> None:
        self._stop_prober(rec)
        self._cancel_timers(rec)
        self._close_log(rec)
        teardown = self.stopping or rec.kill_reason == "Stopping"
        if rec.removed:
            teardown = True
        event = exit_event(policy=self.policy, sidecar=rec.sidecar, succeeded=status.succeeded,
                           teardown=teardown, replacing=rec.replacing)
        rec.state = transition(rec.state, event)
        term = Termination(status, started_at, container_id)
        if rec.state is State.TERMINATED:
            rec.termination = term
        else:
            rec.last_termination = term
            rec.termination = None
        if rec.state is State.BACKOFF:
            delay = rec.backoff.next_delay(ran_for=ran_for)
            rec.backoff_until = time.monotonic() + delay
            rec.waiting_reason = "CrashLoopBackOff"
            rec.waiting_message = (f"back-off {delay:g}s restarting failed container={rec.name} "
                                   f"pod={self.name}")
            self._event("Warning", "BackOff", "Back-off restarting failed container "
                        f"{rec.name} in pod {self.name}")
        elif rec.state is State.WAITING:
            rec.adopt(rec.desired)
            rec.backoff.reset()
            rec.backoff_until = None
        if status.reason == "OOMKilled":
            self._event("Warning", "OOMKilled", f"Container {rec.name} exceeded its memory "
                        "limit and was killed")
        rec.instance = None
        rec.ready = False
        rec.started = False
        rec.unhealthy = None
        rec.replacing = False
        rec.kill_reason = None

    # -- helpers -------------------------------------------------------------------------------

    def _stop_prober(self, rec: ContainerRecord) -> None:
        prober, rec.prober = rec.prober, None
        if prober is not None:
            task = asyncio.get_running_loop().create_task(prober.stop())
            if self._bg is None:
                self._bg = set()
            self._bg.add(task)
            task.add_done_callback(self._bg.discard)

    def _cancel_timers(self, rec: ContainerRecord) -> None:
        for t in rec.timers:
            t.cancel()
        rec.timers.clear()
        if rec.kill_timer is not None:
            rec.kill_timer.cancel()
            rec.kill_timer = None

    def _close_log(self, rec: ContainerRecord) -> None:
        log, rec.log = rec.log, None
        if log is not None and self.ctx.logs is not None:
            self.ctx.logs.close_writer(log)

    def _arm_wake(self, at: float) -> None:
        # The event loop's clock is time.monotonic(), the planner's clock.
        if self._wake is not None:
            if self._wake.when() <= at:
                return
            self._wake.cancel()
        self._wake = asyncio.get_running_loop().call_at(at, self._woken)

    def _shorten_kills(self) -> None:
        assert self.stop_deadline is not None
        for rec in self.records.values():
            if rec.kill_timer is not None and rec.instance is not None and \
                    rec.kill_timer.when() > self.stop_deadline:
                rec.kill_timer.cancel()
                rec.kill_timer = asyncio.get_running_loop().call_at(
                    self.stop_deadline, rec.instance.signal, signal.SIGKILL)

    def _woken(self) -> None:
        self._wake = None
        self.kick()

    def _event(self, type_: str, reason: str, message: str) -> None:
        if self.ctx.events is not None:
            self.ctx.events.record(self.pod, type_, reason, message)

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
            self._arm_wake(time.monotonic() + 1.0)
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
            self._begin_stop(grace=grace)
        self.kick()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(grace + 10.0):
                await self.done.wait()
        if not self.done.is_set():
            for rec in self.records.values():
                if rec.instance is not None:
                    rec.instance.signal(signal.SIGKILL)
            if not self.torn_down:
                await self._teardown()
        task = self._task
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        for task in list(self._bg or ()):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    async def abandon(self) -> None:
        """Drop the worker without stopping anything (simulated containers: nothing runs)."""
        self.gone = True
        self.keep_logs = True
        for timer in (self._wake, self._deadline_timer):
            if timer is not None:
                timer.cancel()
        for rec in self.records.values():
            self._cancel_timers(rec)
            inst, rec.instance = rec.instance, None  # detached first: its exit is not news
            if inst is not None:
                inst.abandon()
        task = self._task
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

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


__all__ = ["ContainerRecord", "PodWorker", "WorkerContext", "spec_hash"]
