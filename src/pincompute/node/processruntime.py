"""The ``process`` runtime: every container is a real local process.

Theory of operation
-------------------
A pod's sandbox is a directory, ``<node dir>/pods/<pod uid>/``, holding its
volumes and one root directory per container (``containers/<name>/``, exported
as ``$PINCOMPUTE_ROOT`` and ``$HOME``; ``workingDir`` and ``mountPath`` are
read relative to it, see :mod:`.volumes`).  When the agent runs as root every
process of the pod runs as the pod's own uid/gid (:mod:`.identity`) with the
project's group as its only supplementary group.  The sandbox directory and the
directories grouping its contents belong to root (the pod's directory mode 0710
for the pod's group: no other pod may pass); only the leaves — each volume, each
container root — are the pod's.  The agent reaches into them by descriptor,
never following a link (:mod:`.fsguard`), and a container root is rebuilt new
at every start, so nothing a tenant plants in its own tree redirects the agent.

Config volumes and the discovery volume (``discovery/``: the namespace's
``pincompute-discovery`` ConfigMap, linked into every container at
``/etc/pincompute/discovery`` and named by ``$PINCOMPUTE_DISCOVERY_FILE``) are
root's and read-only to the pod; :meth:`ProcessRuntime.update_config` replaces
their content atomically when the object changes (:mod:`.configvolume`,
:mod:`.configsync`).

As root, where the machine allows it, each container also gets its own pid and
mount namespaces (:mod:`.namespaces`): it sees only its own processes in
``/proc`` and has a private ``/tmp`` and ``/dev/shm``; the command is started
through the pod init, which drops to the pod's uid itself, and ``exec`` enters
the namespaces.

A container instance is started with ``asyncio.create_subprocess_exec`` in a
new session (so it is its own process group), with every signal's disposition
back to its default (an ignored signal survives ``exec``: an agent started under
``nohup`` would otherwise start containers that ignore SIGHUP, and an exec'd
command on a terminal would outlive its session's hang-up), with the container's
environment and working directory, stdout/stderr piped to the agent, which writes them to
the container's log (:mod:`.logs`).  With cgroups (:mod:`.cgroups`) the child
joins its container cgroup between fork and exec, so even its first
instruction runs under the limits; with a bind guard (:mod:`.bindguard`) it
joins the pod's cgroup v2 directory too, so it can bind only the pod's address.
Two limits come from the node pool rather than the pod, so that no pod goes
without: the pod's processes and threads together are capped at
``pod_pids_limit`` (a fork bomb stops there), and a container declaring no
``limits.memory`` gets ``default_memory_limit`` (a runaway is OOM-killed in its
cgroup instead of pressing the whole machine).

The instance has ended when its main process has exited.  Anything it left
behind (children, daemons) is killed — through the process group and, with
cgroups, through every pid of the cgroup (a process can leave its group but not
its cgroup) — before the exit is reported, so a restarted container never
meets its predecessor.  The exit code is the process's, or 128 + the signal
number; the reason is ``OOMKilled`` when the cgroup's OOM-kill counter moved
during the run, ``Completed`` for 0 and ``Error`` otherwise.

Exec (and exec probes) run a command the same way — same uid, environment,
working directory and cgroup as the container's running instance.  An
interactive exec gets a terminal instead of pipes (:mod:`.terminal`): the
command's stdin, stdout and stderr are the slave of a pty it makes its
controlling terminal.  An exec
probe's output is read to its end but only its first
:data:`~.probes.MAX_PROBE_OUTPUT` bytes per stream are kept, as the kubelet's.

Resource usage comes from the cgroup when there is one (it counts every process
of the container), else from the process tree (psutil).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import psutil

from pincompute.kube.objects import now
from pincompute.kube.quantity import QuantityError, cpu_millis, to_int
from pincompute.model.wellknown import (
    DISCOVERY_FILE_ENV,
    DISCOVERY_KEY,
    DISCOVERY_MOUNT,
)

from . import configvolume, fsguard
from . import namespaces as ns
from . import volumes as vol
from .bindguard import BindGuard
from .cgroups import Cgroup, CgroupManager, Limits
from .configsync import DISCOVERY_REF
from .containerruntime import ContainerRuntime, ExitStatus, Instance, Sandbox, StartError, Usage
from .identity import UidAllocator, UidExhausted, disown
from .logs import LogWriter
from .network import PodNetwork, PortForwarder
from .probes import MAX_PROBE_OUTPUT, ExecFunc
from .terminal import Terminal, make_controlling

_RESET_SIGNALS = tuple(s for s in signal.Signals if s not in (signal.SIGKILL, signal.SIGSTOP))
"""The signals a container starts with at their default disposition (as runc does)."""

_READ_CHUNK = 65536


def limits_of(container: Mapping[str, Any], *, default_memory: int | None = None) -> Limits:
    """A container's cgroup limits; ``default_memory`` when it declares no memory limit."""
    resources = container.get("resources") or {}
    limits = resources.get("limits") or {}
    requests = resources.get("requests") or {}

    def parse(fn: Callable[[Any], int], raw: Any) -> int | None:
        if raw is None:
            return None
        try:
            return fn(raw)
        except QuantityError:
            return None

    return Limits(cpu_millis=parse(cpu_millis, limits.get("cpu")),
                  cpu_request_millis=parse(cpu_millis, requests.get("cpu", limits.get("cpu"))),
                  memory_bytes=parse(to_int, limits.get("memory")) or default_memory)


