"""The registry of PinCompute's kinds: Resource descriptors, lookup, validators.

Theory
------
``pincompute.kube`` knows no PinCompute kind; this module is where the kinds
meet the protocol.  For each kind it holds a
:class:`~pincompute.kube.resource.Resource` (``PINAPPS``, ``PROJECTS``, ...) and
its spec and status models (:data:`KINDS`), and it builds the *validator* the
embedded store calls on every write (``store.register(resource,
validator=...)``; :func:`install` does it for every kind):

1. the object's top-level fields are the five Kubernetes ones, ``apiVersion``
   and ``kind`` (when present) match, and the name obeys the kind's rule (an
   RFC 1123 label for kinds whose name becomes a namespace, a label value or a
   pod-name prefix; CronJob names leave room for the run's suffix);
2. ``spec`` is validated with the spec model and comes back with defaults
   filled (serialized camelCase, ``None`` left out) - unless it is unchanged
   from the stored object, which was validated when it was written (status
   writes, label changes);
3. ``status``, when present and changed, is validated but stored as written;
4. on update, fields that may not change (a job's ``completionMode``, a
   cluster's ``zone``, ...) are compared with the old object.

Every problem becomes one :class:`~pincompute.kube.errors.Cause` naming the
field, raised together as ``Invalid`` (422); nothing is half-written because the
store applies nothing when its validator raises.  The input is never mutated:
the validator returns a new object (or ``None`` when nothing changed).

The real API server validates with the CRDs generated from the same models
(:mod:`.crd`); the context-dependent defaults (a template's restart policy,
a gang's size, a scaler's default metric) cannot be expressed there, so code
reading objects from a real cluster calls :func:`normalize` to get the same
filled-in spec.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any, NamedTuple, Protocol

from pydantic import BaseModel, ValidationError

from ..kube import names
from ..kube.errors import Cause, invalid
from ..kube.resource import Resource
from .app import PinAppSpec, PinAppStatus
from .base import API_VERSION, GROUP, VERSION
from .cron import PinCronJobSpec, PinCronJobStatus
from .infra import PinDaemonSpec, PinDaemonStatus, PinSidecarSpec, PinSidecarStatus
from .jobs import PinJobSpec, PinJobStatus
from .platform import (
    MemberClusterSpec,
    MemberClusterStatus,
    NodeImageSpec,
    NodeImageStatus,
    NodePoolSpec,
    NodePoolStatus,
    ProjectSpec,
    ProjectStatus,
    RotationSpec,
    RotationStatus,
)
from .pod import PinPodSpec, PinPodStatus
from .scaler import PinScalerSpec, PinScalerStatus
from .training import PinTrainingJobSpec, PinTrainingJobStatus
from .validation import causes_from

Validator = Callable[[dict[str, Any], dict[str, Any] | None], dict[str, Any] | None]


def _r(plural: str, kind: str, *short: str, namespaced: bool = True,
       selectable: tuple[str, ...] = ()) -> Resource:
    return Resource(GROUP, VERSION, plural, kind, namespaced=namespaced,
                    status_subresource=True, short_names=short, selectable_fields=selectable)


_TIER = ("spec.tier",)

# --- user workloads (namespaced: a project is a namespace) ---
PINPODS = _r("pinpods", "PinPod", "ppod", selectable=_TIER)
PINAPPS = _r("pinapps", "PinApp", "app", selectable=_TIER)
PINSCALERS = _r("pinscalers", "PinScaler", "scaler")
PINJOBS = _r("pinjobs", "PinJob", "job", selectable=_TIER)
PINTRAININGJOBS = _r("pintrainingjobs", "PinTrainingJob", "tjob", "training", selectable=_TIER)
PINCRONJOBS = _r("pincronjobs", "PinCronJob", "cron", selectable=_TIER)
# --- platform (cluster-scoped) ---
PINDAEMONS = _r("pindaemons", "PinDaemon", "daemon", namespaced=False)
PINSIDECARS = _r("pinsidecars", "PinSidecar", "sidecar", namespaced=False)
PROJECTS = _r("projects", "Project", "proj", namespaced=False)
MEMBERCLUSTERS = _r("memberclusters", "MemberCluster", "cluster", "mc", namespaced=False,
                    selectable=("spec.zone",))
NODEIMAGES = _r("nodeimages", "NodeImage", "image", "ni", namespaced=False)
ROTATIONS = _r("rotations", "Rotation", "rot", namespaced=False,
               selectable=("spec.cluster",))
# --- member-cluster platform objects (cluster-scoped in each member cluster) ---
NODEPOOLS = _r("nodepools", "NodePool", "pool", "np", namespaced=False, selectable=_TIER)

WORKLOAD_RESOURCES: tuple[Resource, ...] = (
    PINPODS, PINAPPS, PINSCALERS, PINJOBS, PINTRAININGJOBS, PINCRONJOBS,
)
"""What application developers submit, per project."""
PLATFORM_RESOURCES: tuple[Resource, ...] = (
    PINDAEMONS, PINSIDECARS, PROJECTS, MEMBERCLUSTERS, NODEIMAGES, ROTATIONS, NODEPOOLS,
)
"""What platform operators manage."""
RESOURCES: tuple[Resource, ...] = (*WORKLOAD_RESOURCES, *PLATFORM_RESOURCES)
"""Every PinCompute kind."""
HOST_RESOURCES: tuple[Resource, ...] = tuple(r for r in RESOURCES if r is not NODEPOOLS)
"""The kinds stored on the host cluster."""
MEMBER_RESOURCES: tuple[Resource, ...] = (*WORKLOAD_RESOURCES, PINDAEMONS, PINSIDECARS,
                                          NODEPOOLS)
"""The kinds stored in a member cluster (workload shards, agents, node pools)."""


class KindInfo(NamedTuple):
    """A kind's descriptor and models: ``resource, spec_model, status_model = KINDS[k]``."""

    resource: Resource
    spec: type[BaseModel]
    status: type[BaseModel]


