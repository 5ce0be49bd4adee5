"""PinCompute's own well-known names: labels, annotations, tiers, pod groups, namespaces.

Theory of operation
-------------------
Components never call each other; they meet in API objects (DESIGN §2), so a
label one writes and another reads is a contract, and a contract is spelled
once.  Every package takes PinCompute's names from here (Kubernetes' own, such
as the zone label or the not-ready taint, from
:mod:`pincompute.kube.wellknown`); no controller package imports another for a
constant.

Plain constants and ``Literal`` types only, no pydantic: the node agent and the
scheduler import it at no cost.
"""

from __future__ import annotations

from typing import Final, Literal

PREFIX: Final = "pincompute.io/"
"""The prefix of PinCompute's labels, annotations and finalizers."""
PART_OF: Final = "pincompute"
"""The ``app.kubernetes.io/part-of`` value of what PinCompute installs."""

# --- namespaces ---------------------------------------------------------------------------------

SYSTEM_NAMESPACE: Final = "pincompute-system"
"""Leases, controller identities, member credentials and platform daemons live here."""
SYSTEM_LABEL: Final = "pincompute.io/system"
"""Marks the system namespace (value ``"true"``)."""

# --- controller identity on real clusters (RBAC, see pincompute.install) ------------------------

CONTROLLER_SERVICE_ACCOUNT: Final = "pincompute-controller"
"""The ServiceAccount (in the system namespace of every cluster) the controllers run as."""
HOST_WORKLOAD_ROLE: Final = "pincompute-host-workload"
"""The host's ClusterRole for objects in PinCompute's namespaces; grants nothing until a
RoleBinding in one namespace binds it (the system namespace, and each project's)."""
MEMBER_WORKLOAD_ROLE: Final = "pincompute-member-workload"
"""The member clusters' ClusterRole for pods, configmaps and events in PinCompute's namespaces,
bound per namespace like :data:`HOST_WORKLOAD_ROLE`."""
WORKLOAD_ROLEBINDING: Final = "pincompute-controller"
"""The RoleBinding, in each of PinCompute's namespaces, granting the controllers its workload
ClusterRole there."""

# --- tiers (DESIGN §7) --------------------------------------------------------------------------

Tier = Literal["reserved", "ondemand", "preemptible"]
RESERVED: Final = "reserved"
"""Dedicated pools and queues; never preempted by lower tiers."""
ONDEMAND: Final = "ondemand"
"""Shared capacity, first come first served: the default."""
PREEMPTIBLE: Final = "preemptible"
"""Idle capacity, reclaimed when a higher tier needs it."""
TIERS: Final[tuple[Tier, ...]] = ("reserved", "ondemand", "preemptible")
DEFAULT_TIER: Final[Tier] = "ondemand"
TIER_LABEL: Final = "pincompute.io/tier"
"""On pods and nodes: the tier they belong to (absent: the default tier)."""

# --- the pod scheduler and pod groups (DESIGN §6) -----------------------------------------------

SCHEDULER_NAME: Final = "pincompute"
"""``spec.schedulerName`` of the pods PinCompute's scheduler binds."""
POD_GROUP_LABEL: Final = "pincompute.io/pod-group"
"""Names a pod's gang (a label, so the group's pods can be selected)."""
POD_GROUP_MIN_MEMBER_ANNOTATION: Final = "pincompute.io/pod-group-min-member"
"""How many members of the gang must be placeable together."""
POD_GROUP_TIMEOUT_ANNOTATION: Final = "pincompute.io/pod-group-timeout-seconds"
"""How long reserved members wait for the rest of their gang."""

# --- workloads and their pods (member operators) ------------------------------------------------