class ProcessInstance(Instance):
    runtime_name = "process"
    pid: int  # always a process

    def __init__(self, *, container: str, attempt: int, proc: asyncio.subprocess.Process,
                 cgroup: Cgroup | None, log: LogWriter | None, on_exit: Callable[[], None],
                 stop_timeout: float) -> None:
        self.container = container
        self.attempt = attempt
        self.proc = proc
        self.pid = proc.pid
        self.cgroup = cgroup
        self.log = log
        self.started_at = time.monotonic()
        self.started_time = now()
        self._oom_base = cgroup.oom_kills() if cgroup is not None else 0
        self._on_exit = on_exit
        self._stop_timeout = stop_timeout
        self.exited = asyncio.get_running_loop().create_future()
        self.last_sample: tuple[float, float] | None = None
        self._task = asyncio.get_running_loop().create_task(self._watch(),
                                                            name=f"container {container}")

    def signal(self, sig: int) -> None:
        if self.exited.done():
            return
        # Each process gets the signal once: the cgroup holds every process of the
        # container (also those that left its process group), so when it has any,
        # it is the one way in.  Signalling both made a SIGTERM handler run twice.
        if self.cgroup is not None and self.cgroup.kill_all(sig):
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, sig)

    async def _pump(self, stream: asyncio.StreamReader | None, name: str) -> None:
        if stream is None:
            return
        while True:
            data = await stream.read(_READ_CHUNK)
            if not data:
                return
            if self.log is not None:
                self.log.write(name, data)

    async def _watch(self) -> None:
        readers = [asyncio.ensure_future(self._pump(self.proc.stdout, "stdout")),
                   asyncio.ensure_future(self._pump(self.proc.stderr, "stderr"))]
        try:
            code = await self.proc.wait()
        finally:
            # Whatever the main process left behind goes with it.
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.pid, signal.SIGKILL)
            if self.cgroup is not None:
                for _ in range(50):
                    if not self.cgroup.kill_all(signal.SIGKILL):
                        break
                    await asyncio.sleep(0.01)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._stop_timeout):
                    await asyncio.gather(*readers, return_exceptions=True)
            for r in readers:
                r.cancel()
        oom = self.cgroup is not None and self.cgroup.oom_kills() > self._oom_base
        if self.cgroup is not None:
            self.cgroup.remove()
        sig = -code if code < 0 else None
        exit_code = 128 + sig if sig is not None else code
        if oom:
            reason = "OOMKilled"
        elif exit_code == 0:
            reason = "Completed"
        else:
            reason = "Error"
        message = f"killed by signal {signal.Signals(sig).name}" if sig else ""
        if oom:
            message = "the container exceeded its memory limit"
        self._on_exit()
        if not self.exited.done():
            self.exited.set_result(ExitStatus(exit_code, reason, message, sig, now()))


