"""Control groups: the resource boundary of each container (CPU and memory limits).

Theory of operation
-------------------
The agent puts every container instance in a cgroup of its own,
``<agent's cgroup>/pincompute/<node>/pod<uid>/<container>``, and writes the
container's limits there: ``limits.cpu`` becomes a CFS quota per 100 ms period,
``requests.cpu`` a relative weight (shares), ``limits.memory`` the hard memory
limit.  With the ``pids`` controller, the pod's own directory caps the processes
and threads of all its containers together (:meth:`CgroupManager.limit_pids`, the
kubelet's ``podPidsLimit``): a fork bomb meets ``EAGAIN`` from ``fork`` there.
When a container exceeds its memory limit the kernel's OOM killer kills
it inside its cgroup and counts the kill; the agent compares that counter with
its value at start to report the exit as ``OOMKilled``.

The cgroups nest under the agent's *own* cgroup, never the hierarchy's root, so
whatever confines the agent (a systemd slice, a container) confines its pods too.

Both hierarchies are supported, chosen at start by :func:`detect`:

* **v2** (unified) when the agent's cgroup there offers the ``cpu`` and
  ``memory`` controllers and a child can be created with them enabled;
* **v1** otherwise, when the ``cpu`` and ``memory`` hierarchies are mounted and
  writable (``cpuacct``, mounted with ``cpu`` or apart, gives CPU usage);
* neither: :func:`detect` returns ``None`` with the reason, and the agent runs
  *degraded* — limits are recorded but not enforced — and says so.

A process joins its cgroups before it executes the container's program: the
agent opens each ``cgroup.procs`` for writing (as root) and the child writes
``0`` ("myself") to those descriptors between fork and exec.  The kernel checks
the credentials of whoever *opened* the file, so this works after the child has
dropped to the pod's unprivileged uid.
"""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

CFS_PERIOD_US = 100_000
ROOT_NAME = "pincompute"
_V1_OPTIONAL = ("cpuacct", "pids")
"""v1 hierarchies the agent uses when mounted, and does without otherwise."""


def _mounts() -> dict[str, Path]:
    """Controller (or ``unified``) → mount point, from /proc/self/mountinfo."""
    found: dict[str, Path] = {}
    try:
        lines = Path("/proc/self/mountinfo").read_text().splitlines()
    except OSError:
        return found
    for line in lines:
        left, _, right = line.partition(" - ")
        fields = left.split()
        rfields = right.split()
        if len(fields) < 5 or len(rfields) < 3:
            continue
        mountpoint = Path(fields[4])
        if rfields[0] == "cgroup2":
            found.setdefault("unified", mountpoint)
        elif rfields[0] == "cgroup":
            for opt in rfields[2].split(","):
                if opt in ("cpu", "cpuacct", "memory", "pids"):
                    found.setdefault(opt, mountpoint)
    return found


def _own_paths() -> dict[str, str]:
    """Controller (or ``unified``) → this process's cgroup path, from /proc/self/cgroup."""
    paths: dict[str, str] = {}
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return paths
    for line in lines:
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        _, controllers, path = parts
        if controllers == "":
            paths["unified"] = path
        for c in controllers.split(","):
            paths[c] = path
    return paths


@dataclass(frozen=True, slots=True)
class Limits:
    cpu_millis: int | None = None
    """``limits.cpu`` in millicores (CFS quota)."""
    cpu_request_millis: int | None = None
    """``requests.cpu`` in millicores (shares / weight)."""
    memory_bytes: int | None = None
    """``limits.memory`` (hard limit)."""
    pids: int | None = None
    """The most processes and threads (needs the ``pids`` controller)."""


