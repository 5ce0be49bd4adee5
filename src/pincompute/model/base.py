"""Base models and the field types every kind shares.

Theory
------
A spec model is the schema of a JSON dict, not an object users manipulate, so
the base class is set up for that job:

- field names are snake_case in Python and camelCase in JSON (an alias
  generator); JSON input is validated *by alias only* (see
  :mod:`.validation`), Python callers may construct models by field name;
- unknown fields are errors (``extra="forbid"``) and types are strict (``"3"`` is
  not an integer, ``1`` is not a string), as the API server's structural schema
  would have it;
- optional collections default to ``None``, not to empty lists, so a defaulted
  object serialized with ``exclude_none`` stays as small as what the user wrote
  plus the scalar defaults that matter (replicas, tier, probe timings, ...).

Status models (:class:`StatusModel`) are looser on purpose: status is written by
PinCompute's own controllers, which evolve faster than users' specs, so a
status model types the fields it knows (a wrong type is still an error) and lets
unknown fields through (``extra="allow"``; in the CRD,
``x-kubernetes-preserve-unknown-fields``).  Validators check status but store it
as written; no defaults are filled into status.

Validation errors that come from our own checks are raised with :func:`fail`,
which can name a *sub-path* below the field being validated (e.g. a model
checking ``limits >= requests`` points at ``limits.cpu``), so every cause names
the exact field.  Messages follow the API server's wording where it has one.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PlainValidator,
    PrivateAttr,
    WithJsonSchema,
    model_validator,
)
from pydantic.alias_generators import to_camel
from pydantic_core import PydanticCustomError

from pincompute.kube import names
from pincompute.kube.errors import BadRequest
from pincompute.kube.quantity import QuantityError, parse_quantity
from pincompute.kube.selectors import LabelSelector as ParsedSelector
from pincompute.kube.selectors import selector_from_dict

GROUP = "pincompute.io"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"

ERROR_TYPE = "pincompute"
"""The pydantic error type of every error raised through :func:`fail`."""


def fail(message: str, *subpath: str | int,
         reason: str = "FieldValueInvalid") -> PydanticCustomError:
    """An error for ``raise`` inside a validator, naming ``subpath`` below the current field.

    ``subpath`` parts are JSON names (camelCase) or list indexes, e.g.
    ``fail("must be >= requests", "limits", "cpu")``.
    """
    return PydanticCustomError(ERROR_TYPE, "{message}",
                               {"message": message, "subpath": subpath, "reason": reason})


class CamelModel(BaseModel):
    """Base of every spec model: camelCase JSON, strict types, unknown fields rejected."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        validate_by_name=True,
        validate_by_alias=True,
        serialize_by_alias=True,
        extra="forbid",
        strict=True,
        use_attribute_docstrings=True,
        frozen=False,
    )

    def to_dict(self) -> dict[str, Any]:
        """The JSON form: camelCase keys, ``None`` fields left out."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


class StatusModel(CamelModel):
    """Base of status models: known fields typed, unknown fields allowed (see module doc)."""

    model_config = ConfigDict(extra="allow")


# --- quantities --------------------------------------------------------------------------------

# The pattern the API server uses for resource.Quantity, without the sign: a
# spec quantity is never negative.
QUANTITY_PATTERN = (r"^\+?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))"
                    r"(([KMGTPE]i)|[numkMGTPE]|([eE](\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?$")
_INT_OR_STRING: dict[str, Any] = {
    "anyOf": [{"type": "integer"}, {"type": "string"}],
    "x-kubernetes-int-or-string": True,
}


def _check_quantity(value: Any, *, signed: bool) -> str | int:
    if signed and isinstance(value, float):
        # Status is stored as written, so a float would reach the API server, whose
        # int-or-string schema rejects it: controllers write strings ("730m").
        raise fail(f"Invalid value: {value!r}: must be an integer or a quantity string, "
                   "not a float", reason="FieldValueTypeInvalid")
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise fail(f"must be a quantity (a string such as '500m' or '2Gi', or a number), "
                   f"not {type(value).__name__}", reason="FieldValueTypeInvalid")
    try:
        amount = parse_quantity(value)
    except QuantityError as e:
        raise fail(str(e)) from None
    if not signed and amount < 0:
        raise fail(f"Invalid value: {value!r}: must be greater than or equal to 0")
    if isinstance(value, float):
        # YAML turns `cpu: 0.5` into a float; store the exact decimal text instead
        # (the CRD type is int-or-string, as for Kubernetes quantities).
        return format(amount.normalize(), "f")
    return value


Quantity = Annotated[
    str | int,
    PlainValidator(lambda v: _check_quantity(v, signed=False)),
    WithJsonSchema({**_INT_OR_STRING, "pattern": QUANTITY_PATTERN}),
]
"""A non-negative Kubernetes quantity (``500m``, ``2Gi``, ``3``); floats become strings."""

SignedQuantity = Annotated[
    str | int,
    PlainValidator(lambda v: _check_quantity(v, signed=True)),
    WithJsonSchema(dict(_INT_OR_STRING)),
]
"""A quantity in a status: may be negative (headroom), must be an int or a string."""


def quantity_value(value: str | int | float) -> Decimal:
    """The exact value of an already validated quantity."""
    return parse_quantity(value)


# --- int-or-string kinds -----------------------------------------------------------------------

_PERCENT_RE = re.compile(r"^(0|[1-9][0-9]*)%$")


def _check_int_or_percent(value: Any) -> int | str:
    if isinstance(value, int) and not isinstance(value, bool):
        if value < 0:
            raise fail(f"Invalid value: {value}: must be greater than or equal to 0")
        return value
    if isinstance(value, str):
        if _PERCENT_RE.match(value):
            if int(value[:-1]) > 100:
                raise fail(f"Invalid value: {value!r}: must not be greater than 100%")
            return value
        raise fail(f"Invalid value: {value!r}: must be an integer or a percentage (e.g. '25%')")
    raise fail(f"must be an integer or a percentage string, not {type(value).__name__}",
               reason="FieldValueTypeInvalid")


IntOrPercent = Annotated[
    int | str,
    PlainValidator(_check_int_or_percent),
    WithJsonSchema({**_INT_OR_STRING, "pattern": r"^(0|[1-9][0-9]*)%$"}),
]
"""A non-negative count or a percentage (``"25%"``), as maxSurge/maxUnavailable."""


def _check_port(value: Any) -> int | str:
    if isinstance(value, int) and not isinstance(value, bool):
        if not 1 <= value <= 65535:
            raise fail(f"Invalid value: {value}: must be between 1 and 65535, inclusive")
        return value
    if isinstance(value, str):
        errors = port_name_errors(value)
        if errors:
            raise fail(f"Invalid value: {value!r}: {errors[0]}")
        return value
    raise fail(f"must be a port number or a port name, not {type(value).__name__}",
               reason="FieldValueTypeInvalid")


_PORT_NAME_RE = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


def port_name_errors(value: str) -> list[str]:
    """IANA service name rules, as Kubernetes applies to named ports."""
    if not 1 <= len(value) <= 15:
        return ["must be no more than 15 characters and not empty"]
    if not _PORT_NAME_RE.match(value) or "--" in value:
        return ["must contain only lower case alphanumeric characters or '-', start and end "
                "with an alphanumeric character, and not contain '--'"]
    if not any(c.isalpha() for c in value):
        return ["must contain at least one letter"]
    return []


PortRef = Annotated[
    int | str,
    PlainValidator(_check_port),
    WithJsonSchema(dict(_INT_OR_STRING)),
]
"""A port number (1-65535) or the name of a container port."""


# --- names, labels -----------------------------------------------------------------------------

def _checked(rule: Callable[[str], list[str]]) -> Callable[[str], str]:
    """A pydantic validator from a :mod:`pincompute.kube.names` rule (first error wins)."""
    def check(value: str) -> str:
        errors = rule(value)
        if errors:
            raise fail(f"Invalid value: {value!r}: {errors[0]}")
        return value
    return check


_dns_label = _checked(names.dns1123_label)
_dns_subdomain = _checked(names.dns1123_subdomain)
_qualified = _checked(names.qualified_name)
_label_value = _checked(names.label_value)


DNSLabel = Annotated[str, AfterValidator(_dns_label)]
"""An RFC 1123 label: lower-case alphanumerics and '-', at most 63 characters."""

DNSSubdomain = Annotated[str, AfterValidator(_dns_subdomain)]
"""An RFC 1123 subdomain, the rule for most object names."""

QualifiedName = Annotated[str, AfterValidator(_qualified)]
"""A label/annotation/taint key: ``[prefix/]name``."""

LabelValue = Annotated[str, AfterValidator(_label_value)]
"""A label value (possibly empty, at most 63 characters)."""

NonEmptyStr = Annotated[str, Field(min_length=1)]
NonNegInt = Annotated[int, Field(ge=0)]
PosInt = Annotated[int, Field(ge=1)]


def _check_labels(value: dict[str, str]) -> dict[str, str]:
    for key, val in value.items():
        errors = names.qualified_name(key)
        if errors:
            raise fail(f"Invalid value: {key!r}: {errors[0]}", key)
        errors = names.label_value(val)
        if errors:
            raise fail(f"Invalid value: {val!r}: {errors[0]}", key)
    return value


def _check_annotations(value: dict[str, str]) -> dict[str, str]:
    for key in value:
        errors = names.qualified_name(key)
        if errors:
            raise fail(f"Invalid value: {key!r}: {errors[0]}", key)
    return value


Labels = Annotated[dict[str, str], AfterValidator(_check_labels)]
"""A label map: qualified-name keys, label values."""

Annotations = Annotated[dict[str, str], AfterValidator(_check_annotations)]
"""An annotation map: qualified-name keys, any string values."""


# --- label selectors ---------------------------------------------------------------------------

class SelectorRequirement(CamelModel):
    """One set-based requirement of a label selector."""

    key: str
    """The label key the requirement applies to."""
    operator: Literal["In", "NotIn", "Exists", "DoesNotExist"]
    """How the key's value is tested."""
    values: list[str] | None = None
    """The values for In and NotIn; empty for Exists and DoesNotExist."""