OWNER_UID_LABEL: Final = "pincompute.io/owner-uid"
"""On a workload's pods (and other objects it creates): its uid. Operators select their
pods by it (names may exceed a label value's 63 characters; a uid never does)."""
WORKLOAD_KIND_LABEL: Final = "pincompute.io/workload-kind"
"""On a workload's pods: the owning kind, lower case (``pinapp``, ``pinjob``, ...)."""
WORKLOAD_NAME_LABEL: Final = "pincompute.io/workload"
"""On a workload's pods: the owning workload's name (left out when longer than 63)."""
REVISION_LABEL: Final = "pincompute.io/revision"
"""On a workload's pods: the hash of the template they were made from (like Kubernetes'
``pod-template-hash``)."""
INDEX_LABEL: Final = "pincompute.io/index"
"""On a workload's pods: the replica or completion index, when the workload numbers them."""
ROLE_LABEL: Final = "pincompute.io/role"
"""On a workload's pods: the role or replicated group they belong to (training, JobSet)."""
ATTEMPT_LABEL: Final = "pincompute.io/attempt"
"""On a workload's pods: which start of the whole group they belong to (0, then one more
each time a training job restarts its gang); older pods are the previous attempt's."""
CONTAINER_HASHES_ANNOTATION: Final = "pincompute.io/container-hashes"
"""On a workload's pods: ``name=hash`` per container, for in-place update decisions."""
VOLUME_KINDS_ANNOTATION: Final = "pincompute.io/volume-kinds"
"""On pods made for real clusters: ``name=kind`` of each PinCompute volume
(``persistent``, ``shared``, ``logging``) mapped to a core volume source."""
NETWORK_MODE_ANNOTATION: Final = "pincompute.io/network-mode"
"""On pods made for real clusters: the PinCompute ``networkMode`` (core pods lack the field)."""
POD_SHAPE_ANNOTATION: Final = "pincompute.io/pod-shape"
"""On a PinPod's pod: a hash of what cannot change on a live pod (volumes, pod-level
fields, the set of containers; on real clusters every container field but ``image``). A
different shape recreates the pod; equal shapes with other container hashes update in place."""
RESTART_TOKEN_ENV: Final = "PINCOMPUTE_RESTART_TOKEN"
"""The environment variable carrying a PinPod container's restart token (``spec.restarts``):
a new token changes that container's spec alone, so the node agent restarts it alone."""

# --- apps ---------------------------------------------------------------------------------------

APP_UID_LABEL: Final = "pincompute.io/app-uid"
"""On a PinApp's PinPods, and through them on their pods: the app's uid (a pod's own
``owner-uid`` is its PinPod's). ``status.selector`` of the app selects its pods by it."""
TEMPLATE_SHAPE_ANNOTATION: Final = "pincompute.io/template-shape"
"""On a PinApp's PinPods: a hash of the app's template with every container image blanked.
A new template of the same shape differs only in images: its PinPods are updated in place."""
RESTARTED_AT_ANNOTATION: Final = "pincompute.io/restarted-at"
"""In a PinApp's ``spec.template.metadata.annotations``: a restart token (the time of the
request). A new value is a new revision: a rolling restart (``kubectl rollout restart``)."""
ROLLBACK_TO_ANNOTATION: Final = "pincompute.io/rollback-to"
"""On a PinApp: the revision (hash or number; empty: the previous one) to roll back to. The
operator writes that revision's template into the spec and removes the annotation."""

# --- platform infrastructure: daemons and injected sidecars -------------------------------------

DAEMON_POD_LABEL: Final = "pincompute.io/daemon-pod"
"""On a PinDaemon's pods (value ``"true"``): a node agent; a node drain deletes these last
and does not wait for them to be replaced (``kubectl drain --ignore-daemonsets``)."""
SIDECARS_ANNOTATION: Final = "pincompute.io/sidecars"
"""On a pod PinSidecars were injected into: JSON ``{pinsidecar: {"version": hash,
"containers": [...], "volumes": [...]}}`` — what each injected and at which version."""

# --- infrastructure reaching containers through files (DESIGN §8) ----------------------------

APP_LABEL: Final = "pincompute.io/app"
"""On a workload's objects and pods: the top-level workload they serve (a PinApp's
PinPods and their pods carry the PinApp's name), inherited down the ownership chain."""
APP_KIND_LABEL: Final = "pincompute.io/app-kind"
"""With :data:`APP_LABEL`: that workload's kind, lower case (``pinapp``, ``pinjob``, ...)."""
DISCOVERY_CONFIGMAP: Final = "pincompute-discovery"
"""In every project namespace: the ready endpoints of the project's PinApps (key
:data:`DISCOVERY_KEY`, JSON ``{app: [{ip, ports, zone, node, pod}]}``)."""
DISCOVERY_KEY: Final = "endpoints.json"
DISCOVERY_TRUNCATED_ANNOTATION: Final = "pincompute.io/discovery-truncated"
"""On the discovery ConfigMap when its document had more endpoints than a ConfigMap holds:
how many it keeps per app (the first by pod name), of how many."""
DISCOVERY_MOUNT: Final = "/etc/pincompute/discovery"
"""Where every container of an embedded node finds :data:`DISCOVERY_KEY`."""
DISCOVERY_FILE_ENV: Final = "PINCOMPUTE_DISCOVERY_FILE"
"""The environment variable naming the discovery file (its host path, process runtime)."""

# --- jobs and cron jobs ------------------------------------------------------------------------

