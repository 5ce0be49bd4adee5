"""Process-wide settings for PinCompute's long-running processes.

A region keeps every API object of its clusters in memory: hundreds of
thousands of long-lived containers that CPython's cyclic garbage collector would
otherwise walk over and over (a gen-0 pass every 700 allocations, and frequent
full passes while a store fills).  Measured on the store benchmark, the default
thresholds cost a quarter of write throughput and made a 120k-object list ten
times slower.  :func:`tune_gc` raises the thresholds; reference counting still
frees almost everything at once, and cycles are still collected, only less often.
"""

from __future__ import annotations

import gc

GC_THRESHOLDS = (50_000, 20, 100)


def tune_gc() -> None:
    gc.set_threshold(*GC_THRESHOLDS)
