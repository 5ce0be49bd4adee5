"""BinPacking: prefer the fullest clusters of the tier (most allocated), so that work
fills clusters one after the other and the others stay free for large workloads.

The score is the mean used fraction after one replica, times 100 — the mirror of
:mod:`.leastallocated`.  The bin-packing profile pairs it with the
``Aggregated`` divider, which fills the best-scored cluster before the next.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from pincompute.federation.clusterscheduler.interface import Context, Normalize

from .allocation import free_fractions

NAME = "BinPacking"


class BinPacking:
    name = NAME
    static = False
    normalize: Normalize = None

    def score(self, ctx: Context, pos: np.ndarray) -> np.ndarray:
        frac, counted = free_fractions(ctx, pos)
        used = np.where(counted, 1.0 - frac, 0).sum(axis=1)
        return 100.0 * used / np.maximum(counted.sum(axis=1), 1)


def new(args: Mapping[str, Any]) -> BinPacking:
    return BinPacking()
