"""The node agent: the kubelet of embedded clusters.

Theory of operation
-------------------
A :class:`NodeAgent` is one node.  :meth:`NodeAgent.start`:

1. registers the Node (:mod:`.registration`) and claims its pod address block
   (:mod:`.network`), recording it as ``spec.podCIDR``;
2. builds its runtime — ``process`` (:mod:`.processruntime`, with per-pod uids,
   cgroups and bind guards (:mod:`.bindguard`) when root and the machine allow,
   else *degraded*, logged and shown in the ``IsolationDegraded`` condition) or
   ``sim`` (:mod:`.simruntime`);
3. starts the node runtime API (:mod:`.runtimeapi`) for logs and exec, unless off;
4. posts its conditions (:mod:`.health`) — Ready only once every gating probe
   passes — and then lifts the ``node.kubernetes.io/not-ready:NoSchedule`` taint
   the Node was registered with (:mod:`.registration`), so no pod is scheduled to
   it before; it keeps renewing its Lease and re-evaluating its conditions;
   the process runtime also runs storage eviction passes (:mod:`.eviction`:
   volume ``sizeLimit``, the disk reserve behind ``DiskPressure``);
5. on the process runtime, watches ConfigMaps and Secrets to keep the pods'
   config and discovery volumes in step with them (:mod:`.configsync`);
6. watches the pods bound to it (field selector ``spec.nodeName=<node>``) and
   keeps one :class:`~.worker.PodWorker` per pod.

Admission: before running a new pod the agent checks that it fits — the sum of
the requests of the pods it runs plus the new pod's within allocatable, and the
pod count within ``pods`` — as the kubelet does, so a racing or wrong binding
fails the pod (``OutOfcpu``, ``OutOfmemory``, ``OutOfpods``) instead of
overcommitting the node.

:meth:`NodeAgent.stop` stops watching, stops renewing the Lease (it simply
expires: the node lifecycle controller marks the node and evicts, see
:mod:`.nodelifecyclecontroller`), and stops every container — processes must not outlive
the agent that reads their pipes; the API objects are left as they are.

Many sim nodes can share one pod informer (:mod:`.fleet`): an agent created
with ``watch_pods=False`` is fed through :meth:`pod_event` instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import ipaddress
import os
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pincompute.kube.errors import ApiError, NotFound
from pincompute.kube.protocol import KubeClient
from pincompute.kube.quantity import QuantityError, cpu_millis, to_int
from pincompute.kube.resource import NODES, PODS
from pincompute.kube.wellknown import KUBE_SYSTEM_NAMESPACE
from pincompute.model.platform import DEFAULT_MEMORY_LIMIT, DEFAULT_POD_PIDS_LIMIT, NodePoolSpec
from pincompute.model.views import spec_view
from pincompute.model.wellknown import SYSTEM_NAMESPACE, NodeRuntimeKind
from pincompute.runtime.informer import SharedInformer
from pincompute.runtime.logging import get_logger

from . import bindguard, eviction, health, namespaces
from .backoff import CRASH_LOOP, BackoffPolicy
from .blockregistry import BlockRegistry
from .cgroups import detect as detect_cgroups
from .configsync import ConfigSync
from .containerruntime import ContainerRuntime
from .events import EventRecorder
from .identity import (
    DEFAULT_COUNT,
    DEFAULT_FIRST,
    DEFAULT_QUARANTINE,
    DEFAULT_REGISTRY,
    UidAllocator,
)
from .logs import DEFAULT_MAX_BYTES, DEFAULT_MAX_FILES, LogStore
from .metricsendpoint import MetricsEndpoint
from .network import (
    NODE_LEASE_NAMESPACE,
    PROCESS_POOL,
    SIM_POOL,
    AddressBlock,
    Networking,
    claim_pod_cidr,
)
from .processruntime import ProcessRuntime
from .registration import (
    Heartbeat,
    NodeIdentity,
    ensure_namespace,
    has_readiness_gate,
    lift_readiness_gate,
    node_object,
    register,
)
from .runtimeapi.server import RuntimeAPI, write_token_file
from .simruntime import SimRuntime
from .status import TERMINAL_PHASES
from .usagereport import DEFAULT_INTERVAL as DEFAULT_USAGE_INTERVAL
from .usagereport import UsageReporter
from .worker import PodWorker
from .workercontext import WorkerContext

_log = get_logger(__name__)

NOT_ROOT = ("not running as root: pods run as the agent's uid, so they can read the region's "
            "stores and stop the region; their CPU/memory limits are not enforced")
"""Why a node without root is degraded (``pincompute up`` prints it too)."""


@dataclass(frozen=True, kw_only=True)
class NodeConfig:
    """Everything about one node agent; every option has a Kubernetes-like default."""

    identity: NodeIdentity
    runtime: NodeRuntimeKind = "process"
    root_dir: Path | None = None
    """The node's own directory (process runtime: sandboxes, logs; required)."""
    storage_dir: Path | None = None
    """Cluster storage shared by the machine's nodes (persistent and shared volumes);
    default ``<root_dir>/../storage``."""
    pod_pool: str | None = None
    """The cluster's pod address pool (default: sim 10.0.0.0/8; process: a block of
    127.64.0.0/10 held for this node in the machine's registry)."""
    pod_block_prefix: int = 24
    lease_duration: float = 40.0
    heartbeat_interval: float | None = None
    """Seconds between Lease renewals (default: a quarter of ``lease_duration``)."""
    status_interval: float = 10.0
    """Seconds between health evaluations (conditions are written only when they change)."""
    backoff: BackoffPolicy = CRASH_LOOP
    probe_scale: float = 1.0
    """Multiplies probe delays and periods (tests run probes faster; keep 1 otherwise)."""
    log_max_bytes: int = DEFAULT_MAX_BYTES
    log_max_files: int = DEFAULT_MAX_FILES
    serve_api: bool | None = None
    """Serve the node runtime API (default: with the process runtime only; sim nodes bind
    it on 127.0.0.1 since their addresses are not real)."""
    api_port: int = 0
    api_token: str | None = None
    """Bearer token of the runtime API (default: generated; written to ``<root>/api-token``)."""
    isolation: Literal["auto", "off"] = "auto"
    """``auto``: per-pod uid and cgroups when possible; ``off``: never (runs degraded)."""
    uid_registry: Path = DEFAULT_REGISTRY
    uid_range: tuple[int, int] = (DEFAULT_FIRST, DEFAULT_COUNT)
    """First pod uid and how many (tests force reuse with a small range)."""
    uid_quarantine: float = DEFAULT_QUARANTINE
    """Seconds a released pod uid waits before another pod gets it (:mod:`.identity`)."""
    sim_defaults: Mapping[str, str] = field(default_factory=dict)
    """Node-pool defaults for the sim runtime's annotations (see :mod:`.simruntime`)."""
    record_events: bool = True
    system_namespaces: Sequence[str] = (SYSTEM_NAMESPACE, KUBE_SYSTEM_NAMESPACE)
    shutdown_grace: float = 10.0
    """Longest a container gets to stop when the agent stops."""
    thresholds: health.Thresholds = field(default_factory=health.Thresholds)
    required_daemons: Sequence[str] = ()
    """Names of daemon pods (``namespace/prefix``) that must run on the node before it is
    Ready."""
    pod_pids_limit: int = DEFAULT_POD_PIDS_LIMIT
    """Processes and threads per pod (0: no cap); the NodePool's ``podPidsLimit``."""
    default_memory_limit: str = DEFAULT_MEMORY_LIMIT
    """Memory limit of a container declaring none (``0``: none); the NodePool's
    ``defaultMemoryLimit``."""
    eviction_interval: float = eviction.DEFAULT_INTERVAL
    """Seconds between storage eviction passes (volume ``sizeLimit``, the disk reserve)."""
    disk_reserve_bytes: int = eviction.DEFAULT_RESERVE
    """Free bytes kept on the node's filesystem: below it, DiskPressure and evictions."""
    guarded_dirs: Sequence[Path] = ()
    """Directories whose filesystem's free space the node also guards (the region's
    data directory: its stores must always be able to commit)."""
    usage_interval: float = DEFAULT_USAGE_INTERVAL
    """Seconds between usage reports into the metrics store (:mod:`.usagereport`; 0: off)."""
    serve_metrics: bool | None = None
    """Serve the node-local metrics endpoint (:mod:`.metricsendpoint`; default: with the
    process runtime only, on the node's address)."""
    metrics_port: int = 0

    @property
    def name(self) -> str:
        return self.identity.name


