"""Real Kubernetes clusters on loopback ports, for the real-cluster test tier and for developers.

Theory of operation
-------------------
A :class:`KubeEnv` is a handful of real Kubernetes control planes (one *host* and
any number of *member* clusters, DESIGN §1) made of the upstream binaries that
``tools/build-kube.sh`` builds from pinned Go modules.  Nothing is simulated but
the nodes.  Each cluster is four processes, each in its own process group and
each logging to its own file::

    etcd ──> kube-apiserver ──> kube-controller-manager   (GC, namespaces, service
                           └──> kwok                        accounts, node lifecycle…)
                                 (simulated nodes: heartbeats, pod phases)

*Binaries.*  :func:`find_binaries` takes ``$PINCOMPUTE_KUBE_BIN`` if set, else asks
``tools/build-kube.sh --check`` (the repository root is found from this file or the
working directory).  When they are not built and ``go`` is on ``PATH`` it runs the
build (idempotent; the first build takes about ten minutes); without Go it raises
:class:`KubeBinariesMissing`, which the test tier turns into a loud skip (a failure
under ``CI=true``).

*Start-up.*  All loopback ports of the environment are chosen at once by binding
port 0 (held together, so two clusters never get the same port).  One throw-away
certificate authority (ECDSA, made with ``cryptography``) signs every
API server's serving certificate, so kubeconfigs verify TLS for real; each
cluster gets its own service-account signing key and random static tokens
(``--token-auth-file``; admin, controller manager and kwok each have one), and
RBAC authorises.  Clusters start concurrently (asyncio subprocesses): etcd (its
``/health``), then kube-apiserver (``/readyz``), then kube-controller-manager and
kwok together; the cluster is ready when the controller manager has created the
``default`` service account (its controllers run) and kwok has turned every
simulated Node Ready.  Nodes carry ``topology.kubernetes.io/zone``,
``pincompute.io/node-pool`` and ``node.kubernetes.io/instance-type`` labels and a
cpu/memory/pods capacity taken from their :class:`NodePool`.  Every wait has a
deadline; a process that exits or a deadline that passes raises
:class:`KubeEnvStartupError` carrying the tail of the guilty process's log, after
everything already started has been stopped.

*Footprint.*  The machine running the suite may have two cores, so the control
planes are trimmed: no priority-and-fairness, no profiling, no endpoint
reconciler, only the controllers PinCompute relies on, etcd without fsync, kwok
leases renewed every ten seconds (the node-lifecycle grace period is twenty, so a
silent node turns Unknown within about twenty seconds).  Measured on two cores
(Kubernetes 1.37): the default three clusters (six kwok nodes) are ready in 4 to 5 s
and stop in about a second; idle, their eleven processes hold about 1.3 GB of
memory (three API servers at ~270 MB each) and use about 4 % of one core.

*Teardown.*  :meth:`KubeEnv.down` sends SIGTERM to every process group, waits,
SIGKILLs stragglers and reaps them, then removes the work directory unless
``keep`` is set.  On Linux every child also gets ``PR_SET_PDEATHSIG`` (SIGKILL), so
even a ``kill -9`` of the Python process leaves no control plane behind; work
directories orphaned that way are swept by the next start (:func:`sweep_stale`).

*Use.*  Asynchronous code writes ``async with KubeEnv.start(...) as env`` (or
``env = await KubeEnv.start(...)`` and later ``await env.down()``); synchronous code,
such as a session-scoped pytest fixture that must outlive many event loops, uses
:class:`KubeEnvThread`, which runs the environment on its own loop in a thread.
Each :class:`KubeCluster` exposes its name, role, zone, server URL, admin token,
kubeconfig path and ``client()`` (a :mod:`pincompute.kube.backends.kubernetes`
client for that kubeconfig).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import ctypes
import datetime as dt
import ipaddress
import json
import os
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable, Generator, Mapping, Sequence
from dataclasses import KW_ONLY, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import httpx
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

if TYPE_CHECKING:
    from .kube.backends.kubernetes import KubernetesClient

__all__ = [
    "BINARIES", "KUBE_BIN_ENV", "ClusterSpec", "KubeBinariesMissing", "KubeCluster", "KubeEnv",
    "KubeEnvError", "KubeEnvStartupError", "KubeEnvThread", "NodePool", "default_clusters",
    "find_binaries", "sweep_stale",
]

KUBE_BIN_ENV = "PINCOMPUTE_KUBE_BIN"
BINARIES = ("etcd", "kube-apiserver", "kube-controller-manager", "kwok")
BUILD_SCRIPT = Path("tools") / "build-kube.sh"

KWOK_ANNOTATION = "kwok.x-k8s.io/node"
ZONE_LABEL = "topology.kubernetes.io/zone"
POOL_LABEL = "pincompute.io/node-pool"
INSTANCE_TYPE_LABEL = "node.kubernetes.io/instance-type"

#: Controllers each kube-controller-manager runs: garbage collection and namespace
#: deletion (API semantics), service accounts and the root CA bundle (pods can be
#: created), node lifecycle, taint eviction and pod GC (nodes failing), and the
#: workload controllers a member cluster may be handed.
DEFAULT_CONTROLLERS: tuple[str, ...] = (
    "garbage-collector-controller", "namespace-controller", "serviceaccount-controller",
    "root-ca-certificate-publisher-controller", "node-lifecycle-controller",
    "taint-eviction-controller", "pod-garbage-collector-controller", "replicaset-controller",
    "deployment-controller", "job-controller", "ttl-after-finished-controller",
)

#: How often kwok renews a node's Lease is a quarter of this; the controller
#: manager's node-monitor grace period (20 s) must stay above the renew interval.
NODE_LEASE_SECONDS = 40
NODE_MONITOR_GRACE = "20s"

#: kwok's configuration: the stages ``kwokctl`` installs by default (kwok v0.8.0,
#: ``kustomize/stage/{node/fast,node/heartbeat-with-lease,pod/fast}``).  The kwok
#: binary has no stages of its own and refuses to start without them.  Used when the
#: binaries' directory has no ``kwok-stages.yaml`` (which build-kube.sh writes).  (No
#: KwokConfiguration document: one here would replace kwok's defaults, not amend them;
#: options are flags, and kwok runs with HOME in the cluster's directory so that a
#: developer's ~/.kwok/kwok.yaml is not read.)
KWOK_CONFIG = """\
apiVersion: kwok.x-k8s.io/v1alpha1
kind: Stage
metadata:
  name: node-initialize
