"""Rate limits: per identity for every request, per project for mutations.

Theory of operation
-------------------
One noisy client must not starve the rest (kube-apiserver's Priority and Fairness has the
same aim).  Each key — an authenticated user, a project's mutations, an unauthenticated
client address — has a budget of N requests per second, counted with the `limits`
library's sliding-window counter: the previous second's count weighted by how much of it
still overlaps the window, plus the current one.  That behaves like a token bucket refilled
continuously at N per second with a burst of N, at one counter update per request (in
memory, no I/O).  A request over budget is ``429 Too Many Requests`` with ``Retry-After``
(seconds until the window frees a slot, at least 1), counted in the metrics.
"""

from __future__ import annotations

import math
import time

from limits import RateLimitItem, RateLimitItemPerSecond
from limits.storage import MemoryStorage
from limits.strategies import SlidingWindowCounterRateLimiter
from prometheus_client import Counter

from .errors import rate_limited


class RateLimiter:
    """The gateway's budgets (raise 429 from the ``hit_*`` methods)."""

    def __init__(self, *, per_identity: int, per_project_mutations: int,
                 per_anonymous: int, rejected: Counter | None = None) -> None:
        self._storage = MemoryStorage()
        self._strategy = SlidingWindowCounterRateLimiter(self._storage)
        self._identity = RateLimitItemPerSecond(per_identity)
        self._project = RateLimitItemPerSecond(per_project_mutations)
        self._anonymous = RateLimitItemPerSecond(per_anonymous)
        self._rejected = rejected

    def hit_identity(self, identity: str) -> None:
        self._hit(self._identity, "identity", identity,
                  f"too many requests from {identity.removeprefix('user:')}")

    def hit_project(self, project: str) -> None:
        self._hit(self._project, "project", project,
                  f'too many changes in project "{project}"')

    def hit_anonymous(self, address: str) -> None:
        self._hit(self._anonymous, "anonymous", address,
                  "too many unauthenticated requests")

    def _hit(self, item: RateLimitItem, kind: str, key: str, message: str) -> None:
        if self._strategy.hit(item, kind, key):
            return
        stats = self._strategy.get_window_stats(item, kind, key)
        retry = max(1, math.ceil(stats.reset_time - time.time()))
        if self._rejected is not None:
            self._rejected.labels(kind).inc()
        raise rate_limited(retry, f"{message}: limit {item.amount}/s; retry after {retry}s")

    def close(self) -> None:
        timer = getattr(self._storage, "timer", None)
        if timer is not None:
            timer.cancel()
