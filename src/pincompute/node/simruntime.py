"""The ``sim`` runtime: simulated containers, KWOK-style, for scale.

Theory of operation
-------------------
No process is started.  An instance is a future and at most two timers on the
event loop, so one machine holds thousands of nodes and 100k+ pods.  The
lifecycle still goes through the same pod worker and state machine as real
containers — ordering, restarts with back-off, status — only the container's
behaviour is declared instead of observed, by pod annotations (prefix
``sim.pincompute.io/``), each overridable per container by suffixing
``.<container>`` (``run-duration.worker``) and defaulted by the node pool
(``SimRuntime(defaults=...)``, the same keys without the prefix, taken from the
NodePool's own ``sim.pincompute.io/*`` annotations by :func:`pool_defaults`):

==================  =========  ==================================================
``start-delay``     ``0``      seconds from start until the container counts as
                               started (its startup probe passing)
``run-duration``    (forever)  seconds it runs before exiting by itself
``exit-code``       ``0``      its exit code when it exits by itself
``ready``           ``true``   ``false``: never ready
``ready-delay``     ``0``      seconds after start until ready
``stop-delay``      ``0``      seconds it takes to exit after SIGTERM (then exit 0)
``cpu-profile``     ``0``      its CPU use over time (below)
``memory-profile``  ``0``      its memory use over time (below)
==================  =========  ==================================================

A profile is a constant quantity (``250m``, ``512Mi``) or a piecewise-linear
curve of ``seconds=quantity`` points (``0=100m,60=900m,120=100m``) over the
time since the instance started; after the last point the last value holds,
unless the profile ends with ``,loop``, when it repeats.  Autoscaling tests
declare a load curve this way and read it back through the node's usage
reporting as if it were measured.

Probes are not run (``simulated``): readiness comes from ``ready``/``ready-delay``.
"""

from __future__ import annotations

import asyncio
import bisect
import signal
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from pincompute.kube.objects import now
from pincompute.kube.quantity import QuantityError, cpu_millis, parse_quantity
from pincompute.model.wellknown import SIM_ANNOTATION_PREFIX as PREFIX

from .containerruntime import ContainerRuntime, ExitStatus, Instance, Sandbox, StartError, Usage
from .logs import LogWriter
from .network import PodNetwork

KEYS = ("start-delay", "run-duration", "exit-code", "ready", "ready-delay", "stop-delay",
        "cpu-profile", "memory-profile")


@dataclass(frozen=True, slots=True)
class Profile:
    """Usage over time: (seconds, value) points, linear in between."""

    times: tuple[float, ...]
    values: tuple[float, ...]
    loop: bool = False

    @classmethod
    def parse(cls, text: str, *, cpu: bool) -> Profile:
        text = text.strip()
        if not text:
            return cls((0.0,), (0.0,))
        parts = [p.strip() for p in text.split(",") if p.strip()]
        loop = bool(parts) and parts[-1] == "loop"
        if loop:
            parts = parts[:-1]

        def value(raw: str) -> float:
            return float(cpu_millis(raw)) if cpu else float(parse_quantity(raw))

        if len(parts) == 1 and "=" not in parts[0]:
            return cls((0.0,), (value(parts[0]),))
        points = []
        for part in parts:
            t, sep, v = part.partition("=")
            if not sep:
                raise ValueError(f"profile point {part!r} must be seconds=quantity")
            points.append((float(t.rstrip("s")), value(v)))
        points.sort()
        return cls(tuple(p[0] for p in points), tuple(p[1] for p in points), loop)

    def at(self, t: float) -> float:
        if self.loop and self.times[-1] > 0:
            t = t % self.times[-1]
        i = bisect.bisect_right(self.times, t)
        if i == 0:
            return self.values[0]
        if i >= len(self.times):
            return self.values[-1]
        t0, t1 = self.times[i - 1], self.times[i]
        v0, v1 = self.values[i - 1], self.values[i]
        return v0 + (v1 - v0) * (t - t0) / (t1 - t0)


@dataclass(frozen=True, slots=True)
class Behaviour:
    start_delay: float = 0.0
    run_duration: float | None = None
    exit_code: int = 0
    ready: bool = True
    ready_delay: float = 0.0
    stop_delay: float = 0.0
    cpu: Profile = Profile((0.0,), (0.0,))
    memory: Profile = Profile((0.0,), (0.0,))

    @classmethod
    def of(cls, pod: Mapping[str, Any], container: str, *,
           defaults: Mapping[str, str]) -> Behaviour:
        annotations = (pod.get("metadata") or {}).get("annotations") or {}

        def get(key: str) -> str | None:
            for k in (f"{PREFIX}{key}.{container}", f"{PREFIX}{key}"):
                if k in annotations:
                    return str(annotations[k])
            return defaults.get(key)

        def seconds(key: str, default: float | None) -> float | None:
            raw = get(key)
            if raw is None or raw == "":
                return default
            return max(0.0, float(raw.rstrip("s")))

        try:
            return cls(
                start_delay=seconds("start-delay", 0.0) or 0.0,
                run_duration=seconds("run-duration", None),
                exit_code=int(get("exit-code") or 0),
                ready=(get("ready") or "true").lower() not in ("false", "0", "no"),
                ready_delay=seconds("ready-delay", 0.0) or 0.0,
                stop_delay=seconds("stop-delay", 0.0) or 0.0,
                cpu=Profile.parse(get("cpu-profile") or "", cpu=True),
                memory=Profile.parse(get("memory-profile") or "", cpu=False))
        except (ValueError, QuantityError) as exc:
            raise StartError(f"bad simulation annotation: {exc}") from exc