spec:
  resourceRef:
    apiGroup: v1
    kind: Node
  selector:
    matchExpressions:
    - key: '.status.conditions.[] | select( .type == "Ready" ) | .status'
      operator: 'NotIn'
      values:
      - 'True'
  next:
    statusTemplate: |
      {{ $now := Now }}
      {{ $lastTransitionTime := or .metadata.creationTimestamp $now }}
      conditions:
      {{ range NodeConditions }}
      - lastHeartbeatTime: {{ $now | Quote }}
        lastTransitionTime: {{ $lastTransitionTime | Quote }}
        message: {{ .message | Quote }}
        reason: {{ .reason | Quote }}
        status: {{ .status | Quote }}
        type: {{ .type  | Quote}}
      {{ end }}

      {{ $hasInternalIP := false }}
      {{ $hasHostname := false }}
      {{ range .status.addresses }}
        {{ if eq .type "InternalIP" }}
          {{ $hasInternalIP = true }}
        {{ end }}
        {{ if eq .type "Hostname" }}
          {{ $hasHostname = true }}
        {{ end }}
      {{ end }}
      {{ if or (not $hasInternalIP) (not $hasHostname) }}
      addresses:
      {{ end }}
      {{ if not $hasInternalIP }}
      {{ with NodeIP }}
      - address: {{ . | Quote }}
        type: InternalIP
      {{ end }}
      {{ end }}
      {{ if not $hasHostname }}
      {{ with NodeName }}
      - address: {{ . | Quote }}
        type: Hostname
      {{ end }}
      {{ end }}

      {{ with NodePort }}
      daemonEndpoints:
        kubeletEndpoint:
          Port: {{ . }}
      {{ end }}

      allocatable:
      {{ with .status.allocatable }}
      {{ YAML . 1 }}
      {{ else }}
        cpu: 1k
        memory: 1Ti
        pods: 1M
      {{ end }}
      capacity:
      {{ with .status.capacity }}
      {{ YAML . 1 }}
      {{ else }}
        cpu: 1k
        memory: 1Ti
        pods: 1M
      {{ end }}

      {{ $nodeInfo := .status.nodeInfo }}
      {{ $kwokVersion := printf "kwok-%s" Version }}
      nodeInfo:
        architecture: {{ or $nodeInfo.architecture "amd64" }}
        bootID: {{ or $nodeInfo.bootID `""` }}
        containerRuntimeVersion: {{ or $nodeInfo.containerRuntimeVersion $kwokVersion }}
        kernelVersion: {{ or $nodeInfo.kernelVersion $kwokVersion }}
        kubeProxyVersion: {{ or $nodeInfo.kubeProxyVersion $kwokVersion }}
        kubeletVersion: {{ or $nodeInfo.kubeletVersion $kwokVersion }}
        machineID: {{ or $nodeInfo.machineID `""` }}
        operatingSystem: {{ or $nodeInfo.operatingSystem "linux" }}
        osImage: {{ or $nodeInfo.osImage `""` }}
        systemUUID: {{ or $nodeInfo.systemUUID `""` }}
      phase: Running
---
apiVersion: kwok.x-k8s.io/v1alpha1
kind: Stage
metadata:
  name: node-heartbeat-with-lease
spec:
  resourceRef:
    apiGroup: v1
    kind: Node
  selector:
    matchExpressions:
    - key: '.status.phase'
      operator: 'In'
      values:
      - 'Running'
    - key: '.status.conditions.[] | select( .type == "Ready" ) | .status'
      operator: 'In'
      values:
      - 'True'
  delay:
    durationMilliseconds: 600000
    jitterDurationMilliseconds: 610000
  next:
    statusTemplate: |
      {{ $now := Now }}
      {{ $lastTransitionTime := or .metadata.creationTimestamp $now }}
      conditions:
      {{ range NodeConditions }}
      - lastHeartbeatTime: {{ $now | Quote }}
        lastTransitionTime: {{ $lastTransitionTime | Quote }}
        message: {{ .message | Quote }}
        reason: {{ .reason | Quote }}
        status: {{ .status | Quote }}
        type: {{ .type | Quote }}
      {{ end }}

      addresses:
      {{ with .status.addresses }}
      {{ YAML . 1 }}
      {{ else }}
      {{ with NodeIP }}
      - address: {{ . | Quote }}
        type: InternalIP
      {{ end }}
      {{ with NodeName }}
      - address: {{ . | Quote }}
        type: Hostname
      {{ end }}
      {{ end }}

      {{ with NodePort }}
      daemonEndpoints:
        kubeletEndpoint:
          Port: {{ . }}
      {{ end }}
