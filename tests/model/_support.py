"""Helpers shared by the model tests: build objects, validate them, collect causes."""

from __future__ import annotations

from typing import Any

import pytest

from pincompute.kube.errors import Cause, Invalid
from pincompute.model import registry

POD = {"containers": [{"name": "main", "image": "busybox"}]}
TEMPLATE = {"spec": POD}


def pod(**fields: Any) -> dict[str, Any]:
    """A minimal pod spec with one main container (``fields`` merged into the container)."""
    return {"containers": [{"name": "main", "image": "busybox", **fields}]}


def make(kind: str, spec: Any, *, name: str = "demo", namespace: str = "team",
         status: Any = None) -> dict[str, Any]:
    resource = registry.KINDS[kind].resource
    metadata: dict[str, Any] = {"name": name}
    if resource.namespaced:
        metadata["namespace"] = namespace
    obj: dict[str, Any] = {"apiVersion": "pincompute.io/v1alpha1", "kind": kind,
                           "metadata": metadata}
    if spec is not None:
        obj["spec"] = spec
    if status is not None:
        obj["status"] = status
    return obj


def valid(kind: str, spec: Any, **kw: Any) -> dict[str, Any]:
    """The defaulted spec of a valid object."""
    return registry.validate(make(kind, spec, **kw))["spec"]


def causes(kind: str, spec: Any, *, old: dict[str, Any] | None = None,
           **kw: Any) -> dict[str, Cause]:
    """The causes (by field) of an invalid object; fails the test if it is valid."""
    with pytest.raises(Invalid) as info:
        registry.validate(make(kind, spec, **kw), old)
    assert info.value.code == 422
    return {c.field: c for c in info.value.causes}


def only_cause(kind: str, spec: Any, **kw: Any) -> Cause:
    """The single cause of an invalid object."""
    found = causes(kind, spec, **kw)
    assert len(found) == 1, found
    return next(iter(found.values()))
