"""Quota admission of host workloads: projects, tiers, queues (DESIGN §5 step 2, §7).

* :mod:`.demand` — what a workload asks of its quota (all its pods at once);
* :mod:`.quota` — per project and tier, limits and running totals;
* :mod:`.queue` — the state table, the ordered queues, passes, reasons and positions;
* :mod:`.controller` — the host controller that keeps them and writes status.
"""
