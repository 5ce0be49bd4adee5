"""TaintToleration: a cluster's taints against the placement's tolerations.

Filter: every ``NoSchedule`` and ``NoExecute`` taint of the MemberCluster must be
tolerated by one of ``placement.tolerations`` (Kubernetes' matching rules: an
empty key with ``Exists`` tolerates everything, an empty effect every effect).
Score: fewer untolerated ``PreferNoSchedule`` taints is better.  Spec side only.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from pincompute.federation.clusterscheduler.interface import Context, Normalize

NAME = "TaintToleration"
HARD = ("NoSchedule", "NoExecute")


def tolerated(tolerations: Sequence[Mapping[str, Any]], taint: Mapping[str, Any]) -> bool:
    """Whether one of ``tolerations`` tolerates ``taint``."""
    for tol in tolerations:
        effect = tol.get("effect")
        if effect and effect != taint.get("effect"):
            continue
        key = tol.get("key")
        if not key:
            if tol.get("operator") == "Exists":
                return True
            continue
        if key != taint.get("key"):
            continue
        if tol.get("operator") == "Exists" or (tol.get("value") or "") == (
                taint.get("value") or ""):
            return True
    return False


def _untolerated(ctx: Context, pos: int, effects: tuple[str, ...]) -> list[Mapping[str, Any]]:
    tolerations = ctx.request.placement.get("tolerations") or ()
    return [t for t in ctx.facts(pos).taints
            if t.get("effect") in effects and not tolerated(tolerations, t)]


def _text(taint: Mapping[str, Any]) -> str:
    value = taint.get("value")
    return f"{taint['key']}{'=' + value if value else ''}:{taint['effect']}"


class TaintToleration:
    name = NAME
    static = True
    normalize: Normalize = "reverse"

    def filter(self, ctx: Context, pos: np.ndarray) -> np.ndarray:
        return np.array([not _untolerated(ctx, int(i), HARD) for i in pos], dtype=bool)

    def explain(self, ctx: Context, pos: np.ndarray) -> list[str]:
        return ["untolerated taint " + ", ".join(_text(t) for t in _untolerated(ctx, int(i),
                                                                                 HARD))
                for i in pos]

    def score(self, ctx: Context, pos: np.ndarray) -> np.ndarray:
        return np.array([len(_untolerated(ctx, int(i), ("PreferNoSchedule",))) for i in pos],
                        dtype=np.float64)


def new(args: Mapping[str, Any]) -> TaintToleration:
    return TaintToleration()
