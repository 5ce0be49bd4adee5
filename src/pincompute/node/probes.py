"""Liveness, readiness and startup probes: handlers, thresholds, and the probe loops.

Theory of operation
-------------------
A probe is a handler (exec, HTTP GET, TCP socket) run every ``periodSeconds``
after ``initialDelaySeconds``, each attempt bounded by ``timeoutSeconds``.  One
attempt's outcome says little; a :class:`ProbeState` turns outcomes into a
result with Kubernetes' thresholds: the result flips to failure after
``failureThreshold`` consecutive failures and back to success after
``successThreshold`` consecutive successes.  Initial results are Kubernetes':
readiness starts *failed* (a container is not ready until it proves it),
liveness starts *succeeded* (a container is alive until it proves otherwise),
startup starts unknown.

:class:`Prober` runs the probes of one container *instance* (a new one per
start): first the startup probe alone, until it succeeds once (started) or
fails its threshold (the container must be restarted); then liveness and
readiness side by side.  It reports only changes, through callbacks, and never
touches the container itself — the pod worker decides what a failure means
(:mod:`.containerlifecycle`).

Handlers get what they need from the runtime: exec probes run a command in the
container's environment (a callable the runtime supplies), HTTP and TCP probes
connect to the pod's address (or the probe's ``host``) and resolve named ports
from the container's ``ports``.  ``scale`` multiplies the delays and periods
(never the timeouts), so tests can run probes ten times faster than their
integer ``periodSeconds`` allows; it is 1 in production.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

import httpx

MAX_PROBE_OUTPUT = 10 * 1024
"""Bytes of an exec probe's output (per stream) a runtime keeps, as the kubelet's."""
MAX_PROBE_MESSAGE = 200
"""Characters of the output a failure's message quotes (its end)."""

ProbeKind = Literal["startup", "liveness", "readiness"]
ExecFunc = Callable[[list[str], float], Awaitable[tuple[int, str]]]
"""Run ``command`` in the container with a timeout; returns (exit code, output)."""


@dataclass(frozen=True, slots=True)
class ProbeSpec:
    kind: ProbeKind
    handler: str
    """``exec``, ``httpGet`` or ``tcpSocket``."""
    action: Mapping[str, Any]
    initial_delay: float = 0.0
    period: float = 10.0
    timeout: float = 1.0
    success_threshold: int = 1
    failure_threshold: int = 3

    @classmethod
    def from_container(cls, container: Mapping[str, Any], kind: ProbeKind, *,
                       scale: float = 1.0) -> ProbeSpec | None:
        probe = container.get(f"{kind}Probe")
        if not probe:
            return None
        handler = next((h for h in ("exec", "httpGet", "tcpSocket") if probe.get(h)), None)
        if handler is None:
            return None
        return cls(kind=kind, handler=handler, action=probe[handler],
                   initial_delay=float(probe.get("initialDelaySeconds", 0)) * scale,
                   period=max(float(probe.get("periodSeconds", 10)) * scale, 0.01),
                   timeout=float(probe.get("timeoutSeconds", 1)),
                   success_threshold=int(probe.get("successThreshold", 1)),
                   failure_threshold=int(probe.get("failureThreshold", 3)))


class ProbeState:
    """Consecutive successes and failures folded into a result, with thresholds."""

    __slots__ = ("failures", "result", "spec", "successes")

    INITIAL: Mapping[str, bool | None] = {"readiness": False, "liveness": True, "startup": None}

    def __init__(self, spec: ProbeSpec) -> None:
        self.spec = spec
        self.successes = 0
        self.failures = 0
        self.result: bool | None = self.INITIAL[spec.kind]

    def record(self, ok: bool) -> bool:
        """Count one outcome; returns whether the result changed."""
        if ok:
            self.successes += 1
            self.failures = 0
            flip = self.result is not True and self.successes >= self.spec.success_threshold
            if flip:
                self.result = True
            return flip
        self.failures += 1
        self.successes = 0
        flip = self.result is not False and self.failures >= self.spec.failure_threshold
        if flip:
            self.result = False
        return flip


@dataclass(frozen=True, slots=True)
class Outcome:
    ok: bool
    message: str = ""


def resolve_port(port: int | str, ports: Mapping[str, int]) -> int:
    if isinstance(port, int):
        return port
    if port.isdigit():
        return int(port)
    if port not in ports:
        raise ValueError(f"port {port!r} is not a named container port")
    return ports[port]