KINDS: dict[str, KindInfo] = {
    info.resource.kind: info for info in (
        KindInfo(PINPODS, PinPodSpec, PinPodStatus),
        KindInfo(PINAPPS, PinAppSpec, PinAppStatus),
        KindInfo(PINSCALERS, PinScalerSpec, PinScalerStatus),
        KindInfo(PINJOBS, PinJobSpec, PinJobStatus),
        KindInfo(PINTRAININGJOBS, PinTrainingJobSpec, PinTrainingJobStatus),
        KindInfo(PINCRONJOBS, PinCronJobSpec, PinCronJobStatus),
        KindInfo(PINDAEMONS, PinDaemonSpec, PinDaemonStatus),
        KindInfo(PINSIDECARS, PinSidecarSpec, PinSidecarStatus),
        KindInfo(PROJECTS, ProjectSpec, ProjectStatus),
        KindInfo(MEMBERCLUSTERS, MemberClusterSpec, MemberClusterStatus),
        KindInfo(NODEPOOLS, NodePoolSpec, NodePoolStatus),
        KindInfo(NODEIMAGES, NodeImageSpec, NodeImageStatus),
        KindInfo(ROTATIONS, RotationSpec, RotationStatus),
    )
}
"""Kind name → (Resource, spec model, status model)."""

# Names that become namespaces, label values or pod-name prefixes must be labels;
# a cron job's runs are named ``<name>-<11 digits>``, so its name must leave room.
NAME_MAX_LENGTH: dict[str, int] = {
    "PinPod": 63, "PinApp": 63, "PinJob": 63, "PinTrainingJob": 63, "PinCronJob": 52,
    "PinDaemon": 63, "PinSidecar": 63, "Project": 63, "MemberCluster": 63, "NodePool": 63,
}
"""Kinds whose names must be RFC 1123 labels, with the longest name allowed."""

RESERVED_PROJECT_NAMES = frozenset({"default", "kube-system", "kube-public", "kube-node-lease",
                                    "pincompute-system"})
RESERVED_PROJECT_PREFIXES = ("kube-", "pincompute-")
"""A Project's name is its namespace: system namespaces (trusted with host networking and the
controllers' identities) and their prefixes are refused."""

IMMUTABLE_FIELDS: dict[str, tuple[str, ...]] = {
    "PinJob": ("completionMode",),
    "PinTrainingJob": ("framework",),
    "MemberCluster": ("zone", "region"),
    "NodePool": ("tier",),
    "NodeImage": ("type", "parent"),
    "Rotation": ("cluster", "targetImage"),
}
"""Spec fields that may not change after creation, per kind."""

