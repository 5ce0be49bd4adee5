"""Simplified objects: what users see, without the machinery they do not need.

Theory of operation
-------------------
An object as stored carries bookkeeping for controllers and API machinery: field managers
(``metadata.managedFields`` — up to 60 % of an object, KEP-555; the original PinCompute cut
responses by up to half dropping it), ``selfLink``, kubectl's last-applied copy, and
PinCompute's own hashes for in-place update decisions; a pod on a real cluster also has the
service-account token volume the API server injects into every container.  Responses leave
those out; everything a user wrote or may read about the object's state stays.

:func:`simplify` never changes its input (cached objects are shared): it copies only the
levels it edits.  ``benchmarks/response_size.py`` reports the saving per kind.
"""

from __future__ import annotations

from typing import Any

from pincompute.model.wellknown import (
    CONTAINER_HASHES_ANNOTATION,
    POD_SHAPE_ANNOTATION,
    TEMPLATE_SHAPE_ANNOTATION,
)

DROPPED_METADATA = frozenset({"managedFields", "selfLink"})
DROPPED_ANNOTATIONS = frozenset({
    "kubectl.kubernetes.io/last-applied-configuration",
    CONTAINER_HASHES_ANNOTATION,
    POD_SHAPE_ANNOTATION,
    TEMPLATE_SHAPE_ANNOTATION,
})
TOKEN_VOLUME_PREFIX = "kube-api-access-"
"""The projected service-account token volume kube-apiserver adds to every pod."""


def _metadata(md: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in md.items() if k not in DROPPED_METADATA}
    annotations = md.get("annotations")
    if annotations and not DROPPED_ANNOTATIONS.isdisjoint(annotations):
        kept = {k: v for k, v in annotations.items() if k not in DROPPED_ANNOTATIONS}
        if kept:
            out["annotations"] = kept
        else:
            out.pop("annotations", None)
    return out


def _pod_spec(spec: dict[str, Any]) -> dict[str, Any]:
    volumes = spec.get("volumes") or ()
    if not any(str(v.get("name", "")).startswith(TOKEN_VOLUME_PREFIX) for v in volumes):
        return spec
    out = dict(spec)
    out["volumes"] = [v for v in volumes
                      if not str(v.get("name", "")).startswith(TOKEN_VOLUME_PREFIX)]
    for key in ("containers", "initContainers"):
        if key in spec:
            out[key] = [_container(c) for c in spec[key]]
    return out


def _container(c: dict[str, Any]) -> dict[str, Any]:
    mounts = c.get("volumeMounts")
    if not mounts:
        return c
    out = dict(c)
    out["volumeMounts"] = [m for m in mounts
                           if not str(m.get("name", "")).startswith(TOKEN_VOLUME_PREFIX)]
    return out


def simplify(obj: dict[str, Any]) -> dict[str, Any]:
    """The object as a response shows it (a new top level; shared unchanged parts)."""
    out = dict(obj)
    md = obj.get("metadata")
    if isinstance(md, dict):
        out["metadata"] = _metadata(md)
    if obj.get("kind") == "Pod" and isinstance(obj.get("spec"), dict):
        out["spec"] = _pod_spec(obj["spec"])
    return out
