"""Kind names as users type them, and where each kind lives in the REST API.

Users name a kind as kubectl's users do: by kind (``PinApp``), singular
(``pinapp``), plural (``pinapps``) or short name (``app``, and ``apps``), in any
case, and an
object as ``KIND NAME`` or ``KIND/NAME``.  :func:`resolve_kind` answers a
:class:`KindRef` from :data:`KINDS`: the names, short names and printer columns of
the kinds table (:data:`pincompute.model.kinds.KIND_TABLE`; a test keeps the two
equal) plus the one core kind the API serves, Node.  A ref knows its URL segment
and scope: ``project`` kinds live under ``/api/v1/projects/{project}/{plural}``,
``platform`` kinds under ``/api/v1/{segment}`` (MemberCluster's segment is
``clusters``), and nodes and node pools under ``/api/v1/clusters/{cluster}/...``
(node pools of every cluster are also listed at ``/api/v1/nodepools``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from .errors import PinComputeError

Scope = Literal["project", "platform", "cluster"]


class UnknownKind(PinComputeError, ValueError):
    """A kind name that matches no kind."""


@dataclass(frozen=True, slots=True)
class Column:
    """A table column: a CRD printer column (``json_path`` a simple JSONPath)."""

    name: str
    type: str
    json_path: str
    priority: int = 0


@dataclass(frozen=True, slots=True)
class KindRef:
    kind: str
    plural: str
    segment: str
    """The kind's path segment in the REST API."""
    scope: Scope
    short_names: tuple[str, ...] = ()
    columns: tuple[Column, ...] = ()
    """The kind's table columns (``get``), priority > 0 only with ``-o wide``."""
    operations: tuple[str, ...] = ()
    """``POST .../{segment}/{name}/{operation}`` verbs the kind has."""

    @property
    def names(self) -> tuple[str, ...]:
        return (self.kind.lower(), self.plural, *self.short_names)


_OPERATIONS: dict[str, tuple[str, ...]] = {
    "PinApp": ("pause", "resume", "stop", "start", "restart", "scale", "rollback",
               "restart-container"),
    "PinPod": ("restart-container", "stop", "start"),
    "PinJob": ("suspend", "resume"),
    "PinTrainingJob": ("suspend", "resume"),
    "PinCronJob": ("trigger", "suspend", "resume"),
}
_SEGMENTS = {"MemberCluster": "clusters"}
_col = Column


def _kind(kind: str, plural: str, short_names: tuple[str, ...], scope: Scope,
          columns: tuple[Column, ...]) -> KindRef:
    return KindRef(kind=kind, plural=plural, segment=_SEGMENTS.get(kind, plural), scope=scope,
                   short_names=short_names, columns=columns,
                   operations=_OPERATIONS.get(kind, ()))


