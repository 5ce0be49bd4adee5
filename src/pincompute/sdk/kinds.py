"""Kind names as users type them, and where each kind lives in the REST API.

Users name a kind as kubectl's users do: by kind (``PinApp``), singular
(``pinapp``), plural (``pinapps``) or short name (``app``, and ``apps``), in any
case, and an
object as ``KIND NAME`` or ``KIND/NAME``.  :func:`resolve_kind` answers a
:class:`KindRef` from the kinds table (:data:`pincompute.model.kinds.KIND_TABLE`:
one source for names, short names and printer columns) plus the one core kind
the API serves, Node.  A ref knows its URL segment and scope: ``project`` kinds
live under ``/api/v1/projects/{project}/{plural}``, ``platform`` kinds under
``/api/v1/{segment}`` (MemberCluster's segment is ``clusters``), and nodes under
``/api/v1/clusters/{cluster}/nodes``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pincompute.model.kinds import KIND_TABLE, PrinterColumn

from .errors import PinComputeError

Scope = Literal["project", "platform", "cluster"]


class UnknownKind(PinComputeError, ValueError):
    """A kind name that matches no kind."""


@dataclass(frozen=True, slots=True)
class KindRef:
    kind: str
    plural: str
    segment: str
    """The kind's path segment in the REST API."""
    scope: Scope
    short_names: tuple[str, ...] = ()
    columns: tuple[PrinterColumn, ...] = ()
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

NODE = KindRef(kind="Node", plural="nodes", segment="nodes", scope="cluster",
               short_names=("no",), columns=(
                   PrinterColumn("Status", "string", ".status.conditions"),
                   PrinterColumn("Pool", "string", ".metadata.labels.pincompute\\.io/pool"),
                   PrinterColumn("Unschedulable", "boolean", ".spec.unschedulable"),
               ))

KINDS: tuple[KindRef, ...] = (*(
    KindRef(kind=info.kind, plural=info.plural,
            segment=_SEGMENTS.get(info.kind, info.plural),
            scope="project" if info.namespaced else "platform",
            short_names=info.short_names, columns=info.printer_columns,
            operations=_OPERATIONS.get(info.kind, ()))
    for info in KIND_TABLE), NODE)
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
