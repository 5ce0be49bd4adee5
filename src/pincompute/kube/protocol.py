"""The API protocol: what every component may ask of a cluster.

This is the cut between PinCompute and its storage, as httpx's transport base
class is the cut between its client and the network.  Controllers, the gateway
and the CLI talk to a :class:`KubeClient`; the ``embedded`` backend implements it
over an in-process store and the ``kubernetes`` backend over a real API server.
Both honour the same semantics (DESIGN §2), which ``tests/conformance`` checks.

Semantics in brief:

* objects are JSON-compatible dicts; calls address them by :class:`Resource`;
* ``update`` is optimistic: a stale ``metadata.resourceVersion`` raises Conflict;
  an empty one updates unconditionally;
* ``update``/``patch`` ignore ``status`` on resources with a status subresource;
  ``update_status``/``patch(subresource="status")`` change only ``status``;
* ``metadata.generation`` grows when anything but metadata and status changes;
* ``list`` returns a resourceVersion; ``watch`` from it yields every later change,
  in order; a resourceVersion older than the retained history raises Gone;
* writes that change nothing are not writes: no new resourceVersion, no event.

Objects returned by ``get``/``list``/``create``/``update``/``patch``/``delete`` belong
to the caller.  Objects inside :class:`WatchEvent` may be shared between watchers
and must not be mutated (copy with :func:`pincompute.kube.objects.deepcopy`).
"""

from __future__ import annotations

import abc
from collections.abc import AsyncGenerator, AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from .errors import MethodNotAllowed
from .resource import Resource

ADDED = "ADDED"
MODIFIED = "MODIFIED"
DELETED = "DELETED"
BOOKMARK = "BOOKMARK"
ERROR = "ERROR"

PropagationPolicy = Literal["Background", "Foreground", "Orphan"]


@dataclass(slots=True)
class WatchEvent:
    type: str
    object: dict[str, Any]

    @property
    def resource_version(self) -> str:
        rv: str = (self.object.get("metadata") or {}).get("resourceVersion", "")
        return rv


@dataclass(slots=True)
class ObjectList:
    items: list[dict[str, Any]]
    resource_version: str
    continue_token: str | None = None
    remaining_item_count: int | None = None

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self.items)

    def __len__(self) -> int:
        return len(self.items)


@dataclass(frozen=True, slots=True)
class Preconditions:
    uid: str | None = None
    resource_version: str | None = None


@dataclass(slots=True)
class ClientInfo:
    """What a backend says about itself (for logs and ``pincompute up``)."""

    backend: str
    server: str
    details: dict[str, Any] = field(default_factory=dict)


class KubeClient(abc.ABC):
    """An async client of one cluster's API."""

    info: ClientInfo

    @abc.abstractmethod
    async def get(self, resource: Resource, name: str, *,
                  namespace: str | None = None) -> dict[str, Any]: ...

    @abc.abstractmethod
    async def list(self, resource: Resource, *, namespace: str | None = None,
                   label_selector: str | None = None, field_selector: str | None = None,
                   limit: int | None = None, continue_token: str | None = None) -> ObjectList: ...

    @abc.abstractmethod
    def watch(self, resource: Resource, *, namespace: str | None = None,
              label_selector: str | None = None, field_selector: str | None = None,
              resource_version: str | None = None, allow_bookmarks: bool = True,
              timeout_seconds: float | None = None) -> AsyncIterator[WatchEvent]:
        """Stream changes after ``resource_version``.

        Without a resourceVersion (or with ``"0"``) the stream starts with a
        synthetic ADDED for every existing object, as the API server's does.
        The stream ends after ``timeout_seconds`` or when the server drops a
        watcher that fell too far behind; the caller re-watches from the last
        resourceVersion it saw, and relists on :class:`~.errors.Gone`.
        """

    @abc.abstractmethod
    async def create(self, resource: Resource, obj: Mapping[str, Any], *,
                     namespace: str | None = None) -> dict[str, Any]: ...

    @abc.abstractmethod
    async def update(self, resource: Resource, obj: Mapping[str, Any]) -> dict[str, Any]: ...

    @abc.abstractmethod
    async def update_status(self, resource: Resource,
                            obj: Mapping[str, Any]) -> dict[str, Any]: ...

    @abc.abstractmethod
    async def patch(self, resource: Resource, name: str, patch: Mapping[str, Any], *,
                    namespace: str | None = None,
                    subresource: Literal["status"] | None = None) -> dict[str, Any]:
        """Apply a JSON merge patch (RFC 7386).

        A ``metadata.resourceVersion`` inside the patch is a precondition.
        """

    @abc.abstractmethod
    async def delete(self, resource: Resource, name: str, *, namespace: str | None = None,
                     preconditions: Preconditions | None = None,
                     grace_period_seconds: int | None = None,
                     propagation_policy: PropagationPolicy | None = None) -> dict[str, Any]:
        """Delete an object; returns its last state.

        When finalizers (or a pod's grace period) hold the deletion back, the
        object stays with ``metadata.deletionTimestamp`` set, and that object is
        returned.  (A real API server answers the completed deletion of some
        built-in kinds, such as ConfigMaps, with the object's identity only:
        ``metadata.name``, ``namespace`` and ``uid``.)
        """

    @abc.abstractmethod
    async def create_subresource(self, resource: Resource, name: str, subresource: str,
                                 body: Mapping[str, Any], *,
                                 namespace: str | None = None) -> dict[str, Any]:
        """POST to an object's subresource, e.g. a ``Binding`` to ``pods/<name>/binding``.

        The embedded store implements ``pods/binding`` (what a scheduler needs): it
        sets ``spec.nodeName`` and the ``PodScheduled`` condition, and answers
        Conflict when the pod is already bound, is being deleted, or its uid does
        not match ``metadata.uid`` of the binding.
        """

    async def read_subresource(self, resource: Resource, name: str, subresource: str, *,
                               namespace: str | None = None,
                               params: Mapping[str, str] | None = None,
                               stream: bool = False) -> AsyncGenerator[bytes, None]:
        """GET an object's non-JSON subresource as bytes, e.g. ``pods/<name>/log``.

        Awaiting it sends the request and raises the server's error, if any, before
        a byte is read (so a caller can answer with the right status); the
        iterator it returns yields chunks as the server sends them, and must be
        closed (``aclose``) by a caller that stops early.  ``params`` is the
        subresource's query (``container``, ``follow``, ``tailLines``,
        ``sinceSeconds``, ``previous``... for a pod's log); with ``stream`` the read
        has no deadline (a followed log).  A missing object is NotFound on every
        backend; a subresource the backend does not serve is MethodNotAllowed
        (405): the embedded store keeps no container logs, its nodes' runtime API
        serves them.  This default (for clients that wrap another) serves none.
        """
        raise MethodNotAllowed(f"{resource.plural}/{subresource} is not served here")

    async def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections; the client is unusable afterwards."""