class ProcessRuntime(ContainerRuntime):
    """Real processes; isolation by uid and cgroups when the machine allows it."""

    name = "process"

    def __init__(self, *, root: Path, storage: Path, node: str,
                 cgroups: CgroupManager | None, uids: UidAllocator | None,
                 node_ip: str, degraded: tuple[str, ...] = (),
                 bindguard: BindGuard | None = None, pod_pids_limit: int | None = None,
                 default_memory_limit: int | None = None, namespaces: bool = False) -> None:
        self.root = root
        self.storage = storage
        self.node = node
        self.cgroups = cgroups
        self.uids = uids
        self.node_ip = node_ip
        self.degraded = degraded
        self.bindguard = bindguard
        """Confines each pod's binds to its own address (:mod:`.bindguard`), when available."""
        self.pod_pids_limit = pod_pids_limit or None
        """Processes and threads per pod (None: no cap); needs the pids controller."""
        self.default_memory_limit = default_memory_limit or None
        """The memory limit of a container declaring none (None: unlimited)."""
        self.namespaces = namespaces and uids is not None
        """Each container in its own pid and mount namespaces (:mod:`.namespaces`)."""
        # What a container still sees of the host's /tmp (if the node lives there): the
        # machine's node tree and the cluster storage, guarded by their modes as before.
        # (The node's own directory too, in case its parent is /tmp itself.)
        self._keep = (root.parent, root, storage)
        self.forwarder = PortForwarder()
        self.pods_dir = root / "pods"
        self.pods_dir.mkdir(parents=True, exist_ok=True, mode=0o711)
        if uids is not None:
            _check_traversable(self.pods_dir)
            _check_traversable(storage)
        self._running: dict[tuple[str, str], ProcessInstance] = {}
        self._execs: set[asyncio.subprocess.Process] = set()
        self._reapers: set[asyncio.Task[None]] = set()

    # -- sandboxes --

    async def create_sandbox(self, pod: Mapping[str, Any], network: PodNetwork, *,
                             configs: Mapping[tuple[str, str], Mapping[str, Any] | None],
                             ) -> Sandbox:
        md = pod["metadata"]
        pod_uid = md["uid"]
        uid = gid = project_gid = None
        if self.uids is not None:
            try:
                uid = gid = self.uids.allocate(pod_uid)
            except UidExhausted as exc:  # retried: quarantined uids come free
                raise StartError(str(exc)) from exc
            project_gid = self.uids.project_gid(md.get("namespace") or "default")
        pod_dir = self.pods_dir / pod_uid
        try:
            _check_names_and_paths(pod)
            self._make_pod_dir(pod_uid, uid=uid, gid=gid)
            with fsguard.opened_dir(pod_dir) as pod_fd:
                volumes = vol.prepare(pod, pod_dir=pod_dir, pod_fd=pod_fd, storage=self.storage,
                                      configs=configs, uid=uid, gid=gid,
                                      project_gid=project_gid)
                discovery = None
                if DISCOVERY_REF in configs:
                    # The project's endpoints, mounted into every container (DESIGN §8).
                    discovery = pod_dir / DISCOVERY_DIR
                    _write_discovery(pod_fd, configs[DISCOVERY_REF], uid=uid, gid=gid)
        except (vol.VolumeError, OSError) as exc:
            raise StartError(f"volumes: {exc}") from exc
        sandbox = Sandbox(pod_uid=pod_uid, namespace=md.get("namespace") or "",
                          name=md.get("name", ""), network=network, uid=uid, gid=gid,
                          extra={"dir": pod_dir, "volumes": volumes,
                                 "project_gid": project_gid, "discovery": discovery})
        if self.bindguard is not None and network.mode != "host":
            try:
                self.bindguard.attach(pod_uid, network.ip)
            except OSError as exc:
                raise StartError(f"bind guard: {exc}") from exc
        if network.host_ports:
            try:
                await self.forwarder.open(pod_uid, host_ip=self.node_ip, pod_ip=network.ip,
                                          ports=network.host_ports)
            except OSError as exc:
                await self.forwarder.close(pod_uid)
                raise StartError(f"host ports: {exc}") from exc
        return sandbox

    def _make_pod_dir(self, pod_uid: str, *, uid: int | None, gid: int | None) -> None:
        """``pods/<pod uid>/`` and its ``containers/``: root's, only the pod may pass.

        Made over whatever an earlier run left (an agent restart): the directory is
        re-owned through its descriptor, and anything but a directory is replaced.
        """
        fsguard.check_name(pod_uid, what="pod uid")
        root = -1 if uid is None else 0
        with fsguard.opened_dir(self.pods_dir) as pods_fd:
            pod_fd = fsguard.ensure_dir(pods_fd, pod_uid, mode=0o700 if uid is None else 0o710,
                                        uid=root, gid=-1 if uid is None else (gid or uid))
            try:
                os.close(fsguard.ensure_dir(pod_fd, "containers", mode=0o711, uid=root,
                                            gid=root))
            finally:
                os.close(pod_fd)

    def update_config(self, sandbox: Sandbox, kind: str, name: str,
                      obj: Mapping[str, Any] | None) -> None:
        """Rewrite (atomically, :mod:`.configvolume`) the sandbox's volumes showing ``kind``
        ``name``: its config volumes and, for the discovery ConfigMap, the discovery file.
        ``obj`` None: the object is gone (an optional volume empties, others keep theirs)."""
        volumes: vol.VolumePaths | None = sandbox.extra.get("volumes")
        sources = [c for c in (volumes.configs if volumes else ()) if
                   c.kind == kind and c.name == name and (obj is not None or c.optional)]
        discovery = sandbox.extra.get("discovery") is not None and \
            (kind, name) == DISCOVERY_REF
        if not sources and not discovery:
            return
        group = -1 if sandbox.uid is None else (
            sandbox.gid if sandbox.gid is not None else sandbox.uid)
        with fsguard.opened_dir(Path(sandbox.extra["dir"])) as pod_fd:
            if discovery:
                _write_discovery(pod_fd, obj, uid=sandbox.uid, gid=sandbox.gid)
            if sources:
                config_fd = fsguard.open_dir(pod_fd, "config")
                try:
                    for c in sources:
                        vol.write_config(config_fd, c.volume, obj, c.items, uid=sandbox.uid,
                                         gid=group)
                finally:
                    os.close(config_fd)

    async def destroy_sandbox(self, sandbox: Sandbox) -> None:
        await self.forwarder.close(sandbox.pod_uid)
        for key in [k for k in self._running if k[0] == sandbox.pod_uid]:
            inst = self._running[key]
            inst.signal(signal.SIGKILL)
            with contextlib.suppress(Exception):
                await inst.exited
        if self.cgroups is not None:
            for group in self.cgroups.existing([f"pod{sandbox.pod_uid}"]):
                group.kill_all(signal.SIGKILL)
            self.cgroups.remove([f"pod{sandbox.pod_uid}"])
        if self.bindguard is not None:
            await self.bindguard.detach(sandbox.pod_uid)
        await asyncio.to_thread(self.remove_pod_dir, sandbox.pod_uid)
        if self.uids is not None:
            # What outlives the pod goes back to root before its uid can go to another pod.
            volumes: vol.VolumePaths | None = sandbox.extra.get("volumes")
            for path in vol.persistent_paths(volumes, storage=self.storage) if volumes else ():
                await asyncio.to_thread(disown, path)
            self.uids.release(sandbox.pod_uid)

    def remove_pod_dir(self, pod_uid: str) -> None:
        """Remove a pod's directory, never following a link in it (best effort)."""
        with contextlib.suppress(OSError), fsguard.opened_dir(self.pods_dir) as pods_fd:
            fsguard.remove(pods_fd, pod_uid)

    def release_uids(self, pod_uids: Iterable[str]) -> None:
        """Release uids teardown did not (agent stop, pods gone while it was down).

        Their persistent volumes were not handed back: whichever still belongs to
        one of these uids goes back to root first (one scan of the storage).
        """
        if self.uids is None:
            return
        held = self.uids.held()
        pods = [p for p in pod_uids if p in held]
        for path in _volumes_owned_by(self.storage, {held[p] for p in pods}):
            disown(path)
        for pod_uid in pods:
            self.uids.release(pod_uid)

    # -- containers --

    def _container_root(self, sandbox: Sandbox, name: str) -> Path:
        return Path(sandbox.extra["dir"]) / "containers" / fsguard.check_name(
            name, what="container name")

    @staticmethod
    def _working_dir(root: Path, container: Mapping[str, Any]) -> Path:
        return root.joinpath(*fsguard.relative_parts(container.get("workingDir") or "",
                                                     what="workingDir"))

    def container_env(self, sandbox: Sandbox, container: Mapping[str, Any]) -> dict[str, str]:
        root = self._container_root(sandbox, container["name"])
        env = {"PINCOMPUTE_ROOT": str(root), "HOME": str(root)}
        volumes: vol.VolumePaths = sandbox.extra["volumes"]
        for m in container.get("volumeMounts") or ():
            if m["name"] in volumes.by_name:
                env[vol.env_name(m["name"])] = str(volumes.by_name[m["name"]])
        discovery = sandbox.extra.get("discovery")
        if discovery is not None:
            env[DISCOVERY_FILE_ENV] = str(discovery / DISCOVERY_KEY)
        return env

    def _prepare_root(self, sandbox: Sandbox, container: Mapping[str, Any]) -> Path:
        """A new root for the container (the last instance's is gone); its working directory.

        Built while it is still root's — the mount links and the directories above them —
        then handed to the pod, deepest directory first, by descriptor: nothing the tenant
        left in the previous root is reused or followed.  The working directory is made by
        the container's own process (:meth:`_spawn_options`), as the pod's uid.
        """
        root = self._container_root(sandbox, container["name"])
        cwd = self._working_dir(root, container)
        with fsguard.opened_dir(root.parent) as containers_fd:
            created = [fsguard.fresh_dir(containers_fd, root.name, mode=0o700)]
            try:
                created += vol.mount(created[0], *_with_discovery(sandbox, container))
                if sandbox.uid is not None:
                    gid = sandbox.gid if sandbox.gid is not None else sandbox.uid
                    for fd in reversed(created):
                        os.fchown(fd, sandbox.uid, gid)
            finally:
                for fd in created:
                    os.close(fd)
        return cwd

    def _groups(self, sandbox: Sandbox) -> list[int]:
        return [g for g in (sandbox.extra.get("project_gid"),) if g is not None]

    def _spawn_options(self, sandbox: Sandbox, fds: list[int], cwd: Path, *,
                       make_cwd: bool = False, wrapped: bool = False,
                       tty: bool = False) -> dict[str, Any]:
        options: dict[str, Any] = {"start_new_session": True}
        # A namespace wrapper starts as root and drops to the pod's identity itself.
        if sandbox.uid is not None and not wrapped:
            options.update(user=sandbox.uid, group=sandbox.gid,
                           extra_groups=self._groups(sandbox))
        where = str(cwd)

        if wrapped:
            # The namespace init starts in "/": the agent's own working directory may sit
            # under /tmp, which the init covers with the container's private tmpfs.
            options["cwd"] = "/"

        def in_child() -> None:
            # Between fork and exec: only system calls, no Python-level locks.
            for sig in _RESET_SIGNALS:
                signal.signal(sig, signal.SIG_DFL)
            for fd in fds:
                os.write(fd, b"0")
            if tty:
                make_controlling(0)  # stdin is the terminal's slave (after setsid)
            if wrapped:
                return  # the namespace init enters the working directory as the pod
            # After the switch to the pod's uid: the working directory is resolved
            # here, with the pod's rights, so a link the tenant planted leads only
            # where it may go.
            if make_cwd:
                os.makedirs(where, exist_ok=True)
            os.chdir(where)
        options["preexec_fn"] = in_child
        return options

    async def start(self, sandbox: Sandbox, container: Mapping[str, Any], *,
                    pod: Mapping[str, Any], env: Mapping[str, str], argv: list[str],
                    attempt: int, log: LogWriter | None) -> Instance:
        name = container["name"]
        if not argv:
            raise StartError("no command given: the process runtime has no image entrypoint")
        try:
            cwd = await asyncio.to_thread(self._prepare_root, sandbox, container)
        except (OSError, vol.VolumeError) as exc:
            raise StartError(f"preparing the container's root: {exc}") from exc
        wrapped = self.namespaces and sandbox.uid is not None
        if wrapped:
            _check_command(argv[0], cwd=cwd, path=env.get("PATH", os.defpath))
            argv = ns.init_argv(argv, uid=sandbox.uid or 0, gid=sandbox.gid or 0,
                                groups=self._groups(sandbox), workdir=cwd,
                                keep=self._keep,
                                env_has_lc_ctype="LC_CTYPE" in env)
        cgroup = None
        fds: list[int] = []
        if self.cgroups is not None:
            try:
                if self.pod_pids_limit is not None:
                    self.cgroups.limit_pids([f"pod{sandbox.pod_uid}"], self.pod_pids_limit)
                cgroup = self.cgroups.create(
                    [f"pod{sandbox.pod_uid}", name],
                    limits_of(container, default_memory=self.default_memory_limit))
                fds = cgroup.open_procs()
            except OSError as exc:
                raise StartError(f"cgroup: {exc}") from exc
        try:
            fds += self._guard_procs(sandbox)
            proc = await asyncio.create_subprocess_exec(
                *argv, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE, env=dict(env),
                **self._spawn_options(sandbox, fds, cwd, make_cwd=True, wrapped=wrapped))
        except (OSError, subprocess.SubprocessError) as exc:
            if cgroup is not None:
                cgroup.remove()
            raise StartError(f"{argv[0]}: {exc}") from exc
        finally:
            for fd in fds:
                os.close(fd)
        key = (sandbox.pod_uid, name)
        grace = float((pod.get("spec") or {}).get("terminationGracePeriodSeconds", 30))
        inst = ProcessInstance(container=name, attempt=attempt, proc=proc, cgroup=cgroup,
                               log=log, stop_timeout=min(grace, 5.0) + 1.0,
                               on_exit=lambda: self._forget(key, proc.pid))
        self._running[key] = inst
        return inst

    def _guard_procs(self, sandbox: Sandbox) -> list[int]:
        """The pod's bind-guard cgroup to join too (host-network pods have none)."""
        if self.bindguard is None or sandbox.network.mode == "host":
            return []
        return self.bindguard.open_procs(sandbox.pod_uid)

    def _forget(self, key: tuple[str, str], pid: int) -> None:
        inst = self._running.get(key)
        if inst is not None and inst.pid == pid:
            del self._running[key]

    # -- exec --

    async def exec(self, sandbox: Sandbox, container: Mapping[str, Any],
                   env: Mapping[str, str], argv: list[str], *,
                   stdin: bool = True, tty: Terminal | None = None) -> asyncio.subprocess.Process:
        name = container["name"]
        inst = self._running.get((sandbox.pod_uid, name))
        if inst is None:
            raise StartError(f"container {name!r} is not running")
        if not argv:
            raise StartError("exec needs a command")
        try:
            cwd = self._working_dir(self._container_root(sandbox, name), container)
        except fsguard.UnsafePath as exc:
            raise StartError(str(exc)) from exc
        target = await _namespace_init(inst) if self.namespaces else None
        if self.namespaces and target is None:
            raise StartError(f"container {name!r} is not running")
        if target is not None:
            _check_command(argv[0], cwd=cwd, path=env.get("PATH", os.defpath))
            # Into the container's namespaces: the command sees its /tmp and processes
            # (nsenter --wd: the working directory is the container's own).
            argv = ns.enter_argv(argv, target=target, uid=sandbox.uid or 0,
                                 gid=sandbox.gid or 0, groups=self._groups(sandbox),
                                 tty=tty is not None)
        fds = inst.cgroup.open_procs() if inst.cgroup is not None else []
        try:
            fds += self._guard_procs(sandbox)
            stdin_to: int | None = asyncio.subprocess.PIPE if stdin else asyncio.subprocess.DEVNULL
            out_to: int | None = asyncio.subprocess.PIPE
            if tty is not None:
                stdin_to = out_to = tty.slave
            proc = await asyncio.create_subprocess_exec(
                *argv, stdin=stdin_to, stdout=out_to, stderr=out_to, env=dict(env),
                # Entering namespaces, the session is made inside them (enter_argv).
                **self._spawn_options(sandbox, fds, cwd, wrapped=target is not None,
                                      tty=tty is not None and target is None))
        except (OSError, subprocess.SubprocessError) as exc:
            raise StartError(f"{argv[0]}: {exc}") from exc
        finally:
            for fd in fds:
                os.close(fd)
            if tty is not None:
                tty.spawned()
        self._execs.add(proc)
        reaper = asyncio.get_running_loop().create_task(self._reap_exec(proc))
        # The loop keeps only weak references to tasks: hold it until it is done.
        self._reapers.add(reaper)
        reaper.add_done_callback(self._reapers.discard)
        return proc

    async def _reap_exec(self, proc: asyncio.subprocess.Process) -> None:
        try:
            await proc.wait()
        finally:
            self._execs.discard(proc)

    def exec_probe(self, sandbox: Sandbox, container: Mapping[str, Any],
                   env: Mapping[str, str]) -> ExecFunc | None:
        async def run(argv: list[str], timeout: float) -> tuple[int, str]:
            try:
                proc = await self.exec(sandbox, container, env, argv, stdin=False)
            except StartError as exc:
                return 126, str(exc)
            try:
                async with asyncio.timeout(timeout):
                    out, err = await asyncio.gather(
                        _read_capped(proc.stdout, MAX_PROBE_OUTPUT),
                        _read_capped(proc.stderr, MAX_PROBE_OUTPUT))
                    await proc.wait()
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(proc.pid, signal.SIGKILL)
                await proc.wait()
                return 124, f"command timed out after {timeout}s"
            return proc.returncode or 0, (out + err).decode(errors="replace")
        return run

    # -- usage, health --

    def usage(self, sandbox: Sandbox, instance: Instance) -> Usage | None:
        if not isinstance(instance, ProcessInstance) or instance.exited.done():
            return None
        cpu_s: float | None = None
        mem: int | None = None
        if instance.cgroup is not None:
            ns = instance.cgroup.cpu_ns()
            cpu_s = ns / 1e9 if ns is not None else None
            mem = instance.cgroup.memory_bytes()
        if cpu_s is None or mem is None:
            tree_cpu, tree_mem = _tree_usage(instance.pid)
            cpu_s = tree_cpu if cpu_s is None else cpu_s
            mem = tree_mem if mem is None else mem
        t = time.monotonic()
        rate = 0
        if instance.last_sample is not None:
            t0, c0 = instance.last_sample
            if t > t0:
                rate = max(0, int((cpu_s - c0) / (t - t0) * 1000))
        instance.last_sample = (t, cpu_s)
        return Usage(cpu_millis=rate, memory_bytes=mem, cpu_seconds=cpu_s)

    async def health(self) -> str | None:
        try:
            proc = await asyncio.create_subprocess_exec(
                "/bin/sh", "-c", "exit 0", stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
            async with asyncio.timeout(5):
                code = await proc.wait()
        except (OSError, TimeoutError) as exc:
            return f"cannot start processes: {exc}"
        if code != 0:
            return f"a trivial process exited with {code}"
        if not os.access(self.pods_dir, os.W_OK):
            return f"{self.pods_dir} is not writable"
        return None

    def cleanup_orphans(self) -> int:
        """Kill containers a previous run of this node left behind; returns how many groups."""
        n = 0
        if self.cgroups is not None:
            for group in self.cgroups.existing([]):
                if group.kill_all(signal.SIGKILL):
                    n += 1
        return n

    async def close(self) -> None:
        for inst in list(self._running.values()):
            inst.signal(signal.SIGKILL)
            with contextlib.suppress(Exception):
                await inst.exited
        for proc in list(self._execs):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
        await self.forwarder.close_all()
        if self.cgroups is not None:
            self.cgroups.remove([])  # the node's own cgroup directory, now empty
        if self.bindguard is not None:
            self.bindguard.close()


DISCOVERY_DIR = "discovery"
"""``<pod dir>/discovery``: the discovery volume (root's, readable by the pod's group)."""
_DISCOVERY_VOLUME = "pincompute.discovery"
"""Its name among the container's mounts (a dot: no pod volume can be named so)."""


_DISCOVERY_PARTS = fsguard.relative_parts(DISCOVERY_MOUNT)


def _overlaps(path: object, parts: tuple[str, ...]) -> bool:
    try:
        other = fsguard.relative_parts(path)
    except fsguard.UnsafePath:
        return False  # refused when the container's own mounts are made
    n = min(len(other), len(parts))
    return other[:n] == parts[:n]


def _write_discovery(pod_fd: int, obj: Mapping[str, Any] | None, *, uid: int | None,
                     gid: int | None) -> None:
    """``<pod dir>/discovery/endpoints.json``: the ConfigMap's key, ``{}`` while it has none."""
    data = ((obj or {}).get("data") or {}).get(DISCOVERY_KEY) or "{}"
    group = -1 if uid is None else (gid if gid is not None else uid)
    configvolume.write(pod_fd, DISCOVERY_DIR, {(DISCOVERY_KEY,): str(data).encode()},
                       uid=uid, gid=group)


def _with_discovery(sandbox: Sandbox, container: Mapping[str, Any],
                    ) -> tuple[Mapping[str, Any], vol.VolumePaths]:
    """The container and volumes to mount, with the discovery volume at its fixed path
    (unless the container mounts something there, above or below: the variable still
    names the file)."""
    volumes: vol.VolumePaths = sandbox.extra["volumes"]
    discovery = sandbox.extra.get("discovery")
    mounts = container.get("volumeMounts") or ()
    if discovery is None or any(_overlaps(m.get("mountPath"), _DISCOVERY_PARTS) for m in mounts):
        return container, volumes
    extended = vol.VolumePaths({**volumes.by_name, _DISCOVERY_VOLUME: discovery},
                               volumes.read_only | {_DISCOVERY_VOLUME}, volumes.configs)
    mount = {"name": _DISCOVERY_VOLUME, "mountPath": DISCOVERY_MOUNT, "readOnly": True}
    return {**container, "volumeMounts": [*mounts, mount]}, extended


async def _read_capped(stream: asyncio.StreamReader | None, cap: int) -> bytes:
    """Everything ``stream`` says, but only its first ``cap`` bytes are kept.

    The rest is read and dropped, so a chatty command neither fills the
    agent's memory nor blocks on a full pipe until its timeout.
    """
    if stream is None:
        return b""
    kept = bytearray()
    while data := await stream.read(_READ_CHUNK):
        if len(kept) < cap:
            kept += data[:cap - len(kept)]
    return bytes(kept)


def _tree_usage(pid: int) -> tuple[float, int]:
    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.Error:
        return 0.0, 0
    cpu = 0.0
    mem = 0
    for p in procs:
        with contextlib.suppress(psutil.Error):
            t = p.cpu_times()
            cpu += t.user + t.system
            mem += p.memory_info().rss
    return cpu, mem


def _check_names_and_paths(pod: Mapping[str, Any]) -> None:
    """Refuse a pod whose names or paths would leave its tree (whether or not validated)."""
    spec = pod.get("spec") or {}
    for container in spec.get("containers") or ():
        fsguard.check_name(container.get("name"), what="container name")
        fsguard.relative_parts(container.get("workingDir") or "", what="workingDir")
        for m in container.get("volumeMounts") or ():
            fsguard.relative_parts(m.get("mountPath"), what="mountPath")
            fsguard.relative_parts(m.get("subPath") or "", what="subPath")
    for volume in spec.get("volumes") or ():
        fsguard.check_name(volume.get("name"), what="volume name")


async def _namespace_init(inst: ProcessInstance) -> int | None:
    """Pid 1 of the instance's namespaces (just after the start it may take a moment)."""
    for _ in range(200):
        if inst.exited.done():
            return None
        pid = ns.namespace_init_pid(inst.pid)
        if pid is not None:
            return pid
        await asyncio.sleep(0.01)
    return None


def _check_command(command: str, *, cwd: Path, path: str) -> None:
    """Fail the start as a direct exec would when the command does not exist.

    Behind the namespace wrapper a missing command would only show as exit 127.
    """
    if "/" in command:
        found = os.access(cwd / command, os.X_OK)
    else:
        found = shutil.which(command, path=path) is not None
    if not found:
        raise StartError(f"{command}: [Errno 2] No such file or directory: {command!r}")


def _volumes_owned_by(storage: Path, uids: set[int]) -> list[Path]:
    """The persistent volumes (``persistent/<ns>/<owner>/<name>``) owned by one of ``uids``."""
    found: list[Path] = []
    if not uids:
        return found
    levels = [storage / "persistent"]
    for _ in range(3):
        below: list[Path] = []
        for directory in levels:
            with contextlib.suppress(FileNotFoundError, NotADirectoryError):
                with os.scandir(directory) as entries:
                    below += [Path(e.path) for e in entries if e.is_dir(follow_symlinks=False)]
        levels = below
    for path in levels:
        with contextlib.suppress(FileNotFoundError):
            if os.lstat(path).st_uid in uids:
                found.append(path)
    return found


def _check_traversable(path: Path) -> None:
    """Pods run as other uids: every directory above their sandboxes must let them pass."""
    path.mkdir(parents=True, exist_ok=True, mode=0o711)
    for p in [path, *path.parents]:
        mode = p.stat().st_mode
        if not mode & 0o001:
            if p == path:
                os.chmod(p, mode | 0o001)
                continue
            raise PermissionError(
                f"{p} is not searchable by other users (mode {oct(mode & 0o777)}), so pods "
                f"running as their own uid cannot reach {path}; choose a data directory "
                "whose parents are mode o+x")


__all__ = ["ProcessInstance", "ProcessRuntime", "limits_of"]
