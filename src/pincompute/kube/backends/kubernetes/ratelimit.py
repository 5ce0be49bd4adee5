"""Client-side request pacing: a token bucket, as client-go's QPS/burst limiter.

``burst`` requests may go at once; after that they are spaced ``1/qps`` apart.
Waiters are served in order, each reserving its slot before sleeping, so a burst
of callers spreads out instead of all waking at the same instant.
"""

from __future__ import annotations

import asyncio
import time


class TokenBucket:
    def __init__(self, *, qps: float, burst: int) -> None:
        if qps <= 0 or burst < 1:
            raise ValueError("qps must be positive and burst at least 1")
        self.qps = qps
        self.burst = burst
        self._tokens = float(burst)
        self._updated = time.monotonic()

    def reserve(self) -> float:
        """Take a token (possibly in advance); returns the seconds to wait before using it."""
        now = time.monotonic()
        self._tokens = min(self.burst, self._tokens + (now - self._updated) * self.qps)
        self._updated = now
        self._tokens -= 1
        return 0.0 if self._tokens >= 0 else -self._tokens / self.qps

    async def acquire(self) -> None:
        delay = self.reserve()
        if delay > 0:
            await asyncio.sleep(delay)