---
apiVersion: kwok.x-k8s.io/v1alpha1
kind: Stage
metadata:
  name: pod-ready
spec:
  resourceRef:
    apiGroup: v1
    kind: Pod
  selector:
    matchExpressions:
    - key: '.metadata.deletionTimestamp'
      operator: 'DoesNotExist'
    - key: '.status.phase'
      operator: 'In'
      values:
      - 'Pending'
    - key: '.status.conditions.[] | select( .type == "Ready" ) | .status'
      operator: 'NotIn'
      values:
      - 'True'
  next:
    statusTemplate: |
      {{ $now := Now }}

      conditions:
      - lastTransitionTime: {{ $now | Quote }}
        status: "True"
        type: Initialized
      - lastTransitionTime: {{ $now | Quote }}
        status: "True"
        type: Ready
      - lastTransitionTime: {{ $now | Quote }}
        status: "True"
        type: ContainersReady
      {{ range .spec.readinessGates }}
      - lastTransitionTime: {{ $now | Quote }}
        status: "True"
        type: {{ .conditionType | Quote }}
      {{ end }}

      containerStatuses:
      {{ range .spec.containers }}
      - image: {{ .image | Quote }}
        name: {{ .name | Quote }}
        ready: true
        restartCount: 0
        state:
          running:
            startedAt: {{ $now | Quote }}
      {{ end }}

      initContainerStatuses:
      {{ range .spec.initContainers }}
      - image: {{ .image | Quote }}
        name: {{ .name | Quote }}
        ready: true
        restartCount: 0
        {{ if eq .restartPolicy "Always" }}
        started: true
        state:
          running:
            startedAt: {{ $now | Quote }}
        {{ else }}
        state:
          terminated:
            exitCode: 0
            finishedAt: {{ $now | Quote }}
            reason: Completed
            startedAt: {{ $now | Quote }}
        {{ end }}
      {{ end }}
      {{ $hostIPs := NodeIPsWith .spec.nodeName }}
      {{ with $hostIPs }}
      hostIP: {{ index . 0 | Quote }}
      hostIPs:
      {{ range . }}
      - ip: {{ . | Quote }}
      {{ end }}
      {{ end }}
      {{ $podIPs := PodIPsWith .spec.nodeName ( or .spec.hostNetwork false )
          ( or .metadata.uid "" ) ( or .metadata.name "" ) ( or .metadata.namespace "" ) }}
      {{ with $podIPs }}
      podIP: {{ index . 0 | Quote }}
      podIPs:
      {{ range . }}
      - ip: {{ . | Quote }}
      {{ end }}
      {{ end }}
      phase: Running
      startTime: {{ $now | Quote }}
---
apiVersion: kwok.x-k8s.io/v1alpha1
kind: Stage
metadata:
  name: pod-complete
spec:
  resourceRef:
    apiGroup: v1
    kind: Pod
  selector:
    matchExpressions:
    - key: '.metadata.deletionTimestamp'
      operator: 'DoesNotExist'
    - key: '.status.phase'
      operator: 'In'
      values:
      - 'Running'
    - key: '.metadata.ownerReferences.[].kind'
      operator: 'In'
      values:
      - 'Job'
  next:
    statusTemplate: |
      {{ $now := Now }}
      {{ $root := . }}
      containerStatuses:
      {{ range $index, $item := .spec.containers }}
      {{ $origin := index $root.status.containerStatuses $index }}
      - image: {{ $item.image | Quote }}
        name: {{ $item.name | Quote }}
        ready: false
        restartCount: 0
        started: false
        state:
          terminated:
            exitCode: 0
            finishedAt: {{ $now | Quote }}
            reason: Completed
            startedAt: {{ $now | Quote }}
      {{ end }}
      phase: Succeeded
---
apiVersion: kwok.x-k8s.io/v1alpha1
kind: Stage
metadata:
  name: pod-delete
spec:
  resourceRef:
    apiGroup: v1
    kind: Pod
  selector:
    matchExpressions:
    - key: '.metadata.deletionTimestamp'
      operator: 'Exists'
  next:
    delete: true
