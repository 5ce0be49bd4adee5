"""Preconditions on writes: optimistic concurrency and uid checks.

Theory of operation
-------------------
A writer that read an object and writes it back names the version it read:
``metadata.resourceVersion`` on an update, ``preconditions.resourceVersion`` on
a delete.  If the stored object has moved on since, the write is refused with
Conflict (409) and the writer must read again and redo its change — how every
Kubernetes client avoids lost updates without locks.  A uid precondition
(``metadata.uid`` on an update, ``preconditions.uid`` on a delete, the Binding's
``metadata.uid``) guards against acting on a different object that took the
same name after a delete and a create.  An empty precondition is no
precondition.
"""

from __future__ import annotations

from pincompute.kube.errors import Conflict
from pincompute.kube.protocol import Preconditions
from pincompute.kube.resource import Resource

from .collection import Entry


def check_uid(resource: Resource, prev: Entry, uid: object) -> None:
    """Refuse a write whose uid precondition names another object."""
    if uid not in (None, "") and uid != prev.uid:
        raise Conflict(f"Precondition failed: UID in precondition: {uid}, UID in object "
                       f"meta: {prev.uid}", kind=resource.kind, name=prev.name)


def check_update(resource: Resource, prev: Entry, resource_version: object,
                 uid: object) -> None:
    """Refuse an update of a version other than the stored one, or of another object."""
    if resource_version not in (None, "") and str(resource_version) != str(prev.rv):
        raise Conflict(f'Operation cannot be fulfilled on {resource} "{prev.name}": the '
                       "object has been modified; please apply your changes to the latest "
                       "version and try again", kind=resource.kind, name=prev.name)
    check_uid(resource, prev, uid)


def check_delete(resource: Resource, prev: Entry, preconditions: Preconditions) -> None:
    """Refuse a delete whose preconditions the stored object does not meet."""
    check_uid(resource, prev, preconditions.uid)
    if preconditions.resource_version and \
            str(preconditions.resource_version) != str(prev.rv):
        raise Conflict("Precondition failed: ResourceVersion in precondition: "
                       f"{preconditions.resource_version}, ResourceVersion in object "
                       f"meta: {prev.rv}", kind=resource.kind, name=prev.name)


__all__ = ["check_delete", "check_uid", "check_update"]
