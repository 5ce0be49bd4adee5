"""Duplicated: every chosen cluster runs all the replicas (daemon-like workloads)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from pincompute.federation.clusterscheduler.interface import Context

NAME = "Duplicated"


class Duplicated:
    name = NAME

    def divide(self, ctx: Context, replicas: int, pos: np.ndarray, caps: np.ndarray,
               rank: np.ndarray) -> np.ndarray:
        return np.where(caps >= replicas, replicas, 0).astype(np.int64)


def new(args: Mapping[str, Any]) -> Duplicated:
    return Duplicated()
