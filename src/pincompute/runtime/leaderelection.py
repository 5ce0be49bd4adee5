"""Leader election on ``coordination.k8s.io/v1`` Lease objects (client-go's algorithm).

Theory of operation
-------------------
Candidates share one Lease object::

    spec:
      holderIdentity: "host-a_4f2c"         # who leads ("" after a release)
      leaseDurationSeconds: 15              # how long a silent holder is still trusted
      acquireTime: "...T...:...:...000000Z"  # RFC 3339, microseconds
      renewTime:   "...T...:...:...000000Z"
      leaseTransitions: 3                   # how many times the holder changed

Every ``retry_period`` a candidate reads the lease.  It may take the lease when
nobody holds it, when it already holds it (a renew), or when the holder has not
renewed for ``leaseDurationSeconds``.  Taking and renewing are ordinary updates
carrying the resourceVersion that was read, so of two candidates racing for the
same lease exactly one write succeeds (the other gets Conflict): optimistic
concurrency is the whole mutual-exclusion mechanism.

"Has not renewed for a lease duration" is judged on the candidate's *own*
monotonic clock, from the moment it first saw the current record — never by
comparing ``renewTime`` with its wall clock — so skew between machines does not
matter, only the rate at which their clocks advance.

No two leaders at once
    A leader renews every ``retry_period``; if it cannot renew for
    ``renew_deadline`` it stops leading (``on_stopped_leading``).  Another candidate
    takes over only after ``lease_duration`` without a renew, counted from when it
    saw the last one, which was no earlier than that renew happened.  Because
    ``renew_deadline < lease_duration`` the old leader has stepped down before the
    new one starts.  (As everywhere, this assumes a process is not paused for
    longer than the margin; work done as leader should still use optimistic
    concurrency.)

Release
    A leader that is stopped (its task cancelled) clears ``holderIdentity`` so the
    next candidate takes over at its next retry instead of waiting a full lease
    duration.
"""

from __future__ import annotations

import asyncio
import math
import random
import socket
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pincompute.kube.errors import AlreadyExists, ApiError, Conflict, NotFound
from pincompute.kube.objects import now_micro
from pincompute.kube.protocol import KubeClient
from pincompute.kube.resource import LEASES

from .logging import get_logger
from .metrics import RuntimeMetrics

JITTER_FACTOR = 1.2

_log = get_logger(__name__)


def default_identity() -> str:
    """``hostname_random``: unique per process, readable in ``kubectl get lease``."""
    return f"{socket.gethostname()}_{uuid.uuid4().hex[:8]}"


@dataclass(frozen=True, slots=True)
class LeaderElectionConfig:
    """Where the lease lives, who we are, and the timings (seconds)."""

    name: str
    namespace: str
    identity: str = field(default_factory=default_identity)
    lease_duration: float = 15.0
    renew_deadline: float = 10.0
    retry_period: float = 2.0
    release_on_cancel: bool = True

    def __post_init__(self) -> None:
        if not self.identity:
            raise ValueError("identity must not be empty")
        if self.lease_duration <= self.renew_deadline:
            raise ValueError("lease_duration must be greater than renew_deadline")
        if self.renew_deadline <= JITTER_FACTOR * self.retry_period:
            raise ValueError(f"renew_deadline must be greater than {JITTER_FACTOR} * "
                             "retry_period")
        if self.retry_period <= 0:
            raise ValueError("retry_period must be positive")


