"""The table of PinCompute's controllers: one descriptor each, read by every assembly.

Theory of operation
-------------------
A controller is wired in one place, :data:`CONTROLLERS`, as kube-controller-
manager's ``NewControllerDescriptors`` does: a :class:`ControllerDescriptor`
names it, says on which *side* of the region it runs, on which backends, and how
to set it up — a function of a small typed context that adds it to a manager.
Both assemblies build their managers from the table and nothing else:

* ``pincompute up`` (:mod:`pincompute.region`): one manager over the embedded
  host and every member cluster (``backend="embedded"``, the manager shared);
* ``pincompute controller federation|member`` (:mod:`pincompute.controlplane`):
  one manager per real cluster (``backend="kubernetes"``).

Sides:

* ``host`` — once per region, against the host cluster; the context carries the
  host client and the region's live cluster set (:class:`HostContext`), which
  follows MemberCluster objects as they come, change and go;
* ``member`` — once per member cluster, against that cluster
  (:class:`MemberContext`);
* ``node`` — once per member cluster whose nodes are PinCompute's own node
  agents, i.e. embedded clusters only (on real clusters the kubelet and
  kube-controller-manager do this job); same context, whose ``nodes`` then says
  how the cluster's nodes run.

Adding an operator is one entry: ``member("pinapps", _pinapps, description=...)``
with a two-line set-up function beside it.  Set-up functions stay here, so the
controller packages never import this module (it imports them: it is assembly,
above every controller package).

Leader election is computed in one place (:func:`leader_election`,
:func:`new_manager`) and every process names itself with :func:`identity`.
"""

from __future__ import annotations

import os
import socket
import weakref
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Generic, Literal, TypeVar

from prometheus_client import CollectorRegistry

from pincompute.federation.admission.controller import add_admission_controller
from pincompute.federation.clusterhealth import add_cluster_health_controller
from pincompute.federation.clusterset import ClusterSet, add_cluster_set
from pincompute.federation.connection import EmbeddedResolver
from pincompute.federation.connectionstatus import add_connection_status_controller
from pincompute.federation.member import Probe, list_namespaces
from pincompute.federation.placement import add_placement_controller
from pincompute.federation.projects import add_project_controller
from pincompute.federation.propagation import add_propagation_controllers
from pincompute.kube.protocol import KubeClient
from pincompute.member.discovery import add_discovery_controller
from pincompute.member.nodepools import add_nodepool_controller
from pincompute.member.pinapps import add_pinapp_controller
from pincompute.member.pincronjobs import add_pincronjob_controller
from pincompute.member.pindaemons import add_pindaemon_controller
from pincompute.member.pinjobs import add_pinjob_controller
from pincompute.member.pinpods import add_pinpod_controller
from pincompute.member.pinsidecars import add_pinsidecar_controller
from pincompute.member.pintrainingjobs import add_pintrainingjob_controller
from pincompute.member.provisioner import ProvisionerConfig, add_node_provisioner
from pincompute.model.wellknown import SYSTEM_NAMESPACE, NodeRuntimeKind
from pincompute.node.agenthost import AgentHost
from pincompute.node.nodelifecyclecontroller import add_node_lifecycle_controller
from pincompute.ops.buffer import add_buffer_controller
from pincompute.ops.canary import CanaryConfig, add_canary
from pincompute.ops.nodeimages import add_node_image_controller
from pincompute.ops.poolautoscaler import AutoscalerConfig, add_pool_autoscaler
from pincompute.ops.ratelimit import RateLimits
from pincompute.ops.remediation import RemediationConfig, add_remediation_controller
from pincompute.ops.rotation import add_rotation_controller
from pincompute.ops.safeguards import SafeguardConfig
from pincompute.ops.stages import add_stage_controller
from pincompute.runtime.leaderelection import LeaderElectionConfig
from pincompute.runtime.manager import Manager
from pincompute.scaler import add_scaler_controller
from pincompute.scheduler import Scheduler
from pincompute.scheduler.metrics import SchedulerMetrics

Side = Literal["host", "member", "node"]
SIDES: tuple[Side, ...] = ("host", "member", "node")
Backend = Literal["embedded", "kubernetes"]
BACKENDS: frozenset[Backend] = frozenset({"embedded", "kubernetes"})

