"""Exponential back-off: how long to wait before trying again.

Theory of operation
-------------------
Everything that retries after a failure — an informer listing again, a work
queue key, a crash-looping container, a pod sandbox that failed to set up, a pod
the scheduler could not place — waits ``initial * factor**n`` after its n-th
consecutive failure (n counted from 0), capped at ``maximum``.  A *jitter* of
``j`` stretches each wait by a random factor in ``[1, 1 + j)``, so many retriers
that failed together (every informer of a restarted API server) do not all come
back at the same instant.

Two forms of the one rule:

- :func:`exponential_delay` is the formula, for callers that count failures
  themselves (per key, per pod);
- a :class:`Backoff` is the counter of one retrier, with its
  :class:`BackoffPolicy`: :meth:`~Backoff.next_delay` gives the wait and counts
  the failure, :meth:`~Backoff.reset` starts over after a success.  With
  ``reset_after``, an attempt that lasted at least that long before it failed
  counts as a success first (the kubelet's crash-loop rule: a container that ran
  ten minutes was healthy).

A Backoff knows nothing of clocks; :meth:`~Backoff.sleep` is the one convenience
that waits on the event loop.
"""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass


def exponential_delay(failures: int, *, initial: float, maximum: float,
                      factor: float = 2.0) -> float:
    """``initial * factor**failures``, capped at ``maximum`` (``failures`` counts from 0)."""
    if failures <= 0:
        return min(initial, maximum)
    try:
        delay = initial * factor ** failures
    except OverflowError:  # long past the cap
        return maximum
    return min(delay, maximum)


@dataclass(frozen=True, slots=True, kw_only=True)
class BackoffPolicy:
    initial: float
    """The first wait, in seconds."""
    maximum: float
    """The longest wait."""
    factor: float = 2.0
    """How much longer each wait is than the one before."""
    jitter: float = 0.0
    """Each wait is stretched by a random factor in ``[1, 1 + jitter)``."""
    reset_after: float | None = None
    """An attempt that lasted this long before it failed resets the back-off first."""

    def __post_init__(self) -> None:
        if self.initial < 0 or self.maximum < self.initial:
            raise ValueError("back-off needs 0 <= initial <= maximum")
        if self.factor < 1:
            raise ValueError("back-off factor must be >= 1")
        if self.jitter < 0:
            raise ValueError("back-off jitter must be >= 0")
        if self.reset_after is not None and self.reset_after <= 0:
            raise ValueError("reset_after must be positive")


class Backoff:
    """The consecutive failures of one retrier and the waits they earn."""

    __slots__ = ("failures", "policy")

    def __init__(self, policy: BackoffPolicy) -> None:
        self.policy = policy
        self.failures = 0
        """Failures since the last :meth:`reset`."""

    def next_delay(self, *, ran_for: float | None = None, jitter: bool = True) -> float:
        """The wait before the next attempt; counts one more failure.

        ``ran_for``: how long the failed attempt lasted (see ``reset_after``).
        ``jitter=False`` gives the wait without the policy's jitter.
        """
        policy = self.policy
        if ran_for is not None and policy.reset_after is not None and \
                ran_for >= policy.reset_after:
            self.failures = 0
        delay = exponential_delay(self.failures, initial=policy.initial,
                                  maximum=policy.maximum, factor=policy.factor)
        self.failures += 1
        if jitter and policy.jitter:
            delay *= random.uniform(1.0, 1.0 + policy.jitter)
        return delay

    def reset(self) -> None:
        """Start over: the next failure waits ``initial`` again."""
        self.failures = 0

    async def sleep(self) -> float:
        """Wait :meth:`next_delay` seconds; returns the wait."""
        delay = self.next_delay()
        await asyncio.sleep(delay)
        return delay


__all__ = ["Backoff", "BackoffPolicy", "exponential_delay"]