def pool_limits(pool: Mapping[str, Any]) -> dict[str, Any]:
    """The NodeConfig fields a NodePool sets for its nodes' pods (pids, default memory)."""
    spec = spec_view(NodePoolSpec, pool)
    return {"pod_pids_limit": spec.pod_pids_limit,
            "default_memory_limit": str(spec.default_memory_limit)}


_REQUESTS: dict[tuple[int, int], tuple[int, int]] = {}


def _requests(pod: Mapping[str, Any]) -> tuple[int, int]:
    """(cpu millis, memory bytes) the pod asks for; pods asking alike share one tuple."""
    cpu = mem = 0
    for c in (pod.get("spec") or {}).get("containers") or ():
        res = c.get("resources") or {}
        req = {**(res.get("limits") or {}), **(res.get("requests") or {})}
        try:
            cpu += cpu_millis(req["cpu"]) if "cpu" in req else 0
            mem += to_int(req["memory"]) if "memory" in req else 0
        except QuantityError:
            continue
    key = (cpu, mem)
    if len(_REQUESTS) >= 4096 and key not in _REQUESTS:
        _REQUESTS.clear()  # bounded; tuples already handed out stay valid
    return _REQUESTS.setdefault(key, key)


class NodeAgent:
    def __init__(self, client: KubeClient, config: NodeConfig, *,
                 watch_pods: bool = True) -> None:
        self.client = client
        self.config = config
        self.name = config.name
        self.watch_pods = watch_pods
        self.workers: dict[str, PodWorker] = {}
        self.runtime: ContainerRuntime | None = None
        self.networking: Networking | None = None
        self.logs: LogStore | None = None
        self.events: EventRecorder | None = None
        self.node: dict[str, Any] | None = None
        self.heartbeat = Heartbeat(client, self.name, lease_duration=config.lease_duration,
                                   renew_interval=config.heartbeat_interval)
        self.degraded: tuple[str, ...] = ()
        self.isolation: tuple[str, ...] = ()
        """The protections active for pods (``uid``, ``cgroups``, ``pid-namespace``, ...)."""
        self.api_token = config.api_token or secrets.token_urlsafe(24)
        self.api_endpoint: str | None = None
        self.api_server: RuntimeAPI | None = None
        self.pod_cidr: str | None = None
        self._informer: SharedInformer | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._ctx: WorkerContext | None = None
        self._allocatable = config.identity.allocatable()
        self._capacity = (int(self._allocatable.get("pods", "110")),
                          cpu_millis(self._allocatable.get("cpu", "0")),
                          to_int(self._allocatable.get("memory", "0")))
        """(pods, cpu millis, memory bytes) allocatable, parsed once for admission."""
        self._started = False
        self._log = _log.bind(node=self.name)
        self.report = health.HealthReport()
        self.eviction: eviction.StorageEviction | None = None
        self.configs: ConfigSync | None = None
        self.metrics_endpoint: MetricsEndpoint | None = None
        self.usage_reporter: UsageReporter | None = None

    # -- start / stop --------------------------------------------------------------------------

    async def start(self) -> None:
        cfg = self.config
        await ensure_namespace(self.client, NODE_LEASE_NAMESPACE)
        self.node = await register(self.client, node_object(cfg.identity, runtime=cfg.runtime))
        self.heartbeat.set_owner(self.node)
        pool = await self._pod_pool()
        self.pod_cidr = (self.node.get("spec") or {}).get("podCIDR")
        if not self.pod_cidr or not ipaddress.IPv4Network(self.pod_cidr).subnet_of(
                ipaddress.IPv4Network(pool)):
            self.pod_cidr = await claim_pod_cidr(self.client, self.node, pool=pool,
                                                 prefix=cfg.pod_block_prefix)
        block = AddressBlock(ipaddress.IPv4Network(self.pod_cidr))
        self.networking = Networking(block, dedicated_interfaces=cfg.identity.dedicated_interfaces,
                                     system_namespaces=cfg.system_namespaces)
        self.runtime = self._make_runtime(block.node_ip)
        if self.degraded:
            for reason in self.degraded:
                self._log.warning("running degraded: %s", reason)
        if cfg.record_events:
            self.events = EventRecorder(self.client, component="pincompute-node",
                                        host=self.name)
        if cfg.runtime == "process":
            # Config volumes follow their objects; sim nodes have no files to keep.
            self.configs = ConfigSync(self.client, self.runtime)
            await self.configs.start()
        serve_metrics = cfg.serve_metrics if cfg.serve_metrics is not None else \
            cfg.runtime == "process"
        if serve_metrics:
            self.metrics_endpoint = MetricsEndpoint(
                host=block.node_ip if cfg.runtime == "process" else "127.0.0.1",
                port=cfg.metrics_port, usage=self.usage,
                pods=lambda: ((w.uid, w.namespace, w.name) for w in self.workers.values()))
            await self.metrics_endpoint.start()
        self._ctx = WorkerContext(
            client=self.client, runtime=self.runtime, networking=self.networking,
            node_name=self.name, node_ip=block.node_ip, allocatable=self._allocatable,
            backoff=cfg.backoff, probe_scale=cfg.probe_scale, logs=self.logs,
            events=self.events, configs=self.configs, on_done=self._worker_done,
            metrics_url=self.metrics_endpoint.push_url if self.metrics_endpoint else None)
        serve_api = cfg.serve_api if cfg.serve_api is not None else cfg.runtime == "process"
        if serve_api:
            host = block.node_ip if cfg.runtime == "process" else "127.0.0.1"
            self.api_server = RuntimeAPI(self, host=host, port=cfg.api_port,
                                         token=self.api_token)
            await self.api_server.start()
            self.api_endpoint = self.api_server.url
            if cfg.root_dir is not None:
                write_token_file(cfg.root_dir / "api-token", self.api_token)
        # The first health evaluation rides on the second registration write, and the
        # readiness gate goes right after if it passed: a node costs no more writes
        # for its gate.
        self.report = await self.evaluate()
        self.node = await register(self.client, node_object(
            cfg.identity, runtime=cfg.runtime, node_ip=block.node_ip, pod_cidr=self.pod_cidr,
            api_endpoint=self.api_endpoint,
            api_port=self.api_server.port if self.api_server is not None else 0,
            conditions=health.conditions(self.report, (self.node.get("status") or {}).get(
                "conditions") or ())))
        if cfg.runtime == "process" and isinstance(self.runtime, ProcessRuntime):
            self.eviction = eviction.StorageEviction(
                node_dirs=[self.runtime.pods_dir, self.runtime.storage],
                guarded=cfg.guarded_dirs, reserve_bytes=cfg.disk_reserve_bytes,
                interval=cfg.eviction_interval)
            self._tasks.append(asyncio.create_task(
                self.eviction.run(self._storage_candidates, self._evict),
                name=f"storage eviction {self.name}"))
        await self.heartbeat.renew()
        await self._post_conditions(self.node)
        self._tasks.append(asyncio.create_task(self.heartbeat.run(), name=f"lease {self.name}"))
        self._tasks.append(asyncio.create_task(self._status_loop(),
                                               name=f"node status {self.name}"))
        if cfg.usage_interval > 0:
            self.usage_reporter = UsageReporter(self.client, self.name,
                                                workers=lambda: self.workers,
                                                endpoint=self.metrics_endpoint,
                                                interval=cfg.usage_interval)
            self._tasks.append(asyncio.create_task(self.usage_reporter.run(),
                                                   name=f"usage report {self.name}"))
        if self.watch_pods:
            self._informer = SharedInformer(self.client, PODS,
                                            field_selector=f"spec.nodeName={self.name}")
            self._informer.add_event_handler(
                on_add=lambda o: self.pod_event("add", o),
                on_update=lambda _, o: self.pod_event("update", o),
                on_delete=lambda o: self.pod_event("delete", o))
            self._informer.start()
            await self._informer.wait_synced()
            self._collect_leftovers()
        self._started = True
        self._log.info("node %s started (%s runtime, pod CIDR %s, api %s)", self.name,
                       cfg.runtime, self.pod_cidr, self.api_endpoint or "off")

    async def _pod_pool(self) -> str:
        """The pool this node's block comes from: configured (a region gives each member
        cluster its own block of the machine), or for a process node on its own, a block
        of the machine's registry held by its directory (:mod:`.blockregistry`)."""
        cfg = self.config
        if cfg.pod_pool:
            return cfg.pod_pool
        if cfg.runtime == "sim":
            return SIM_POOL
        if cfg.root_dir is None:
            raise ValueError("the process runtime needs root_dir")
        cfg.root_dir.mkdir(parents=True, exist_ok=True)
        return await asyncio.to_thread(BlockRegistry().claim, cfg.root_dir, self.name,
                                       pool=PROCESS_POOL, prefix=cfg.pod_block_prefix)

    def _make_runtime(self, node_ip: str) -> ContainerRuntime:
        cfg = self.config
        if cfg.runtime == "sim":
            return SimRuntime(defaults=cfg.sim_defaults)
        if cfg.root_dir is None:
            raise ValueError("the process runtime needs root_dir")
        root = cfg.root_dir
        root.mkdir(parents=True, exist_ok=True)
        storage = cfg.storage_dir or root.parent / "storage"
        self.logs = LogStore(root / "logs", max_bytes=cfg.log_max_bytes,
                             max_files=cfg.log_max_files)
        degraded: list[str] = []
        uids = cgroups = guard = None
        if cfg.isolation == "off":
            degraded.append("isolation is off by configuration: pods share the agent's uid "
                            "and have no cgroup limits")
        elif os.geteuid() != 0:
            degraded.append(NOT_ROOT)
        else:
            # Regions on one machine may name their nodes alike: what a node keeps on the
            # machine (pod uids, cgroups) is keyed by its directory too, so one region's
            # node never takes another's pods for its own leftovers.
            local = f"{self.name}-{hashlib.sha256(str(root.resolve()).encode()).hexdigest()[:8]}"
            uids = UidAllocator(node=local, registry=cfg.uid_registry,
                                first=cfg.uid_range[0], count=cfg.uid_range[1],
                                state=root / "uid-allocator.json",
                                quarantine=cfg.uid_quarantine)
            cgroups, why = detect_cgroups(local)
            if cgroups is None:
                degraded.append(f"no writable cgroups ({why}): CPU/memory limits are not "
                                "enforced")
            else:
                self._log.info("pod resource limits through %s", why)
                if cfg.pod_pids_limit and not cgroups.has_pids:
                    degraded.append("no pids cgroup controller: the number of processes "
                                    "of a pod is not limited")
            guard, why = bindguard.for_node(
                local, join=cgroups is None or cgroups.version != "v2")
            if guard is None:
                degraded.append(f"no bind guard ({why}): pods can bind any loopback address")
        pod_namespaces = False
        if uids is not None:
            no_ns = namespaces.probe_once()
            pod_namespaces = no_ns is None
            if no_ns is not None:
                degraded.append(f"no pod namespaces ({no_ns}): pods see each other's processes "
                                "and arguments in /proc and share /tmp and /dev/shm")
        self.degraded = tuple(degraded)
        self.isolation = tuple(name for name, active in (
            ("uid", uids is not None), ("cgroups", cgroups is not None),
            ("bind-guard", guard is not None),
            ("pid-namespace", pod_namespaces), ("mount-namespace", pod_namespaces)) if active)
        try:
            default_memory = to_int(cfg.default_memory_limit)
        except QuantityError as exc:
            raise ValueError(f"default_memory_limit: {exc}") from exc
        runtime = ProcessRuntime(root=root, storage=storage, node=self.name, cgroups=cgroups,
                                 uids=uids, node_ip=node_ip, degraded=self.degraded,
                                 bindguard=guard, pod_pids_limit=cfg.pod_pids_limit,
                                 default_memory_limit=default_memory,
                                 namespaces=pod_namespaces)
        if uids is not None:
            # Pods of this node from an earlier run get their uids back (or lose them
            # once the pod list shows they are gone, see _collect_leftovers).
            for pod_uid, uid in uids.owned_by().items():
                uids.adopt(pod_uid, uid)
        killed = runtime.cleanup_orphans()
        if killed:
            self._log.warning("killed %d containers left behind by an earlier run", killed)
        return runtime

    async def stop(self) -> None:
        """Stop the node: no more heartbeats (the Lease expires) and no more containers."""
        if self._informer is not None:
            await self._informer.stop()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        workers = list(self.workers.values())
        if self.runtime is not None and self.runtime.simulated:
            # Nothing runs: dropping the timers is the whole shutdown.
            for w in workers:
                await w.abandon()
        else:
            await asyncio.gather(*(w.shutdown(grace=self.config.shutdown_grace)
                                   for w in workers), return_exceptions=True)
        self.workers.clear()
        if self.configs is not None:
            await self.configs.stop()
        if self.api_server is not None:
            await self.api_server.stop()
        if self.metrics_endpoint is not None:
            await self.metrics_endpoint.stop()
        if self.runtime is not None:
            await self.runtime.close()
        if self.events is not None:
            await self.events.close()
        if self.runtime is not None and isinstance(self.runtime, ProcessRuntime) and \
                self.runtime.uids is not None:
            self.runtime.release_uids(self.runtime.uids.held())
        self._started = False

    async def __aenter__(self) -> NodeAgent:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # -- pods ----------------------------------------------------------------------------------

    def pod_event(self, kind: str, pod: dict[str, Any]) -> None:
        """An informer event about a pod bound to this node (objects are shared, read-only)."""
        uid = pod["metadata"]["uid"]
        worker = self.workers.get(uid)
        if kind == "delete":
            if worker is not None:
                worker.delete()
            return
        if worker is not None:
            worker.update(pod)
            return
        if (pod.get("spec") or {}).get("nodeName") != self.name:
            return
        assert self._ctx is not None
        rejection = None
        requests = _requests(pod)
        if (pod.get("status") or {}).get("phase") not in TERMINAL_PHASES and \
                not pod["metadata"].get("deletionTimestamp"):
            rejection = self._admit(requests)
        worker = PodWorker(self._ctx, pod, rejection=rejection)
        worker.requests = requests
        self.workers[uid] = worker
        worker.kick()

    def _admit(self, requests: tuple[int, int]) -> tuple[str, str] | None:
        active = [w for w in self.workers.values() if not w.finished]
        max_pods, cap_cpu, cap_mem = self._capacity
        if len(active) + 1 > max_pods:
            return "OutOfpods", f"Node didn't have enough resource: pods, capacity {max_pods}"
        cpu, mem = requests
        used_cpu = sum(w.requests[0] for w in active)
        used_mem = sum(w.requests[1] for w in active)
        if cpu and used_cpu + cpu > cap_cpu:
            return ("OutOfcpu", f"Node didn't have enough resource: cpu, requested: {cpu}m, "
                    f"used: {used_cpu}m, capacity: {cap_cpu}m")
        if mem and used_mem + mem > cap_mem:
            return ("OutOfmemory", f"Node didn't have enough resource: memory, requested: "
                    f"{mem}, used: {used_mem}, capacity: {cap_mem}")
        return None

    def _collect_leftovers(self) -> None:
        """Remove what an earlier run left for pods no longer bound here."""
        runtime = self.runtime
        if not isinstance(runtime, ProcessRuntime):
            return
        live = set(self.workers)
        if runtime.uids is not None:
            runtime.release_uids([p for p in runtime.uids.held() if p not in live])
        with contextlib.suppress(FileNotFoundError):
            for entry in os.scandir(runtime.pods_dir):
                if entry.name not in live:
                    runtime.remove_pod_dir(entry.name)
        if self.logs is not None:
            for pod_dir in self.logs.pod_dirs():
                if pod_dir.rsplit("_", 1)[-1] not in live:
                    self.logs.remove_pod(pod_dir)

    def _storage_candidates(self) -> list[eviction.Candidate]:
        out = []
        for key, w in self.workers.items():
            if w.sandbox is None or w.finished or w.stopping:
                continue
            volumes = w.sandbox.extra.get("volumes")
            out.append(eviction.Candidate(
                key=key, pod=w.pod, volumes=volumes.by_name if volumes is not None else {},
                sandbox_dir=w.sandbox.extra.get("dir")))
        return out

    def _evict(self, key: str, message: str) -> None:
        worker = self.workers.get(key)
        if worker is None or worker.stopping:
            return
        worker.event("Warning", eviction.EVICTED, message)
        worker.evict(eviction.EVICTED, message)

    def _worker_done(self, worker: PodWorker) -> None:
        if self.workers.get(worker.uid) is worker:
            del self.workers[worker.uid]

    def find(self, namespace: str, name: str) -> PodWorker | None:
        """The worker of a pod on this node, by namespace and name (the newest one)."""
        for w in self.workers.values():
            if w.namespace == namespace and w.name == name:
                return w
        return None

    async def wait_idle(self) -> None:
        """Until every pod worker has finished its current sync (tests, benchmarks)."""
        for w in list(self.workers.values()):
            await w.wait_idle()

    # -- node status ---------------------------------------------------------------------------

    async def _status_loop(self) -> None:
        while True:
            await asyncio.sleep(self.config.status_interval)
            try:
                await self.update_conditions()
            except (ApiError, OSError) as exc:
                self._log.warning("node status update failed: %s", exc)

    async def evaluate(self) -> health.HealthReport:
        cfg = self.config
        runtime_error = await self.runtime.health() if self.runtime is not None else \
            "no runtime"
        disk_error = disk_pressure = None
        memory = pids = overload = None
        dns_error = None
        if cfg.runtime == "process" and cfg.root_dir is not None:
            disk_error, disk_pressure = health.probe_disk(cfg.root_dir, cfg.thresholds)
            if self.eviction is not None and disk_pressure is None:
                disk_pressure = self.eviction.pressure
            memory, pids, overload = health.probe_machine(cfg.thresholds)
            dns_error = await health.probe_dns()
        cpu_used = mem_used = 0
        for w in self.workers.values():
            for u in w.usage().values():
                cpu_used += int(u["cpuMillis"])
                mem_used += int(u["memoryBytes"])
        try:
            pod_memory, pod_overload = health.usage_pressure(
                cpu_used_millis=cpu_used, memory_used=mem_used,
                cpu_allocatable_millis=cpu_millis(self._allocatable["cpu"]),
                memory_allocatable=to_int(self._allocatable["memory"]),
                thresholds=cfg.thresholds)
        except QuantityError:
            pod_memory = pod_overload = None
        daemons_error = self._daemons_missing()
        return health.HealthReport(
            runtime_error=runtime_error, disk_error=disk_error, dns_error=dns_error,
            daemons_error=daemons_error, memory_pressure=memory or pod_memory,
            disk_pressure=disk_pressure, pid_pressure=pids, overloaded=overload or pod_overload,
            degraded=self.degraded, isolation=self.isolation)

    def _daemons_missing(self) -> str | None:
        missing = []
        for want in self.config.required_daemons:
            ns, _, prefix = want.partition("/")
            if not any(w.namespace == ns and w.name.startswith(prefix) and w.initialized and
                       all(r.ready for r in w.records.values()) for w in self.workers.values()):
                missing.append(want)
        return f"required daemons not ready: {', '.join(missing)}" if missing else None

    async def update_conditions(self) -> bool:
        """Evaluate health now and write the conditions if they changed."""
        self.report = await self.evaluate()
        try:
            node = await self.client.get(NODES, self.name)
        except NotFound:
            return False
        return await self._post_conditions(node)

    async def _post_conditions(self, node: dict[str, Any]) -> bool:
        """Write the conditions of ``self.report`` if ``node`` does not have them yet, and
        lift the readiness gate once Ready."""
        previous = (node.get("status") or {}).get("conditions") or []
        new = health.conditions(self.report, previous)
        changed = not health.same_conditions(previous, new)
        if changed:
            node = await self.client.patch(NODES, self.name, {"status": {"conditions": new}},
                                           subresource="status")
        self.node = node
        # The readiness gate goes only after Ready=True is written (a node is never
        # untainted without being Ready); checked on every pass, so a lift that failed
        # or was interrupted is retried.  Only the gate: other not-ready and
        # unreachable taints are the node lifecycle controller's.
        if self.report.ready and has_readiness_gate(node):
            await lift_readiness_gate(self.client, self.name, node=node)
        return changed

    def usage(self) -> dict[str, Any]:
        """CPU/memory use per pod and container (for ``top`` and metrics)."""
        return {f"{w.namespace}/{w.name}": w.usage() for w in self.workers.values()}


__all__ = ["NodeAgent", "NodeConfig", "pool_limits"]
