"""A deduplicating, rate-limited work queue of keys (client-go's ``workqueue``, on asyncio).

Theory of operation
-------------------
Controllers are level-triggered: an event only says "look at this object again",
so many events about one object before a worker gets to it need one reconcile,
not many.  The queue therefore holds *keys*, not events, and keeps three
structures (as client-go's ``Type`` does):

* ``queue``      — the order in which keys will be handed out;
* ``dirty``      — keys that need processing (everything in ``queue``, plus keys
  added again while a worker holds them);
* ``processing`` — keys a worker holds right now (between :meth:`WorkQueue.get`
  and :meth:`WorkQueue.done`).

:meth:`~WorkQueue.add` of a key already dirty does nothing (dedup).  A key added
while it is being processed is marked dirty but *not* queued, so no second worker
can take it; :meth:`~WorkQueue.done` puts it back in the queue, once, however many
times it was added meanwhile.  Hence the two guarantees controllers rely on: a key
is never processed by two workers at once, and a change that arrives during a
reconcile is never lost.

Delays and retries
    :meth:`~WorkQueue.add_after` schedules an add on the event loop's timer heap; a
    later call for the same key keeps the earlier deadline.
    :meth:`~WorkQueue.add_rate_limited` asks a :class:`RateLimiter` how long to wait.
    The default (:func:`default_rate_limiter`) is the maximum of a per-key
    exponential back-off (5 ms doubling to 1000 s, reset by :meth:`~WorkQueue.forget`)
    and an overall token bucket (10 qps, burst 100) so a storm of failures cannot
    turn into a storm of API calls.

Shutdown
    :meth:`~WorkQueue.shutdown` stops accepting adds, cancels pending delayed adds
    and makes :meth:`~WorkQueue.get` raise :class:`ShutDown` — keys still queued are
    dropped on purpose: controllers are level-triggered, so whoever runs next will
    list everything and redo them, and starting new work while asked to stop only
    lengthens the stop.  :meth:`~WorkQueue.shutdown_with_drain` also waits (up to a
    timeout) for keys being processed to be ``done``.

The queue belongs to one event loop and is not thread-safe; every method but
:meth:`~WorkQueue.get` and the drain is synchronous, so informer handlers can call
them inline.
"""

from __future__ import annotations

import asyncio
import collections
import time
from collections.abc import Callable, Hashable, Iterator
from typing import Generic, Protocol, TypeVar

from .backoff import exponential_delay
from .metrics import QueueMetrics

T = TypeVar("T", bound=Hashable)
Clock = Callable[[], float]

DEFAULT_BASE_DELAY = 0.005
DEFAULT_MAX_DELAY = 1000.0
DEFAULT_QPS = 10.0
DEFAULT_BURST = 100


class ShutDown(Exception):
    """Raised by :meth:`WorkQueue.get` once the queue is shut down."""


# --- rate limiters ---------------------------------------------------------------------------

class RateLimiter(Protocol):
    """Decides how long a key waits before it is re-added after a failure."""

    def when(self, item: Hashable) -> float:
        """Seconds to wait before re-adding ``item``; records one more failure of it."""
        ...

    def forget(self, item: Hashable) -> None:
        """Drop what is remembered about ``item`` (it succeeded, or was given up on)."""
        ...

    def num_requeues(self, item: Hashable) -> int:
        """How many times ``item`` failed since it was last forgotten."""
        ...


class ItemExponentialFailureRateLimiter:
    """Per-key exponential back-off: ``base * 2**failures``, capped at ``max_delay``."""

    def __init__(self, *, base_delay: float = DEFAULT_BASE_DELAY,
                 max_delay: float = DEFAULT_MAX_DELAY) -> None:
        if base_delay <= 0 or max_delay < base_delay:
            raise ValueError("need 0 < base_delay <= max_delay")
        self.base_delay = base_delay
        self.max_delay = max_delay
        self._failures: dict[Hashable, int] = {}

    def when(self, item: Hashable) -> float:
        n = self._failures.get(item, 0)
        self._failures[item] = n + 1
        return exponential_delay(n, initial=self.base_delay, maximum=self.max_delay)

    def forget(self, item: Hashable) -> None:
        self._failures.pop(item, None)

    def num_requeues(self, item: Hashable) -> int:
        return self._failures.get(item, 0)


