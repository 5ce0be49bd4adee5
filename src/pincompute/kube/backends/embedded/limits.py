"""How large an object the embedded store takes, and how deep.

A real cluster's objects live in etcd, which refuses a request larger than its
``--max-request-bytes`` (1.5 MiB by default); the embedded store holds objects
to the same bound, measured on the object as it would be stored (its JSON, after
defaulting), so what fits here fits on a real cluster.  A write that would store
more is refused with :class:`~pincompute.kube.errors.RequestEntityTooLarge`
(413, the answer kube-apiserver gives a request body over its own limit; for an
object between etcd's limit and that one it answers a 500 carrying etcd's
"request is too large", which the kubernetes backend turns into the same 413).

The check costs nothing extra: the store serializes every object it stores
anyway and compares the length.  Writes the system makes on its own behalf must
not fail on an object that is already at the limit, so a write that does not
grow the object (removing a finalizer or an owner reference) and the write that
marks an object for deletion are never refused.

Nesting is bounded by the JSON encoder (orjson refuses more than 254 levels), so
an object too deep to store is a BadRequest when the store copies it in; merge
patches are bounded by :data:`~pincompute.kube.patch.MAX_DEPTH`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pincompute.kube.errors import RequestEntityTooLarge

if TYPE_CHECKING:
    from pincompute.kube.resource import Resource

    from .collection import Entry

MAX_OBJECT_BYTES = 1536 * 1024
"""etcd's default ``--max-request-bytes``: the largest object (serialized) the store takes."""


def exceeds(size: int, metadata: dict[str, Any], prev: Entry | None) -> bool:
    """Whether a write storing ``size`` bytes must be refused (see the module doc)."""
    if size <= MAX_OBJECT_BYTES:
        return False
    if prev is None:
        return True
    if size <= len(prev.raw):
        return False  # not growing: finalizer and owner removal, garbage collection
    # Marking for deletion adds a timestamp; an object at the limit must stay deletable.
    return not (metadata.get("deletionTimestamp") and not prev.deleting)


def too_large(resource: Resource | None, metadata: dict[str, Any],
              size: int) -> RequestEntityTooLarge:
    kind = resource.kind if resource is not None else "object"
    name = str(metadata.get("name", ""))
    return RequestEntityTooLarge(
        f'{kind} "{name}" is too large: {size} bytes serialized, the limit is '
        f"{MAX_OBJECT_BYTES} bytes (etcd's default request limit)", kind=kind, name=name)
