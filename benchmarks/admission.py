"""Quota admission benchmark (issue 10 "Performance", admission).

10,000 workloads wait in their projects' queues (10 projects, all three tiers,
1-4 replicas of 1 cpu each, quotas that admit about a tenth of them); then
capacity appears: every quota is raised, in ten steps, until everything fits.
Figures:

* ``drain_s`` — the admission passes from the first raise until every queue is
  empty, including each admitted or preempted workload's status
  (:meth:`AdmissionQueues.status`, what the controller writes) and the first
  ``REFRESH_FIRST`` positions of every queue after each pass, as the controller
  refreshes them;
* ``positions_correct`` — after the initial queueing and after every step, every
  queued workload's position and reason are checked against a naive recomputation
  from scratch (positions by sorting the queue; the ``used X of Y`` figures of a
  blocked head by summing every admitted workload; the ``N workloads ahead`` of
  the rest by counting) — not timed;
* ``baseline_drain_s`` — the naive approach on ``baseline_workloads`` workloads:
  after every admission recompute each project's usage by summing its admitted
  workloads and re-sort its queues, and after each pass recompute every queued
  workload's position (what a controller without running totals and ordered
  queues does); ``drain_s_at_baseline_size`` is ours on the same case;
* ``controller_drain_s`` — end to end on an embedded host: the admission
  controller with ``controller_workloads`` PinApps queued (statuses written),
  from the quota raise until every PinApp's ``Admitted`` status is written.

Run: ``python benchmarks/admission.py [--quick]``.  The last line printed is one
JSON object with the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import random
import re
import sys
import time
from typing import Any

import orjson

from pincompute.federation.admission.controller import REFRESH_FIRST, add_admission_controller
from pincompute.federation.admission.demand import workload_demand
from pincompute.federation.admission.queue import BACKOFF_MAX, AdmissionQueues, workload_key
from pincompute.kube.backends.embedded import EmbeddedStore
from pincompute.kube.resource import NAMESPACES
from pincompute.model import registry
from pincompute.model.registry import PINAPPS, PROJECTS
from pincompute.model.wellknown import TIERS

PROJECTS_N = 10
STEPS = 10
TIER_MIX = ("reserved", "ondemand", "ondemand", "ondemand", "preemptible")


def workloads(n: int, *, seed: int = 1) -> list[dict[str, Any]]:
    rnd = random.Random(seed)
    out = []
    for i in range(n):
        out.append({
            "kind": "PinApp",
            "metadata": {"name": f"w{i:05d}", "namespace": f"p{i % PROJECTS_N}",
                         "uid": f"u{i}", "generation": 1,
                         "creationTimestamp": f"2026-01-01T{i // 3600 % 24:02d}:"
                                              f"{i // 60 % 60:02d}:{i % 60:02d}Z"},
            "spec": {"tier": rnd.choice(TIER_MIX), "replicas": rnd.randint(1, 4),
                     "template": {"spec": {"containers": [{"name": "c", "image": "i",
                                  "resources": {"requests": {"cpu": "1"}}}]}}}})
    return out


def total_cpu(objs: list[dict[str, Any]]) -> dict[tuple[str, str], int]:
    need: dict[tuple[str, str], int] = {}
    for obj in objs:
        key = (obj["metadata"]["namespace"], obj["spec"]["tier"])
        need[key] = need.get(key, 0) + obj["spec"]["replicas"]
    return need


def quota_at(need: dict[tuple[str, str], int], project: str, fraction: float
             ) -> dict[str, Any]:
    # Preemptible gets no quota of its own: it borrows what the others leave idle.
    return {t: {"cpu": str(int(need.get((project, t), 0) * fraction) if t != "preemptible"
                           else 0)} for t in TIERS}


def fraction(step: int) -> float:
    """The share of each tier's demand its quota admits after ``step`` raises."""
    return 0.1 + 0.9 * step / STEPS + (1.5 if step == STEPS else 0.0)


# --- checking against a recomputation from scratch ----------------------------------------------

AHEAD = re.compile(r"^(\d+) workloads ahead")
USED = re.compile(r"cpu: requested (\d+), used (\d+) of (\d+)")