CONTROLLER_MANAGER_LEASE = "pincompute-controller-manager"
"""The lease of an embedded region's one manager (``pincompute up``)."""
FEDERATION_LEASE = "pincompute-federation"
"""The lease of the federation's manager on a real host cluster."""


def member_lease(cluster: str) -> str:
    """The lease of a real member cluster's manager."""
    return f"pincompute-member-{cluster}"


# --- contexts ----------------------------------------------------------------------------------

@dataclass(frozen=True, kw_only=True, slots=True)
class NodeOptions:
    """How an embedded member cluster's nodes run (node agents of this process)."""

    runtime: NodeRuntimeKind
    """``process`` (real processes) or ``sim`` (simulated, for scale)."""
    base_dir: Path
    """This cluster's node directories go under it (``<base_dir>/<node>``)."""
    initial_size: int = 0
    """Nodes of the ``general`` pool when the cluster is first created."""
    config: Mapping[str, Any] = field(default_factory=dict)
    """Extra :class:`~pincompute.node.agent.NodeConfig` fields for every node."""


@dataclass(frozen=True, kw_only=True, slots=True)
class HostContext:
    """What a host-side controller is set up with."""

    name: str
    """The controller's name in its manager."""
    manager: Manager
    host: KubeClient
    clusters: ClusterSet
    """The member clusters, live: clients and informers follow the MemberCluster objects."""
    backend: Backend
    options: Mapping[str, Any] = field(default_factory=dict)
    """Keyword options for this controller (see :func:`add_controllers`)."""


@dataclass(frozen=True, kw_only=True, slots=True)
class MemberContext:
    """What a member- or node-side controller is set up with, for one member cluster."""

    name: str
    """The controller's name in its manager (suffixed with the cluster when shared)."""
    manager: Manager
    client: KubeClient
    cluster: str
    """The member cluster's name."""
    zone: str = ""
    """Its zone, when known (the host records it; a member alone may not know it)."""
    backend: Backend
    shared_manager: bool = False
    """The manager also runs other clusters' controllers (the embedded region)."""
    nodes: NodeOptions | None = None
    """Embedded clusters: how their nodes run; ``None`` on real clusters."""
    options: Mapping[str, Any] = field(default_factory=dict)
    """Keyword options for this controller (see :func:`add_controllers`)."""


C = TypeVar("C", HostContext, MemberContext)


def events_namespace(backend: Backend) -> str:
    """Where Events about cluster-scoped objects (Nodes, NodePools, Rotations) are written:
    ``default`` on a real API server (which accepts them nowhere else), the system namespace
    in embedded stores (which have no ``default``)."""
    return "default" if backend == "kubernetes" else SYSTEM_NAMESPACE


@dataclass(frozen=True, kw_only=True, slots=True)
class ControllerDescriptor(Generic[C]):
    """One controller: its name, where it runs, and how it is set up."""

    name: str
    side: Side
    setup: Callable[[C], object]
    """Adds the controller to ``context.manager``; returns what it made (for tests)."""
    backends: frozenset[Backend] = BACKENDS
    description: str = ""

    def __post_init__(self) -> None:
        if self.side not in SIDES:
            raise ValueError(f"controller {self.name}: side must be one of {SIDES}")
        if not self.backends or not self.backends <= BACKENDS:
            raise ValueError(f"controller {self.name}: backends must be a non-empty subset "
                             f"of {sorted(BACKENDS)}")
        if self.side == "node" and self.backends != {"embedded"}:
            raise ValueError(f"controller {self.name}: node-side controllers run only where "
                             "PinCompute runs the nodes (backend embedded)")


def host(name: str, setup: Callable[[HostContext], object], *, description: str,
         backends: Collection[Backend] = BACKENDS) -> ControllerDescriptor[HostContext]:
    """A host-side entry."""
    return ControllerDescriptor(name=name, side="host", setup=setup,
                                backends=frozenset(backends), description=description)


def member(name: str, setup: Callable[[MemberContext], object], *, description: str,
           backends: Collection[Backend] = BACKENDS) -> ControllerDescriptor[MemberContext]:
    """A member-side entry (one per member cluster)."""
    return ControllerDescriptor(name=name, side="member", setup=setup,
                                backends=frozenset(backends), description=description)


def node(name: str, setup: Callable[[MemberContext], object], *,
         description: str) -> ControllerDescriptor[MemberContext]:
    """A node-side entry (one per embedded member cluster)."""
    return ControllerDescriptor(name=name, side="node", setup=setup,
                                backends=frozenset({"embedded"}), description=description)