_TOP_LEVEL = frozenset({"apiVersion", "kind", "metadata", "spec", "status"})

_BY_NAME: dict[str, Resource] = {}
for _res in RESOURCES:
    for _alias in (_res.kind.lower(), _res.plural, f"{_res.plural}.{_res.group}",
                   *_res.short_names):
        assert _alias not in _BY_NAME, f"ambiguous kind name {_alias!r}"
        _BY_NAME[_alias] = _res
del _res, _alias


def lookup(name: str) -> Resource:
    """The Resource a user's word names: kind, singular, plural, ``plural.group`` or short name.

    Case-insensitive (``PinApp``, ``pinapp``, ``pinapps``, ``app``); raises ``KeyError``
    with the known names.
    """
    try:
        return _BY_NAME[name.strip().lower()]
    except KeyError:
        known = ", ".join(sorted(r.plural for r in RESOURCES))
        raise KeyError(f"unknown kind {name!r}; known kinds: {known}") from None


def kind_info(kind_or_name: str | Resource) -> KindInfo:
    """The :class:`KindInfo` of a kind name, any :func:`lookup` name, or a Resource."""
    if isinstance(kind_or_name, Resource):
        return KINDS[kind_or_name.kind]
    info = KINDS.get(kind_or_name)
    return info if info is not None else KINDS[lookup(kind_or_name).kind]


# --- validation --------------------------------------------------------------------------------

def _check_name(kind: str, metadata: Mapping[str, Any]) -> list[Cause]:
    name = metadata.get("name")
    limit = NAME_MAX_LENGTH.get(kind)
    if limit is None or not isinstance(name, str) or not name:
        return []  # the store checks presence and the generic subdomain rule
    causes = [Cause("metadata.name", f"Invalid value: {name!r}: {e}")
              for e in names.dns1123_label(name)]
    if not causes and len(name) > limit:
        causes.append(Cause("metadata.name", f"Invalid value: {name!r}: must be no more than "
                            f"{limit} characters", "FieldValueTooLong"))
    return causes


def _check_reserved(kind: str, metadata: Mapping[str, Any]) -> list[Cause]:
    """On create only, so a Project stored before the rule can still be updated and deleted."""
    name = metadata.get("name")
    if kind == "Project" and isinstance(name, str) and (
            name in RESERVED_PROJECT_NAMES or name.startswith(RESERVED_PROJECT_PREFIXES)):
        return [Cause("metadata.name", f"Invalid value: {name!r}: is reserved for the system "
                      "(default, kube-*, pincompute-*)", "FieldValueForbidden")]
    return []


def _extra_checks(kind: str, obj: Mapping[str, Any], spec: BaseModel) -> list[Cause]:
    if kind == "NodeImage":
        md = obj.get("metadata")
        name = md.get("name") if isinstance(md, Mapping) else None
        if name and getattr(spec, "parent", None) == name:
            return [Cause("spec.parent", f"Invalid value: {name!r}: an image cannot be its "
                          "own parent")]
    return []


