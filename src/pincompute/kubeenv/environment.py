"""The environment: a host and member clusters started together and stopped together.

Theory of operation
-------------------
A :class:`KubeEnv` turns cluster specs into running clusters.  :meth:`KubeEnv.up`
finds the binaries (:mod:`~pincompute.kubeenv.binaries`), sweeps work directories
orphaned by a killed owner, prepares the work directory, makes one certificate
authority for every cluster, and chooses all loopback ports at once by binding port
0 (the sockets are held together, so two clusters never get the same port).  Then
every cluster is prepared and started concurrently (asyncio tasks,
:func:`~pincompute.kubeenv.cluster.start_cluster`) against one deadline.  Each
process is started through :meth:`KubeEnv._spawn`, which refuses once the
environment is stopping and rewrites the owner record with the new pid.  On any
failure, or cancellation, the remaining starts are cancelled and everything already
running is stopped before the error rises.

:meth:`KubeEnv.down` stops the components tier by tier across all clusters
(:data:`~pincompute.kubeenv.components.STOP_ORDER`; SIGTERM, then SIGKILL), then
removes what the environment created: the whole work directory if it made it, else
only its own files and cluster directories (unless ``keep``).  It is safe to call more
than once and after a failed start.  An environment starts once.
"""

from __future__ import annotations

import asyncio
import shutil
import socket
import tempfile
import time
from collections.abc import Generator, Sequence
from pathlib import Path
from typing import Any

from .binaries import find_binaries, missing_binaries
from .cluster import KubeCluster, prepare_cluster, start_cluster
from .components import PORTS_PER_CLUSTER, STOP_ORDER, ClusterPorts
from .errors import KubeEnvError, KubeEnvStartupError
from .pki import CertificateAuthority, combined_kubeconfig
from .processes import ComponentProcess, stop_processes
from .specs import ClusterSpec, default_clusters
from .workdir import AUTO_PREFIX, CLUSTER_MARKER, OWNER_FILE, sweep_stale, write_file, write_owner

__all__ = ["KubeEnv", "free_ports"]

#: The files at the top of a work directory (removed by :meth:`KubeEnv.down` when the
#: directory itself was not made by the environment).
_TOP_FILES = ("ca.crt", "ca.key", "kubeconfig", OWNER_FILE)