JOB_TRACKING_FINALIZER: Final = "pincompute.io/job-tracking"
"""On a PinJob's pods: the pod is not counted in the job's status yet (it may not go
before it is, so no finished pod is lost or counted twice across operator restarts)."""
JOB_RESTART_LABEL: Final = "pincompute.io/job-restart"
"""On a PinJob's pods: the job restart (``RestartJob``) they were created in, from 0."""
INDEX_FAILURES_ANNOTATION: Final = "pincompute.io/index-failure-count"
"""On a PinJob's indexed pods: failures of the same index before this pod."""
JOB_HOSTS_SUFFIX: Final = "-hosts"
"""The discovery ConfigMap of a PinJob with groups is ``<job>-hosts``."""
JOB_HOSTS_MOUNT: Final = "/etc/pincompute/job"
"""Where every container of a PinJob with groups finds the discovery file ``hosts``."""
CRON_TRIGGER_ANNOTATION: Final = "pincompute.io/trigger"
"""On a PinCronJob: a nonce; a new value runs the job now (the API sets it)."""
CRON_SCHEDULED_TIME_ANNOTATION: Final = "pincompute.io/scheduled-time"
"""On a PinJob a PinCronJob created: the schedule time it runs for (RFC 3339)."""

# --- federation: shards in member clusters (propagation) ---------------------------------------

PARENT_UID_LABEL: Final = "pincompute.io/parent-uid"
"""On a shard (a host workload's copy in a member cluster): the host object's uid. Only
the federation writes objects carrying it; the federation maps member events back by it."""
PARENT_GENERATION_ANNOTATION: Final = "pincompute.io/parent-generation"
"""On a shard: the host object's generation the shard was last written from."""
PROPAGATION_FINALIZER: Final = "pincompute.io/propagation"
"""On a host workload: its shards are removed from the members before it goes."""
RESUME_ROLLOUT_ANNOTATION: Final = "pincompute.io/resume-rollout"
"""On a host PinApp whose zone rollout paused on a failing zone: resume it (any value; the
federation removes the annotation when it resumes)."""
FORWARDED_EVENT_LABEL: Final = "pincompute.io/forwarded-from"
"""On an Event of a host workload: the member cluster whose events it summarises."""

# --- projects and clusters ----------------------------------------------------------------------

PROJECT_LABEL: Final = "pincompute.io/project"
"""On a namespace: the Project it belongs to (a namespace without it is not ours)."""
PROJECT_NAMESPACES_FINALIZER: Final = "pincompute.io/namespaces"
"""On a Project: its namespaces in every cluster are deleted before it goes."""
CLUSTER_NAME_LABEL: Final = "pincompute.io/cluster"
"""Implied on every MemberCluster for cluster selectors: the cluster's name."""
DATA_PATH_ANNOTATION: Final = "pincompute.io/data-path"
"""On an embedded MemberCluster: the directory holding its store."""
CLUSTER_DRAINING_TAINT: Final = "pincompute.io/draining"
"""On a MemberCluster (effect NoSchedule): it is being removed from the region, so no new
placement lands there while its workloads leave."""
CLUSTER_NOT_READY_TAINT: Final = "cluster.pincompute.io/not-ready"
"""On a MemberCluster (``spec.taints``): its ``Ready`` condition is False (NoSchedule at
once, NoExecute after the grace period), as Karmada's ``cluster.karmada.io/not-ready``."""
CLUSTER_UNREACHABLE_TAINT: Final = "cluster.pincompute.io/unreachable"
"""On a MemberCluster: its API does not answer (``Reachable`` False)."""

# --- nodes and node pools -----------------------------------------------------------------------

NODE_POOL_LABEL: Final = "pincompute.io/node-pool"
"""On a node: the NodePool it belongs to."""
NODE_IMAGE_LABEL: Final = "pincompute.io/node-image"
"""On a node: the NodeImage it runs."""
NODE_DRAIN_ANNOTATION: Final = "pincompute.io/drain-started"
"""On a node: it is leaving its pool (cordoned, drained, then removed); the value is
when the drain started (RFC 3339)."""
NODE_PROVISIONER_FINALIZER: Final = "pincompute.io/node-provisioner"
"""On a NodePool: its nodes are drained and removed before it goes."""
NODE_RUNTIME_LABEL: Final = "pincompute.io/runtime"
"""On an embedded node: its agent's runtime (``process`` or ``sim``)."""
NodeRuntimeKind = Literal["process", "sim"]
"""An embedded node agent's runtime: real local processes, or simulated (for scale)."""
NODE_RUNTIME_KINDS: Final[tuple[NodeRuntimeKind, ...]] = ("process", "sim")
POD_CIDR_LABEL: Final = "pincompute.io/pod-cidr"
"""On an embedded node: the address block its pods get addresses from."""
RUNTIME_API_ANNOTATION: Final = "pincompute.io/runtime-api"
"""On an embedded node: where its agent serves logs and exec."""
DEDICATED_INTERFACE_RESOURCE: Final = "pincompute.io/dedicated-interface"
"""The extended resource counting a node's dedicated network interfaces."""
SIM_ANNOTATION_PREFIX: Final = "sim.pincompute.io/"
"""Annotations steering the ``sim`` runtime (durations, exit codes, usage profiles)."""
PROBE_FAILURE_ANNOTATION: Final = "pincompute.io/probe-failure"
"""On a node: an external health probe fails there; the value says what failed
(remediation treats the node as unhealthy while it is present)."""
REPAIR_ANNOTATION: Final = "pincompute.io/repair"
"""On a node: a person asks for its repair (any value; remediation escalates at once)."""
RESOLVED_IMAGE_ANNOTATION: Final = "pincompute.io/node-image-resolved"
"""On a member's NodePool: its ``nodeImage`` resolved (JSON of a ResolvedImage), written
by the node-image controller; embedded clusters make new nodes from it."""
ROTATION_ANNOTATION: Final = "pincompute.io/rotation"
"""On a node: the Rotation replacing it now (JSON: rotation, since, surged)."""
RELEASE_STAGE_LABEL: Final = "pincompute.io/release-stage"
"""On a MemberCluster: its release stage (``test``, ``canary``, ``early``, ``general``...);
a staged Rotation rolls a new node image stage by stage."""
CANARY_ANNOTATION: Final = "pincompute.io/canary"
"""On a MemberCluster: the built-in canary's last verdict there (JSON: ok, since, at,
message), what staged rotations gate on."""
CANARY_PROJECT: Final = "canary"
"""The project the built-in canary acts in, as a user."""
REMEDIATION_ANNOTATION: Final = "pincompute.io/remediation"
"""On a node: remediation's record of what it did (JSON: step, since, attempts)."""