"""

_OWNER_FILE = ".kubeenv.json"
_AUTO_PREFIX = "pincompute-kubeenv-"
_LOG_TAIL_LINES = 40


# --- errors -------------------------------------------------------------------------------------

class KubeEnvError(Exception):
    """The environment cannot be provided; the message says why and what to do."""


class KubeBinariesMissing(KubeEnvError):
    """The Kubernetes binaries are not built and cannot be built here (no Go toolchain)."""


class KubeEnvStartupError(KubeEnvError):
    """A process of the environment failed to start or to become ready in time."""


# --- binaries -----------------------------------------------------------------------------------

def _repo_root(start: Path | None = None) -> Path | None:
    candidates = [Path(__file__).resolve().parent, Path.cwd().resolve()]
    if start is not None:
        candidates.insert(0, start.resolve())
    for base in candidates:
        for directory in (base, *base.parents):
            if (directory / BUILD_SCRIPT).is_file():
                return directory
    return None


def _check_dir(directory: Path) -> list[str]:
    return [b for b in BINARIES if not os.access(directory / b, os.X_OK)]


def find_binaries(*, build: bool = True, repo_root: Path | None = None,
                  on_build: Callable[[str], None] | None = None) -> Path:
    """The directory holding etcd, kube-apiserver, kube-controller-manager and kwok.

    ``$PINCOMPUTE_KUBE_BIN`` wins; otherwise ``tools/build-kube.sh --check`` is asked,
    and when nothing is built yet and ``build`` is true the binaries are built (this
    blocks for minutes the first time; ``on_build`` is told before it starts).

    Raises :class:`KubeBinariesMissing` when they are absent and Go is not installed
    (or ``build`` is false), :class:`KubeEnvError` when a build fails or
    ``$PINCOMPUTE_KUBE_BIN`` names an incomplete directory.
    """
    explicit = os.environ.get(KUBE_BIN_ENV)
    if explicit:
        directory = Path(explicit).expanduser()
        missing = _check_dir(directory)
        if missing:
            raise KubeEnvError(f"${KUBE_BIN_ENV}={explicit} lacks executable "
                               f"{', '.join(missing)}; unset it to use tools/build-kube.sh")
        return directory
    root = _repo_root(repo_root)
    if root is None:
        raise KubeBinariesMissing(
            f"cannot find {BUILD_SCRIPT} (searched from {Path(__file__).parent} and "
            f"{Path.cwd()}); run from a PinCompute checkout or set ${KUBE_BIN_ENV} to a "
            "directory holding " + ", ".join(BINARIES))
    script = root / BUILD_SCRIPT
    check = subprocess.run(["bash", str(script), "--check"], capture_output=True, text=True,
                           check=False, timeout=60)
    if check.returncode == 0 and check.stdout.strip():
        return Path(check.stdout.strip().splitlines()[-1])
    if not build:
        raise KubeBinariesMissing(f"Kubernetes test binaries are not built: "
                                  f"{check.stderr.strip()}; run {script}")
    if shutil.which("go") is None:
        raise KubeBinariesMissing(
            "Kubernetes test binaries are not built and Go is not installed, so they cannot "
            f"be: install Go (see tools/*/go.mod for the version) and run {script}, or set "
            f"${KUBE_BIN_ENV} to a directory holding {', '.join(BINARIES)}")
    if on_build is not None:
        on_build(f"building Kubernetes test binaries with {script} (first time: ~10 minutes)")
    with tempfile.TemporaryFile("w+") as log:
        done = subprocess.run(["bash", str(script)], stdout=subprocess.PIPE, stderr=log,
                              text=True, check=False)
        log.seek(0)
        tail = "".join(log.readlines()[-_LOG_TAIL_LINES:])
    if done.returncode != 0 or not done.stdout.strip():
        raise KubeEnvError(f"{script} failed (exit {done.returncode}):\n{tail}")
    directory = Path(done.stdout.strip().splitlines()[-1])
    missing = _check_dir(directory)
    if missing:
        raise KubeEnvError(f"{script} printed {directory} but it lacks {', '.join(missing)}")
    return directory


# --- specs and handles --------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class NodePool:
    """Simulated nodes of one shape: ``nodes`` kwok Nodes labelled with the pool's name."""

    name: str
    _: KW_ONLY
    nodes: int = 1
    instance_type: str = "kwok.standard-4"
    cpu: str = "4"
    memory: str = "16Gi"
    pods: int = 110
    labels: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ClusterSpec:
    """What one cluster of the environment is: its name, role, zone and node pools."""

    name: str
    _: KW_ONLY
    role: Literal["host", "member"] = "member"
    zone: str | None = None
    node_pools: tuple[NodePool, ...] = ()
    controllers: tuple[str, ...] = DEFAULT_CONTROLLERS

    @property
    def node_count(self) -> int:
        return sum(p.nodes for p in self.node_pools)


def default_clusters(*, members: int = 2) -> tuple[ClusterSpec, ...]:
    """One host (no nodes) and ``members`` member clusters ``member-a``… in ``zone-a``…,
    each with a ``general`` pool of two nodes and a ``highmem`` pool of one."""
    if not 0 <= members <= 26:
        raise ValueError("members must be between 0 and 26")
    pools = (NodePool("general", nodes=2, instance_type="kwok.standard-4", cpu="4",
                      memory="16Gi"),
             NodePool("highmem", nodes=1, instance_type="kwok.highmem-8", cpu="8",
                      memory="64Gi"))
    specs = [ClusterSpec("host", role="host")]
    for i in range(members):
        letter = chr(ord("a") + i)
        specs.append(ClusterSpec(f"member-{letter}", role="member", zone=f"zone-{letter}",
                                 node_pools=pools))
    return tuple(specs)


class _Proc:
    """One binary of a cluster: its own process group, its own log file."""

    def __init__(self, name: str, argv: Sequence[str], log: Path, *,
                 env: Mapping[str, str] | None = None) -> None:
        self.name = name
        self.argv = list(argv)
        self.log = log
        self.env = {**os.environ, **env} if env else None
        self.process: asyncio.subprocess.Process | None = None

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    @property
    def exited(self) -> bool:
        return self.process is not None and self.process.returncode is not None

    async def start(self) -> None:
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with self.log.open("ab") as out:
            self.process = await asyncio.create_subprocess_exec(
                *self.argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                env=self.env, start_new_session=True, preexec_fn=_die_with_parent)

    def tail(self, lines: int = _LOG_TAIL_LINES) -> str:
        try:
            with self.log.open("rb") as f:
                f.seek(0, os.SEEK_END)
                f.seek(max(0, f.tell() - 64 * 1024))
                text = f.read().decode(errors="replace")
        except OSError as e:
            return f"(no log: {e})"
        return "\n".join(text.splitlines()[-lines:])

    def describe_exit(self) -> str:
        assert self.process is not None
        code = self.process.returncode
        how = f"was killed by signal {-code}" if code is not None and code < 0 else \
            f"exited with status {code}"
        return f"{self.name} {how}; last lines of {self.log}:\n{self.tail()}"

    def signal_group(self, sig: int) -> None:
        if self.process is None or self.process.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, sig)

    async def wait(self, timeout: float) -> bool:
        if self.process is None:
            return True
        try:
            async with asyncio.timeout(timeout):
                await self.process.wait()
        except TimeoutError:
            return False
        return True