# --- the table ---------------------------------------------------------------------------------

def _connection_status(ctx: HostContext) -> object:
    return add_connection_status_controller(ctx.manager, host=ctx.host, clusters=ctx.clusters,
                                            name=ctx.name, **ctx.options)


def _projects(ctx: HostContext) -> object:
    # On real clusters RBAC grants the controllers nothing in a project's namespaces until
    # the project controller binds their workload role there.
    options = {"workload_access": ctx.backend == "kubernetes", **ctx.options}
    return add_project_controller(ctx.manager, host=ctx.host, clusters=ctx.clusters,
                                  name=ctx.name, **options)


def _cluster_health(ctx: HostContext) -> object:
    return add_cluster_health_controller(ctx.manager, host=ctx.host, clusters=ctx.clusters,
                                         name=ctx.name, **ctx.options)


def _admission(ctx: HostContext) -> object:
    return add_admission_controller(ctx.manager, host=ctx.host, name=ctx.name, **ctx.options)


def _placement(ctx: HostContext) -> object:
    return add_placement_controller(ctx.manager, host=ctx.host, identity=identity(),
                                    name=ctx.name, **ctx.options)

def _propagation(ctx: HostContext) -> object:
    return add_propagation_controllers(ctx.manager, host=ctx.host, clusters=ctx.clusters,
                                       name=ctx.name, **ctx.options)


def _pinscalers(ctx: HostContext) -> object:
    return add_scaler_controller(ctx.manager, host=ctx.host, members=ctx.clusters,
                                 name=ctx.name, identity=identity(), **ctx.options)


def _nodepools(ctx: MemberContext) -> object:
    return add_nodepool_controller(ctx.manager, client=ctx.client, name=ctx.name, **ctx.options)


def _scheduler(ctx: MemberContext) -> object:
    options = dict(ctx.options)
    if ctx.shared_manager and "metrics" not in options:
        # One scheduler per cluster in one manager: their metric families would collide
        # in the manager's registry.
        options["metrics"] = SchedulerMetrics(registry=CollectorRegistry())
    return Scheduler.attach(ctx.manager, ctx.client, **options)


def _pinpods(ctx: MemberContext) -> object:
    return add_pinpod_controller(ctx.manager, client=ctx.client, backend=ctx.backend,
                                 identity=identity(), cluster=ctx.cluster, zone=ctx.zone,
                                 name=ctx.name, **ctx.options)


def _pinapps(ctx: MemberContext) -> object:
    return add_pinapp_controller(ctx.manager, client=ctx.client, backend=ctx.backend,
                                 name=ctx.name, identity=identity(), **ctx.options)


def _pinsidecars(ctx: MemberContext) -> object:
    return add_pinsidecar_controller(ctx.manager, client=ctx.client, backend=ctx.backend,
                                     name=ctx.name, identity=identity(), **ctx.options)


def _pindaemons(ctx: MemberContext) -> object:
    return add_pindaemon_controller(ctx.manager, client=ctx.client, backend=ctx.backend,
                                    name=ctx.name, identity=identity(), **ctx.options)


def _pinjobs(ctx: MemberContext) -> object:
    return add_pinjob_controller(ctx.manager, client=ctx.client, backend=ctx.backend,
                                 name=ctx.name, identity=identity(), **ctx.options)


def _pincronjobs(ctx: MemberContext) -> object:
    return add_pincronjob_controller(ctx.manager, client=ctx.client, name=ctx.name,
                                     identity=identity(), **ctx.options)


def _pintrainingjobs(ctx: MemberContext) -> object:
    return add_pintrainingjob_controller(ctx.manager, client=ctx.client, backend=ctx.backend,
                                         identity=identity(), name=ctx.name, **ctx.options)

def _discovery(ctx: MemberContext) -> object:
    return add_discovery_controller(ctx.manager, client=ctx.client, backend=ctx.backend,
                                    name=ctx.name, zone=ctx.zone, **ctx.options)


def _node_provisioner(ctx: MemberContext) -> object:
    assert ctx.nodes is not None  # node-side entries run only where nodes are ours
    host = AgentHost(ctx.client, zone=ctx.zone, runtime=ctx.nodes.runtime,
                     node_dir=ctx.nodes.base_dir, node_options=ctx.nodes.config)
    return add_node_provisioner(ctx.manager, client=ctx.client, host=host, name=ctx.name,
                                config=ProvisionerConfig(cluster=ctx.cluster, **ctx.options))


