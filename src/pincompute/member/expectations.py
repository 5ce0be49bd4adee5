"""What an operator did that its informer cache has not shown yet (Kubernetes' expectations).

Theory of operation
-------------------
A reconcile reads pods from a cache that lags its own writes.  Acting again on
the stale view is harmless for idempotent acts (a create of a deterministic name
meets AlreadyExists) but not for all: a pass that does not yet see the pods the
previous pass created would create *more* under other names, and a pass that
still sees a finalizer the previous pass removed would count that pod twice.
So an operator notes what it did — pod names created, pod uids released —
and, until the cache shows it (or :data:`TTL` passes, in case an event was
missed), treats the cache as behind: :meth:`Expectations.creations_pending`
says "wait", :meth:`Expectations.released` says "already done".

This is memory only, and need not be more: a restarted manager lists afresh, so
its cache starts with every effect of the old one's writes.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

TTL = 60.0
"""Seconds after which an expectation is forgotten (the cache must have caught up)."""


class Expectations:
    """Per owner uid: pod names created, and pod uids released, not yet seen in the cache."""

    def __init__(self, *, clock: Callable[[], float] = time.monotonic, ttl: float = TTL) -> None:
        self._clock = clock
        self._ttl = ttl
        self._created: dict[str, dict[str, float]] = {}
        self._released: dict[str, float] = {}

    def created(self, owner: str, name: str) -> None:
        self._created.setdefault(owner, {})[name] = self._clock() + self._ttl

    def creations_pending(self, owner: str, seen: Iterable[str]) -> bool:
        """Whether a pod this operator created for ``owner`` is still missing from ``seen``
        (the names the cache holds); forgets the ones seen or expired."""
        waiting = self._created.get(owner)
        if not waiting:
            return False
        now = self._clock()
        names = set(seen)
        for name in [n for n, until in waiting.items() if n in names or until < now]:
            del waiting[name]
        if not waiting:
            del self._created[owner]
            return False
        return True

    def release(self, uid: str) -> None:
        now = self._clock()
        # Forget expired releases (pods the operator no longer looks at are never looked
        # up again).  Kept in the order they expire (one TTL, a monotonic clock), so this
        # drops them from the front: O(1) amortized, not a scan per release.
        released = self._released
        while released:
            first = next(iter(released))
            if released[first] >= now:
                break
            del released[first]
        released.pop(uid, None)
        released[uid] = now + self._ttl

    def released(self, uid: str, *, still_held: bool) -> bool:
        """Whether the pod ``uid`` was released although the cache ``still_held`` it."""
        until = self._released.get(uid)
        if until is None:
            return False
        if not still_held or until < self._clock():
            del self._released[uid]
            return False
        return True

    def forget(self, owner: str) -> None:
        self._created.pop(owner, None)


__all__ = ["TTL", "Expectations"]