def check(q: AdmissionQueues) -> bool:
    """Every queued workload's position and reason, against a naive recomputation."""
    used: dict[tuple[str, str], int] = {}
    for e in q.entries.values():
        if e.state == "Admitted":
            assert e.charged is not None and e.charged_tier is not None
            k = (e.project, e.charged_tier)
            used[k] = used.get(k, 0) + e.charged[0]
    queues: dict[tuple[str, str], list[Any]] = {}
    for e in q.entries.values():
        if e.state != "Admitted":
            queues.setdefault((e.project, e.tier), []).append(e)
    for (project, tier), entries in queues.items():
        entries.sort(key=lambda e: e.ticket)
        for i, e in enumerate(entries):
            if q.position(e.key) != i + 1:
                return False
            reason, why, _ = q.explain(e.key)
            if reason == "WaitingInQueue":
                m = AHEAD.match(why)
                if m is None or int(m.group(1)) != i:
                    return False
            elif reason == "QuotaExceeded":
                m = USED.search(why)
                if m is None or int(m.group(2)) * 1000 != used.get((project, tier), 0) or \
                        int(m.group(1)) * 1000 != e.demand[0]:
                    return False
            elif reason not in ("BackingOff", "ExceedsQuota"):
                return False
    return True


# --- ours ---------------------------------------------------------------------------------------

class Clock:
    """Back-offs are policy, not work: between steps the benchmark's clock jumps past them."""

    now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def run_ours(objs: list[dict[str, Any]], *, verify: bool) -> tuple[float, bool, int]:
    need = total_cpu(objs)
    clock = Clock()
    q = AdmissionQueues(clock=clock)
    projects = [f"p{i}" for i in range(PROJECTS_N)]
    for p in projects:
        q.set_project(p, quota_at(need, p, fraction(0)))
    for obj in objs:
        q.observe(obj)
    for p in projects:
        q.cycle(p)
    correct = check(q) if verify else True
    elapsed = 0.0
    statuses = 0
    for step in [*range(1, STEPS + 1), STEPS]:  # the last again: the preempted come back
        clock.now += BACKOFF_MAX + 1
        for p in projects:
            q.set_project(p, quota_at(need, p, fraction(step)))
        t0 = time.perf_counter()
        for p in projects:
            result = q.cycle(p)
            for key in result.changed:
                q.status(key)
                statuses += 1
            for tier in TIERS:
                for key in q.queue_keys(p, tier, first=REFRESH_FIRST):
                    q.status(key)
        elapsed += time.perf_counter() - t0
        if verify:
            correct = correct and check(q)
    left = sum(1 for e in q.entries.values() if e.state != "Admitted")
    return elapsed, correct and left == 0, statuses


# --- the naive baseline -------------------------------------------------------------------------

def run_naive(objs: list[dict[str, Any]]) -> float:
    need = total_cpu(objs)
    projects = [f"p{i}" for i in range(PROJECTS_N)]
    items = [{"key": workload_key(o), "project": o["metadata"]["namespace"],
              "tier": o["spec"]["tier"], "cpu": workload_demand(o)[0],
              "order": (o["metadata"]["creationTimestamp"], i), "admitted": None}
             for i, o in enumerate(objs)]
    limits: dict[tuple[str, str], int] = {}
    elapsed = 0.0
    for step in range(0, STEPS + 1):
        for p in projects:
            for t, amounts in quota_at(need, p, fraction(step)).items():
                limits[(p, t)] = int(amounts["cpu"]) * 1000
        t0 = time.perf_counter()
        for p in projects:
            for tier in TIERS:
                while True:
                    # Recompute usage and the queue from scratch at every decision.
                    usage: dict[str, int] = dict.fromkeys(TIERS, 0)
                    for it in items:
                        if it["project"] == p and it["admitted"] is not None:
                            usage[it["admitted"]] += it["cpu"]
                    queue = sorted((it for it in items if it["project"] == p and
                                    it["tier"] == tier and it["admitted"] is None),
                                   key=lambda it: it["order"])
                    if not queue:
                        break
                    head = queue[0]
                    lenders = (tier, "ondemand", "reserved") if tier == "preemptible" \
                        else (tier,)
                    for t in lenders:
                        if usage[t] + head["cpu"] <= limits[(p, t)]:
                            head["admitted"] = t
                            break
                    else:
                        break
            # Every queued workload's position and reason, recomputed.
            for tier in TIERS:
                queue = sorted((it for it in items if it["project"] == p and
                                it["tier"] == tier and it["admitted"] is None),
                               key=lambda it: it["order"])
                for i, it in enumerate(queue):
                    it["position"] = i + 1
        elapsed += time.perf_counter() - t0
    assert all(it["admitted"] is not None for it in items)
    return elapsed