def _node_lifecycle(ctx: MemberContext) -> object:
    return add_node_lifecycle_controller(ctx.manager, client=ctx.client, name=ctx.name,
                                         **ctx.options)


def _nodeimages(ctx: HostContext) -> object:
    return add_node_image_controller(ctx.manager, host=ctx.host, clusters=ctx.clusters,
                                     events_namespace=events_namespace(ctx.backend),
                                     name=ctx.name, **ctx.options)


def _rotations(ctx: HostContext) -> object:
    return add_rotation_controller(ctx.manager, host=ctx.host, clusters=ctx.clusters,
                                   events_namespace=events_namespace(ctx.backend),
                                   name=ctx.name, **ctx.options)


def _rotation_stages(ctx: HostContext) -> object:
    return add_stage_controller(ctx.manager, host=ctx.host, name=ctx.name, **ctx.options,
                                events_namespace=events_namespace(ctx.backend))


def _canary(ctx: HostContext) -> object:
    # Off unless configured (``{"canary": {"interval": 60}}``): it writes a project and
    # workloads into every cluster, which a region does not get unasked.
    return add_canary(ctx.manager, host=ctx.host, name=ctx.name,
                      events_namespace=events_namespace(ctx.backend),
                      config=CanaryConfig(**{"enabled": bool(ctx.options), **ctx.options}))


_zone_limits: weakref.WeakKeyDictionary[Manager, RateLimits] = weakref.WeakKeyDictionary()
"""One set of remediation rate limits per manager: its clusters share each zone's budget."""


def _remediation(ctx: MemberContext) -> object:
    options = dict(ctx.options)
    safeguards = options.pop("safeguards", None) or {}
    if not isinstance(safeguards, SafeguardConfig):
        safeguards = SafeguardConfig(**safeguards)
    limits = _zone_limits.setdefault(ctx.manager, RateLimits())
    return add_remediation_controller(
        ctx.manager, client=ctx.client, limits=limits, name=ctx.name,
        events_namespace=events_namespace(ctx.backend),
        config=RemediationConfig(cluster=ctx.cluster, safeguards=safeguards, **options))


def _pool_autoscaler(ctx: MemberContext) -> object:
    return add_pool_autoscaler(ctx.manager, client=ctx.client, name=ctx.name,
                               events_namespace=events_namespace(ctx.backend),
                               config=AutoscalerConfig(cluster=ctx.cluster, **ctx.options))


def _buffer(ctx: MemberContext) -> object:
    return add_buffer_controller(ctx.manager, client=ctx.client, name=ctx.name, **ctx.options)