def free_ports(n: int) -> list[int]:
    """``n`` distinct free loopback ports (all held open until every one is chosen)."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


class KubeEnv:
    """Host and member clusters of real control-plane processes on loopback ports.

    Use ``async with KubeEnv.start(...) as env`` or ``env = await KubeEnv.start(...)``
    then ``await env.down()``.
    """

    def __init__(self, *, clusters: Sequence[ClusterSpec] | None = None,
                 work_dir: Path | str | None = None, bin_dir: Path | str | None = None,
                 keep: bool = False, build: bool = True, startup_timeout: float = 180.0,
                 stop_timeout: float = 10.0) -> None:
        specs = tuple(clusters) if clusters is not None else default_clusters()
        if not specs:
            raise ValueError("an environment needs at least one cluster")
        names = [s.name for s in specs]
        if len(set(names)) != len(names):
            raise ValueError(f"cluster names must be unique: {names}")
        self.specs = specs
        self.keep = keep
        self.build = build
        self.startup_timeout = startup_timeout
        self.stop_timeout = stop_timeout
        self.bin_dir: Path | None = Path(bin_dir) if bin_dir is not None else None
        self._work_dir_arg = Path(work_dir).expanduser() if work_dir is not None else None
        self.work_dir: Path | None = None
        self.kubeconfig: Path | None = None
        self.clusters: dict[str, KubeCluster] = {}
        self.startup_seconds: float | None = None
        self._created: list[Path] = []
        self._created_root = False
        self._stopped = False

    # --- convenient access --------------------------------------------------------------------

    @classmethod
    def start(cls, **options: Any) -> _Starting:
        """``await KubeEnv.start(...)`` or ``async with KubeEnv.start(...) as env``;
        the options are those of :class:`KubeEnv`."""
        return _Starting(cls(**options))

    def __getitem__(self, name: str) -> KubeCluster:
        return self.clusters[name]

    @property
    def host(self) -> KubeCluster:
        for c in self.clusters.values():
            if c.role == "host":
                return c
        raise LookupError("the environment has no host cluster")

    @property
    def members(self) -> list[KubeCluster]:
        return [c for c in self.clusters.values() if c.role == "member"]

    def pids(self) -> list[int]:
        return [pid for c in self.clusters.values() for pid in c.pids.values()]

    async def __aenter__(self) -> KubeEnv:
        await self.up()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.down()

    # --- start --------------------------------------------------------------------------------

    async def up(self) -> KubeEnv:
        """Start every cluster concurrently; return when all are ready.  On any failure
        (or cancellation) everything started so far is stopped before the error rises."""
        if self.work_dir is not None or self._stopped:
            raise KubeEnvError("a KubeEnv starts once; make a new one")
        started = time.monotonic()
        if self.bin_dir is None:
            self.bin_dir = await asyncio.to_thread(find_binaries, build=self.build)
        bin_dir = self.bin_dir
        missing = missing_binaries(bin_dir)
        if missing:
            raise KubeEnvError(f"{bin_dir} lacks executable {', '.join(missing)}")
        await asyncio.to_thread(sweep_stale)
        tasks: list[asyncio.Task[None]] = []
        try:
            work_dir = self._prepare_work_dir()
            ca = CertificateAuthority.new()
            write_file(work_dir / "ca.crt", ca.cert_pem)
            write_file(work_dir / "ca.key", ca.key_pem, private=True)
            ports = free_ports(PORTS_PER_CLUSTER * len(self.specs))
            for i, spec in enumerate(self.specs):
                cluster_dir = work_dir / spec.name
                self._created.append(cluster_dir)
                own = ports[PORTS_PER_CLUSTER * i: PORTS_PER_CLUSTER * (i + 1)]
                self.clusters[spec.name] = prepare_cluster(
                    spec, cluster_dir=cluster_dir, bin_dir=bin_dir, ports=ClusterPorts(*own),
                    ca=ca)
            self.kubeconfig = work_dir / "kubeconfig"
            write_file(self.kubeconfig, combined_kubeconfig(
                ((c.name, c.server, c.token) for c in self.clusters.values()), ca.cert_pem),
                private=True)
            deadline = time.monotonic() + self.startup_timeout
            tasks = [asyncio.create_task(start_cluster(c, deadline=deadline, spawn=self._spawn),
                                         name=f"kubeenv-{c.name}")
                     for c in self.clusters.values()]
            await asyncio.gather(*tasks)
        except BaseException:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await self.down()
            raise
        self.startup_seconds = time.monotonic() - started
        return self

    def _prepare_work_dir(self) -> Path:
        if self._work_dir_arg is None:
            work_dir = Path(tempfile.mkdtemp(prefix=AUTO_PREFIX))
            self.work_dir = work_dir
            self._created_root = True
        else:
            work_dir = self._work_dir_arg.resolve()
            self.work_dir = work_dir
            if not work_dir.exists():
                self._created_root = True
            work_dir.mkdir(parents=True, exist_ok=True)
            for spec in self.specs:
                stale = work_dir / spec.name
                if stale.exists():
                    if not (stale / CLUSTER_MARKER).exists():
                        raise KubeEnvError(f"{stale} exists and was not made by a KubeEnv; "
                                           "choose another --work-dir")
                    shutil.rmtree(stale)
        for name in _TOP_FILES:
            self._created.append(work_dir / name)
        write_owner(work_dir, self.pids())
        return work_dir

    async def _spawn(self, proc: ComponentProcess) -> None:
        if self._stopped:
            raise KubeEnvStartupError("the environment is being stopped")
        await proc.start()
        assert self.work_dir is not None
        write_owner(self.work_dir, self.pids())

    # --- stop ---------------------------------------------------------------------------------

    async def down(self) -> None:
        """Stop every process (SIGTERM, then SIGKILL) and remove the work directory
        unless ``keep``; safe to call more than once and after a failed start."""
        self._stopped = True
        procs = [p for c in self.clusters.values() for p in c.processes.values()]
        for tier in STOP_ORDER:
            await stop_processes([p for p in procs if p.name in tier],
                                 timeout=self.stop_timeout)
        if self.work_dir is not None and not self.keep:
            await asyncio.to_thread(self._remove_work_dir)

    def _remove_work_dir(self) -> None:
        assert self.work_dir is not None
        if self._created_root:
            shutil.rmtree(self.work_dir, ignore_errors=True)
            return
        for path in self._created:
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)


class _Starting:
    """What :meth:`KubeEnv.start` returns: awaitable, or an async context manager."""

    def __init__(self, env: KubeEnv) -> None:
        self.env = env

    def __await__(self) -> Generator[Any, None, KubeEnv]:
        return self.env.up().__await__()

    async def __aenter__(self) -> KubeEnv:
        return await self.env.up()

    async def __aexit__(self, *exc: object) -> None:
        await self.env.down()
