"""Health signals: what makes remediation think a node is bad.

Theory of operation
-------------------
Permanent node problems are node conditions (node-problem-detector's rule), so
the signals are read from the Node object alone — a pure function, tested without
a cluster:

* ``Ready`` not ``True`` (the node agent's gating health probes failed, or the node
  lifecycle controller set it ``Unknown`` because the node went silent) — except
  on a node younger than ``startup_grace``: a new node may still be passing its
  readiness gate (Cluster API's ``nodeStartupTimeout``);
* any condition of ``bad_conditions`` ``True`` (``RuntimeUnhealthy`` from the agent;
  ``KernelDeadlock``, ``ReadonlyFilesystem``... as node-problem-detector reports);
* the probe-failure annotation (:data:`PROBE_FAILURE_ANNOTATION`: an external
  prober's verdict, its value the reason);
* the repair annotation (:data:`REPAIR_ANNOTATION`): a person asked for a repair.
  It is *manual*: remediation escalates at once instead of waiting out its delays.

A node leaving its pool (the drain mark) is someone else's business already and
carries no signal.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

from pincompute.kube import objects
from pincompute.model.wellknown import (
    NODE_DRAIN_ANNOTATION,
    PROBE_FAILURE_ANNOTATION,
    REPAIR_ANNOTATION,
)

BAD_CONDITIONS: frozenset[str] = frozenset({
    "RuntimeUnhealthy", "KernelDeadlock", "ReadonlyFilesystem", "FrequentKubeletRestart",
    "CorruptDockerOverlay2", "FrequentContainerdRestart"})
"""Condition types that mean a broken node when ``True``."""


@dataclass(frozen=True, slots=True)
class Signals:
    """What is wrong with a node (empty: nothing)."""

    problems: tuple[str, ...] = ()
    manual: bool = False
    """A person asked for a repair."""

    @property
    def unhealthy(self) -> bool:
        return bool(self.problems)


HEALTHY = Signals()


def node_signals(node: Mapping[str, Any], *, now: float, startup_grace: float,
                 bad_conditions: Collection[str] = BAD_CONDITIONS) -> Signals:
    """The signals ``node`` shows at ``now`` (epoch seconds)."""
    annotations = objects.meta(node).get("annotations") or {}
    if NODE_DRAIN_ANNOTATION in annotations:
        return HEALTHY
    problems: list[str] = []
    ready = objects.get_condition(node, "Ready")
    status = (ready or {}).get("status")
    if status != "True" and not _starting(node, now=now, startup_grace=startup_grace):
        reason = (ready or {}).get("reason") or "no Ready condition"
        problems.append(f"Ready={status or 'missing'} ({reason})")
    for condition in (node.get("status") or {}).get("conditions") or ():
        if condition.get("type") in bad_conditions and condition.get("status") == "True":
            problems.append(f"{condition['type']}: {condition.get('message') or 'True'}")
    if PROBE_FAILURE_ANNOTATION in annotations:
        problems.append(f"probe failure: {annotations[PROBE_FAILURE_ANNOTATION] or 'failed'}")
    manual = REPAIR_ANNOTATION in annotations
    if manual:
        problems.append(f"repair requested: {annotations[REPAIR_ANNOTATION] or 'yes'}")
    return Signals(tuple(problems), manual) if problems else HEALTHY


def _starting(node: Mapping[str, Any], *, now: float, startup_grace: float) -> bool:
    """A node younger than ``startup_grace``: its readiness gate may still be closed."""
    created = objects.meta(node).get("creationTimestamp")
    if not created:
        return False
    return now - objects.parse_time(str(created)).timestamp() < startup_grace


__all__ = ["BAD_CONDITIONS", "HEALTHY", "Signals", "node_signals"]
