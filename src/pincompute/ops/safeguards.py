"""Remediation's safeguards for one cluster: circuit breakers per scope and rate limits.

Theory of operation
-------------------
:class:`Safeguards` answers one question before every disruptive action on a node
— may I? — and says why not, with the numbers.  It holds a
:class:`~.breaker.Breaker` per scope the :class:`~.census.Census` knows (each pool,
each zone, the cluster; the share allowed per kind of scope is configured) and the
shared :class:`~.ratelimit.RateLimits` (per cluster and per zone).

Breakers are re-evaluated whenever a node's action is considered and, by the
remediation controller's periodic tick, for every scope (so a storm that passes
re-arms after its cooldown with no node event to prompt it).  Their states are
the record an operator looks at and a restarted controller resumes from: the
ConfigMap :data:`STATE_CONFIGMAP` in the system namespace (``data.breakers``, JSON
scope → state, since, counts), written on every transition.  The rate limits'
windows are kept there too (``data.rates``, key → action times), written with
each action that counts against them.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pincompute.kube.errors import AlreadyExists, Conflict, NotFound
from pincompute.kube.protocol import KubeClient
from pincompute.kube.resource import CONFIGMAPS
from pincompute.model.wellknown import SYSTEM_NAMESPACE

from .breaker import Breaker, BreakerState, Transition
from .census import Census
from .ratelimit import Limit, RateLimits, Verdict

STATE_CONFIGMAP = "pincompute-remediation"


@dataclass(frozen=True, kw_only=True, slots=True)
class SafeguardConfig:
    pool_max_unhealthy: int | str = "49%"
    """Per node pool: most nodes unhealthy at once before its breaker opens (Medik8s'
    default keeps at least 51 % healthy)."""
    zone_max_unhealthy: int | str = "49%"
    cluster_max_unhealthy: int | str = "49%"
    cooldown: float = 300.0
    """Seconds a breaker stays cooling down after the share fell back (storm cooldown)."""
    cluster_rate: int = 5
    """Disruptive actions per ``rate_window`` in one cluster."""
    zone_rate: int = 10
    """Disruptive actions per ``rate_window`` in one zone."""
    rate_window: float = 60.0


@dataclass(frozen=True, slots=True)
class Refusal:
    reason: str
    """``BreakerOpen`` or ``RateLimited``."""
    message: str
    retry_after: float


class Safeguards:
    def __init__(self, *, cluster: str, census: Census, config: SafeguardConfig,
                 limits: RateLimits) -> None:
        self.cluster = cluster
        self.census = census
        self.config = config
        self.limits = limits
        self.breakers: dict[str, Breaker] = {}

    def breaker(self, scope: str) -> Breaker:
        found = self.breakers.get(scope)
        if found is None:
            kind = scope.split("/", 1)[0]
            share = {"pool": self.config.pool_max_unhealthy,
                     "zone": self.config.zone_max_unhealthy}.get(
                         kind, self.config.cluster_max_unhealthy)
            found = self.breakers[scope] = Breaker(scope, max_unhealthy=share,
                                                   cooldown=self.config.cooldown)
        return found

    def evaluate(self, scopes: Any, *, now: float) -> list[Transition]:
        """Feed the census counts of ``scopes`` to their breakers; the transitions."""
        out = []
        for scope in scopes:
            unhealthy, total = self.census.counts(scope)
            transition = self.breaker(scope).evaluate(unhealthy, total, now=now)
            if transition is not None:
                out.append(transition)
        return out

    def check(self, scopes: tuple[str, ...], *, zone: str, now: float,
              rate_limited: bool) -> Refusal | None:
        """None if an action on a node of ``scopes`` may go ahead (and counts it against
        the rate limits when ``rate_limited``), else why not."""
        for scope in scopes:
            breaker = self.breaker(scope)
            if not breaker.closed:
                wait = (breaker.since + self.config.cooldown - now
                        if breaker.state is BreakerState.COOLING else self.config.cooldown)
                return Refusal("BreakerOpen", breaker.describe(), max(wait, 0.1))
        if not rate_limited:
            return None
        limits = [Limit(f"cluster/{self.cluster}", self.config.cluster_rate,
                        self.config.rate_window)]
        if zone:
            limits.append(Limit(f"zone/{zone}", self.config.zone_rate, self.config.rate_window))
        verdict = self.limits.acquire(limits, now=now)
        if verdict.allowed:
            return None
        return Refusal("RateLimited", _rate_message(verdict), max(verdict.retry_after, 0.1))

    # -- the record --

    def record(self) -> dict[str, Any]:
        return {scope: {"state": b.state.value, "since": b.since, "unhealthy": b.unhealthy,
                        "total": b.total}
                for scope, b in sorted(self.breakers.items())}

    def restore(self, record: Mapping[str, Any]) -> None:
        states = {s.value: s for s in BreakerState}
        for scope, saved in record.items():
            breaker = self.breaker(scope)
            breaker.state = states.get(saved.get("state"), BreakerState.CLOSED)
            breaker.since = float(saved.get("since") or 0.0)

    async def load(self, client: KubeClient) -> None:
        try:
            cm = await client.get(CONFIGMAPS, STATE_CONFIGMAP, namespace=SYSTEM_NAMESPACE)
        except NotFound:
            return
        data = cm.get("data") or {}
        with contextlib.suppress(ValueError, AttributeError):
            self.restore(json.loads(data.get("breakers") or "{}"))
        with contextlib.suppress(ValueError, AttributeError, TypeError):
            self.limits.restore(json.loads(data.get("rates") or "{}"))

    async def save(self, client: KubeClient, *, now: float) -> dict[str, Any]:
        """Write the breakers' states and the rate windows; returns the ConfigMap (Events
        are about it)."""
        data = {"breakers": json.dumps(self.record(), sort_keys=True),
                "rates": json.dumps(self.limits.snapshot(now=now), sort_keys=True)}
        try:
            return await client.patch(CONFIGMAPS, STATE_CONFIGMAP, {"data": data},
                                      namespace=SYSTEM_NAMESPACE)
        except NotFound:
            with contextlib.suppress(AlreadyExists, Conflict):
                return await client.create(CONFIGMAPS, {
                    "apiVersion": "v1", "kind": "ConfigMap",
                    "metadata": {"name": STATE_CONFIGMAP, "namespace": SYSTEM_NAMESPACE},
                    "data": data}, namespace=SYSTEM_NAMESPACE)
            return await client.patch(CONFIGMAPS, STATE_CONFIGMAP, {"data": data},
                                      namespace=SYSTEM_NAMESPACE)


def _rate_message(verdict: Verdict) -> str:
    return (f"rate limit of {verdict.key}: {verdict.used} actions in the last "
            f"{verdict.window:.0f}s, at most {verdict.limit}; next slot in "
            f"{verdict.retry_after:.1f}s")


def describe_transition(t: Transition) -> str:
    share = 100 * t.unhealthy / t.total if t.total else 0.0
    verb = {BreakerState.OPEN: "tripped: remediation stops",
            BreakerState.COOLING: "cooling down before it re-arms",
            BreakerState.CLOSED: "re-armed: remediation resumes"}[t.new]
    return (f"circuit breaker of {t.scope} {verb} ({t.old.value} → {t.new.value}): "
            f"{t.unhealthy} of {t.total} nodes unhealthy ({share:.0f}%), at most {t.allowed} "
            "allowed")


__all__ = ["STATE_CONFIGMAP", "Refusal", "SafeguardConfig", "Safeguards",
           "describe_transition"]
