"""Crash-loop back-off: how long a container waits before it is started again.

Theory of operation
-------------------
As the kubelet does, a container that exits and is to be restarted waits
``initial`` seconds the first time, twice as long each time after, up to
``maximum`` (10 s doubling to 5 min).  A container that ran for ``reset_after``
seconds (10 min) before it exited is considered healthy again, so its next wait
starts over at ``initial``.

The arithmetic is the runtime's one back-off (:mod:`pincompute.runtime.backoff`,
also behind the informers' and the work queue's retries); this module only
names the kubelet's numbers (:func:`crash_loop`, :data:`CRASH_LOOP`).  The delays
are a policy object, not constants, so tests (and the sim runtime's scale runs)
can shrink them while the defaults stay Kubernetes'.  A :class:`Backoff` is per
container; it knows nothing of clocks — the caller passes how long the last run
lasted and adds the returned delay to its own monotonic clock.
"""

from __future__ import annotations

from pincompute.runtime.backoff import Backoff, BackoffPolicy


def crash_loop(*, initial: float = 10.0, maximum: float = 300.0,
               reset_after: float = 600.0) -> BackoffPolicy:
    """The kubelet's crash-loop policy (or a shrunk one, for tests)."""
    return BackoffPolicy(initial=initial, maximum=maximum, reset_after=reset_after)


CRASH_LOOP = crash_loop()
"""10 s doubling to 5 min; a 10 min run resets it."""

__all__ = ["CRASH_LOOP", "Backoff", "BackoffPolicy", "crash_loop"]
