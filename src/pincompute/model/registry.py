"""The registry of PinCompute's kinds: Resource descriptors, lookup, validators.

Theory
------
``pincompute.kube`` knows no PinCompute kind; this module is where the kinds
meet the protocol.  The facts about each kind are its entry in the kinds table
(:mod:`.kinds`); from it this module derives the
:class:`~pincompute.kube.resource.Resource` constants (``PINAPPS``,
``PROJECTS``, ...), the kind lookup, the sets of kinds each cluster stores
(:data:`KINDS` maps a kind to its entry), and it builds the *validator* the
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
from typing import Any, Protocol

from pydantic import ValidationError

from pincompute.kube import names
from pincompute.kube.errors import Cause, invalid
from pincompute.kube.podvalidation import validate_pod
from pincompute.kube.resource import PODS, Resource
from pincompute.kube.wellknown import (
    DEFAULT_NAMESPACE,
    KUBE_PUBLIC_NAMESPACE,
    KUBE_SYSTEM_NAMESPACE,
    NODE_LEASE_NAMESPACE,
)

from .base import API_VERSION
from .kinds import KIND_TABLE, KindInfo
from .validation import causes_from
from .wellknown import SYSTEM_NAMESPACE

Validator = Callable[[dict[str, Any], dict[str, Any] | None], dict[str, Any] | None]

KINDS: dict[str, KindInfo] = {info.kind: info for info in KIND_TABLE}
"""Kind name → its :class:`~.kinds.KindInfo` (every fact about the kind), in table order."""

# The Resources by constant, for code that names a kind (``client.get(PINAPPS, ...)``).
PINPODS = KINDS["PinPod"].resource
PINAPPS = KINDS["PinApp"].resource
PINSCALERS = KINDS["PinScaler"].resource
PINJOBS = KINDS["PinJob"].resource
PINTRAININGJOBS = KINDS["PinTrainingJob"].resource
PINCRONJOBS = KINDS["PinCronJob"].resource
PINDAEMONS = KINDS["PinDaemon"].resource
PINSIDECARS = KINDS["PinSidecar"].resource
PROJECTS = KINDS["Project"].resource
MEMBERCLUSTERS = KINDS["MemberCluster"].resource
NODEIMAGES = KINDS["NodeImage"].resource
ROTATIONS = KINDS["Rotation"].resource
NODEPOOLS = KINDS["NodePool"].resource

RESOURCES: tuple[Resource, ...] = tuple(info.resource for info in KIND_TABLE)
"""Every PinCompute kind."""
WORKLOAD_RESOURCES: tuple[Resource, ...] = tuple(
    info.resource for info in KIND_TABLE if info.audience == "workload")
"""What application developers submit, per project."""
PLATFORM_RESOURCES: tuple[Resource, ...] = tuple(
    info.resource for info in KIND_TABLE if info.audience == "platform")
"""What platform operators manage."""
HOST_RESOURCES: tuple[Resource, ...] = tuple(
    info.resource for info in KIND_TABLE if "host" in info.stored_on)
"""The kinds stored on the host cluster."""
MEMBER_RESOURCES: tuple[Resource, ...] = tuple(
    info.resource for info in KIND_TABLE if "member" in info.stored_on)
"""The kinds stored in a member cluster (workload shards, agents, node pools)."""

NAME_MAX_LENGTH: dict[str, int] = {
    info.kind: info.name_max_length for info in KIND_TABLE if info.name_max_length is not None}
"""Kinds whose names must be RFC 1123 labels, with the longest name allowed."""

RESERVED_PROJECT_NAMES = frozenset({DEFAULT_NAMESPACE, KUBE_SYSTEM_NAMESPACE,
                                    KUBE_PUBLIC_NAMESPACE, NODE_LEASE_NAMESPACE,
                                    SYSTEM_NAMESPACE})
RESERVED_PROJECT_PREFIXES = ("kube-", "pincompute-")
"""A Project's name is its namespace: system namespaces (trusted with host networking and the
controllers' identities) and their prefixes are refused."""

IMMUTABLE_FIELDS: dict[str, tuple[str, ...]] = {
    info.kind: info.immutable for info in KIND_TABLE if info.immutable}
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

def _check_name(limit: int | None, metadata: Mapping[str, Any]) -> list[Cause]:
    name = metadata.get("name")
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


def validator_for(resource: Resource) -> Validator:
    """The validator of ``resource``'s kind, for ``store.register(resource, validator=...)``.

    Called with the candidate object and the stored one (``None`` on create); raises
    ``Invalid`` naming every bad field, returns the object with defaults filled into
    ``spec`` (a new dict; the input is not changed) or ``None`` if nothing needed filling.
    """
    info = KINDS[resource.kind]
    kind = resource.kind
    spec_model, status_model = info.spec, info.status
    immutable = info.immutable
    extra_check = info.extra_check

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
            causes += _check_name(info.name_max_length, metadata)
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
                if extra_check is not None:
                    causes += extra_check(obj, model)
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
    """Register ``resources`` (default: every PinCompute kind) with their validators.

    Core Pods get theirs too (:func:`~pincompute.kube.podvalidation.validate_pod`): a
    Pod written straight into a member store reaches a node agent, which turns its names
    and paths into paths on the machine.
    """
    store.register(PODS, validator=validate_pod)
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
