"""What the scheduler keeps of a pod: the fields it decides on, not the whole object.

Theory of operation
-------------------
A scheduler running with informers of its own caches every pod of its cluster,
and a decoded pod is ~10 KB of Python objects: its containers' images, commands,
environment and probes, and a status mostly made of container statuses and
addresses, none of which a placement reads.  :func:`trim_pod` is the transform
its pod informer applies (``SharedInformer(transform=...)``, client-go's
SetTransform) before caching or dispatching an object, so the cache holds:

* ``metadata`` whole, less ``managedFields``;
* ``spec`` whole, except that each container, init container and ephemeral
  container keeps only its ``name``, ``resources`` and ``restartPolicy`` (the
  requests a pod counts for, and whether an init container is a sidecar);
* ``status`` whole, less container statuses and the address lists (conditions
  stay whole: the scheduler writes them back as a list).

Equal ``resources`` dicts are shared between pods (interned in a bounded
table): pods of one workload ask for the same.  Trimmed objects are read-only,
like every informer object.  A scheduler attached to a manager's informers, which
other controllers read, keeps whole pods (the transform is not applied there).
"""

from __future__ import annotations

from typing import Any

import orjson

Obj = dict[str, Any]

_CONTAINER_LISTS = ("containers", "initContainers", "ephemeralContainers")
_CONTAINER_FIELDS = ("name", "resources", "restartPolicy")
_STATUS_DROPPED = frozenset(("containerStatuses", "initContainerStatuses",
                             "ephemeralContainerStatuses", "podIPs", "hostIPs",
                             "resourceClaimStatuses"))
_RESOURCES: dict[bytes, Obj] = {}
_MAX_RESOURCES = 4096


def _shared_resources(resources: Obj) -> Obj:
    raw = orjson.dumps(resources, option=orjson.OPT_SORT_KEYS)
    shared = _RESOURCES.get(raw)
    if shared is None:
        if len(_RESOURCES) >= _MAX_RESOURCES:
            _RESOURCES.clear()
        shared = _RESOURCES[raw] = resources
    return shared


def _container(c: Obj) -> Obj:
    out = {k: c[k] for k in _CONTAINER_FIELDS if k in c}
    resources = out.get("resources")
    if isinstance(resources, dict) and resources:
        out["resources"] = _shared_resources(resources)
    return out


def trim_pod(obj: Obj) -> Obj:
    """The pod as the scheduler keeps it (see the module doc); ``obj`` is not changed."""
    out = dict(obj)
    md = obj.get("metadata")
    if isinstance(md, dict) and "managedFields" in md:
        out["metadata"] = {k: v for k, v in md.items() if k != "managedFields"}
    spec = obj.get("spec")
    if isinstance(spec, dict):
        spec = dict(spec)
        for field in _CONTAINER_LISTS:
            containers = spec.get(field)
            if isinstance(containers, list):
                spec[field] = [_container(c) if isinstance(c, dict) else c for c in containers]
        out["spec"] = spec
    status = obj.get("status")
    if isinstance(status, dict) and not _STATUS_DROPPED.isdisjoint(status):
        out["status"] = {k: v for k, v in status.items() if k not in _STATUS_DROPPED}
    return out


__all__ = ["trim_pod"]
