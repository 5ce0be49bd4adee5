"""Node health: the probes that gate readiness and the conditions the node reports.

Theory of operation
-------------------
Permanent problems are node conditions (node-problem-detector's rule; transient
ones are events).  Every ``status_interval`` the agent runs its health probes and
turns the results into conditions, all computed by :func:`conditions` from a
:class:`HealthReport` — a pure function, tested without a node:

================== ==========================================================
``Ready``          True only when every *gating* probe passes: the runtime
                   (it can start a process), the disk (the node's directory is
                   writable), DNS (``localhost`` resolves), required daemons
                   (when configured).  A new node therefore takes no pods until
                   it is whole; a broken runtime makes a running node NotReady
                   (reason ``RuntimeUnhealthy``) so the control plane stops
                   sending it pods and, after the tolerations run out, evicts.
``MemoryPressure`` available memory below ``memory_threshold`` (process runtime:
                   the machine's; sim: the pods' declared use vs allocatable).
``DiskPressure``   free disk below ``disk_threshold`` of the node's directory.
``PIDPressure``    more than 90 % of the pid limit in use.
``Overloaded``     the pods use more CPU than ``overload_ratio`` of allocatable
                   (or the machine's load average exceeds its CPUs by that ratio).
``RuntimeUnhealthy`` True with the runtime's complaint while it fails.
``IsolationDegraded`` True when pods run without their own uid, cgroup limits or
                   namespaces; either way the message names the protections
                   active (``uid``, ``cgroups``, ``pid-namespace``,
                   ``mount-namespace``).
================== ==========================================================

Condition ``lastTransitionTime`` moves only when a status flips, and
``lastHeartbeatTime`` is not written on every pass (the Lease is the heartbeat),
so an unchanged node costs no write.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import socket
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

from pincompute.kube.objects import now


@dataclass(frozen=True, slots=True)
class HealthReport:
    runtime_error: str | None = None
    disk_error: str | None = None
    dns_error: str | None = None
    daemons_error: str | None = None
    memory_pressure: str | None = None
    disk_pressure: str | None = None
    pid_pressure: str | None = None
    overloaded: str | None = None
    degraded: Sequence[str] = field(default_factory=tuple)
    isolation: Sequence[str] = field(default_factory=tuple)
    """The protections active for pods, named in the ``IsolationDegraded`` message."""

    @property
    def ready(self) -> bool:
        """Whether every gating probe passes: the node may take pods."""
        return not (self.runtime_error or self.disk_error or self.dns_error
                    or self.daemons_error)


def conditions(report: HealthReport, previous: Sequence[Mapping[str, Any]] = ()
               ) -> list[dict[str, Any]]:
    """The node's conditions for ``report``; transition times carried from ``previous``."""
    gates = [(name, err) for name, err in (("runtime", report.runtime_error),
                                           ("disk", report.disk_error),
                                           ("dns", report.dns_error),
                                           ("daemons", report.daemons_error)) if err]
    if report.runtime_error:
        ready = ("False", "RuntimeUnhealthy", f"container runtime is down: "
                 f"{report.runtime_error}")
    elif gates:
        ready = ("False", "NodeHealthCheckFailed",
                 "; ".join(f"{name}: {err}" for name, err in gates))
    else:
        ready = ("True", "NodeReady", "node agent is posting ready status")

    def flag(value: str | None, yes: str, no: str) -> tuple[str, str, str]:
        return ("True", yes, value) if value else ("False", no, "")

    active = f"active protections: {', '.join(report.isolation) or 'none'}"
    isolation = (("True", "IsolationDegraded", "; ".join([*report.degraded, active]))
                 if report.degraded else ("False", "IsolationEnforced", active))

    wanted = {
        "Ready": ready,
        "MemoryPressure": flag(report.memory_pressure, "NodeHasInsufficientMemory",
                               "NodeHasSufficientMemory"),
        "DiskPressure": flag(report.disk_pressure, "NodeHasDiskPressure",
                             "NodeHasNoDiskPressure"),
        "PIDPressure": flag(report.pid_pressure, "NodeHasInsufficientPID",
                            "NodeHasSufficientPID"),
        "Overloaded": flag(report.overloaded, "NodeOverloaded", "NodeNotOverloaded"),
        "RuntimeUnhealthy": flag(report.runtime_error, "RuntimeUnhealthy", "RuntimeHealthy"),
        "IsolationDegraded": isolation,
    }
    before = {c.get("type"): c for c in previous}
    out = []
    for type_, (status, reason, message) in wanted.items():
        prev = before.get(type_) or {}
        stamp = prev.get("lastTransitionTime") if prev.get("status") == status else None
        cond: dict[str, Any] = {"type": type_, "status": status, "reason": reason,
                                "lastTransitionTime": stamp or now()}
        if message:
            cond["message"] = message
        out.append(cond)
    # Conditions other reporters own (remediation, node-problem-detector) stay.
    out += [dict(c) for c in previous if c.get("type") not in wanted]
    return out


