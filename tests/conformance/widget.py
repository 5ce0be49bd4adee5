"""Widget: the conformance suite's own kind, with a status subresource and a schema.

On the embedded backend it is registered with :func:`validate_widget`; on a real
API server it is installed from :data:`WIDGET_CRD`.  Both must reject and default
the same objects the same way (DESIGN §2: "a bad object is rejected the same way
on both backends (Invalid, 422, with the field)").

Schema (``spec``; ``status`` is free-form):

* ``size``: integer >= 0
* ``color``: string, default ``"blue"``
* ``tags``: list of strings (atomic: a merge patch replaces it)
* ``config``: free-form object (for nested merge-patch tests)
* any other key in ``spec`` is rejected, naming it (``spec.bogus``).

Note for the kubernetes backend: a structural CRD schema *prunes* unknown fields
by default.  To reject them as this suite expects, the backend must write with
``fieldValidation=Strict`` and turn the server's strict-decoding error
(``unknown field "spec.bogus"``, a 400) into :class:`~pincompute.kube.errors.Invalid`
with a cause naming ``spec.bogus``.
"""

from __future__ import annotations

from typing import Any

from pincompute.kube.errors import Cause, invalid
from pincompute.kube.resource import Resource

GROUP = "conformance.pincompute.io"
WIDGETS = Resource(GROUP, "v1", "widgets", "Widget", namespaced=True, status_subresource=True)

SPEC_FIELDS = ("size", "color", "tags", "config")
DEFAULT_COLOR = "blue"


def validate_widget(obj: dict[str, Any], old: dict[str, Any] | None) -> dict[str, Any] | None:
    """Embedded-store validator for Widgets: check the schema, apply defaults."""
    meta = obj.get("metadata") or {}
    name = meta.get("name") or meta.get("generateName") or ""
    causes: list[Cause] = []
    spec = obj.get("spec")
    if spec is None:
        spec = {}
    if not isinstance(spec, dict):
        causes.append(Cause("spec", "must be of type object", "FieldValueTypeInvalid"))
    else:
        for key in sorted(spec):
            if key not in SPEC_FIELDS:
                causes.append(Cause(f"spec.{key}", "field not declared in schema",
                                    "FieldValueInvalid"))
        if "size" in spec:
            size = spec["size"]
            if isinstance(size, bool) or not isinstance(size, int):
                causes.append(Cause("spec.size", "must be of type integer",
                                    "FieldValueTypeInvalid"))
            elif size < 0:
                causes.append(Cause("spec.size", "should be greater than or equal to 0"))
        if "color" in spec and not isinstance(spec["color"], str):
            causes.append(Cause("spec.color", "must be of type string", "FieldValueTypeInvalid"))
        if "tags" in spec:
            tags = spec["tags"]
            if not isinstance(tags, list):
                causes.append(Cause("spec.tags", "must be of type array",
                                    "FieldValueTypeInvalid"))
            else:
                causes.extend(
                    Cause(f"spec.tags[{i}]", "must be of type string", "FieldValueTypeInvalid")
                    for i, tag in enumerate(tags) if not isinstance(tag, str)
                )
        if "config" in spec and not isinstance(spec["config"], dict):
            causes.append(Cause("spec.config", "must be of type object",
                                "FieldValueTypeInvalid"))
    status = obj.get("status")
    if status is not None and not isinstance(status, dict):
        causes.append(Cause("status", "must be of type object", "FieldValueTypeInvalid"))
    if causes:
        raise invalid(WIDGETS.kind, name, causes)
    if isinstance(spec, dict) and ("color" not in spec or obj.get("spec") is None):
        defaulted = dict(obj)
        defaulted["spec"] = {**spec, "color": spec.get("color", DEFAULT_COLOR)}
        return defaulted
    return None


WIDGET_CRD: dict[str, Any] = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": f"{WIDGETS.plural}.{GROUP}"},
    "spec": {
        "group": GROUP,
        "scope": "Namespaced",
        "names": {"plural": "widgets", "singular": "widget", "kind": "Widget",
                  "listKind": "WidgetList"},
        "versions": [{
            "name": "v1",
            "served": True,
            "storage": True,
            "subresources": {"status": {}},
            "schema": {"openAPIV3Schema": {
                "type": "object",
                "properties": {
                    "apiVersion": {"type": "string"},
                    "kind": {"type": "string"},
                    "metadata": {"type": "object"},
                    "spec": {
                        "type": "object",
                        "default": {},
                        "properties": {
                            "size": {"type": "integer", "format": "int64", "minimum": 0},
                            "color": {"type": "string", "default": DEFAULT_COLOR},
                            "tags": {"type": "array", "items": {"type": "string"},
                                     "x-kubernetes-list-type": "atomic"},
                            "config": {"type": "object",
                                       "x-kubernetes-preserve-unknown-fields": True},
                        },
                    },
                    "status": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
                },
            }},
        }],
    },
}

CRDS = Resource("apiextensions.k8s.io", "v1", "customresourcedefinitions",
                "CustomResourceDefinition", namespaced=False)