@dataclass(slots=True)
class KubeCluster:
    """A running cluster of the environment: where it is and how to talk to it."""

    spec: ClusterSpec
    dir: Path
    server: str
    token: str
    kubeconfig: Path
    ca_file: Path
    etcd_url: str = ""
    node_names: tuple[str, ...] = ()
    processes: dict[str, _Proc] = field(default_factory=dict, repr=False)

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def role(self) -> str:
        return self.spec.role

    @property
    def zone(self) -> str | None:
        return self.spec.zone

    @property
    def log_dir(self) -> Path:
        return self.dir / "logs"

    @property
    def pids(self) -> dict[str, int]:
        return {name: p.pid for name, p in self.processes.items() if p.pid is not None}

    def client(self, **options: Any) -> KubernetesClient:
        """A protocol client of this cluster (admin credentials); the caller closes it."""
        from .kube.backends.kubernetes import connect

        return connect(str(self.kubeconfig), **options)


# --- the environment ----------------------------------------------------------------------------

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
        missing = _check_dir(self.bin_dir)
        if missing:
            raise KubeEnvError(f"{self.bin_dir} lacks executable {', '.join(missing)}")
        await asyncio.to_thread(sweep_stale)
        tasks: list[asyncio.Task[None]] = []
        try:
            self._prepare_work_dir()
            assert self.work_dir is not None
            ca_key, ca_cert = _make_ca()
            ca_pem = ca_cert.public_bytes(serialization.Encoding.PEM)
            _write(self.work_dir / "ca.crt", ca_pem)
            _write(self.work_dir / "ca.key", _key_pem(ca_key), private=True)
            ports = _free_ports(4 * len(self.specs))
            clusters = [self._prepare_cluster(spec, ports[4 * i: 4 * i + 4], ca_key, ca_cert)
                        for i, spec in enumerate(self.specs)]
            self._write_combined_kubeconfig(ca_pem)
            deadline = time.monotonic() + self.startup_timeout
            tasks = [asyncio.create_task(self._start_cluster(c, deadline),
                                         name=f"kubeenv-{c.name}") for c in clusters]
            await asyncio.gather(*tasks)
        except BaseException:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await self.down()
            raise
        self.startup_seconds = time.monotonic() - started
        return self

    def _prepare_work_dir(self) -> None:
        if self._work_dir_arg is None:
            self.work_dir = Path(tempfile.mkdtemp(prefix=_AUTO_PREFIX))
            self._created_root = True
        else:
            self.work_dir = self._work_dir_arg.resolve()
            if not self.work_dir.exists():
                self._created_root = True
            self.work_dir.mkdir(parents=True, exist_ok=True)
            for spec in self.specs:
                stale = self.work_dir / spec.name
                if stale.exists():
                    if not (stale / ".kubeenv-cluster").exists():
                        raise KubeEnvError(f"{stale} exists and was not made by a KubeEnv; "
                                           "choose another --work-dir")
                    shutil.rmtree(stale)
        for name in ("ca.crt", "ca.key", "kubeconfig", _OWNER_FILE):
            self._created.append(self.work_dir / name)
        self._write_owner()

    def _write_owner(self) -> None:
        assert self.work_dir is not None
        _write(self.work_dir / _OWNER_FILE, json.dumps({
            "owner_pid": os.getpid(), "pids": self.pids()}).encode())

    def _prepare_cluster(self, spec: ClusterSpec, ports: Sequence[int],
                         ca_key: ec.EllipticCurvePrivateKey,
                         ca_cert: x509.Certificate) -> KubeCluster:
        assert self.work_dir is not None and self.bin_dir is not None
        etcd_port, peer_port, api_port, kcm_port = ports
        d = self.work_dir / spec.name
        self._created.append(d)
        pki = d / "pki"
        pki.mkdir(parents=True)
        _write(d / ".kubeenv-cluster", b"")
        server = f"https://127.0.0.1:{api_port}"
        # Serving certificate for the API server, signed by the environment's CA.
        key, cert = _make_serving_cert(ca_key, ca_cert, cn=f"kube-apiserver-{spec.name}")
        _write(pki / "apiserver.crt", cert.public_bytes(serialization.Encoding.PEM))
        _write(pki / "apiserver.key", _key_pem(key), private=True)
        ca_pem = ca_cert.public_bytes(serialization.Encoding.PEM)
        _write(pki / "ca.crt", ca_pem)
        # Service-account token signing key pair.
        sa_key = ec.generate_private_key(ec.SECP256R1())
        _write(pki / "sa.key", _key_pem(sa_key), private=True)
        _write(pki / "sa.pub", sa_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
        # Static tokens: one identity per component (all cluster-admins).
        tokens = {who: secrets.token_urlsafe(32) for who in ("admin", "kcm", "kwok")}
        _write(pki / "tokens.csv", (
            f'{tokens["admin"]},admin,admin-uid,"system:masters"\n'
            f'{tokens["kcm"]},system:kube-controller-manager,kcm-uid,"system:masters"\n'
            f'{tokens["kwok"]},kwok,kwok-uid,"system:masters"\n').encode(), private=True)
        kubeconfig = d / "kubeconfig"
        _write(kubeconfig, _kubeconfig(spec.name, server, ca_pem, tokens["admin"]), private=True)
        _write(d / "kcm.kubeconfig", _kubeconfig(spec.name, server, ca_pem, tokens["kcm"]),
               private=True)
        _write(d / "kwok.kubeconfig", _kubeconfig(spec.name, server, ca_pem, tokens["kwok"]),
               private=True)
        # Stages: those build-kube.sh extracted from kwok's own source, else ours.
        shipped = self.bin_dir / "kwok-stages.yaml"
        _write(d / "kwok.yaml", shipped.read_bytes() if shipped.is_file()
               else KWOK_CONFIG.encode())
        b = self.bin_dir
        logs = d / "logs"
        procs = {
            "etcd": _Proc("etcd", [
                str(b / "etcd"), f"--name={spec.name}", f"--data-dir={d / 'etcd'}",
                f"--listen-client-urls=http://127.0.0.1:{etcd_port}",
                f"--advertise-client-urls=http://127.0.0.1:{etcd_port}",
                f"--listen-peer-urls=http://127.0.0.1:{peer_port}",
                f"--initial-advertise-peer-urls=http://127.0.0.1:{peer_port}",
                f"--initial-cluster={spec.name}=http://127.0.0.1:{peer_port}",
                "--unsafe-no-fsync", "--log-level=warn", "--snapshot-count=5000",
            ], logs / "etcd.log"),
            "kube-apiserver": _Proc("kube-apiserver", [
                str(b / "kube-apiserver"), f"--etcd-servers=http://127.0.0.1:{etcd_port}",
                "--bind-address=127.0.0.1", "--advertise-address=127.0.0.1",
                f"--secure-port={api_port}", f"--cert-dir={pki}",
                f"--tls-cert-file={pki / 'apiserver.crt'}",
                f"--tls-private-key-file={pki / 'apiserver.key'}",
                f"--client-ca-file={pki / 'ca.crt'}",
                "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
                f"--service-account-key-file={pki / 'sa.pub'}",
                f"--service-account-signing-key-file={pki / 'sa.key'}",
                f"--token-auth-file={pki / 'tokens.csv'}",
                "--authorization-mode=RBAC", "--service-cluster-ip-range=10.96.0.0/16",
                "--endpoint-reconciler-type=none", "--enable-priority-and-fairness=false",
                "--profiling=false",
            ], logs / "kube-apiserver.log"),
            "kube-controller-manager": _Proc("kube-controller-manager", [
                str(b / "kube-controller-manager"), f"--kubeconfig={d / 'kcm.kubeconfig'}",
                f"--authentication-kubeconfig={d / 'kcm.kubeconfig'}",
                f"--authorization-kubeconfig={d / 'kcm.kubeconfig'}",
                "--authentication-skip-lookup=true",
                "--bind-address=127.0.0.1", f"--secure-port={kcm_port}",
                f"--cert-dir={d / 'kcm-certs'}", f"--root-ca-file={pki / 'ca.crt'}",
                f"--service-account-private-key-file={pki / 'sa.key'}",
                "--leader-elect=false", "--profiling=false",
                f"--controllers={','.join(spec.controllers)}",
                "--node-monitor-period=2s", f"--node-monitor-grace-period={NODE_MONITOR_GRACE}",
                "--node-startup-grace-period=20s",
            ], logs / "kube-controller-manager.log"),
        }
        if spec.node_count:
            procs["kwok"] = _Proc("kwok", [
                str(b / "kwok"), f"--kubeconfig={d / 'kwok.kubeconfig'}",
                f"--config={d / 'kwok.yaml'}", "--manage-all-nodes=false",
                f"--manage-nodes-with-annotation-selector={KWOK_ANNOTATION}=fake",
                f"--node-lease-duration-seconds={NODE_LEASE_SECONDS}",
                "--cidr=10.244.0.0/16",
            ], logs / "kwok.log", env={"HOME": str(d)})
        nodes = tuple(f"{spec.name}-{pool.name}-{i}" for pool in spec.node_pools
                      for i in range(pool.nodes))
        cluster = KubeCluster(spec=spec, dir=d, server=server, token=tokens["admin"],
                              kubeconfig=kubeconfig, ca_file=pki / "ca.crt",
                              etcd_url=f"http://127.0.0.1:{etcd_port}", node_names=nodes,
                              processes=procs)
        self.clusters[spec.name] = cluster
        return cluster

    def _write_combined_kubeconfig(self, ca_pem: bytes) -> None:
        assert self.work_dir is not None
        ca_data = base64.b64encode(ca_pem).decode()
        config: dict[str, Any] = {"apiVersion": "v1", "kind": "Config", "clusters": [],
                                  "users": [], "contexts": [], "preferences": {}}
        for c in self.clusters.values():
            config["clusters"].append({"name": c.name, "cluster": {
                "server": c.server, "certificate-authority-data": ca_data}})
            config["users"].append({"name": f"{c.name}-admin", "user": {"token": c.token}})
            config["contexts"].append({"name": c.name, "context": {
                "cluster": c.name, "user": f"{c.name}-admin", "namespace": "default"}})
        config["current-context"] = next(iter(self.clusters))
        self.kubeconfig = self.work_dir / "kubeconfig"
        _write(self.kubeconfig, yaml.safe_dump(config, sort_keys=False).encode(), private=True)

    async def _start_cluster(self, c: KubeCluster, deadline: float) -> None:
        p = c.processes
        etcd_url = c.etcd_url
        ssl_ctx = ssl.create_default_context(cafile=str(c.ca_file))
        async with httpx.AsyncClient(verify=ssl_ctx, timeout=5.0, headers={
                "Authorization": f"Bearer {c.token}"}) as http:
            await self._spawn(p["etcd"])

            async def etcd_healthy() -> bool:
                r = await http.get(f"{etcd_url}/health")
                return r.status_code == 200 and r.json().get("health") == "true"

            await _wait_for(etcd_healthy, what=f"{c.name}: etcd /health", watch=[p["etcd"]],
                            deadline=deadline)
            await self._spawn(p["kube-apiserver"])

            async def api_ready() -> bool:
                return (await http.get(f"{c.server}/readyz")).status_code == 200

            await _wait_for(api_ready, what=f"{c.name}: kube-apiserver /readyz",
                            watch=[p["kube-apiserver"], p["etcd"]], deadline=deadline)
            rest = [proc for name, proc in p.items() if name not in ("etcd", "kube-apiserver")]
            for proc in rest:
                await self._spawn(proc)
            for node in self._nodes(c):
                r = await http.post(f"{c.server}/api/v1/nodes", json=node)
                if r.status_code not in (200, 201, 409):
                    raise KubeEnvStartupError(f"{c.name}: creating node "
                                              f"{node['metadata']['name']}: {r.status_code} "
                                              f"{r.text[:500]}")
            all_procs = list(p.values())

            async def controllers_running() -> bool:
                # The serviceaccount controller makes this as soon as it runs.
                r = await http.get(
                    f"{c.server}/api/v1/namespaces/default/serviceaccounts/default")
                return r.status_code == 200

            await _wait_for(controllers_running,
                            what=f"{c.name}: kube-controller-manager (default service account)",
                            watch=[p["kube-controller-manager"], *all_procs], deadline=deadline)
            if c.node_names:
                async def nodes_ready() -> bool:
                    r = await http.get(f"{c.server}/api/v1/nodes",
                                       params={"labelSelector": "type=kwok"})
                    if r.status_code != 200:
                        return False
                    ready = {n["metadata"]["name"] for n in r.json().get("items") or ()
                             if _node_ready(n)}
                    return ready >= set(c.node_names)

                await _wait_for(nodes_ready, what=f"{c.name}: kwok nodes Ready",
                                watch=[p["kwok"], *all_procs], deadline=deadline)

    def _nodes(self, c: KubeCluster) -> list[dict[str, Any]]:
        nodes = []
        for pool in c.spec.node_pools:
            for i in range(pool.nodes):
                name = f"{c.name}-{pool.name}-{i}"
                labels = {
                    "type": "kwok", "kubernetes.io/hostname": name, "kubernetes.io/os": "linux",
                    "kubernetes.io/arch": "amd64", POOL_LABEL: pool.name,
                    INSTANCE_TYPE_LABEL: pool.instance_type, **pool.labels,
                }
                if c.zone:
                    labels[ZONE_LABEL] = c.zone
                resources = {"cpu": pool.cpu, "memory": pool.memory, "pods": str(pool.pods)}
                nodes.append({
                    "apiVersion": "v1", "kind": "Node",
                    "metadata": {"name": name, "labels": labels,
                                 "annotations": {KWOK_ANNOTATION: "fake"}},
                    "spec": {},
                    "status": {"capacity": resources, "allocatable": dict(resources),
                               "nodeInfo": {"architecture": "amd64", "operatingSystem": "linux",
                                            "kubeletVersion": "kwok", "kubeProxyVersion": "kwok",
                                            "containerRuntimeVersion": "kwok",
                                            "kernelVersion": "kwok", "osImage": "kwok",
                                            "machineID": "", "systemUUID": "",
                                            "bootID": ""}},
                })
        return nodes

    async def _spawn(self, proc: _Proc) -> None:
        if self._stopped:
            raise KubeEnvStartupError("the environment is being stopped")
        await proc.start()
        self._write_owner()

    # --- stop ---------------------------------------------------------------------------------

    async def down(self) -> None:
        """Stop every process (SIGTERM, then SIGKILL) and remove the work directory
        unless ``keep``; safe to call more than once and after a failed start."""
        self._stopped = True
        procs = [p for c in self.clusters.values() for p in c.processes.values()]
        # Clients of the API servers first, so they do not log a storm of errors.
        tiers = [[p for p in procs if p.name in ("kwok", "kube-controller-manager")],
                 [p for p in procs if p.name == "kube-apiserver"],
                 [p for p in procs if p.name == "etcd"]]
        for tier in tiers:
            await self._stop(tier)
        if self.work_dir is not None and not self.keep:
            await asyncio.to_thread(self._remove_work_dir)

    async def _stop(self, procs: Sequence[_Proc]) -> None:
        for p in procs:
            p.signal_group(signal.SIGTERM)
        done = await asyncio.gather(*(p.wait(self.stop_timeout) for p in procs))
        stragglers = [p for p, ok in zip(procs, done, strict=True) if not ok]
        for p in stragglers:
            p.signal_group(signal.SIGKILL)
        await asyncio.gather(*(p.wait(30.0) for p in stragglers))

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


class KubeEnvThread:
    """Runs a :class:`KubeEnv` on a private event loop in a thread, for synchronous callers.

    A session-scoped pytest fixture must outlive the many event loops tests run
    in; this owns the loop of the environment's subprocesses instead, so any test
    on any loop can use the clusters (a client is made per test with
    :meth:`KubeCluster.client`).
    """

    def __init__(self, env: KubeEnv) -> None:
        self.env = env
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name="kubeenv", daemon=True)
        self._started = False

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_forever()
        self._loop.run_until_complete(self._loop.shutdown_asyncgens())
        self._loop.close()

    def _call(self, coro: Awaitable[Any], timeout: float | None) -> Any:
        future = asyncio.run_coroutine_threadsafe(coro, self._loop)  # type: ignore[arg-type]
        try:
            return future.result(timeout)
        except BaseException:
            future.cancel()
            raise

    def start(self, *, timeout: float | None = None) -> KubeEnv:
        """Start the environment; on any failure (also an interrupt) stop what started."""
        self._thread.start()
        self._started = True
        try:
            self._call(self.env.up(), timeout)
        except BaseException:
            self.stop()
            raise
        return self.env

    def stop(self, *, timeout: float = 120.0) -> None:
        if not self._started:
            return
        self._started = False
        try:
            self._call(self.env.down(), timeout)
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout)