class LabelSelector(CamelModel):
    """A structured label selector (``matchLabels`` and ``matchExpressions``, ANDed).

    It must parse by Kubernetes' rules (valid keys and values, operators with the
    right number of values); an empty selector matches everything.
    """

    match_labels: dict[str, str] | None = None
    """Labels that must be present with exactly these values."""
    match_expressions: list[SelectorRequirement] | None = None
    """Set-based requirements."""

    _parsed: ParsedSelector = PrivateAttr()

    @model_validator(mode="after")
    def _parse(self) -> LabelSelector:
        try:
            self._parsed = selector_from_dict(self.to_dict(), param="selector")
        except BadRequest as e:
            cause = e.causes[0] if e.causes else None
            parts = _split_path(cause.field.removeprefix("selector")) if cause else []
            raise fail(cause.message if cause else str(e), *parts) from None
        return self

    def to_selector(self) -> ParsedSelector:
        """The parsed selector, ready for matching."""
        return self._parsed


def _split_path(path: str) -> list[str | int]:
    """``.matchExpressions[0]`` → ``["matchExpressions", 0]``."""
    parts: list[str | int] = []
    for m in re.finditer(r"\.([^.\[]+)|\[(\d+)\]|\[([^\]]*)\]", path):
        if m.group(1) is not None:
            parts.append(m.group(1))
        elif m.group(2) is not None:
            parts.append(int(m.group(2)))
        else:
            parts.append(m.group(3))
    return parts


