"""Hardware: the cluster offers every hardware the placement names.

``placement.hardware`` lists hardware names (GPU families such as
``nvidia-a100``, accelerators, local storage) that must all appear in the
MemberCluster's ``spec.hardware[].name``.  How many GPUs are free is
:mod:`.resourcesfit`'s question.  Spec side only.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from pincompute.federation.clusterscheduler.interface import Context, Normalize

NAME = "Hardware"


class Hardware:
    name = NAME
    static = True
    normalize: Normalize = None

    def filter(self, ctx: Context, pos: np.ndarray) -> np.ndarray:
        wanted = ctx.request.placement.get("hardware")
        if not wanted:
            return np.ones(len(pos), dtype=bool)
        need = frozenset(wanted)
        return np.array([need <= ctx.facts(int(i)).hardware for i in pos], dtype=bool)

    def explain(self, ctx: Context, pos: np.ndarray) -> list[str]:
        need = ctx.request.placement.get("hardware") or ()
        return ["lacks hardware " + ", ".join(h for h in need
                                              if h not in ctx.facts(int(i)).hardware)
                for i in pos]


def new(args: Mapping[str, Any]) -> Hardware:
    return Hardware()