class BucketRateLimiter:
    """An overall token bucket: ``qps`` tokens a second, holding at most ``burst``.

    Each :meth:`when` reserves a token; when the bucket is empty the delay is the
    time until that token will exist (like Go's ``rate.Limiter.Reserve``), so
    reservations queue up at ``qps`` instead of failing.
    """

    def __init__(self, *, qps: float = DEFAULT_QPS, burst: int = DEFAULT_BURST,
                 clock: Clock = time.monotonic) -> None:
        if qps <= 0 or burst < 1:
            raise ValueError("need qps > 0 and burst >= 1")
        self.qps = qps
        self.burst = burst
        self._clock = clock
        self._tokens = float(burst)
        self._last = clock()

    def when(self, item: Hashable) -> float:
        now = self._clock()
        self._tokens = min(float(self.burst), self._tokens + (now - self._last) * self.qps)
        self._last = now
        self._tokens -= 1.0
        return 0.0 if self._tokens >= 0 else -self._tokens / self.qps

    def forget(self, item: Hashable) -> None:
        # The bucket is shared by all keys; there is nothing per key to forget.
        return None

    def num_requeues(self, item: Hashable) -> int:
        return 0


class MaxOfRateLimiter:
    """The longest delay any of several limiters asks for."""

    def __init__(self, *limiters: RateLimiter) -> None:
        if not limiters:
            raise ValueError("need at least one rate limiter")
        self.limiters = limiters

    def when(self, item: Hashable) -> float:
        # Every limiter must see every failure (the bucket reserves a token, the
        # back-off counts), so no short-circuiting here.
        return max([lim.when(item) for lim in self.limiters])

    def forget(self, item: Hashable) -> None:
        for lim in self.limiters:
            lim.forget(item)

    def num_requeues(self, item: Hashable) -> int:
        return max(lim.num_requeues(item) for lim in self.limiters)


def default_rate_limiter(*, base_delay: float = DEFAULT_BASE_DELAY,
                         max_delay: float = DEFAULT_MAX_DELAY, qps: float = DEFAULT_QPS,
                         burst: int = DEFAULT_BURST) -> MaxOfRateLimiter:
    """client-go's default controller rate limiter: per-key back-off and an overall bucket."""
    return MaxOfRateLimiter(
        ItemExponentialFailureRateLimiter(base_delay=base_delay, max_delay=max_delay),
        BucketRateLimiter(qps=qps, burst=burst),
    )


# --- the queue -------------------------------------------------------------------------------