def pool_defaults(pool: Mapping[str, Any]) -> dict[str, str]:
    """A NodePool's sim defaults: its ``sim.pincompute.io/*`` annotations, prefix dropped."""
    annotations = (pool.get("metadata") or {}).get("annotations") or {}
    return {k[len(PREFIX):]: str(v) for k, v in annotations.items()
            if k.startswith(PREFIX) and k[len(PREFIX):] in KEYS}


class SimInstance(Instance):
    """A simulated run: times, a timer while one is due, and who to tell of the exit.

    There is no future unless someone asks for ``exited``: the pod worker hears
    of the exit through :meth:`on_exit`, which keeps one tuple (the callback and
    its arguments) instead of a future, its callback list and a partial.
    """

    __slots__ = ("_future", "_listener", "_timer", "attempt", "behaviour", "container",
                 "pid", "ready_at", "started_after", "started_at", "started_time", "status")

    runtime_name = "sim"

    def __init__(self, *, container: str, attempt: int, behaviour: Behaviour) -> None:
        self.container = container
        self.attempt = attempt
        self.pid = None
        self.behaviour = behaviour
        self.started_at = time.monotonic()
        self.started_time = now()
        self.started_after = behaviour.start_delay
        self.ready_at = (self.started_at + behaviour.start_delay + behaviour.ready_delay
                         if behaviour.ready else None)
        self.status: ExitStatus | None = None
        """How it ended (None while it runs)."""
        self._future: asyncio.Future[ExitStatus] | None = None
        self._listener: tuple[Any, ...] | None = None
        self._timer: asyncio.TimerHandle | None = None
        if behaviour.run_duration is not None:
            code = behaviour.exit_code
            self._timer = asyncio.get_running_loop().call_later(
                behaviour.run_duration, self._exit, code, "Completed" if code == 0 else "Error",
                None)

    @property
    def exited(self) -> asyncio.Future[ExitStatus]:  # type: ignore[override]
        """A future of the exit, made on first use (resolved at once if it has exited)."""
        if self._future is None:
            self._future = asyncio.get_running_loop().create_future()
            if self.status is not None:
                self._future.set_result(self.status)
        return self._future

    def on_exit(self, callback: Callable[..., None], *args: Any) -> None:
        if self.status is not None:
            asyncio.get_running_loop().call_soon(_notify, (callback, *args), self.status)
        else:
            self._listener = (callback, *args)

    def _exit(self, code: int, reason: str, sig: int | None) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self.status is not None:
            return
        self.status = status = ExitStatus(code, reason, "", sig, now())
        if self._future is not None and not self._future.done():
            self._future.set_result(status)
        listener, self._listener = self._listener, None
        if listener is not None:
            # On the loop, as a future's callbacks are: never inside signal().
            asyncio.get_running_loop().call_soon(_notify, listener, status)

    def abandon(self) -> None:
        self._listener = None
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def signal(self, sig: int) -> None:
        if self.status is not None:
            return
        if sig == signal.SIGKILL:
            self._exit(137, "Error", signal.SIGKILL)
        elif self.behaviour.stop_delay > 0:
            if self._timer is not None:
                self._timer.cancel()
            self._timer = asyncio.get_running_loop().call_later(
                self.behaviour.stop_delay, self._exit, 0, "Completed", None)
        else:
            self._exit(0, "Completed", None)


def _notify(listener: tuple[Any, ...], status: ExitStatus) -> None:
    callback, *args = listener
    callback(*args, status)


class SimRuntime(ContainerRuntime):
    name = "sim"
    simulated = True

    def __init__(self, *, defaults: Mapping[str, str] | None = None) -> None:
        self.defaults = dict(defaults or {})
        # Pods of one workload declare the same behaviour: parse it once, share it.
        self._behaviours: dict[tuple[str, tuple[tuple[str, str], ...]], Behaviour] = {}

    def behaviour(self, pod: Mapping[str, Any], container: str) -> Behaviour:
        annotations = (pod.get("metadata") or {}).get("annotations") or {}
        key = (container, tuple(sorted((k, str(v)) for k, v in annotations.items()
                                       if k.startswith(PREFIX))))
        found = self._behaviours.get(key)
        if found is None:
            found = Behaviour.of(pod, container, defaults=self.defaults)
            if len(self._behaviours) >= 4096:
                self._behaviours.clear()
            self._behaviours[key] = found
        return found

    async def create_sandbox(self, pod: Mapping[str, Any], network: PodNetwork, *,
                             configs: Mapping[tuple[str, str], Mapping[str, Any] | None],
                             ) -> Sandbox:
        md = pod["metadata"]
        return Sandbox(pod_uid=md["uid"], namespace=md.get("namespace") or "",
                       name=md.get("name", ""), network=network)

    async def start(self, sandbox: Sandbox, container: Mapping[str, Any], *,
                    pod: Mapping[str, Any], env: Mapping[str, str], argv: list[str],
                    attempt: int, log: LogWriter | None) -> Instance:
        behaviour = self.behaviour(pod, container["name"])
        return SimInstance(container=container["name"], attempt=attempt, behaviour=behaviour)

    async def destroy_sandbox(self, sandbox: Sandbox) -> None:
        return None

    def usage(self, sandbox: Sandbox, instance: Instance) -> Usage | None:
        if not isinstance(instance, SimInstance) or instance.status is not None:
            return None
        t = time.monotonic() - instance.started_at
        b = instance.behaviour
        return Usage(cpu_millis=int(b.cpu.at(t)), memory_bytes=int(b.memory.at(t)))


__all__ = ["KEYS", "PREFIX", "Behaviour", "Profile", "SimInstance", "SimRuntime",
           "pool_defaults"]
