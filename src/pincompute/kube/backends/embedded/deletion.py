"""Deleting one object in the embedded store: grace periods and finalizers.

Theory of operation
-------------------
A delete request on an object that nothing holds removes it at once.  Two
things can hold it instead; either way it stays, with a ``deletionTimestamp``
(and ``deletionGracePeriodSeconds``), until they let go:

- **finalizers**.  The object keeps its ``metadata.finalizers``; whoever owns
  each one removes it when done (an update), and the update that removes the
  last one removes the object.  The propagation policy adds the garbage
  collector's own: ``Foreground`` adds ``foregroundDeletion`` (dependents go
  first), ``Orphan`` adds ``orphan`` (dependents are let go) — see
  :mod:`.gc`.  No finalizer may be added once deletion started.
- **a grace period**, for resources with graceful deletion (pods) bound to a
  node and not finished: the node stops the containers and then deletes again
  with grace 0, which removes the pod.  The period is the request's, else the
  pod's ``terminationGracePeriodSeconds``, else 30 s; the ``deletionTimestamp``
  is when it ends.  A pod never bound, or already Succeeded/Failed, has nothing
  to stop and goes at once, as the API server decides.

Deleting an object already being deleted changes nothing, except that a
shorter grace period wins (the node finishing a pod sends 0).  Namespaces have a
lifecycle of their own (:mod:`.namespaces`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import orjson

from pincompute.kube.errors import BadRequest, Cause, invalid
from pincompute.kube.resource import Resource

from .collection import Collection, Entry
from .commit import Waiter
from .gc import FOREGROUND, ORPHAN, GarbageCollector
from .timestamps import now

if TYPE_CHECKING:
    from .store import EmbeddedStore

DEFAULT_GRACE_SECONDS = 30
_TERMINAL_PHASES = ("Succeeded", "Failed")


def grace_seconds(obj: dict[str, Any], requested: int | None) -> int:
    """The grace period of a graceful delete: requested, else the pod's, else 30 s."""
    if requested is not None:
        return requested
    spec = obj.get("spec") or {}
    value = spec.get("terminationGracePeriodSeconds")
    return int(value) if isinstance(value, int) and value >= 0 else DEFAULT_GRACE_SECONDS


def needs_grace(obj: dict[str, Any], requested: int | None) -> bool:
    """Whether a pod has containers a node must stop before it goes."""
    # As the API server does: a pod never bound to a node, or already finished,
    # has no containers to stop, so it goes at once.
    if not (obj.get("spec") or {}).get("nodeName"):
        return False
    if (obj.get("status") or {}).get("phase") in _TERMINAL_PHASES:
        return False
    return grace_seconds(obj, requested) > 0


def check_options(grace_period_seconds: int | None, propagation_policy: str | None) -> None:
    """Refuse a delete request with options that mean nothing."""
    if propagation_policy not in (None, "Background", "Foreground", "Orphan"):
        raise BadRequest(f"propagationPolicy {propagation_policy!r} is not one of "
                         "Background, Foreground, Orphan",
                         causes=[Cause("propagationPolicy", "unsupported value")])
    if grace_period_seconds is not None and grace_period_seconds < 0:
        raise BadRequest("gracePeriodSeconds must be >= 0",
                         causes=[Cause("gracePeriodSeconds", "must be >= 0")])


def check_finalizers_kept(resource: Resource, prev: Entry, md: dict[str, Any]) -> None:
    """Refuse an update that adds finalizers to an object being deleted."""
    added = set(md.get("finalizers") or ()) - set(prev.finalizers)
    if added:
        raise invalid(resource.kind, prev.name, [Cause(
            "metadata.finalizers", "Forbidden: no new finalizers can be added if "
            "the object is being deleted, found new finalizers "
            + ", ".join(sorted(added)), "FieldValueForbidden")])


def delete(store: EmbeddedStore, gc: GarbageCollector, coll: Collection, prev: Entry,
           obj: dict[str, Any], *, grace_period_seconds: int | None,
           propagation_policy: str | None) -> tuple[dict[str, Any], Waiter]:
    """Delete ``prev`` (``obj``: a private copy of it) after the request was checked."""
    resource = coll.resource
    assert resource is not None
    md = obj["metadata"]
    graceful = resource.graceful_delete and needs_grace(obj, grace_period_seconds)
    if prev.deleting:
        current = md.get("deletionGracePeriodSeconds") or 0
        if resource.graceful_delete and grace_period_seconds is not None and \
                grace_period_seconds < current:
            # A shorter grace period wins (the node finishing a pod sends 0).
            if grace_period_seconds == 0 and not prev.finalizers:
                return store.remove(coll, prev)
            md["deletionGracePeriodSeconds"] = grace_period_seconds
            md["deletionTimestamp"] = now(grace_period_seconds)
            return obj, store.put(coll, obj, prev)
        return obj, store.current_waiter()
    finalizers = list(md.get("finalizers") or ())
    if propagation_policy == "Orphan" and ORPHAN not in finalizers:
        finalizers.append(ORPHAN)
    if propagation_policy == "Foreground" and FOREGROUND not in finalizers:
        finalizers.append(FOREGROUND)
    if not finalizers and not graceful:
        return store.remove(coll, prev)
    grace = grace_seconds(obj, grace_period_seconds) if graceful else 0
    if finalizers:
        md["finalizers"] = finalizers
    md["deletionTimestamp"] = now(grace)
    md["deletionGracePeriodSeconds"] = grace
    if "generation" in md and not resource.graceful_delete:
        md["generation"] = int(md["generation"]) + 1
    waiter = store.put(coll, obj, prev)
    uid = prev.uid
    if ORPHAN in finalizers:
        waiter = gc.orphan(coll, obj["metadata"], uid) or waiter
    elif FOREGROUND in finalizers:
        gc.delete_dependents(uid, policy="Foreground")
        gc.release_foreground_owner(uid)
    current_entry = coll.entries.get(prev.key)
    if current_entry is None:
        return obj, store.current_waiter()
    result: dict[str, Any] = orjson.loads(current_entry.raw)
    return result, store.current_waiter()


__all__ = ["DEFAULT_GRACE_SECONDS", "check_finalizers_kept", "check_options", "delete",
           "grace_seconds", "needs_grace"]
