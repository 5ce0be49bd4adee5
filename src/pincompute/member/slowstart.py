"""Slow start: many creations at once, in batches that double while they succeed.

Theory of operation
-------------------
An operator that makes 120 objects one after another waits for 120 commits in a
row; making them all at once turns one systematic error (a quota refused, an
invalid template) into 120 failed writes and 120 Events.  Kubernetes'
ReplicaSet controller settles between the two with ``slowStartBatch``, and so do
we: the first batch is one call, each batch that succeeds entirely doubles the
next, and the first batch with an error ends the run.  The calls of a batch run
side by side, so their writes share the store's group commits.

:func:`slow_start` returns the results of the calls that succeeded, in order, and
the first error (the caller records and raises it); calls never started are
simply not made — the next reconcile sees they are still missing.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")

INITIAL_BATCH = 1


async def slow_start(count: int, call: Callable[[], Awaitable[T]], *,
                     initial: int = INITIAL_BATCH
                     ) -> tuple[list[T], BaseException | None]:
    """Make ``count`` calls of ``call`` in doubling batches; stop at the first failed batch.

    Returns the successful results and the first error (``None`` if all succeeded)."""
    done: list[T] = []
    remaining = count
    batch = max(1, min(initial, remaining))
    while remaining > 0:
        results = await asyncio.gather(*(call() for _ in range(batch)),
                                       return_exceptions=True)
        error: BaseException | None = None
        for result in results:
            if isinstance(result, BaseException):
                error = error or result
            else:
                done.append(result)
        if error is not None:
            return done, error
        remaining -= batch
        batch = min(2 * batch, remaining)
    return done, None


__all__ = ["INITIAL_BATCH", "slow_start"]