class LeaderElector:
    """Campaigns for a lease, renews it while leading, releases it when stopped."""

    def __init__(self, client: KubeClient, config: LeaderElectionConfig, *,
                 on_started_leading: Callable[[], None] | None = None,
                 on_stopped_leading: Callable[[], None] | None = None,
                 on_new_leader: Callable[[str], None] | None = None,
                 metrics: RuntimeMetrics | None = None) -> None:
        self.client = client
        self.config = config
        self.on_started_leading = on_started_leading
        self.on_stopped_leading = on_stopped_leading
        self.on_new_leader = on_new_leader
        self._is_leader = False
        self._leading = asyncio.Event()
        self._observed_spec: dict[str, Any] | None = None
        self._observed_at = 0.0
        self._observed_holder = ""
        self._last_renew = 0.0
        self._log = _log.bind(lease=f"{config.namespace}/{config.name}",
                              identity=config.identity)
        self._m_leader = (metrics.leader_election_is_leader.labels(
            f"{config.namespace}/{config.name}") if metrics is not None else None)

    # -- state --

    @property
    def identity(self) -> str:
        return self.config.identity

    @property
    def is_leader(self) -> bool:
        return self._is_leader

    @property
    def leader(self) -> str:
        """The holder this candidate last saw ("" when none)."""
        return self._observed_holder

    async def wait_leading(self) -> None:
        await self._leading.wait()

    # -- the loop --

    async def run(self) -> None:
        """Campaign until leading, then renew until the lease is lost; returns then.

        Cancel the task running this to stop; a leader then releases the lease
        (unless ``release_on_cancel`` is off) and calls ``on_stopped_leading``.
        """
        try:
            await self._acquire()
            self._set_leader(True)
            await self._renew_until_lost()
        finally:
            if self._is_leader:
                # Cancelled while leading.  Step down first (we must not act as
                # leader once someone else can), then let the next one in quickly.
                self._set_leader(False)
                if self.config.release_on_cancel:
                    try:
                        await asyncio.wait_for(self._release(), self.config.renew_deadline)
                    except (TimeoutError, ApiError, OSError) as exc:
                        self._log.warning("could not release the lease: %s", exc)

    async def _acquire(self) -> None:
        cfg = self.config
        self._log.info("campaigning for the lease")
        while True:
            # Nothing to protect yet, so an attempt may take as long as a renew may;
            # bounding it by the retry period would never acquire on a slow store.
            if await self._try(cfg.renew_deadline):
                self._log.info("acquired the lease")
                return
            await asyncio.sleep(cfg.retry_period * random.uniform(1.0, JITTER_FACTOR))

    async def _renew_until_lost(self) -> None:
        cfg = self.config
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(cfg.retry_period)
            # Keep trying until renew_deadline after the last good renew; past it,
            # another candidate may soon take the lease, so we must stop first.
            deadline = self._last_renew + cfg.renew_deadline
            renewed = False
            while not renewed:
                remaining = deadline - loop.time()
                if remaining <= 0:
                    break
                renewed = await self._try(remaining)
                if not renewed:
                    await asyncio.sleep(max(0.0, min(cfg.retry_period,
                                                     deadline - loop.time())))
            if not renewed:
                self._log.warning("failed to renew the lease within %.2fs, stepping down",
                                  cfg.renew_deadline)
                self._set_leader(False)
                return

    async def _try(self, time_limit: float) -> bool:
        """One bounded attempt to acquire or renew; never raises API errors."""
        try:
            return await asyncio.wait_for(self._try_acquire_or_renew(), time_limit)
        except TimeoutError:
            self._log.warning("lease attempt timed out after %.2fs", time_limit)
            return False
        except (ApiError, OSError) as exc:
            self._log.warning("lease attempt failed: %s", exc)
            return False

    def _set_leader(self, leading: bool) -> None:
        if leading == self._is_leader:
            return
        self._is_leader = leading
        if self._m_leader is not None:
            self._m_leader.set(1 if leading else 0)
        if leading:
            self._leading.set()
            callback = self.on_started_leading
        else:
            self._leading.clear()
            self._log.info("stopped leading")
            callback = self.on_stopped_leading
        if callback is not None:
            try:
                callback()
            except Exception:
                self._log.exception("leader election callback failed")

    # -- one attempt --

    def _observe(self, lease: dict[str, Any]) -> None:
        spec = lease.get("spec") or {}
        if spec != self._observed_spec:
            # A new record (any renew changes renewTime): restart the silence clock.
            self._observed_spec = dict(spec)
            self._observed_at = asyncio.get_running_loop().time()
        holder = spec.get("holderIdentity") or ""
        if holder != self._observed_holder:
            self._observed_holder = holder
            if holder:
                self._log.info("new leader: %s", holder)
            if self.on_new_leader is not None and holder:
                try:
                    self.on_new_leader(holder)
                except Exception:
                    self._log.exception("on_new_leader callback failed")

    def _spec_for_us(self, old: dict[str, Any] | None, now: str) -> dict[str, Any]:
        cfg = self.config
        spec: dict[str, Any] = dict(old or {})
        transitions = int(spec.get("leaseTransitions") or 0)
        if old is None:
            spec["acquireTime"] = now
            spec["leaseTransitions"] = 0
        elif (old.get("holderIdentity") or "") != cfg.identity:
            spec["acquireTime"] = now
            spec["leaseTransitions"] = transitions + 1
        spec["holderIdentity"] = cfg.identity
        spec["leaseDurationSeconds"] = max(1, math.ceil(cfg.lease_duration))
        spec["renewTime"] = now
        return spec

    async def _try_acquire_or_renew(self) -> bool:
        cfg = self.config
        loop = asyncio.get_running_loop()
        started = loop.time()
        now = now_micro()
        try:
            lease = await self.client.get(LEASES, cfg.name, namespace=cfg.namespace)
        except NotFound:
            obj = {
                "apiVersion": LEASES.api_version, "kind": LEASES.kind,
                "metadata": {"name": cfg.name, "namespace": cfg.namespace},
                "spec": self._spec_for_us(None, now),
            }
            try:
                created = await self.client.create(LEASES, obj, namespace=cfg.namespace)
            except (AlreadyExists, Conflict):
                return False
            self._observe(created)
            self._last_renew = started
            return True

        self._observe(lease)
        spec = lease.get("spec") or {}
        holder = spec.get("holderIdentity") or ""
        duration = float(spec.get("leaseDurationSeconds") or cfg.lease_duration)
        if holder and holder != cfg.identity and loop.time() < self._observed_at + duration:
            return False  # held by someone else who renewed recently enough
        lease["spec"] = self._spec_for_us(spec, now)
        try:
            # ``lease`` came from get(), so it is ours to change; its
            # resourceVersion makes the update fail if anyone wrote in between.
            updated = await self.client.update(LEASES, lease)
        except Conflict:
            return False
        self._observe(updated)
        # Count the lease from before the write: the others' clocks started no earlier.
        self._last_renew = started
        return True

    async def _release(self) -> None:
        cfg = self.config
        try:
            lease = await self.client.get(LEASES, cfg.name, namespace=cfg.namespace)
        except NotFound:
            return
        spec = dict(lease.get("spec") or {})
        if (spec.get("holderIdentity") or "") != cfg.identity:
            return
        now = now_micro()
        spec.update(holderIdentity="", leaseDurationSeconds=1, renewTime=now, acquireTime=now)
        lease["spec"] = spec
        try:
            await self.client.update(LEASES, lease)
        except (Conflict, NotFound):
            return
        self._log.info("released the lease")