__all__ = [
    "APP_KIND_LABEL", "APP_LABEL", "APP_UID_LABEL", "ATTEMPT_LABEL", "CLUSTER_DRAINING_TAINT",
    "CLUSTER_NAME_LABEL", "CLUSTER_NOT_READY_TAINT", "CLUSTER_UNREACHABLE_TAINT",
    "CONTAINER_HASHES_ANNOTATION", "CONTROLLER_SERVICE_ACCOUNT", "CRON_SCHEDULED_TIME_ANNOTATION",
    "CRON_TRIGGER_ANNOTATION", "DAEMON_POD_LABEL", "DATA_PATH_ANNOTATION",
    "DEDICATED_INTERFACE_RESOURCE", "DEFAULT_TIER", "DISCOVERY_CONFIGMAP", "DISCOVERY_FILE_ENV",
    "DISCOVERY_KEY", "DISCOVERY_MOUNT", "DISCOVERY_TRUNCATED_ANNOTATION", "FORWARDED_EVENT_LABEL",
    "HOST_WORKLOAD_ROLE",
    "INDEX_FAILURES_ANNOTATION", "INDEX_LABEL", "JOB_HOSTS_MOUNT", "JOB_HOSTS_SUFFIX",
    "JOB_RESTART_LABEL", "JOB_TRACKING_FINALIZER", "MEMBER_WORKLOAD_ROLE",
    "NETWORK_MODE_ANNOTATION", "NODE_DRAIN_ANNOTATION", "NODE_IMAGE_LABEL", "NODE_POOL_LABEL",
    "NODE_PROVISIONER_FINALIZER", "NODE_RUNTIME_KINDS", "NODE_RUNTIME_LABEL", "ONDEMAND",
    "OWNER_UID_LABEL", "PARENT_GENERATION_ANNOTATION", "PARENT_UID_LABEL", "PART_OF",
    "POD_CIDR_LABEL", "POD_GROUP_LABEL", "POD_GROUP_MIN_MEMBER_ANNOTATION",
    "POD_GROUP_TIMEOUT_ANNOTATION", "POD_SHAPE_ANNOTATION", "PREEMPTIBLE", "PREFIX",
    "PROBE_FAILURE_ANNOTATION", "PROJECT_LABEL", "PROJECT_NAMESPACES_FINALIZER",
    "PROPAGATION_FINALIZER", "REMEDIATION_ANNOTATION", "REPAIR_ANNOTATION", "RESERVED",
    "RESTARTED_AT_ANNOTATION", "RESTART_TOKEN_ENV", "RESUME_ROLLOUT_ANNOTATION", "REVISION_LABEL",
    "ROLE_LABEL", "ROLLBACK_TO_ANNOTATION", "RUNTIME_API_ANNOTATION", "SCHEDULER_NAME",
    "SIDECARS_ANNOTATION", "SIM_ANNOTATION_PREFIX", "SYSTEM_LABEL", "SYSTEM_NAMESPACE",
    "TEMPLATE_SHAPE_ANNOTATION", "TIERS", "TIER_LABEL", "VOLUME_KINDS_ANNOTATION",
    "WORKLOAD_KIND_LABEL", "WORKLOAD_NAME_LABEL", "WORKLOAD_ROLEBINDING", "NodeRuntimeKind", "Tier",
]
