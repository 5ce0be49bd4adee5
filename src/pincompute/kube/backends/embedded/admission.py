"""Checks every object passes before the embedded store accepts it.

A request body is first copied in (:func:`copy_in`: a JSON object with a
``metadata`` object, never shared with the caller) and its type checked against
the request's (:func:`check_type`).  The metadata checks that follow are the
generic rules the API server applies to any kind's metadata — names, labels,
annotations, finalizers, owner references — collected into one list of causes
so the user sees every problem at once.  Kind-specific schemas
are the registered validators' job.

Label keys and values repeat across thousands of objects, so strings already
found valid are remembered (in a bounded set) and not checked again.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from pincompute.kube import names
from pincompute.kube.errors import BadRequest, Cause
from pincompute.kube.resource import Resource

_ANNOTATIONS_MAX_BYTES = 256 * 1024
_known_good: set[str] = set()
_KNOWN_GOOD_MAX = 100_000


def _remember(value: str) -> None:
    if len(_known_good) >= _KNOWN_GOOD_MAX:
        _known_good.clear()
    _known_good.add(value)


def copy_in(obj: object, what: str = "body") -> dict[str, Any]:
    """A private JSON copy of a request body, with a ``metadata`` object."""
    if type(obj) is not dict and not isinstance(obj, Mapping):
        raise BadRequest(f"the {what} must be a JSON object, not {type(obj).__name__}",
                         causes=[Cause(what, "must be an object", "FieldValueTypeInvalid")])
    try:
        data: dict[str, Any] = orjson.loads(orjson.dumps(obj))
    except TypeError as e:
        raise BadRequest(f"the {what} is not valid JSON: {e}") from e
    md = data.get("metadata")
    if md is None:
        data["metadata"] = {}
    elif not isinstance(md, dict):
        raise BadRequest("metadata must be an object",
                         causes=[Cause("metadata", "must be an object", "FieldValueTypeInvalid")])
    return data


def check_type(resource: Resource, data: dict[str, Any]) -> None:
    """Default ``apiVersion``/``kind`` to the request's and refuse any other."""
    api_version = data.setdefault("apiVersion", resource.api_version)
    kind = data.setdefault("kind", resource.kind)
    if api_version != resource.api_version or kind != resource.kind:
        raise BadRequest(f"the object is a {api_version} {kind}, but the request is for "
                         f"{resource.api_version} {resource.kind}",
                         causes=[Cause("kind", f"must be {resource.kind}")])


def check_name(name: object, *, namespace_like: bool, field: str = "metadata.name") -> list[Cause]:
    if not isinstance(name, str) or not name:
        return [Cause(field, "name or generateName is required", "FieldValueRequired")]
    errors = names.dns1123_label(name) if namespace_like else names.dns1123_subdomain(name)
    return [Cause(field, f"Invalid value: {name!r}: {e}") for e in errors]


def check_metadata(md: dict[str, Any]) -> list[Cause]:
    causes: list[Cause] = []
    labels = md.get("labels")
    if labels is not None:
        if not isinstance(labels, dict):
            causes.append(Cause("metadata.labels", "must be a map of string keys to string "
                                "values", "FieldValueTypeInvalid"))
        else:
            for key, value in labels.items():
                if key not in _known_good:
                    errors = names.qualified_name(key)
                    if errors:
                        causes.extend(Cause("metadata.labels", f"Invalid value: {key!r}: {e}")
                                      for e in errors)
                    else:
                        _remember(key)
                if not isinstance(value, str):
                    causes.append(Cause("metadata.labels", f"Invalid value for {key!r}: must be "
                                        "a string", "FieldValueTypeInvalid"))
                elif ("=" + value) not in _known_good:
                    errors = names.label_value(value)
                    if errors:
                        causes.extend(Cause("metadata.labels", f"Invalid value: {value!r}: {e}")
                                      for e in errors)
                    else:
                        _remember("=" + value)
    annotations = md.get("annotations")
    if annotations is not None:
        if not isinstance(annotations, dict):
            causes.append(Cause("metadata.annotations", "must be a map of string keys to string "
                                "values", "FieldValueTypeInvalid"))
        else:
            size = 0
            for key, value in annotations.items():
                if key not in _known_good:
                    errors = names.qualified_name(key)
                    if errors:
                        causes.extend(Cause("metadata.annotations", f"Invalid value: {key!r}: {e}")
                                      for e in errors)
                    else:
                        _remember(key)
                if not isinstance(value, str):
                    causes.append(Cause("metadata.annotations", f"Invalid value for {key!r}: "
                                        "must be a string", "FieldValueTypeInvalid"))
                else:
                    size += len(key) + len(value)
            if size > _ANNOTATIONS_MAX_BYTES:
                causes.append(Cause("metadata.annotations", "Too long: must have at most "
                                    f"{_ANNOTATIONS_MAX_BYTES} bytes", "FieldValueTooLong"))
    finalizers = md.get("finalizers")
    if finalizers is not None:
        if not isinstance(finalizers, list):
            causes.append(Cause("metadata.finalizers", "must be a list of strings",
                                "FieldValueTypeInvalid"))
        else:
            for i, f in enumerate(finalizers):
                errors = names.qualified_name(f) if isinstance(f, str) else ["must be a string"]
                causes.extend(Cause(f"metadata.finalizers[{i}]", f"Invalid value: {f!r}: {e}")
                              for e in errors)
    refs = md.get("ownerReferences")
    if refs is not None:
        if not isinstance(refs, list):
            causes.append(Cause("metadata.ownerReferences", "must be a list",
                                "FieldValueTypeInvalid"))
        else:
            controllers = 0
            for i, ref in enumerate(refs):
                where = f"metadata.ownerReferences[{i}]"
                if not isinstance(ref, dict):
                    causes.append(Cause(where, "must be an object", "FieldValueTypeInvalid"))
                    continue
                for field in ("apiVersion", "kind", "name", "uid"):
                    if not isinstance(ref.get(field), str) or not ref.get(field):
                        causes.append(Cause(f"{where}.{field}", "Required value",
                                            "FieldValueRequired"))
                if ref.get("controller"):
                    controllers += 1
            if controllers > 1:
                causes.append(Cause("metadata.ownerReferences", "Invalid value: only one "
                                    "reference can have Controller set to true"))
    generate = md.get("generateName")
    if generate is not None and not isinstance(generate, str):
        causes.append(Cause("metadata.generateName", "must be a string", "FieldValueTypeInvalid"))
    return causes