def same_conditions(a: Sequence[Mapping[str, Any]], b: Sequence[Mapping[str, Any]]) -> bool:
    def strip(cs: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
        return [{k: v for k, v in c.items() if k not in ("lastTransitionTime",
                                                         "lastHeartbeatTime")} for c in cs]
    return strip(a) == strip(b)


@dataclass(frozen=True, slots=True)
class Thresholds:
    memory_available_bytes: int = 100 * 1024 * 1024
    """``memory.available<100Mi``, the kubelet's default hard eviction threshold."""
    disk_free_ratio: float = 0.10
    pid_ratio: float = 0.90
    overload_ratio: float = 1.0


async def probe_dns() -> str | None:
    try:
        async with asyncio.timeout(2):
            await asyncio.get_running_loop().getaddrinfo("localhost", None,
                                                         type=socket.SOCK_STREAM)
    except (OSError, TimeoutError) as exc:
        return f"localhost does not resolve: {exc}"
    return None


def probe_disk(path: Path, thresholds: Thresholds) -> tuple[str | None, str | None]:
    """(gate error, pressure) for the node's directory."""
    try:
        probe = path / ".health"
        probe.write_bytes(b"ok")
        probe.unlink()
    except OSError as exc:
        return f"{path} is not writable: {exc}", None
    usage = shutil.disk_usage(path)
    free = usage.free / usage.total if usage.total else 1.0
    if free < thresholds.disk_free_ratio:
        return None, f"{free:.0%} of the disk at {path} is free"
    return None, None


def probe_machine(thresholds: Thresholds) -> tuple[str | None, str | None, str | None]:
    """(memory pressure, pid pressure, overload) of the machine itself."""
    mem = psutil.virtual_memory()
    memory = None
    if mem.available < thresholds.memory_available_bytes:
        memory = f"{mem.available // 2**20}Mi of memory available"
    pids = None
    with contextlib.suppress(OSError, ValueError):  # no /proc: no pid pressure to report
        pid_max = int(Path("/proc/sys/kernel/pid_max").read_text())
        in_use = len(psutil.pids())
        if in_use > thresholds.pid_ratio * pid_max:
            pids = f"{in_use} of {pid_max} pids in use"
    overload = None
    with contextlib.suppress(OSError):  # no load average on this platform
        load1 = os.getloadavg()[0]
        cpus = os.cpu_count() or 1
        if load1 > cpus * (1 + thresholds.overload_ratio):
            overload = f"load average {load1:.1f} on {cpus} CPUs"
    return memory, pids, overload


def usage_pressure(*, cpu_used_millis: int, memory_used: int, cpu_allocatable_millis: int,
                   memory_allocatable: int, thresholds: Thresholds
                   ) -> tuple[str | None, str | None]:
    """(memory pressure, overload) from the pods' own use (sim nodes, or on top)."""
    memory = overload = None
    if memory_allocatable and memory_used > memory_allocatable:
        memory = (f"pods use {memory_used // 2**20}Mi of {memory_allocatable // 2**20}Mi "
                  "allocatable memory")
    if cpu_allocatable_millis and cpu_used_millis > thresholds.overload_ratio * \
            cpu_allocatable_millis:
        overload = f"pods use {cpu_used_millis}m of {cpu_allocatable_millis}m allocatable CPU"
    return memory, overload


__all__ = ["HealthReport", "Thresholds", "conditions", "probe_disk", "probe_dns",
           "probe_machine", "same_conditions", "usage_pressure"]
