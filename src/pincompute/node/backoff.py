"""Crash-loop back-off: how long a container waits before it is started again.

Theory of operation
-------------------
As the kubelet does, a container that exits and is to be restarted waits
``initial`` seconds the first time, twice as long each time after, up to
``maximum`` (10 s doubling to 5 min).  A container that ran for ``reset_after``
seconds (10 min) before it exited is considered healthy again, so its next wait
starts over at ``initial``.  The delays are a policy object, not constants, so
tests (and the sim runtime's scale runs) can shrink them while the defaults stay
Kubernetes'.

A :class:`Backoff` is per container; it knows nothing of clocks — the caller
passes how long the last run lasted and adds the returned delay to its own
monotonic clock.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class BackoffPolicy:
    initial: float = 10.0
    """Seconds before the first restart."""
    maximum: float = 300.0
    """The longest wait."""
    reset_after: float = 600.0
    """A run at least this long resets the back-off."""

    def __post_init__(self) -> None:
        if self.initial < 0 or self.maximum < self.initial:
            raise ValueError("back-off needs 0 <= initial <= maximum")
        if self.reset_after <= 0:
            raise ValueError("reset_after must be positive")


class Backoff:
    """The restart delays of one container."""

    __slots__ = ("_next", "policy")

    def __init__(self, policy: BackoffPolicy) -> None:
        self.policy = policy
        self._next = policy.initial

    def next_delay(self, *, ran_for: float) -> float:
        """The wait before the next start, given how long the last run lasted."""
        if ran_for >= self.policy.reset_after:
            self._next = self.policy.initial
        delay = self._next
        self._next = min(self.policy.maximum, self._next * 2)
        return delay

    def reset(self) -> None:
        self._next = self.policy.initial


__all__ = ["Backoff", "BackoffPolicy"]
