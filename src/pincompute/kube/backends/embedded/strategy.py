"""What the embedded store sets and keeps when objects are created and updated.

Theory of operation
-------------------
The API server's REST strategies decide which parts of a written object the
writer owns and which the server does; this module is that, for every resource:

- **create** (:func:`prepare_for_create`, :func:`stamp_new`): status belongs to
  the status subresource, so a create drops it — except a Node's, which a
  kubelet registers with its capacity in one create; a new Namespace is
  ``Active`` and a new Pod ``Pending``.  The server assigns ``uid``,
  ``creationTimestamp`` and ``generation`` 1, and ignores deletion fields and
  any ``resourceVersion`` sent.
- **update of the main resource** (:func:`prepare_for_update`): the system
  metadata (uid, names, creation and deletion stamps, generation) is the stored
  object's, whatever was sent; so is the status when the resource has a status
  subresource.
- **update of the status** (:func:`prepare_for_status_update`): only the status
  is taken from the request.
- **generation** (:func:`bump_generation`) increases when anything but metadata
  and status changed, compared after the validator's defaulting so re-applying
  a manifest that omits defaulted fields is no change.
"""

from __future__ import annotations

import os
from typing import Any

from pincompute.kube.resource import NAMESPACES, NODES, Resource

from .timestamps import now

Obj = dict[str, Any]

_SYSTEM_METADATA = ("uid", "creationTimestamp", "generation", "deletionTimestamp",
                    "deletionGracePeriodSeconds", "name", "namespace")
_SERVER_SET_ON_CREATE = ("deletionTimestamp", "deletionGracePeriodSeconds", "resourceVersion")


def prepare_for_create(resource: Resource, data: Obj) -> None:
    """Set a new object's status as the server does (before validation)."""
    # Kubelets register nodes with their capacity in one create; every other
    # status is the business of the status subresource.
    if resource.status_subresource and resource.key != NODES.key:
        data.pop("status", None)
    if resource.key == NAMESPACES.key:
        data["status"] = {"phase": "Active"}
    elif resource.graceful_delete:
        data["status"] = {"phase": "Pending"}


_random = b""
_random_at = 0
_RANDOM_POOL = 4096
_VARIANT = {d: "89ab"[int(d, 16) & 3] for d in "0123456789abcdef"}


def _reset_random() -> None:
    global _random, _random_at
    _random, _random_at = b"", 0


os.register_at_fork(after_in_child=_reset_random)  # a child never repeats its parent's uids


def new_uid() -> str:
    """A random (version 4) UUID, as ``str(uuid.uuid4())`` makes one.

    The random bytes are read from the OS 256 uids at a time (every create takes
    one, and a system call and a UUID object apiece cost more than the rest).
    """
    global _random, _random_at
    at = _random_at
    if at >= len(_random):
        _random, at = os.urandom(_RANDOM_POOL), 0
    _random_at = at + 16
    h = _random[at:at + 16].hex()
    # Version 4 (the 13th digit), variant 10xx (the 17th: its two low random bits kept).
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{_VARIANT[h[16]]}{h[17:20]}-{h[20:]}"


def stamp_new(md: dict[str, Any]) -> None:
    """Give a new object's metadata its server-assigned fields."""
    for field in _SERVER_SET_ON_CREATE:
        md.pop(field, None)
    md["uid"] = new_uid()
    md["creationTimestamp"] = now()
    md["generation"] = 1


def prepare_for_update(resource: Resource, data: Obj, old: Obj) -> None:
    """Keep what the writer of the main resource may not change (before validation)."""
    md = data["metadata"]
    old_md = old["metadata"]
    for field in _SYSTEM_METADATA:
        if field in old_md:
            md[field] = old_md[field]
        else:
            md.pop(field, None)
    if resource.status_subresource:
        if "status" in old:
            data["status"] = old["status"]
        else:
            data.pop("status", None)


def prepare_for_status_update(data: Obj, current: Obj) -> Obj:
    """``current`` (a private copy of the stored object) with the status of ``data``."""
    if "status" in data:
        current["status"] = data["status"]
    else:
        current.pop("status", None)
    return current


def bump_generation(data: Obj, old: Obj) -> None:
    """Increase ``generation`` if anything but metadata and status changed."""
    if _spec_of(data) != _spec_of(old):
        data["metadata"]["generation"] = int(old["metadata"].get("generation", 0)) + 1


def _spec_of(obj: Obj) -> Obj:
    return {k: v for k, v in obj.items() if k not in ("metadata", "status")}


__all__ = ["bump_generation", "prepare_for_create", "prepare_for_status_update",
           "prepare_for_update", "stamp_new"]
