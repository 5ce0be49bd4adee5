"""Why a pod did not fit: per-reason node counts and the message users read.

Theory of operation
-------------------
When no node passes the filters, each node is charged to the *first* filter (in
profile order) that rejected it, as kube-scheduler does, and that plugin names
the reasons (a resource filter may name several for one node: "Insufficient
cpu" and "Insufficient memory").  The counts become the familiar message::

    0/3000 nodes are available: 2100 Insufficient cpu, 900 node(s) had untolerated
    taint {dedicated: gpu}. preemption: 0/3000 nodes are available: ...

Entries are ``"<count> <reason>"`` sorted as strings (kube-scheduler's order), so
the message is deterministic and can be compared exactly.  A PreFilter
rejection replaces the per-node part by the plugin's message; PostFilter
(preemption) appends its own verdict.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .interface import Status

NO_NODES = "no nodes available to schedule pods"


@dataclass(slots=True)
class Diagnosis:
    total: int
    reasons: dict[str, int] = field(default_factory=dict)
    rejectors: set[str] = field(default_factory=set)
    # Rows rejected only by filters preemption could satisfy (candidates for it).
    resolvable_rows: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.intp))
    prefilter: Status | None = None
    post_filter: str = ""

    def add(self, reason: str, count: int) -> None:
        if count > 0:
            self.reasons[reason] = self.reasons.get(reason, 0) + count

    def message(self) -> str:
        if self.total == 0 and self.prefilter is None:
            base = NO_NODES
        elif self.prefilter is not None:
            base = f"0/{self.total} nodes are available: {self.prefilter.message}."
        else:
            parts = sorted(f"{count} {reason}" for reason, count in self.reasons.items())
            base = f"0/{self.total} nodes are available: {', '.join(parts)}."
        if self.post_filter:
            base = f"{base} {self.post_filter}"
        return base


def histogram_message(total: int, reasons: dict[str, int]) -> str:
    """``0/<total> nodes are available: <n> <reason>, ...`` with kube-scheduler's ordering."""
    parts = sorted(f"{count} {reason}" for reason, count in reasons.items() if count > 0)
    return f"0/{total} nodes are available: {', '.join(parts)}."