CONTROLLERS: tuple[ControllerDescriptor[Any], ...] = (
    host("membercluster-connection", _connection_status,
         description="MemberCluster Connected condition: what the cluster set knows of each."),
    host("projects", _projects,
         description="Projects become labelled namespaces in the host and every member."),
    host("membercluster-health", _cluster_health,
         description="MemberCluster Reachable and Ready conditions, resource summary per tier "
                     "(allocatable, allocated, allocating); NoSchedule then NoExecute taints "
                     "on unhealthy clusters."),
    host("admission", _admission,
         description="Host workloads charged against their project's quota per tier: "
                     "reserved first, ondemand FIFO, preemptible borrowing and reclaimed; "
                     "Queued with reason and position, Admitted, Preempted."),
    host("placement", _placement,
         description="Admitted host workloads get placements from the cluster scheduler; "
                     "failed over off unhealthy clusters after a grace period, rebalanced "
                     "back gradually within the disruption budget."),
    host("pinscalers", _pinscalers,
         description="PinScalers scale host PinApps on CPU, memory, the pods' own metrics "
                     "(node-local endpoint) and Prometheus queries, with windows, rate "
                     "policies, cooldown, min/max and scheduled floors; usage from every "
                     "member's node usage records."),
    host("propagation", _propagation,
         description="Placed host workloads become shards in their member clusters (moved "
                     "gracefully, drift reverted, removed by a finalizer); their status and "
                     "events are folded back; PinApp templates roll out zone by zone."),
    host("nodeimages", _nodeimages,
         description="NodeImages resolved through their parents into status; each "
                     "member's NodePools carry their image resolved (new embedded nodes "
                     "are made from it)."),
    host("rotations", _rotations,
         description="Rotations replace a member's nodes with a new image: surge, drain "
                     "within every app's disruption budget, parallelism per pool and "
                     "zone, pause/resume/abort, progress per pool in status."),
    host("rotation-stages", _rotation_stages,
         description="Staged Rotations roll an image release stage by release stage "
                     "(one child Rotation per cluster), after the canary stayed green for "
                     "the soak time; a red canary holds them."),
    host("canary", _canary,
         description="The built-in canary (when configured): a PinApp and a PinJob per "
                     "member cluster, as a user, timed per step; metrics, Events and a "
                     "verdict on each MemberCluster."),
    member("nodepools", _nodepools,
           description="NodePool status: nodes counted, ready and updated, per pool."),
    member("scheduler", _scheduler,
           description="The pod scheduler (on real clusters a secondary scheduler: pods "
                       "whose schedulerName is pincompute)."),
    member("pinpods", _pinpods,
           description="PinPods become one pod each: updated in place or recreated, "
                       "stopped and started, failed over with their persistent volumes."),
    member("pinapps", _pinapps,
           description="PinApps become N PinPods: rolling updates (maxSurge/maxUnavailable, "
                       "readiness, progress deadline), Recreate, in place for images, pause, "
                       "stop/start, restart, rollback; the disruption budget."),
    member("pinsidecars", _pinsidecars,
           description="PinSidecars: platform sidecars injected into matching pods at "
                       "creation (every operator's create_pod), upgraded in place."),
    member("pindaemons", _pindaemons,
           description="PinDaemons: one platform pod per fitting node, rolled with "
                       "maxUnavailable."),
    member("pinjobs", _pinjobs,
           description="PinJobs become pods run to completion: counted once, retried with "
                       "back-off, groups with stable names, deadlines, suspend, TTL."),
    member("pincronjobs", _pincronjobs,
           description="PinCronJobs create PinJobs on schedule: time zones, concurrency, "
                       "missed runs after downtime, history limits, manual triggers."),
    member("pintrainingjobs", _pintrainingjobs,
           description="PinTrainingJobs become a gang of pods with a rendezvous (PyTorch, "
                       "TensorFlow), restarted together on retryable failures."),
    member("discovery", _discovery,
           description="Service discovery: the ready endpoints of a project's PinApps in "
                       "the ConfigMap pincompute-discovery of each namespace (a file in "
                       "every pod on embedded nodes)."),
    node("node-provisioner", _node_provisioner,
         description="NodePools become node agents: grown, drained and shrunk, re-adopted "
                     "after a restart."),
    node("node-lifecycle", _node_lifecycle,
         description="Node heartbeats: Ready Unknown, not-ready/unreachable taints, "
                     "evictions."),
    member("remediation", _remediation,
           description="Unhealthy nodes (conditions, probe failures, repair requests) "
                       "cordoned, drained within budgets, replaced, or given up on; "
                       "circuit breakers per pool/zone/cluster, rate limits, cooldown."),
    member("pool-autoscaler", _pool_autoscaler,
           description="On-demand NodePools grow for unschedulable pods (the fitting "
                       "shape, bounded per minute) and give idle nodes back after a delay; "
                       "reserved pools keep their size."),
    member("buffer", _buffer, backends=frozenset({"embedded"}),
           description="Each NodePool's buffer kept as lowest-priority placeholder pods "
                       "that real pods displace at once (and the autoscaler replaces)."),
)
"""Every controller of PinCompute, in the order they are added to a manager."""


# --- building managers from the table -----------------------------------------------------------

