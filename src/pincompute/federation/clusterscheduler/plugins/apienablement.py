"""APIEnablement: the cluster runs the workload's kind.

A MemberCluster may list the workload kinds it supports
(``spec.supportedKinds``, e.g. a cluster without the training operator); a
cluster that lists none runs every kind.  Spec side only.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from pincompute.federation.clusterscheduler.interface import Context, Normalize

NAME = "APIEnablement"


class APIEnablement:
    name = NAME
    static = True
    normalize: Normalize = None

    def filter(self, ctx: Context, pos: np.ndarray) -> np.ndarray:
        kind = ctx.request.kind
        return np.array([(k := ctx.facts(int(i)).kinds) is None or kind in k for i in pos],
                        dtype=bool)

    def explain(self, ctx: Context, pos: np.ndarray) -> list[str]:
        return [f"kind {ctx.request.kind} is not supported (supportedKinds: "
                f"{', '.join(sorted(ctx.facts(int(i)).kinds or ())) or 'none'})" for i in pos]


def new(args: Mapping[str, Any]) -> APIEnablement:
    return APIEnablement()