# --- metadata, references, conditions ------------------------------------------------------------

class TemplateMeta(CamelModel):
    """The metadata of a template: labels and annotations copied onto what it creates."""

    labels: Labels | None = None
    """Labels added to every object created from the template."""
    annotations: Annotations | None = None
    """Annotations added to every object created from the template."""


class LocalObjectReference(CamelModel):
    """A reference to an object by name, in the same namespace (or cluster-scoped)."""

    name: DNSSubdomain
    """The referenced object's name."""


class Condition(StatusModel):
    """A Kubernetes-style condition (``type``, ``status`` True/False/Unknown, reason)."""

    type: str
    """The condition type, e.g. ``Ready``, ``Admitted``, ``Progressing``."""
    status: Literal["True", "False", "Unknown"]
    """Whether the condition holds."""
    reason: str | None = None
    """A CamelCase machine-readable reason."""
    message: str | None = None
    """A human-readable explanation."""
    last_transition_time: str | None = None
    """When the status last changed (RFC 3339)."""
    observed_generation: int | None = None
    """The spec generation the condition was computed from."""


class ObjectReference(StatusModel):
    """A reference to a created object in a status (``name``, ``namespace``, ``uid``)."""

    name: str
    namespace: str | None = None
    uid: str | None = None
    api_version: str | None = None
    kind: str | None = None


class WorkloadStatusBase(StatusModel):
    """What every workload status has: the generation observed and conditions."""

    observed_generation: int | None = None
    """The metadata.generation the controller last acted on."""
    conditions: list[Condition] | None = None
    """The latest observations of the object's state."""
