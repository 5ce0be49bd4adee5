"""Extension points of the cluster scheduler, and the context a decision shares.

Theory of operation
-------------------
One decision places one workload (a :class:`~.workload.Request`) on member
clusters in three steps, as Karmada's scheduler does; plugins implement them
and a :class:`~.profile.Profile` enables them by name:

* **Filter** — which clusters may take the workload at all.  A filter answers
  for many clusters at once: given *positions* (indexes into the decision's
  candidate rows, :attr:`Context.rows`) it returns a boolean numpy array.  The
  vectorized scheduler passes every position; the reference scheduler
  (:mod:`.reference`) one at a time.  ``explain`` gives the reason for each
  position it rejected.  A filter marked ``static`` depends only on the
  clusters' spec side (labels, taints, hardware, kinds) and on the request's
  ``static_key`` (kind, tier, placement), so the scheduler caches its answer
  until the table's ``spec_epoch`` moves.
* **Score** — how much each feasible cluster is preferred.  Raw scores are
  rescaled over the feasible clusters as the plugin's ``normalize`` says
  (``"max"``: highest → 100; ``"reverse"``: lowest → 100; ``None``: already
  0-100) and summed with the profile's weights.
* **Divide** — how the replicas are split among the chosen clusters
  (:mod:`.division` has the arithmetic): duplicated, by static weights, by
  available replicas (dynamic), or filling the best clusters first.  The
  scheduler itself applies the placement's spread constraints around the
  divider (zones first, then clusters) and keeps replicas where they already
  run when the profile enables ``Locality``.

:class:`Context` carries what plugins share within a decision: the table, the
request, the workload's current placement and what it already holds, and —
computed once, on first use — each candidate's free room and the replicas (or,
for workloads that go whole to one cluster, whole copies) that fit there.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

import numpy as np

from .clustertable import ClusterTable
from .resources import fits_replicas
from .workload import Request

Normalize = Literal["max", "reverse"] | None


@dataclass(slots=True)
class Context:
    """What the plugins of one decision share (see the module docstring)."""

    table: ClusterTable
    request: Request
    uid: str
    rows: np.ndarray
    """The candidate table rows (every live cluster), ascending."""
    current: np.ndarray
    """Replicas the workload has on each candidate now (its last decision)."""
    own: np.ndarray
    """Room the workload itself holds on each candidate (reserved or running), which is
    free to it; shape (len(rows), DIMS)."""
    data: dict[str, Any] = field(default_factory=dict)

    def free(self, pos: np.ndarray | slice) -> np.ndarray:
        """Free room at these positions for the workload's tier, its own room included."""
        got = self.data.get("free")
        if got is None:
            got = self.data["free"] = (self.table.free(self.request.tier_index, self.rows)
                                       + self.own)
        return got[pos]

    def caps(self, pos: np.ndarray | slice) -> np.ndarray:
        """How many replicas fit at these positions (``Whole`` workloads: whole copies)."""
        got = self.data.get("caps")
        if got is None:
            got = self.data["caps"] = fits_replicas(self.free(slice(None)), self.unit)
        return got[pos]

    @property
    def unit(self) -> np.ndarray:
        r = self.request
        return r.whole if r.mode == "Whole" else r.per_replica

    def facts(self, pos: int) -> Any:
        return self.table.facts[int(self.rows[pos])]


@runtime_checkable
class FilterPlugin(Protocol):
    name: str
    static: bool

    def filter(self, ctx: Context, pos: np.ndarray) -> np.ndarray:
        """A boolean per position: whether the cluster may take the workload."""
        ...

    def explain(self, ctx: Context, pos: np.ndarray) -> list[str]:
        """Why each of these (rejected) positions was rejected."""
        ...


@runtime_checkable
class ScorePlugin(Protocol):
    name: str
    static: bool
    normalize: Normalize

    def score(self, ctx: Context, pos: np.ndarray) -> np.ndarray:
        """A raw score (float) per position."""
        ...


@runtime_checkable
class DividePlugin(Protocol):
    """A divider; one with ``sticky = False`` is not kept near the current split."""

    name: str

    def divide(self, ctx: Context, replicas: int, pos: np.ndarray, caps: np.ndarray,
               rank: np.ndarray) -> np.ndarray:
        """Replicas per position (at most its ``caps``; ``rank``: lower is preferred)."""
        ...


def placement_of(ctx: Context) -> Mapping[str, Any]:
    return ctx.request.placement
