"""The container runtime interface: what the pod worker asks of ``process`` and ``sim``.

Theory of operation
-------------------
The pod worker (:mod:`.worker`) owns the lifecycle — ordering, restarts,
probes, status — and a runtime only does the mechanical parts, as a CRI runtime
does for the kubelet:

* :meth:`ContainerRuntime.create_sandbox` prepares what a pod's containers share (its
  directory, identity, cgroup parent, volumes, forwarded ports) and
  :meth:`ContainerRuntime.destroy_sandbox` removes it once every container has stopped;
* :meth:`ContainerRuntime.start` launches one container *instance* and returns an
  :class:`Instance`, whose ``exited`` future resolves with an
  :class:`ExitStatus` however the instance ends (by itself, by signal, by the
  OOM killer) — the only way the worker learns of an exit;
* :meth:`Instance.signal` delivers SIGTERM or SIGKILL to the whole container;
* :meth:`Instance.on_exit` is how the pod worker hears of the exit: one callback,
  called on the loop (never inside ``signal``) with the :class:`ExitStatus`.  A
  runtime whose instances are only bookkeeping (``sim``) implements it without a
  future and its callback chain: at 240,000 containers those were ~0.7 KB each.

Exec, exec probes and resource usage are per container; a runtime that cannot
do one says so (``None``).  A simulated runtime sets ``simulated`` and gives
every instance a ``ready_at`` (or ``None``: never ready), which the worker uses
in place of running probes — a sim node holds thousands of pods and must not
open sockets to addresses nobody listens on.

``degraded`` lists what the runtime cannot enforce on this machine (no root: no
per-pod uid; no writable cgroups: no limits); the agent logs it at start and
reports it in a node condition.
"""

from __future__ import annotations

import abc
import asyncio
import types
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pincompute.kube.objects import now

from .logs import LogWriter
from .network import PodNetwork
from .probes import ExecFunc
from .terminal import Terminal


@dataclass(frozen=True, slots=True)
class ExitStatus:
    code: int
    reason: str
    """``Completed`` (0), ``Error``, ``OOMKilled``, ``StartError``."""
    message: str = ""
    signal: int | None = None
    finished_at: str = ""

    @property
    def succeeded(self) -> bool:
        return self.code == 0


@dataclass(frozen=True, slots=True)
class Usage:
    cpu_millis: int
    """Average CPU use since the previous sample, in millicores."""
    memory_bytes: int
    cpu_seconds: float = 0.0
    """Total CPU time of the instance."""


NO_EXTRA: Mapping[str, Any] = types.MappingProxyType({})


@dataclass(eq=False, slots=True)
class Sandbox:
    """What a pod's containers share; runtimes keep their own details in ``extra``."""

    pod_uid: str
    namespace: str
    name: str
    network: PodNetwork
    uid: int | None = None
    gid: int | None = None
    extra: Mapping[str, Any] = field(default_factory=lambda: NO_EXTRA)
    """Read-only; shared and empty unless the runtime gives one (a dict per sim pod added up)."""

    @property
    def ip(self) -> str:
        return self.network.ip


class Instance(abc.ABC):
    """One run of one container."""

    __slots__ = ()

    container: str
    attempt: int
    pid: int | None
    started_at: float
    """Monotonic time of the start."""
    started_time: str
    """RFC 3339 time of the start."""
    exited: asyncio.Future[ExitStatus]
    ready_at: float | None = None
    """Simulated runtimes: monotonic time from which the instance is ready (None: never)."""
    started_after: float = 0.0
    """Simulated runtimes: seconds after start until it counts as started."""

    @abc.abstractmethod
    def signal(self, sig: int) -> None:
        """Deliver ``sig`` to every process of the container (no-op once exited)."""

    def abandon(self) -> None:  # noqa: B027 - optional hook
        """Forget the instance without stopping it (its node is going away)."""

    def on_exit(self, callback: Callable[..., None], *args: Any) -> None:
        """Call ``callback(*args, status)`` on the loop once the instance has exited.

        A runtime that loses the instance (its ``exited`` future cancelled or failed)
        reports exit 137, as the kubelet does for a container whose runtime went away.
        """
        def done(fut: asyncio.Future[ExitStatus]) -> None:
            if fut.cancelled() or fut.exception() is not None:
                status = ExitStatus(137, "Error", "the runtime lost the container", None, now())
            else:
                status = fut.result()
            callback(*args, status)

        self.exited.add_done_callback(done)

    @property
    def container_id(self) -> str:
        return f"{self.runtime_name}://{self.pid or 0}-{self.attempt}"

    runtime_name: str = "runtime"


class StartError(RuntimeError):
    """The container could not be started (reported as exit 128, ``StartError``)."""


class ContainerRuntime(abc.ABC):
    """The mechanical part of running containers, one implementation per kind of node."""

    name: str = "runtime"
    simulated: bool = False
    degraded: tuple[str, ...] = ()

    @abc.abstractmethod
    async def create_sandbox(self, pod: Mapping[str, Any], network: PodNetwork, *,
                             configs: Mapping[tuple[str, str], Mapping[str, Any] | None],
                             ) -> Sandbox: ...

    def container_env(self, sandbox: Sandbox, container: Mapping[str, Any]) -> dict[str, str]:
        """Runtime-specific platform variables (the container's root, volumes)."""
        return {}

    @abc.abstractmethod
    async def start(self, sandbox: Sandbox, container: Mapping[str, Any], *, pod: Mapping[
            str, Any], env: Mapping[str, str], argv: list[str], attempt: int,
                    log: LogWriter | None) -> Instance:
        """Launch an instance; raises :class:`StartError` if it cannot run at all."""

    @abc.abstractmethod
    async def destroy_sandbox(self, sandbox: Sandbox) -> None: ...

    def update_config(self, sandbox: Sandbox, kind: str, name: str,
                      obj: Mapping[str, Any] | None) -> None:
        """The ConfigMap or Secret ``kind``/``name`` changed (``obj`` None: deleted):
        rewrite the sandbox's volumes showing it.  Runtimes without files keep this no-op."""
        return

    def exec_probe(self, sandbox: Sandbox, container: Mapping[str, Any],
                   env: Mapping[str, str]) -> ExecFunc | None:
        return None

    async def exec(self, sandbox: Sandbox, container: Mapping[str, Any],
                   env: Mapping[str, str], argv: list[str], *,
                   stdin: bool = True, tty: Terminal | None = None) -> asyncio.subprocess.Process:
        """Run a command in the container's environment.

        With ``tty`` the command's stdin, stdout and stderr are that terminal's slave
        (its controlling terminal); the process then has no pipes, the caller reads
        and writes the terminal's master.

        Runtimes without processes (``sim``) have nothing to run it in: they keep
        this default, which says so as a StartError (a 4xx at the runtime API).
        """
        raise StartError(f"the {self.name} runtime runs no processes: it cannot exec")

    def usage(self, sandbox: Sandbox, instance: Instance) -> Usage | None:
        return None

    async def health(self) -> str | None:
        """``None`` when the runtime works, else what is wrong."""
        return None

    async def close(self) -> None:  # noqa: B027 - optional hook
        """Release runtime-wide resources (after every sandbox is destroyed)."""


__all__ = ["ContainerRuntime", "ExitStatus", "Instance", "Sandbox", "StartError", "Usage"]