def validator_for(resource: Resource) -> Validator:
    """The validator of ``resource``'s kind, for ``store.register(resource, validator=...)``.

    Called with the candidate object and the stored one (``None`` on create); raises
    ``Invalid`` naming every bad field, returns the object with defaults filled into
    ``spec`` (a new dict; the input is not changed) or ``None`` if nothing needed filling.
    """
    info = KINDS[resource.kind]
    kind = resource.kind
    spec_model, status_model = info.spec, info.status
    immutable = IMMUTABLE_FIELDS.get(kind, ())

    def validate(obj: dict[str, Any], old: dict[str, Any] | None) -> dict[str, Any] | None:
        causes: list[Cause] = []
        metadata = obj.get("metadata") or {}
        if not isinstance(metadata, Mapping):
            causes.append(Cause("metadata", "must be an object", "FieldValueTypeInvalid"))
            metadata = {}
        name = str(metadata.get("name") or metadata.get("generateName") or "")
        for key in obj:
            if key not in _TOP_LEVEL:
                causes.append(Cause(key, "unknown field", "FieldValueForbidden"))
        api_version = obj.get("apiVersion")
        if api_version is not None and api_version != API_VERSION:
            causes.append(Cause("apiVersion", f'Unsupported value: "{api_version}": supported '
                                f'values: "{API_VERSION}"', "FieldValueNotSupported"))
        if obj.get("kind") not in (None, kind):
            causes.append(Cause("kind", f'Unsupported value: "{obj.get("kind")}": supported '
                                f'values: "{kind}"', "FieldValueNotSupported"))
        if isinstance(metadata, Mapping):
            causes += _check_name(kind, metadata)
            if old is None:
                causes += _check_reserved(kind, metadata)

        spec_in = obj.get("spec")
        spec_out: dict[str, Any] | None = None
        if old is None or spec_in is None or spec_in != old.get("spec"):
            try:
                model = spec_model.model_validate({} if spec_in is None else spec_in,
                                                  by_alias=True, by_name=False)
            except ValidationError as e:
                causes += causes_from(e, "spec")
            else:
                spec_out = model.model_dump(mode="json", by_alias=True, exclude_none=True)
                causes += _extra_checks(kind, obj, model)
                if old is not None and immutable and isinstance(old.get("spec"), Mapping):
                    for field in immutable:
                        before, after = old["spec"].get(field), spec_out.get(field)
                        if before != after:
                            causes.append(Cause(f"spec.{field}", "field is immutable",
                                                "FieldValueForbidden"))

        status = obj.get("status")
        if status is not None and (old is None or status != old.get("status")):
            try:
                status_model.model_validate(status, by_alias=True, by_name=False)
            except ValidationError as e:
                causes += causes_from(e, "status")

        if causes:
            raise invalid(kind, name, causes)
        if spec_out is None or spec_out == spec_in:
            return None
        out = dict(obj)
        out["metadata"] = dict(metadata)
        out["spec"] = spec_out
        return out

    validate.__name__ = f"validate_{resource.plural}"
    validate.__qualname__ = validate.__name__
    return validate


_VALIDATORS: dict[str, Validator] = {r.kind: validator_for(r) for r in RESOURCES}


def validate(obj: Mapping[str, Any], old: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Validate an object of any PinCompute kind (by its ``kind``); return it defaulted.

    Raises ``Invalid`` (bad object) or ``KeyError`` (not a PinCompute kind).  The result
    is a new dict whenever defaults were filled; otherwise ``obj`` itself.
    """
    kind = obj.get("kind")
    if kind not in _VALIDATORS:
        raise KeyError(f"not a PinCompute kind: {kind!r}")
    result = _VALIDATORS[kind](obj, old)  # type: ignore[arg-type]
    return result if result is not None else dict(obj)


def normalize(obj: Mapping[str, Any]) -> dict[str, Any]:
    """The object with every default filled in, as the embedded store would store it.

    For code that reads objects validated by a real API server (CRD schemas cannot
    express the context-dependent defaults); same errors as :func:`validate`.
    """
    return validate(obj, None)


class _Registrar(Protocol):
    def register(self, resource: Resource, *, validator: Validator | None = None) -> None: ...


def install(store: _Registrar, *, resources: Iterable[Resource] = RESOURCES) -> None:
    """Register ``resources`` (default: every PinCompute kind) with their validators."""
    for resource in resources:
        store.register(resource, validator=_VALIDATORS[resource.kind])


__all__ = [
    "HOST_RESOURCES", "IMMUTABLE_FIELDS", "KINDS", "MEMBERCLUSTERS", "MEMBER_RESOURCES",
    "NAME_MAX_LENGTH", "NODEIMAGES", "NODEPOOLS", "PINAPPS", "PINCRONJOBS", "PINDAEMONS",
    "PINJOBS", "PINPODS", "PINSCALERS", "PINSIDECARS", "PINTRAININGJOBS", "PLATFORM_RESOURCES",
    "PROJECTS", "RESERVED_PROJECT_NAMES", "RESERVED_PROJECT_PREFIXES", "RESOURCES", "ROTATIONS",
    "WORKLOAD_RESOURCES", "KindInfo", "Validator",
    "install", "kind_info", "lookup", "normalize", "validate", "validator_for",
]