# --- housekeeping -------------------------------------------------------------------------------

def sweep_stale(root: Path | None = None) -> list[Path]:
    """Remove automatic work directories whose owning process is gone (after a ``kill -9``),
    killing any of their processes that survived; returns what was removed."""
    base = Path(root) if root is not None else Path(tempfile.gettempdir())
    removed = []
    for d in base.glob(f"{_AUTO_PREFIX}*"):
        owner = d / _OWNER_FILE
        try:
            info = json.loads(owner.read_text())
            owner_pid = int(info["owner_pid"])
        except (OSError, ValueError, KeyError, TypeError):
            continue
        if owner_pid == os.getpid() or _alive(owner_pid):
            continue
        for pid in info.get("pids") or ():
            if _cmdline_mentions(int(pid), str(d)):
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(int(pid), signal.SIGKILL)
        shutil.rmtree(d, ignore_errors=True)
        removed.append(d)
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _cmdline_mentions(pid: int, text: str) -> bool:
    try:
        return text.encode() in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


def _load_prctl() -> Callable[..., int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL(None, use_errno=True).prctl  # type: ignore[no-any-return]
    except (OSError, AttributeError):
        return None


_PRCTL = _load_prctl()
_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """Runs in the child between fork and exec: SIGKILL me when my parent thread dies."""
    if _PRCTL is not None:
        _PRCTL(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)


def _free_ports(n: int) -> list[int]:
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


async def _wait_for(check: Callable[[], Awaitable[bool]], *, what: str, watch: Sequence[_Proc],
                    deadline: float, interval: float = 0.25) -> None:
    last_error = ""
    while True:
        for proc in watch:
            if proc.exited:
                raise KubeEnvStartupError(f"{what}: {proc.describe_exit()}")
        try:
            if await check():
                return
        except (httpx.HTTPError, ValueError) as e:
            last_error = f" (last error: {e.__class__.__name__}: {e})"
        if time.monotonic() >= deadline:
            proc = watch[0]
            raise KubeEnvStartupError(
                f"{what}: not ready before the start-up deadline{last_error}; last lines of "
                f"{proc.log}:\n{proc.tail()}")
        await asyncio.sleep(interval)


def _node_ready(node: Mapping[str, Any]) -> bool:
    return any(c.get("type") == "Ready" and c.get("status") == "True"
               for c in (node.get("status") or {}).get("conditions") or ())


# --- files and keys -----------------------------------------------------------------------------

def _write(path: Path, data: bytes, *, private: bool = False) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600 if private else 0o644)
    with os.fdopen(fd, "wb") as f:
        f.write(data)