def add_host_controllers(manager: Manager, *, host: KubeClient, backend: Backend,
                         embedded: EmbeddedResolver | None = None,
                         probe: Probe = list_namespaces,
                         cluster_set: Mapping[str, Any] | None = None,
                         options: Mapping[str, Mapping[str, Any]] | None = None,
                         disabled: Collection[str] = (),
                         table: tuple[ControllerDescriptor[Any], ...] = CONTROLLERS,
                         ) -> dict[str, object]:
    """Add the region's cluster set and the table's host-side controllers for ``backend``.

    The cluster set (``made["clusterset"]``) runs on every replica, so a new leader
    starts with warm member caches; it is added first because the controllers
    subscribe to it.  ``embedded`` finds in-process member clusters by name (the
    embedded region), ``probe`` checks a freshly connected member, ``cluster_set``
    are further keyword options of :func:`~pincompute.federation.clusterset.add_cluster_set`.
    ``options`` maps a controller's name to keyword options for its set-up;
    ``disabled`` names entries not to add (as kube-controller-manager's
    ``--controllers=-name``: a test driving that step by hand).
    Returns name → what each made.
    """
    clusters = add_cluster_set(manager, host=host, embedded=embedded, probe=probe,
                               **(cluster_set or {}))
    made: dict[str, object] = {"clusterset": clusters}
    for entry in table:
        if entry.side == "host" and backend in entry.backends and entry.name not in disabled:
            made[entry.name] = entry.setup(HostContext(
                name=entry.name, manager=manager, host=host, clusters=clusters,
                backend=backend, options=(options or {}).get(entry.name, {})))
    return made


def add_member_controllers(manager: Manager, *, client: KubeClient, cluster: str,
                           backend: Backend, zone: str = "", shared_manager: bool = False,
                           nodes: NodeOptions | None = None,
                           options: Mapping[str, Mapping[str, Any]] | None = None,
                           table: tuple[ControllerDescriptor[Any], ...] = CONTROLLERS,
                           ) -> dict[str, object]:
    """Add the table's member- (and, embedded, node-) side controllers for one cluster.

    With ``shared_manager`` every controller's name is suffixed with ``-<cluster>``, so
    several clusters' controllers can share the manager.  Returns name → what each made.
    """
    if backend == "embedded" and nodes is None:
        raise ValueError("an embedded member cluster needs NodeOptions")
    base = MemberContext(name="", manager=manager, client=client, cluster=cluster, zone=zone,
                         backend=backend, shared_manager=shared_manager, nodes=nodes)
    made: dict[str, object] = {}
    for entry in table:
        if entry.side in ("member", "node") and backend in entry.backends:
            name = f"{entry.name}-{cluster}" if shared_manager else entry.name
            made[name] = entry.setup(replace(base, name=name,
                                             options=(options or {}).get(entry.name, {})))
    return made


# --- leader election and identity ---------------------------------------------------------------

def leader_election(lease: str, *, identity: str,
                    lease_duration: float = 15.0) -> LeaderElectionConfig:
    """The lease config of a PinCompute manager: a Lease in the system namespace.

    Renew deadline and retry period follow the lease duration in client-go's default
    proportions (15 s / 10 s / 2 s).
    """
    return LeaderElectionConfig(name=lease, namespace=SYSTEM_NAMESPACE, identity=identity,
                                lease_duration=lease_duration,
                                renew_deadline=lease_duration * 2 / 3,
                                retry_period=lease_duration / 7.5)


def new_manager(name: str, *, client: KubeClient, lease: str, identity: str,
                lease_duration: float = 15.0, shutdown_timeout: float = 30.0) -> Manager:
    """A manager leader-elected on ``lease`` (a Lease in ``client``'s system namespace)."""
    return Manager(name=name,
                   leader_election=leader_election(lease, identity=identity,
                                                   lease_duration=lease_duration),
                   leader_election_client=client, shutdown_timeout=shutdown_timeout)


def identity(*, data_dir: Path | None = None) -> str:
    """The name this process campaigns under on a lease (readable in ``kubectl get lease``).

    * ``data_dir`` (``pincompute up``, which holds that directory's lock): the same
      name after a restart, so a restarted region recognises its own lease instead
      of waiting it out;
    * in a pod: the pod's name (``POD_NAME``, from the downward API);
    * otherwise ``<host>_<pid>``: unique among the processes of a machine.
    """
    if data_dir is not None:
        return f"pincompute-up@{socket.gethostname()}:{data_dir}"
    return os.environ.get("POD_NAME") or f"{socket.gethostname()}_{os.getpid()}"


__all__ = [
    "BACKENDS", "CONTROLLERS", "CONTROLLER_MANAGER_LEASE", "FEDERATION_LEASE", "SIDES",
    "Backend", "ControllerDescriptor", "HostContext", "MemberContext", "NodeOptions", "Side",
    "add_host_controllers", "add_member_controllers", "host", "identity", "leader_election",
    "member", "member_lease", "new_manager", "node",
]
