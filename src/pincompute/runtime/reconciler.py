"""The reconciler interface: what a controller calls for each key.

Theory of operation
-------------------
A reconciler is handed a :class:`Request` — only the identity of an object, never
the event that caused it — and must make the world match that object's desired
state, reading the current state (preferably from informer caches) as it goes.
Because it does not know *what* changed, it has to look at everything that
matters each time; that is what makes it level-triggered, idempotent, and correct
after a crash, a missed event or a relist.

It answers with a :class:`Result`:

* ``Result()`` (or ``None``) — done; the key's back-off is reset;
* ``Result(requeue_after=s)`` — done for now, look again in ``s`` seconds (timers,
  polling something outside the API); back-off is reset too, because nothing failed;
* ``Result(requeue=True)`` — not done, retry with the key's exponential back-off.

Raising any exception also retries with back-off (and counts as an error in the
metrics and logs); raising :class:`TerminalError` logs and counts the error but
does not retry — for inputs that no retry can fix, where only a new event (an edit
of the object) should bring the key back.

Requests carry an optional ``cluster`` so one controller can serve objects of
several clusters (the federation watches every member); it is empty for
single-cluster controllers and not part of :attr:`Request.key`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from pincompute.kube.objects import meta


@dataclass(frozen=True, slots=True)
class Request:
    """The identity of an object to reconcile; hashable, so it is the work-queue key."""

    namespace: str
    name: str
    cluster: str = ""

    @property
    def key(self) -> str:
        """``namespace/name``, or ``name`` for cluster-scoped objects (the cache key)."""
        return f"{self.namespace}/{self.name}" if self.namespace else self.name

    @classmethod
    def from_key(cls, key: str, *, cluster: str = "") -> Request:
        ns, _, name = key.rpartition("/")
        return cls(ns, name, cluster)

    @classmethod
    def for_object(cls, obj: Mapping[str, Any], *, cluster: str = "") -> Request:
        m = meta(obj)
        return cls(m.get("namespace") or "", m.get("name", ""), cluster)

    def __str__(self) -> str:
        return f"{self.cluster}:{self.key}" if self.cluster else self.key


@dataclass(frozen=True, slots=True)
class Result:
    """What a reconcile asks for next (see the module doc)."""

    requeue: bool = False
    requeue_after: float | None = None

    def __post_init__(self) -> None:
        if self.requeue_after is not None and self.requeue_after < 0:
            raise ValueError("requeue_after must be >= 0")


DONE = Result()


class TerminalError(Exception):
    """A reconcile failure that retrying cannot fix: logged and counted, never retried."""


@runtime_checkable
class Reconciler(Protocol):
    async def reconcile(self, request: Request) -> Result | None:
        """Drive the object named by ``request`` towards its desired state."""
        ...


ReconcileFunc = Callable[[Request], Awaitable["Result | None"]]


class FuncReconciler:
    """Adapts a plain ``async def f(request) -> Result | None`` to :class:`Reconciler`."""

    def __init__(self, func: ReconcileFunc) -> None:
        self.func = func

    async def reconcile(self, request: Request) -> Result | None:
        return await self.func(request)

    def __repr__(self) -> str:
        return f"FuncReconciler({getattr(self.func, '__qualname__', self.func)!r})"


def as_reconciler(obj: Reconciler | ReconcileFunc) -> Reconciler:
    """Accept either a :class:`Reconciler` or a bare async function."""
    if isinstance(obj, Reconciler):
        return obj
    if callable(obj):
        return FuncReconciler(obj)
    raise TypeError(f"not a reconciler: {obj!r}")