# --- end to end ---------------------------------------------------------------------------------

async def run_controller(objs: list[dict[str, Any]]) -> float:
    from pincompute.runtime.manager import Manager

    store = await EmbeddedStore.open(path=None)
    registry.install(store, resources=registry.HOST_RESOURCES)
    host = store.client()
    need = total_cpu(objs)
    projects = [f"p{i}" for i in range(PROJECTS_N)]
    for p in projects:
        await host.create(NAMESPACES, {"metadata": {"name": p}})
        await host.create(PROJECTS, {"metadata": {"name": p},
                                     "spec": {"quota": quota_at(need, p, 0.1)}})
    # Short back-offs: workloads preempted while the queue fills come back within the run.
    queues = AdmissionQueues(backoff_base=0.1, backoff_max=0.5)
    manager = Manager(name="bench", shutdown_timeout=10.0)
    add_admission_controller(manager, host=host, queues=queues)
    task = asyncio.create_task(manager.run())
    await manager.wait_started()
    sem = asyncio.Semaphore(64)

    async def create(obj: dict[str, Any]) -> None:
        body = {"metadata": {"name": obj["metadata"]["name"],
                             "namespace": obj["metadata"]["namespace"]},
                "spec": obj["spec"]}
        async with sem:
            await host.create(PINAPPS, body)

    await asyncio.gather(*(create(o) for o in objs))

    async def settled(state: str | None) -> None:
        while True:
            items = (await host.list(PINAPPS)).items
            states = [((o.get("status") or {}).get("admission") or {}).get("state")
                      for o in items]
            if (state is None and None not in states) or \
                    (state is not None and all(s == state for s in states)):
                return
            await asyncio.sleep(0.2)

    await settled(None)  # every workload has its first status (queued or admitted)
    t0 = time.perf_counter()
    for p in projects:
        proj = await host.get(PROJECTS, p)
        proj["spec"]["quota"] = quota_at(need, p, fraction(STEPS))
        await host.update(PROJECTS, proj)
    await settled("Admitted")
    elapsed = time.perf_counter() - t0
    manager.stop()
    await task
    await store.close()
    return elapsed


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="a small case for smoke tests")
    ap.add_argument("--workloads", type=int, default=None)
    ap.add_argument("--baseline-workloads", type=int, default=None)
    ap.add_argument("--controller-workloads", type=int, default=None)
    args = ap.parse_args()
    n = args.workloads or (1000 if args.quick else 10_000)
    nb = args.baseline_workloads or (300 if args.quick else 10_000)
    nc = args.controller_workloads or (300 if args.quick else 10_000)
    print(f"admission: {n} workloads, {PROJECTS_N} projects, {STEPS} quota raises; "
          f"python {platform.python_version()}, {os.cpu_count()} cpus", file=sys.stderr)
    objs = workloads(n)
    drain, correct, statuses = run_ours(objs, verify=True)
    print(f"ours:      drained {n} in {drain:.3f} s ({statuses} status answers); "
          f"positions and reasons correct: {correct}", file=sys.stderr)
    small = workloads(nb)
    ours_small, _, _ = run_ours(small, verify=False)
    naive = run_naive(small)
    print(f"baseline:  {nb} workloads: naive {naive:.3f} s, ours {ours_small:.4f} s "
          f"({naive / max(ours_small, 1e-9):.0f}x)", file=sys.stderr)
    controller = asyncio.run(run_controller(workloads(nc, seed=2)))
    print(f"controller: {nc} PinApps admitted (statuses written) in {controller:.2f} s",
          file=sys.stderr)
    print(orjson.dumps({
        "workloads": n, "drain_s": round(drain, 4), "positions_correct": correct,
        "baseline_workloads": nb, "baseline_drain_s": round(naive, 4),
        "drain_s_at_baseline_size": round(ours_small, 4),
        "controller_workloads": nc, "controller_drain_s": round(controller, 3),
    }).decode())


if __name__ == "__main__":
    main()