class WorkQueue(Generic[T]):
    """A deduplicating work queue with delayed and rate-limited adds (see module doc)."""

    def __init__(self, *, name: str = "", rate_limiter: RateLimiter | None = None,
                 metrics: QueueMetrics | None = None, clock: Clock = time.monotonic) -> None:
        self.name = name
        self.rate_limiter: RateLimiter = (rate_limiter if rate_limiter is not None
                                          else default_rate_limiter())
        self._metrics = metrics
        self._clock = clock
        self._queue: collections.deque[T] = collections.deque()
        self._dirty: set[T] = set()
        self._processing: set[T] = set()
        # Delayed adds: key -> (deadline, timer).  One timer per key; the loop's
        # own heap orders them, so there is no extra task to run.
        self._waiting: dict[T, tuple[float, asyncio.TimerHandle]] = {}
        self._getters: collections.deque[asyncio.Future[None]] = collections.deque()
        self._drained: list[asyncio.Future[None]] = []
        self._shutting_down = False
        # Timestamps for the duration histograms (only kept when metrics are on).
        self._added_at: dict[T, float] = {}
        self._started_at: dict[T, float] = {}

    # -- introspection --

    def __len__(self) -> int:
        """Keys waiting to be handed out (the queue depth)."""
        return len(self._queue)

    def __contains__(self, item: object) -> bool:
        return item in self._dirty or item in self._processing or item in self._waiting

    def is_dirty(self, item: T) -> bool:
        """Whether ``item`` is to be processed from its latest add on (queued, or queued
        again behind its processing): whatever an add would announce now, that
        processing sees."""
        return item in self._dirty

    @property
    def shutting_down(self) -> bool:
        return self._shutting_down

    @property
    def processing(self) -> frozenset[T]:
        return frozenset(self._processing)

    @property
    def waiting(self) -> int:
        """Keys scheduled by :meth:`add_after` that have not come due."""
        return len(self._waiting)

    def queued(self) -> Iterator[T]:
        return iter(tuple(self._queue))

    # -- adding --

    def add(self, item: T) -> None:
        """Mark ``item`` as needing processing (a no-op if it already does)."""
        if self._shutting_down or item in self._dirty:
            return
        self._dirty.add(item)
        m = self._metrics
        if m is not None:
            m.adds.inc()
            self._added_at[item] = self._clock()
        if item in self._processing:
            # done() will queue it: never hand a key to a second worker.
            return
        self._queue.append(item)
        if m is not None:
            m.depth.set(len(self._queue))
        self._wake_getter()

    def add_after(self, item: T, delay: float) -> None:
        """Add ``item`` after ``delay`` seconds (at once if ``delay <= 0``)."""
        if self._shutting_down:
            return
        if delay <= 0:
            self.add(item)
            return
        loop = asyncio.get_running_loop()
        deadline = loop.time() + delay
        existing = self._waiting.get(item)
        if existing is not None:
            if existing[0] <= deadline:
                return  # an earlier add is already scheduled; it covers this one
            existing[1].cancel()
        handle = loop.call_at(deadline, self._fire, item)
        self._waiting[item] = (deadline, handle)

    def _fire(self, item: T) -> None:
        self._waiting.pop(item, None)
        self.add(item)

    def add_rate_limited(self, item: T) -> float:
        """Add ``item`` when the rate limiter allows; returns the delay chosen."""
        if self._shutting_down:
            return 0.0
        delay = self.rate_limiter.when(item)
        if self._metrics is not None:
            self._metrics.retries.inc()
        self.add_after(item, delay)
        return delay

    def forget(self, item: T) -> None:
        """Reset ``item``'s back-off (call after it was processed successfully)."""
        self.rate_limiter.forget(item)

    def num_requeues(self, item: T) -> int:
        return self.rate_limiter.num_requeues(item)

    # -- taking --

    def get_nowait(self) -> T:
        """Take the next key; raises :class:`asyncio.QueueEmpty` or :class:`ShutDown`."""
        if self._shutting_down:
            raise ShutDown(self.name)
        if not self._queue:
            raise asyncio.QueueEmpty
        item = self._queue.popleft()
        self._processing.add(item)
        self._dirty.discard(item)
        m = self._metrics
        if m is not None:
            now = self._clock()
            m.depth.set(len(self._queue))
            added = self._added_at.pop(item, None)
            if added is not None:
                m.queue_duration.observe(now - added)
            self._started_at[item] = now
        return item

    async def get(self) -> T:
        """Wait for a key and take it; the caller must call :meth:`done` with it."""
        while True:
            if self._shutting_down:
                raise ShutDown(self.name)
            if self._queue:
                return self.get_nowait()
            fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._getters.append(fut)
            try:
                await fut
            except asyncio.CancelledError:
                # If we were woken and cancelled at once, pass the wake-up on so the
                # key is not left waiting for the next add.
                if fut.done() and not fut.cancelled():
                    self._wake_getter()
                else:
                    fut.cancel()
                raise

    def done(self, item: T) -> None:
        """Release ``item``; if it was added while held, it goes back in the queue."""
        self._processing.discard(item)
        m = self._metrics
        if m is not None:
            started = self._started_at.pop(item, None)
            if started is not None:
                m.work_duration.observe(self._clock() - started)
        if item in self._dirty and not self._shutting_down:
            self._queue.append(item)
            if m is not None:
                m.depth.set(len(self._queue))
            self._wake_getter()
        if not self._processing:
            for fut in self._drained:
                if not fut.done():
                    fut.set_result(None)
            self._drained.clear()

    def _wake_getter(self) -> None:
        while self._getters:
            fut = self._getters.popleft()
            if not fut.done():
                fut.set_result(None)
                return

    # -- shutdown --

    def shutdown(self) -> None:
        """Stop accepting keys; :meth:`get` raises :class:`ShutDown` from now on."""
        if self._shutting_down:
            return
        self._shutting_down = True
        for _, handle in self._waiting.values():
            handle.cancel()
        self._waiting.clear()
        # Queued keys are dropped (see the module doc); dirty keys held by workers
        # stay dirty only until done(), which no longer re-queues.
        self._queue.clear()
        self._dirty.clear()
        self._added_at.clear()
        if self._metrics is not None:
            self._metrics.depth.set(0)
        while self._getters:
            fut = self._getters.popleft()
            if not fut.done():
                fut.set_result(None)

    async def shutdown_with_drain(self, *, grace_period: float | None = None) -> bool:
        """Shut down and wait until every held key is ``done``.

        Returns ``False`` if keys are still held after ``grace_period`` seconds.
        """
        self.shutdown()
        if not self._processing:
            return True
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._drained.append(fut)
        try:
            await asyncio.wait_for(asyncio.shield(fut), grace_period)
        except TimeoutError:
            return False
        return True