class Cgroup:
    """One container's cgroup (one directory per hierarchy)."""

    def __init__(self, version: str, dirs: Mapping[str, Path]) -> None:
        self.version = version
        self.dirs = dict(dirs)
        """Controller → directory (v2: ``{"unified": dir}``)."""

    def _dir(self, controller: str) -> Path | None:
        return self.dirs.get("unified") if self.version == "v2" else self.dirs.get(controller)

    def apply(self, limits: Limits) -> None:
        if self.version == "v2":
            d = self.dirs["unified"]
            quota = "max" if limits.cpu_millis is None else str(
                max(1000, limits.cpu_millis * CFS_PERIOD_US // 1000))
            _write(d / "cpu.max", f"{quota} {CFS_PERIOD_US}")
            if limits.cpu_request_millis is not None:
                # The kernel's mapping of shares (2..262144) to weight (1..10000).
                shares = max(2, limits.cpu_request_millis * 1024 // 1000)
                _write(d / "cpu.weight", str(1 + ((shares - 2) * 9999) // 262142))
            _write(d / "memory.max", "max" if limits.memory_bytes is None
                   else str(limits.memory_bytes))
            with contextlib.suppress(OSError):
                _write(d / "memory.swap.max", "0")
            if limits.pids is not None and (d / "pids.max").exists():
                _write(d / "pids.max", str(limits.pids))
            return
        cpu = self.dirs["cpu"]
        _write(cpu / "cpu.cfs_period_us", str(CFS_PERIOD_US))
        _write(cpu / "cpu.cfs_quota_us", "-1" if limits.cpu_millis is None else str(
            max(1000, limits.cpu_millis * CFS_PERIOD_US // 1000)))
        if limits.cpu_request_millis is not None:
            _write(cpu / "cpu.shares", str(max(2, limits.cpu_request_millis * 1024 // 1000)))
        mem = self.dirs["memory"]
        if limits.memory_bytes is not None:
            _write(mem / "memory.limit_in_bytes", str(limits.memory_bytes))
            # Without swap accounting memsw may not exist; swap would hide the limit.
            with contextlib.suppress(OSError):
                _write(mem / "memory.memsw.limit_in_bytes", str(limits.memory_bytes))
            with contextlib.suppress(OSError):
                _write(mem / "memory.swappiness", "0")
        if limits.pids is not None and "pids" in self.dirs:
            _write(self.dirs["pids"] / "pids.max", str(limits.pids))

    def open_procs(self) -> list[int]:
        """Descriptors of every ``cgroup.procs``, opened for the child to join (close after)."""
        fds = []
        for d in self.dirs.values():
            fds.append(os.open(d / "cgroup.procs", os.O_WRONLY | os.O_CLOEXEC))
        return fds

    def pids(self) -> list[int]:
        d = self._dir("memory") or next(iter(self.dirs.values()))
        try:
            return [int(x) for x in (d / "cgroup.procs").read_text().split()]
        except (OSError, ValueError):
            return []

    def kill_all(self, sig: int = signal.SIGKILL) -> int:
        """Signal every process in the cgroup; returns how many were signalled."""
        if self.version == "v2":
            kill = self.dirs["unified"] / "cgroup.kill"
            if sig == signal.SIGKILL and kill.exists():
                with contextlib.suppress(OSError):
                    _write(kill, "1")
        n = 0
        for pid in self.pids():
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, sig)
                n += 1
        return n

    def oom_kills(self) -> int:
        if self.version == "v2":
            text = _read(self.dirs["unified"] / "memory.events")
        else:
            text = _read(self.dirs["memory"] / "memory.oom_control")
        for line in text.splitlines():
            key, _, value = line.partition(" ")
            if key == "oom_kill":
                return int(value or 0)
        return 0

    def memory_bytes(self) -> int | None:
        if self.version == "v2":
            raw = _read(self.dirs["unified"] / "memory.current")
            return int(raw) if raw.strip().isdigit() else None
        raw = _read(self.dirs["memory"] / "memory.usage_in_bytes")
        return int(raw) if raw.strip().isdigit() else None

    def cpu_ns(self) -> int | None:
        if self.version == "v2":
            for line in _read(self.dirs["unified"] / "cpu.stat").splitlines():
                key, _, value = line.partition(" ")
                if key == "usage_usec":
                    return int(value) * 1000
            return None
        d = self.dirs.get("cpuacct") or self.dirs["cpu"]  # cpu,cpuacct may share a mount
        raw = _read(d / "cpuacct.usage").strip()
        return int(raw) if raw.isdigit() else None

    def remove(self) -> None:
        for d in self.dirs.values():
            with contextlib.suppress(OSError):
                d.rmdir()


class CgroupManager:
    """Creates and removes the cgroups of one node's containers."""

    def __init__(self, version: str, bases: Mapping[str, Path]) -> None:
        self.version = version
        self.bases = dict(bases)
        """Controller (or ``unified``) → this node's directory."""

    def describe(self) -> str:
        return f"cgroup {self.version} at {', '.join(str(p) for p in self.bases.values())}"

    @property
    def has_pids(self) -> bool:
        """Whether process counts can be limited (the ``pids`` controller is ours)."""
        if self.version == "v2":
            return (self.bases["unified"] / "pids.max").exists() or "pids" in _read(
                self.bases["unified"] / "cgroup.subtree_control").split()
        return "pids" in self.bases

    def limit_pids(self, parts: Iterable[str], limit: int) -> None:
        """Cap the processes of everything below ``parts`` (a pod) at ``limit``.

        The pids controller is hierarchical: the cap holds for all the pod's
        containers (and their execs) together, however they are nested.
        """
        parts = list(parts)
        if self.version == "v2":
            d = self.bases["unified"].joinpath(*parts)
            d.mkdir(parents=True, exist_ok=True)
            _write(d / "pids.max", str(limit))
            return
        base = self.bases.get("pids")
        if base is None:
            return
        d = base.joinpath(*parts)
        d.mkdir(parents=True, exist_ok=True)
        _write(d / "pids.max", str(limit))

    def create(self, parts: Iterable[str], limits: Limits) -> Cgroup:
        parts = list(parts)
        dirs: dict[str, Path] = {}
        for controller, base in self.bases.items():
            d = base.joinpath(*parts)
            d.mkdir(parents=True, exist_ok=True)
            if self.version == "v2":
                # Every level above the leaf must delegate the controllers downwards.
                level = base
                for part in parts[:-1]:
                    level = level / part
                    _delegate(level)
            dirs[controller] = d
        group = Cgroup(self.version, dirs)
        group.apply(limits)
        return group

    def remove(self, parts: Iterable[str]) -> None:
        """Remove a directory and everything below it (processes must be gone)."""
        parts = list(parts)
        for base in self.bases.values():
            top = base.joinpath(*parts)
            if not top.exists():
                continue
            for dirpath, _, _ in sorted(os.walk(top), key=lambda t: -len(t[0])):
                with contextlib.suppress(OSError):
                    os.rmdir(dirpath)

    def existing(self, parts: Iterable[str]) -> list[Cgroup]:
        """Leaf cgroups below ``parts`` (to kill what a crashed agent left behind)."""
        parts = list(parts)
        groups: list[Cgroup] = []
        base = next(iter(self.bases.values()), None)
        if base is None:
            return groups
        top = base.joinpath(*parts)
        for dirpath, dirnames, _ in os.walk(top):
            if not dirnames:
                rel = Path(dirpath).relative_to(base)
                groups.append(Cgroup(self.version,
                                     {c: b / rel for c, b in self.bases.items()}))
        return groups


def detect(node: str, *, prefer: str | None = None) -> tuple[CgroupManager | None, str]:
    """A manager for ``node``'s cgroups, or ``None`` and why not."""
    if os.geteuid() != 0:
        return None, "not running as root: cgroups cannot be created"
    mounts = _mounts()
    own = _own_paths()
    reasons: list[str] = []
    order = ("v2", "v1") if prefer != "v1" else ("v1", "v2")
    for version in order:
        manager, reason = (_try_v2 if version == "v2" else _try_v1)(node, mounts, own)
        if manager is not None:
            return manager, manager.describe()
        reasons.append(reason)
    return None, "; ".join(reasons)


def _try_v2(node: str, mounts: Mapping[str, Path],
            own: Mapping[str, str]) -> tuple[CgroupManager | None, str]:
    mount = mounts.get("unified")
    if mount is None:
        return None, "cgroup v2 is not mounted"
    here = mount / own.get("unified", "/").lstrip("/")
    available = set(_read(here / "cgroup.controllers").split())
    if not {"cpu", "memory"} <= available:
        return None, (f"cgroup v2 at {here} lacks the cpu/memory controllers "
                      f"(has: {' '.join(sorted(available)) or 'none'})")
    base = here / ROOT_NAME
    try:
        base.mkdir(exist_ok=True)
        _write(here / "cgroup.subtree_control", "+cpu +memory")
        _write(base / "cgroup.subtree_control", "+cpu +memory")
        if "pids" in available:
            # Optional: without it pods simply have no process cap (said at start).
            with contextlib.suppress(OSError):
                _write(here / "cgroup.subtree_control", "+pids")
                _write(base / "cgroup.subtree_control", "+pids")
        (base / node).mkdir(exist_ok=True)
        _delegate(base / node)
    except OSError as exc:
        return None, f"cgroup v2 at {here} is not writable for us: {exc}"
    return CgroupManager("v2", {"unified": base / node}), ""


def _try_v1(node: str, mounts: Mapping[str, Path],
            own: Mapping[str, str]) -> tuple[CgroupManager | None, str]:
    bases: dict[str, Path] = {}
    for controller in ("cpu", "memory", "cpuacct", "pids"):
        mount = mounts.get(controller)
        if mount is None:
            if controller in _V1_OPTIONAL:
                continue
            return None, f"cgroup v1 {controller} hierarchy is not mounted"
        if any(b == mount / own.get(controller, "/").lstrip("/") / ROOT_NAME / node
               for b in bases.values()):
            continue  # cpu and cpuacct mounted together: one directory serves both
        base = mount / own.get(controller, "/").lstrip("/") / ROOT_NAME / node
        try:
            base.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            if controller in _V1_OPTIONAL:
                continue
            return None, f"cgroup v1 {controller} at {base.parent} is not writable: {exc}"
        bases[controller] = base
    if "cpuacct" not in bases and "cpu" in bases and (bases["cpu"] / "cpuacct.usage").exists():
        bases["cpuacct"] = bases["cpu"]
    return CgroupManager("v1", _dedupe(bases)), ""


def _dedupe(bases: dict[str, Path]) -> dict[str, Path]:
    # A combined cpu,cpuacct mount appears under both names with one directory; a
    # process joins it once.
    seen: dict[Path, str] = {}
    out: dict[str, Path] = {}
    for controller, path in bases.items():
        if path in seen:
            continue
        seen[path] = controller
        out[controller] = path
    return out


def _delegate(level: Path) -> None:
    """Enable the controllers for ``level``'s children (v2); pids only where available."""
    for controllers in ("+cpu +memory", "+pids"):
        with contextlib.suppress(OSError):
            _write(level / "cgroup.subtree_control", controllers)


def _write(path: Path, value: str) -> None:
    fd = os.open(path, os.O_WRONLY)
    try:
        os.write(fd, value.encode())
    finally:
        os.close(fd)


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except OSError:
        return ""


__all__ = ["CFS_PERIOD_US", "Cgroup", "CgroupManager", "Limits", "detect"]
