"""From pydantic errors to Kubernetes ``Invalid`` causes.

Theory
------
The API server reports a rejected object as ``Invalid`` (422) with one cause
per bad field, each naming the field by its JSON path (``spec.containers[0].
image``) with a reason such as ``FieldValueRequired``.  Pydantic reports the
same facts as ``ValidationError`` entries with a ``loc`` tuple (aliases, i.e.
camelCase, and list indexes) and an error type; this module translates one
into the other:

- ``loc`` becomes a path: names join with ``.``, list indexes and map keys that
  are not plain identifiers (``nvidia.com/gpu``) go in brackets;
- errors raised by our own checks (:func:`.base.fail`) carry a sub-path below
  ``loc`` and their reason, which are appended/used;
- pydantic's wording is turned into the API server's (``Required value``,
  ``Unsupported value: "x": supported values: ...``, ``unknown field``).

Models are validated *by alias only* here (JSON input), so a snake_case key in a
JSON document is an unknown field, as it would be for the real API server.
"""

from __future__ import annotations

import re
from typing import Any, TypeVar

import orjson
from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from pincompute.kube.errors import Cause, Invalid, invalid

from .base import ERROR_TYPE

M = TypeVar("M", bound=BaseModel)

_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")
_TYPE_NAMES = {
    "int_type": "integer", "int_parsing": "integer", "int_from_float": "integer",
    "string_type": "string", "bool_type": "boolean", "bool_parsing": "boolean",
    "float_type": "number", "float_parsing": "number", "list_type": "array",
    "dict_type": "object", "model_type": "object", "model_attributes_type": "object",
}


def format_path(root: str, loc: tuple[Any, ...]) -> str:
    """``("containers", 0, "image")`` under ``spec`` → ``spec.containers[0].image``."""
    out = [root]
    for part in loc:
        if isinstance(part, int):
            out.append(f"[{part}]")
        elif _IDENT.match(part):
            out.append(f".{part}" if out[-1] else part)
        else:
            out.append(f"[{part}]")
    return "".join(out)


def _show(value: Any) -> str:
    try:
        text = orjson.dumps(value).decode()
    except TypeError:
        text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def cause_of(error: ErrorDetails, root: str) -> Cause:
    """One pydantic error entry as a :class:`Cause` under ``root``."""
    etype: str = error["type"]
    loc = tuple(error["loc"])
    ctx = error.get("ctx") or {}
    if etype == ERROR_TYPE:
        return Cause(format_path(root, loc + tuple(ctx.get("subpath", ()))), ctx["message"],
                     ctx.get("reason", "FieldValueInvalid"))
    field = format_path(root, loc)
    if etype == "missing":
        return Cause(field, "Required value", "FieldValueRequired")
    if etype == "extra_forbidden":
        return Cause(field, "unknown field", "FieldValueForbidden")
    if etype == "literal_error":
        expected = ctx.get("expected", "").replace("'", '"').replace(" or ", ", ")
        return Cause(field, f"Unsupported value: {_show(error.get('input'))}: supported values: "
                     f"{expected}", "FieldValueNotSupported")
    if etype in _TYPE_NAMES:
        got = type(error.get("input")).__name__
        got = {"str": "string", "int": "integer", "float": "number", "bool": "boolean",
               "list": "array", "dict": "object", "NoneType": "null"}.get(got, got)
        return Cause(field, f"Invalid value: {_show(error.get('input'))}: must be of type "
                     f"{_TYPE_NAMES[etype]}, not {got}", "FieldValueTypeInvalid")
    if etype in ("too_short", "too_long", "string_too_short", "string_too_long"):
        if etype == "too_short" or etype == "string_too_short":
            n = ctx.get("min_length", 1)
            what = "item" if etype == "too_short" else "character"
            message = f"must have at least {n} {what}{'s' if n != 1 else ''}"
            reason = "FieldValueRequired" if n == 1 else "FieldValueInvalid"
        else:
            n = ctx.get("max_length")
            what = "item" if etype == "too_long" else "character"
            message = f"must have at most {n} {what}{'s' if n != 1 else ''}"
            reason = "FieldValueTooMany" if etype == "too_long" else "FieldValueTooLong"
        return Cause(field, message, reason)
    msg: str = error.get("msg", "invalid")
    if msg.startswith("Input should "):
        msg = "must " + msg.removeprefix("Input should ")
    elif msg.startswith("Value error, "):
        msg = msg.removeprefix("Value error, ")
    if "input" in error and etype not in ("model_type",):
        msg = f"Invalid value: {_show(error['input'])}: {msg}"
    return Cause(field, msg, "FieldValueInvalid")


def causes_from(err: ValidationError, root: str) -> list[Cause]:
    """Every error of ``err`` as causes under ``root`` (duplicates dropped, order kept)."""
    seen: set[tuple[str, str]] = set()
    causes: list[Cause] = []
    for error in err.errors(include_url=False):
        cause = cause_of(error, root)
        if (cause.field, cause.message) not in seen:
            seen.add((cause.field, cause.message))
            causes.append(cause)
    return causes


def parse(model: type[M], data: Any, *, root: str = "spec", kind: str = "",
          name: str = "") -> M:
    """Validate JSON-form ``data`` (by alias only) as ``model``, raising :class:`Invalid`."""
    try:
        return model.model_validate(data, by_alias=True, by_name=False)
    except ValidationError as e:
        raise invalid(kind or model.__name__, name, causes_from(e, root)) from None


__all__ = ["Invalid", "cause_of", "causes_from", "format_path", "parse"]
