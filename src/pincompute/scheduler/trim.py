"""What the scheduler keeps of a pod: the fields it decides on, not the whole object.

Theory of operation
-------------------
A scheduler running with informers of its own caches every pod of its cluster,
and a decoded pod is ~10 KB of Python objects: its containers' images, commands,
environment and probes, and a status mostly made of container statuses and
addresses, none of which a placement reads.  :func:`trim_pod` is the transform
its pod informer applies (``SharedInformer(transform=...)``, client-go's
SetTransform) before caching or dispatching an object, so the cache holds:

* ``metadata`` less ``managedFields``;
* ``spec`` whole, except that each container, init container and ephemeral
  container keeps only its ``name``, ``resources`` and ``restartPolicy`` (the
  requests a pod counts for, and whether an init container is a sidecar);
* ``status``: ``phase``, ``conditions`` (whole: the scheduler writes them back as
  a list) and ``nominatedNodeName``.

The parts equal between pods — labels, annotations, the trimmed containers,
tolerations, selectors, affinity, condition lists, the kept status — go through
the process-wide interner (:mod:`pincompute.kube.intern`), which the node fleet
shares, so the replicas of a workload hold one copy of each in the whole
process; so do strings of few distinct values (``intern_str``: namespace,
creation time, the spec's scalars such as ``nodeName``, the phase), which
decoding makes anew for every pod and every version of it.  Trimmed
objects are read-only, like every informer object.  A scheduler attached to a
manager's informers, which other controllers read, keeps whole pods (the
transform is not applied there).
"""

from __future__ import annotations

from typing import Any

from pincompute.kube.intern import intern_str, shared

Obj = dict[str, Any]

_CONTAINER_LISTS = ("containers", "initContainers", "ephemeralContainers")
_CONTAINER_FIELDS = ("name", "resources", "restartPolicy")
_SHARED_SPEC = ("tolerations", "nodeSelector", "affinity", "topologySpreadConstraints",
                "volumes", "schedulingGates", "overhead", "readinessGates")
_SHARED_META = ("labels", "annotations", "ownerReferences", "finalizers")
_STATUS = ("phase", "conditions", "nominatedNodeName")
# Per-pod strings of few distinct values (the unique ones — name, uid, resourceVersion —
# stay as decoded: interning them would only add a table entry each).
_FEW_META = ("namespace", "creationTimestamp", "deletionTimestamp", "generateName")


def trim_pod(obj: Obj) -> Obj:
    """The pod as the scheduler keeps it (see the module doc); ``obj`` is not changed."""
    intern = shared()
    out = {k: intern_str(v) for k, v in obj.items()}
    md = obj.get("metadata")
    if isinstance(md, dict):
        out["metadata"] = {k: intern(v) if k in _SHARED_META else
                           intern_str(v) if k in _FEW_META else v
                           for k, v in md.items() if k != "managedFields"}
    spec = obj.get("spec")
    if isinstance(spec, dict):
        kept = {k: intern(v) if k in _SHARED_SPEC else intern_str(v) for k, v in spec.items()}
        for field in _CONTAINER_LISTS:
            containers = spec.get(field)
            if isinstance(containers, list):
                kept[field] = intern([{k: c[k] for k in _CONTAINER_FIELDS if k in c}
                                      if isinstance(c, dict) else c for c in containers])
        out["spec"] = kept
    status = obj.get("status")
    if isinstance(status, dict):
        # Equal between pods in the same phase that changed state in the same seconds.
        out["status"] = intern({k: intern(status[k]) if k == "conditions"
                                else intern_str(status[k]) for k in _STATUS if k in status})
    return out


__all__ = ["trim_pod"]