def _kubeconfig(name: str, server: str, ca_pem: bytes, token: str) -> bytes:
    config = {
        "apiVersion": "v1", "kind": "Config",
        "clusters": [{"name": name, "cluster": {
            "server": server,
            "certificate-authority-data": base64.b64encode(ca_pem).decode()}}],
        "users": [{"name": f"{name}-user", "user": {"token": token}}],
        "contexts": [{"name": name, "context": {"cluster": name, "user": f"{name}-user",
                                                "namespace": "default"}}],
        "current-context": name,
        "preferences": {},
    }
    return yaml.safe_dump(config, sort_keys=False).encode()


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _validity() -> tuple[dt.datetime, dt.datetime]:
    now = dt.datetime.now(dt.UTC)
    return now - dt.timedelta(minutes=5), now + dt.timedelta(days=30)


def _make_ca() -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "pincompute-kubeenv-ca")])
    not_before, not_after = _validity()
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(not_before).not_valid_after(not_after)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(
                digital_signature=True, key_cert_sign=True, crl_sign=True,
                content_commitment=False, key_encipherment=False, data_encipherment=False,
                key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                           critical=False)
            .sign(key, hashes.SHA256()))
    return key, cert


def _make_serving_cert(ca_key: ec.EllipticCurvePrivateKey, ca_cert: x509.Certificate, *,
                       cn: str) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    not_before, not_after = _validity()
    sans: list[x509.GeneralName] = [
        x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
        x509.IPAddress(ipaddress.ip_address("10.96.0.1")),
        *(x509.DNSName(n) for n in ("localhost", "kubernetes", "kubernetes.default",
                                    "kubernetes.default.svc",
                                    "kubernetes.default.svc.cluster.local")),
    ]
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)]))
            .issuer_name(ca_cert.subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(not_before).not_valid_after(not_after)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(
                digital_signature=True, key_encipherment=False, key_cert_sign=False,
                crl_sign=False, content_commitment=False, data_encipherment=False,
                key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]),
                           critical=False)
            .add_extension(x509.SubjectAlternativeName(sans), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256()))
    return key, cert
