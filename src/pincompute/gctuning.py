"""The garbage collector's settings for PinCompute's long-running processes.

A region keeps every API object of its clusters in memory: hundreds of
thousands of long-lived containers that CPython's cyclic garbage collector would
otherwise walk over and over (a gen-0 pass every 700 allocations, and frequent
full passes while a store fills).  Measured on the store benchmark, the default
thresholds cost a quarter of write throughput and made a 120k-object list ten
times slower; (100k, 50, 100) brought the informer's 120k-object initial list
from 2.6 s to 1.8 s against (50k, 20, 100).  :func:`tune_gc` raises the
thresholds; reference counting still frees almost everything at once, and
cycles are still collected, only less often.
"""

from __future__ import annotations

import gc

GC_THRESHOLDS = (100_000, 50, 100)


def tune_gc() -> None:
    gc.set_threshold(*GC_THRESHOLDS)