class Handlers:
    """Runs one attempt of any handler against one container instance."""

    def __init__(self, *, host: str, ports: Mapping[str, int], execute: ExecFunc | None) -> None:
        self.host = host
        self.ports = ports
        self.execute = execute
        self._http: httpx.AsyncClient | None = None

    async def run(self, spec: ProbeSpec) -> Outcome:
        try:
            if spec.handler == "exec":
                return await self._exec(spec)
            if spec.handler == "httpGet":
                return await self._http_get(spec)
            return await self._tcp(spec)
        except (OSError, ValueError, httpx.HTTPError) as exc:
            return Outcome(False, f"{type(exc).__name__}: {exc}")

    async def _exec(self, spec: ProbeSpec) -> Outcome:
        if self.execute is None:
            return Outcome(False, "exec probes are not supported by this runtime")
        command = [str(a) for a in spec.action.get("command") or ()]
        code, output = await self.execute(command, spec.timeout)
        if code == 0:
            return Outcome(True)
        return Outcome(False, f"command {command!r} exited with {code}: "
                              f"{output[-MAX_PROBE_MESSAGE:]}")

    async def _http_get(self, spec: ProbeSpec) -> Outcome:
        action = spec.action
        scheme = str(action.get("scheme") or "HTTP").lower()
        host = action.get("host") or self.host
        port = resolve_port(action.get("port", 80), self.ports)
        path = str(action.get("path") or "/")
        if not path.startswith("/"):
            path = "/" + path
        headers = {h["name"]: h["value"] for h in action.get("httpHeaders") or ()}
        headers.setdefault("User-Agent", "pincompute-probe/1.0")
        if self._http is None:
            # Probes must not share connections with anything: a pooled keep-alive
            # connection could hide a server that stopped accepting new ones.
            self._http = httpx.AsyncClient(verify=False, follow_redirects=True,
                                           limits=httpx.Limits(max_keepalive_connections=0),
                                           trust_env=False)
        url = f"{scheme}://{_host(host)}:{port}{path}"
        # Only the status matters: the body (the pod's to make as large as it likes)
        # is never read.
        async with self._http.stream("GET", url, headers=headers,
                                     timeout=spec.timeout) as resp:
            code = resp.status_code
        if 200 <= code < 400:
            return Outcome(True)
        return Outcome(False, f"HTTP probe failed with statuscode: {code}")

    async def _tcp(self, spec: ProbeSpec) -> Outcome:
        host = spec.action.get("host") or self.host
        port = resolve_port(spec.action.get("port", 0), self.ports)
        try:
            async with asyncio.timeout(spec.timeout):
                _, writer = await asyncio.open_connection(host, port)
        except TimeoutError:
            return Outcome(False, f"dial tcp {host}:{port}: i/o timeout")
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
        return Outcome(True)

    async def close(self) -> None:
        if self._http is not None:
            await self._http.aclose()
            self._http = None


def _host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


class Prober:
    """The probe loops of one container instance; reports result changes by callback.

    ``on_started()`` once the startup probe passed (at once without one);
    ``on_unhealthy(message)`` when startup or liveness fails its threshold (probing
    then stops: the container is going to be killed); ``on_ready(bool, message)``
    whenever readiness flips.
    """

    def __init__(self, specs: Mapping[ProbeKind, ProbeSpec | None], handlers: Handlers, *,
                 on_started: Callable[[], None],
                 on_unhealthy: Callable[[str], None],
                 on_ready: Callable[[bool, str], None]) -> None:
        self.specs = specs
        self.handlers = handlers
        self.on_started = on_started
        self.on_unhealthy = on_unhealthy
        self.on_ready = on_ready
        self._task: asyncio.Task[None] | None = None

    @property
    def has_readiness(self) -> bool:
        return self.specs.get("readiness") is not None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="prober")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.handlers.close()

    async def _run(self) -> None:
        startup = self.specs.get("startup")
        if startup is not None:
            failure = await self._loop(startup, until_first_success=True)
            if failure is not None:
                self.on_unhealthy(f"Startup probe failed: {failure}")
                return
        self.on_started()
        loops = []
        liveness = self.specs.get("liveness")
        readiness = self.specs.get("readiness")
        if readiness is None:
            self.on_ready(True, "")
        else:
            loops.append(self._loop(readiness))
        if liveness is not None:
            loops.append(self._liveness(liveness))
        if loops:
            await asyncio.gather(*loops)

    async def _liveness(self, spec: ProbeSpec) -> None:
        failure = await self._loop(spec)
        if failure is not None:
            self.on_unhealthy(f"Liveness probe failed: {failure}")

    async def _loop(self, spec: ProbeSpec, *, until_first_success: bool = False) -> str | None:
        """Probe forever (readiness), until failure (liveness, startup) or first success."""
        state = ProbeState(spec)
        loop = asyncio.get_running_loop()
        await asyncio.sleep(spec.initial_delay)
        while True:
            began = loop.time()
            outcome = await self.handlers.run(spec)
            changed = state.record(outcome.ok)
            if spec.kind == "readiness":
                if changed:
                    self.on_ready(bool(state.result), outcome.message)
            elif state.result is False:
                return outcome.message or "failed"
            elif until_first_success and state.result is True:
                return None
            await asyncio.sleep(max(0.0, spec.period - (loop.time() - began)))


__all__ = ["MAX_PROBE_MESSAGE", "MAX_PROBE_OUTPUT", "ExecFunc", "Handlers", "Outcome",
           "ProbeKind", "ProbeSpec", "ProbeState", "Prober",
           "resolve_port"]
