"""Label and field selectors: parsing and matching.

A selector is parsed once into a tuple of requirements and matched many times, so
the parser does the work and :meth:`LabelSelector.matches` is a tight loop.  The
string grammar is Kubernetes' (``a=b,c!=d,e in (f,g),h notin (i),j,!k``); the
structured form (``matchLabels``/``matchExpressions``) used inside specs converts
to the same requirements.  Parse failures raise :class:`~.errors.BadRequest`
naming the selector parameter, as the API server does.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .errors import BadRequest, Cause
from .names import label_value, qualified_name

OP_EQ = "="
OP_NE = "!="
OP_IN = "in"
OP_NOTIN = "notin"
OP_EXISTS = "exists"
OP_NOT_EXISTS = "!"


@dataclass(frozen=True, slots=True)
class Requirement:
    key: str
    op: str
    values: frozenset[str] = frozenset()

    def matches(self, labels: Mapping[str, str]) -> bool:
        op = self.op
        if op == OP_EQ or op == OP_IN:
            return labels.get(self.key) in self.values
        if op == OP_NE or op == OP_NOTIN:
            return labels.get(self.key) not in self.values
        if op == OP_EXISTS:
            return self.key in labels
        return self.key not in labels


@dataclass(frozen=True, slots=True)
class LabelSelector:
    requirements: tuple[Requirement, ...] = ()

    @property
    def empty(self) -> bool:
        return not self.requirements

    def matches(self, labels: Mapping[str, str] | None) -> bool:
        labels = labels or {}
        for r in self.requirements:
            if not r.matches(labels):
                return False
        return True

    def equality_terms(self) -> list[tuple[str, str]]:
        """The ``key=value`` terms, which a store can answer from a label index."""
        return [(r.key, next(iter(r.values))) for r in self.requirements
                if r.op in (OP_EQ, OP_IN) and len(r.values) == 1]

    def __str__(self) -> str:
        parts = []
        for r in self.requirements:
            if r.op in (OP_EQ, OP_NE):
                parts.append(f"{r.key}{r.op}{next(iter(r.values))}")
            elif r.op in (OP_IN, OP_NOTIN):
                parts.append(f"{r.key} {r.op} ({','.join(sorted(r.values))})")
            elif r.op == OP_EXISTS:
                parts.append(r.key)
            else:
                parts.append(f"!{r.key}")
        return ",".join(parts)


EVERYTHING = LabelSelector()

_TOKEN_RE = re.compile(
    r"\s*(?:(?P<set>[^\s,=!()]+)\s+(?P<setop>in|notin)\s*\((?P<vals>[^)]*)\)"
    r"|(?P<not>!)\s*(?P<nkey>[^\s,=!()]+)"
    r"|(?P<key>[^\s,=!()]+)\s*(?P<op>==|=|!=)\s*(?P<val>[^\s,=!()]*)"
    r"|(?P<ekey>[^\s,=!()]+))\s*(?:,|$)"
)


def _bad(param: str, text: str, why: str) -> BadRequest:
    return BadRequest(f"unable to parse requirement in {param} {text!r}: {why}",
                      causes=[Cause(param, why, "FieldValueInvalid")])


def _check_key(param: str, text: str, key: str) -> None:
    errors = qualified_name(key)
    if errors:
        raise _bad(param, text, f"invalid label key {key!r}: {errors[0]}")


def _check_value(param: str, text: str, value: str) -> None:
    errors = label_value(value)
    if errors:
        raise _bad(param, text, f"invalid label value {value!r}: {errors[0]}")


def parse_label_selector(text: str | None, *, param: str = "labelSelector") -> LabelSelector:
    """Parse the string form of a label selector."""
    if text is None or not text.strip():
        return EVERYTHING
    reqs: list[Requirement] = []
    pos = 0
    text_s = text.strip()
    while pos < len(text_s):
        m = _TOKEN_RE.match(text_s, pos)
        if not m or m.end() == pos:
            raise _bad(param, text, f"unexpected input at position {pos}")
        pos = m.end()
        if m.group("set"):
            key = m.group("set")
            _check_key(param, text, key)
            vals = [v.strip() for v in m.group("vals").split(",") if v.strip()]
            if not vals:
                raise _bad(param, text, f"{key} {m.group('setop')} needs at least one value")
            for v in vals:
                _check_value(param, text, v)
            op = OP_IN if m.group("setop") == "in" else OP_NOTIN
            reqs.append(Requirement(key, op, frozenset(vals)))
        elif m.group("not"):
            key = m.group("nkey")
            _check_key(param, text, key)
            reqs.append(Requirement(key, OP_NOT_EXISTS))
        elif m.group("key"):
            key, val = m.group("key"), m.group("val")
            _check_key(param, text, key)
            _check_value(param, text, val)
            op = OP_NE if m.group("op") == "!=" else OP_EQ
            reqs.append(Requirement(key, op, frozenset((val,))))
        else:
            key = m.group("ekey")
            _check_key(param, text, key)
            reqs.append(Requirement(key, OP_EXISTS))
        if text_s[pos - 1:pos] == "," and pos >= len(text_s):
            raise _bad(param, text, "trailing comma")
    return LabelSelector(tuple(reqs))


_EXPR_OPS = {"In": OP_IN, "NotIn": OP_NOTIN, "Exists": OP_EXISTS, "DoesNotExist": OP_NOT_EXISTS}


def selector_from_dict(spec: Mapping[str, Any] | None, *,
                       param: str = "selector") -> LabelSelector:
    """Convert a structured ``{matchLabels, matchExpressions}`` selector."""
    if not spec:
        return EVERYTHING
    reqs: list[Requirement] = []
    for key, value in (spec.get("matchLabels") or {}).items():
        _check_key(f"{param}.matchLabels", key, key)
        _check_value(f"{param}.matchLabels", key, str(value))
        reqs.append(Requirement(key, OP_EQ, frozenset((str(value),))))
    for i, expr in enumerate(spec.get("matchExpressions") or ()):
        where = f"{param}.matchExpressions[{i}]"
        key = expr.get("key", "")
        _check_key(where, str(expr), key)
        op = _EXPR_OPS.get(expr.get("operator", ""))
        if op is None:
            raise _bad(where, str(expr), f"unknown operator {expr.get('operator')!r}")
        values = frozenset(str(v) for v in expr.get("values") or ())
        if op in (OP_IN, OP_NOTIN) and not values:
            raise _bad(where, str(expr), "values must be non-empty for In and NotIn")
        if op in (OP_EXISTS, OP_NOT_EXISTS) and values:
            raise _bad(where, str(expr), "values must be empty for Exists and DoesNotExist")
        reqs.append(Requirement(key, op, values))
    return LabelSelector(tuple(reqs))


# --- field selectors -------------------------------------------------------------------------

# Every resource can be selected by these; others only where the resource lists them
# (``Resource.selectable_fields``, as CRDs declare ``selectableFields``).
ALWAYS_SELECTABLE = ("metadata.name", "metadata.namespace")
_PATH_RE = re.compile(r"^[A-Za-z][A-Za-z0-9]*(\.[A-Za-z][A-Za-z0-9]*)+$")


_PATHS: dict[str, tuple[str, ...]] = {}  # field paths split once (every store write reads some)


def field_value(obj: Mapping[str, Any], path: str) -> str:
    """The value at a dotted path, as a field selector compares it ("" when absent)."""
    value: Any = obj
    parts = _PATHS.get(path)
    if parts is None:
        if len(_PATHS) >= 1024:
            _PATHS.clear()
        parts = _PATHS[path] = tuple(path.split("."))
    for part in parts:
        if type(value) is not dict and not isinstance(value, Mapping):  # (dicts: fast)
            return ""
        value = value.get(part)
    if value is None:
        return ""
    if type(value) is str:
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


@dataclass(frozen=True, slots=True)
class FieldSelector:
    # (path, value, equal?) triples; an empty selector matches everything.
    terms: tuple[tuple[str, str, bool], ...] = ()

    @property
    def empty(self) -> bool:
        return not self.terms

    def value_of(self, path: str) -> str | None:
        for p, v, eq in self.terms:
            if p == path and eq:
                return v
        return None

    def matches(self, obj: Mapping[str, Any]) -> bool:
        for path, value, eq in self.terms:
            if (field_value(obj, path) == value) != eq:
                return False
        return True


ALL_FIELDS = FieldSelector()


def parse_field_selector(text: str | None, *, param: str = "fieldSelector") -> FieldSelector:
    """Parse ``path=value,path!=value``; which paths a resource allows is the server's call."""
    if text is None or not text.strip():
        return ALL_FIELDS
    terms = []
    for part in text.split(","):
        part = part.strip()
        if "!=" in part:
            path, _, value = part.partition("!=")
            eq = False
        elif "==" in part:
            path, _, value = part.partition("==")
            eq = True
        elif "=" in part:
            path, _, value = part.partition("=")
            eq = True
        else:
            raise _bad(param, text, f"{part!r} is not of the form field=value")
        path = path.strip()
        if not _PATH_RE.match(path):
            raise _bad(param, text, f"{path!r} is not a field path such as metadata.name")
        terms.append((path, value.strip(), eq))
    return FieldSelector(tuple(terms))