# The kinds table's names and printer columns (pincompute.model.kinds, which a test holds
# this copy to): written out so the SDK — and every CLI command — starts without loading
# the kinds' schemas.
KINDS: tuple[KindRef, ...] = (
    _kind("PinPod", "pinpods", ("ppod",), "project", (
        _col("Tier", "string", ".spec.tier"),
        _col("Phase", "string", ".status.phase"),
        _col("Cluster", "string", ".status.cluster"),
        _col("Node", "string", ".status.nodeName", priority=1),
        _col("IP", "string", ".status.podIP", priority=1),
    )),
    _kind("PinApp", "pinapps", ("app",), "project", (
        _col("Tier", "string", ".spec.tier"),
        _col("Replicas", "integer", ".spec.replicas"),
        _col("Ready", "integer", ".status.readyReplicas"),
        _col("Updated", "integer", ".status.updatedReplicas"),
        _col("Available", "integer", ".status.availableReplicas"),
        _col("Phase", "string", ".status.phase", priority=1),
    )),
    _kind("PinScaler", "pinscalers", ("scaler",), "project", (
        _col("Target", "string", ".spec.scaleTargetRef.name"),
        _col("Min", "integer", ".spec.minReplicas"),
        _col("Max", "integer", ".spec.maxReplicas"),
        _col("Replicas", "integer", ".status.currentReplicas"),
        _col("Desired", "integer", ".status.desiredReplicas", priority=1),
    )),
    _kind("PinJob", "pinjobs", ("job",), "project", (
        _col("Tier", "string", ".spec.tier"),
        _col("Completions", "integer", ".spec.completions"),
        _col("Succeeded", "integer", ".status.succeeded"),
        _col("Active", "integer", ".status.active", priority=1),
        _col("Phase", "string", ".status.phase"),
    )),
    _kind("PinTrainingJob", "pintrainingjobs", ("tjob", "training"), "project", (
        _col("Framework", "string", ".spec.framework"),
        _col("Tier", "string", ".spec.tier"),
        _col("Phase", "string", ".status.phase"),
        _col("Restarts", "integer", ".status.restarts", priority=1),
    )),
    _kind("PinCronJob", "pincronjobs", ("cron",), "project", (
        _col("Schedule", "string", ".spec.schedule"),
        _col("TimeZone", "string", ".spec.timeZone"),
        _col("Suspend", "boolean", ".spec.suspend"),
        _col("Last Schedule", "date", ".status.lastScheduleTime"),
    )),
    _kind("PinDaemon", "pindaemons", ("daemon",), "platform", (
        _col("Desired", "integer", ".status.desiredNumberScheduled"),
        _col("Ready", "integer", ".status.numberReady"),
        _col("Updated", "integer", ".status.updatedNumberScheduled"),
        _col("Namespace", "string", ".spec.namespace", priority=1),
    )),
    _kind("PinSidecar", "pinsidecars", ("sidecar",), "platform", (
        _col("Order", "integer", ".spec.order"),
        _col("Matched", "integer", ".status.matchedPods"),
        _col("Injected", "integer", ".status.injectedPods"),
        _col("Updated", "integer", ".status.updatedPods", priority=1),
    )),
    _kind("Project", "projects", ("proj",), "platform", (
        _col("Display Name", "string", ".spec.displayName"),
        _col("Phase", "string", ".status.phase"),
    )),
    _kind("MemberCluster", "memberclusters", ("cluster", "mc"), "platform", (
        _col("Zone", "string", ".spec.zone"),
        _col("Region", "string", ".spec.region"),
        _col("Health", "string", ".status.health"),
        _col("Nodes", "integer", ".status.nodes.total"),
        _col("Connection", "string", ".spec.connection.type", priority=1),
    )),
    _kind("NodeImage", "nodeimages", ("image", "ni"), "platform", (
        _col("Type", "string", ".spec.type"),
        _col("Version", "string", ".spec.version"),
        _col("Parent", "string", ".spec.parent"),
        _col("Phase", "string", ".status.phase", priority=1),
    )),
    _kind("Rotation", "rotations", ("rot",), "platform", (
        _col("Cluster", "string", ".spec.cluster"),
        _col("Image", "string", ".spec.targetImage"),
        _col("Phase", "string", ".status.phase"),
        _col("Replaced", "integer", ".status.replacedNodes"),
        _col("Total", "integer", ".status.totalNodes"),
    )),
    _kind("NodePool", "nodepools", ("pool", "np"), "cluster", (
        _col("Tier", "string", ".spec.tier"),
        _col("Instance Type", "string", ".spec.instanceType"),
        _col("Min", "integer", ".spec.minSize"),
        _col("Max", "integer", ".spec.maxSize"),
        _col("Nodes", "integer", ".status.currentSize"),
        _col("Ready", "integer", ".status.readyNodes"),
        _col("Image", "string", ".spec.nodeImage", priority=1),
    )),
    KindRef(kind="Node", plural="nodes", segment="nodes", scope="cluster", short_names=("no",),
            columns=(_col("Status", "string", ".status.conditions"),
                     _col("Pool", "string", ".metadata.labels.pincompute\\.io/node-pool"),
                     _col("Tier", "string", ".metadata.labels.pincompute\\.io/tier"))),
)
"""Every kind the REST API serves."""

_BY_NAME: dict[str, KindRef] = {}
for _ref in KINDS:
    for _name in _ref.names:
        _BY_NAME.setdefault(_name, _ref)
    if _ref.segment != _ref.plural:
        _BY_NAME.setdefault(_ref.segment, _ref)
        _BY_NAME.setdefault(_ref.segment.removesuffix("s"), _ref)
for _ref in KINDS:  # `get apps`, `get jobs`: short names in the plural, where unambiguous
    for _short in _ref.short_names:
        _BY_NAME.setdefault(_short + "s", _ref)


def resolve_kind(name: str) -> KindRef:
    """The kind ``name`` stands for (singular, plural, short name or kind, any case)."""
    ref = _BY_NAME.get(name.strip().lower())
    if ref is None:
        known = ", ".join(sorted(r.plural if r.segment == r.plural else r.segment
                                 for r in KINDS))
        raise UnknownKind(f"unknown kind {name!r} (known: {known})")
    return ref


def parse_object_ref(first: str, second: str | None = None) -> tuple[KindRef, str | None]:
    """``KIND NAME``, ``KIND/NAME`` or ``KIND`` alone → (kind, name or None)."""
    if "/" in first:
        if second is not None:
            raise UnknownKind(f"give KIND/NAME or KIND NAME, not both ({first} {second})")
        kind, _, name = first.partition("/")
        if not name:
            raise UnknownKind(f"{first!r}: the name after the slash is missing")
        return resolve_kind(kind), name
    return resolve_kind(first), second
