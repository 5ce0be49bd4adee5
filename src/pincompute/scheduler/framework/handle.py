"""What a plugin may use of the framework: the handle its factory receives.

Theory of operation
-------------------
A plugin factory gets the plugin's arguments and a :class:`FrameworkHandle`
(``new(args, handle)``, see :mod:`.registry`).  The handle is the plugin's only
window on the rest of the scheduler: the node table, the pods waiting at Permit,
the preemption policies, the what-if evaluation of filters (preemption asks
"would the pod fit if these victims were gone?"), the binder, and the
:class:`Effects` sink through which a plugin asks for writes it cannot make
inside a synchronous decision (nominate a node, evict a victim).

Both are protocols, so a plugin depends on this small surface and not on
:class:`~.pipeline.Framework`, which implements it (the type checker proves
that where the framework hands itself to the registry).  Protocols cost nothing
at run time: the plugins call the framework's attributes directly.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol

import numpy as np

if TYPE_CHECKING:
    from pincompute.scheduler.binder import Binder
    from pincompute.scheduler.equivalence import ActiveFilter, ActiveScore
    from pincompute.scheduler.nodetable import NodeTable
    from pincompute.scheduler.podinfo import PodInfo

    from .interface import PreemptionPolicyPlugin
    from .waiting import WaitingPods


class Effects(Protocol):
    """Writes plugins request during a decision; the scheduler performs them asynchronously."""

    def nominate(self, pod: PodInfo, node: str) -> None: ...

    def evict(self, victim: PodInfo, preemptor: PodInfo, node: str) -> None: ...


class FrameworkHandle(Protocol):
    """The framework as the plugins see it (implemented by :class:`~.pipeline.Framework`)."""

    @property
    def table(self) -> NodeTable:
        """The node table every Filter and Score reads (and preemption edits what-if)."""
        ...

    @property
    def waiting(self) -> WaitingPods:
        """Pods held at Permit (the gang allows or rejects its waiting members)."""
        ...

    @property
    def policies(self) -> Sequence[PreemptionPolicyPlugin]:
        """The profile's preemption policies, in profile order."""
        ...

    @property
    def effects(self) -> Effects:
        """Where nominations and evictions are requested."""
        ...

    @property
    def binder(self) -> Binder | None:
        """How a decision is written to the API (None: binding is not configured)."""
        ...

    def active(self, pod: PodInfo) -> tuple[list[ActiveFilter], list[ActiveScore]]:
        """The filters and scores that apply to ``pod``, with what they depend on."""
        ...

    def fits(self, pod: PodInfo, rows: np.ndarray) -> np.ndarray:
        """Whether ``pod`` passes every applicable filter on ``rows`` now (uncached)."""
        ...
