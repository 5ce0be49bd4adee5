"""Cluster scheduler benchmark (issue "Federation control plane", DESIGN §11).

How many placement decisions per second the federation's cluster scheduler makes
with 100 member clusters (target >= 1,000; Karmada's users report about 20,
karmada#6943).

The region: 100 MemberClusters in three zones, each with reserved and
on-demand pools (a third also a preemptible one) reported per tier, partly
allocated; a fifth carry a ``dedicated`` NoSchedule taint, a fifth offer
``nvidia-a100`` GPUs, a tenth run only some kinds, a few are unhealthy or
cordoned; labels for team and class, cost weights of 1-3.

The stream: decisions of a mix of workloads — 70 % PinApps of 1-30 replicas
(40 % of them spread over at least two zones, some with cluster selectors,
tolerations, static weights or duplicated), 20 % PinJobs and 10 % PyTorch
training gangs, both whole to one cluster — drawn from 40 placement patterns.
Half the decisions are new workloads, half re-decide a live one (a new
generation with another replica count half the time, the same generation —
as when a cluster changes — otherwise), with its current placements in its
status.  Every decision reserves what it places; the oldest workloads are
deleted (forgotten) so that about 2,000 stay live and the region never fills.
After the run the script checks that no cluster's tier is overcommitted.

Runs, in the same process on the same stream:

* ``decisions_per_s`` — :class:`ClusterScheduler`: numpy over the cluster
  table, requests cached per uid and generation, spec-only filters and scores
  cached per placement;
* ``baseline_decisions_per_s`` — :class:`ReferenceScheduler`: the same plugins
  and division, cluster by cluster, nothing cached (``--baseline-decisions`` of
  the stream; it is too slow for all of it).

Run: ``python benchmarks/federation.py [--quick]``.  The last line printed is one
JSON object with the figures.
"""

from __future__ import annotations

import argparse
import gc
import os
import platform
import random
import sys
import time
from typing import Any

import numpy as np
import orjson

from pincompute.federation.clusterscheduler import (
    ClusterScheduler,
    ClusterTable,
    ReferenceScheduler,
)
from pincompute.federation.clusterscheduler.clustertable import PREEMPTIBLE
from pincompute.model.wellknown import TIERS

ZONES = ("us-east-1a", "us-east-1b", "us-east-1c")
LIVE = 2000


def clusters(n: int, rng: random.Random) -> list[dict[str, Any]]:
    out = []
    for i in range(n):
        spec: dict[str, Any] = {"zone": ZONES[i % 3], "region": "us-east-1",
                                "costWeight": rng.choice([1, 1, 2, 3])}
        if rng.random() < 0.2:
            spec["taints"] = [{"key": "dedicated", "value": "batch", "effect": "NoSchedule"}]
        if rng.random() < 0.2:
            spec["hardware"] = [{"name": "nvidia-a100", "type": "gpu", "count": 64}]
        if rng.random() < 0.1:
            spec["supportedKinds"] = ["PinApp", "PinJob"]
        if rng.random() < 0.02:
            spec["unschedulable"] = True
        tiers: dict[str, Any] = {}
        for tier in ("reserved", "ondemand") + (("preemptible",) if i % 3 == 0 else ()):
            cpu = rng.choice([2000, 4000, 8000])
            tiers[tier] = {
                "allocatable": {"cpu": cpu, "memory": f"{cpu * 4}Gi", "pods": cpu * 2,
                                **({"gpu": 64} if "hardware" in spec else {})},
                "allocated": {"cpu": rng.randint(0, cpu // 4), "memory": "100Gi",
                              "pods": rng.randint(0, 500)},
                "largestNode": {"cpu": 64, "memory": "256Gi"},
            }
        status: dict[str, Any] = {"tiers": tiers, "conditions": [
            {"type": "Ready", "status": "False" if rng.random() < 0.03 else "True"}]}
        out.append({"apiVersion": "pincompute.io/v1alpha1", "kind": "MemberCluster",
                    "metadata": {"name": f"member-{i:03d}",
                                 "labels": {"team": f"team-{i % 5}",
                                            "class": rng.choice(["general", "compute"])}},
                    "spec": spec, "status": status})
    return out


def placements(rng: random.Random) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for i in range(40):
        p: dict[str, Any] = {}
        if rng.random() < 0.4:
            p["spread"] = [{"topology": "zone", "minGroups": 2, "maxSkew": 2}]
        if rng.random() < 0.3:
            p["clusterSelector"] = {"matchLabels": {"team": f"team-{rng.randrange(5)}"}}
        if rng.random() < 0.2:
            p["tolerations"] = [{"key": "dedicated", "operator": "Exists"}]
        if rng.random() < 0.2:
            p["clusterAffinity"] = {"preferred": [
                {"weight": 50, "selector": {"matchLabels": {"class": "compute"}}}]}
        if i % 10 == 7:
            p["replicaScheduling"] = {"type": "Divided", "weighting": "Static", "staticWeights": [
                {"weight": 2, "selector": {"matchLabels": {"class": "compute"}}},
                {"weight": 1, "selector": {"matchLabels": {"class": "general"}}}]}
        if i % 10 == 9:
            p["replicaScheduling"] = {"type": "Duplicated"}
        out.append(p)
    return out


def template(cpu: str, memory: str, gpu: int = 0) -> dict[str, Any]:
    requests: dict[str, Any] = {"cpu": cpu, "memory": memory}
    if gpu:
        requests["nvidia.com/gpu"] = gpu
    return {"metadata": {"labels": {"app": "x"}},
            "spec": {"restartPolicy": "Always", "containers": [
                {"name": "main", "image": "registry.example/app:1", "type": "main",
                 "resources": {"requests": requests, "limits": requests}},
                {"name": "proxy", "image": "registry.example/proxy:1", "type": "sidecar",
                 "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}}}]}}


def workload(i: int, rng: random.Random, patterns: list[dict[str, Any]]) -> dict[str, Any]:
    roll = rng.random()
    placement = rng.choice(patterns)
    meta = {"name": f"w-{i}", "namespace": f"project-{i % 20}", "uid": f"uid-{i:07d}",
            "generation": 1}
    if roll < 0.7:
        kind = "PinApp"
        spec: dict[str, Any] = {"replicas": rng.randint(1, 30), "tier": rng.choice(
            ["ondemand", "ondemand", "reserved", "preemptible"]), "placement": placement,
            "template": template(rng.choice(["250m", "500m", "1", "2"]),
                                 rng.choice(["512Mi", "1Gi", "4Gi"]))}
    elif roll < 0.9:
        kind = "PinJob"
        spec = {"parallelism": rng.randint(1, 16), "tier": "ondemand",
                "placement": {k: v for k, v in placement.items() if k != "replicaScheduling"},
                "template": template("1", "2Gi")}
    else:
        kind = "PinTrainingJob"
        spec = {"framework": "pytorch", "tier": "reserved",
                "placement": {"hardware": ["nvidia-a100"]},
                "roles": {"master": {"replicas": 1, "template": template("4", "16Gi", 1)},
                          "worker": {"replicas": rng.randint(1, 7),
                                     "template": template("8", "32Gi", 1)}}}
    return {"apiVersion": "pincompute.io/v1alpha1", "kind": kind, "metadata": meta,
            "spec": spec}


def stream(n: int, seed: int) -> tuple[list[dict[str, Any]], list[tuple[str, Any]]]:
    """The member clusters and the sequence of steps: ("decide", workload) or
    ("forget", uid); a re-decision's status is filled in at run time."""
    rng = random.Random(seed)
    members = clusters(100, rng)
    patterns = placements(rng)
    steps: list[tuple[str, Any]] = []
    live: list[dict[str, Any]] = []
    made = 0
    for _ in range(n):
        if live and rng.random() < 0.5:
            old = rng.choice(live)
            again = dict(old)
            again["metadata"] = dict(old["metadata"])
            if rng.random() < 0.5:
                spec = dict(old["spec"])
                if "replicas" in spec:
                    spec["replicas"] = rng.randint(1, 30)
                again["spec"] = spec
                again["metadata"]["generation"] += 1
            live[live.index(old)] = again
            steps.append(("decide", again))
        else:
            w = workload(made, rng, patterns)
            made += 1
            live.append(w)
            steps.append(("decide", w))
            if len(live) > LIVE:
                steps.append(("forget", live.pop(0)["metadata"]["uid"]))
    return members, steps


def run(cls: type[ClusterScheduler], members: list[dict[str, Any]],
        steps: list[tuple[str, Any]]) -> dict[str, Any]:
    table = ClusterTable()
    for mc in members:
        table.upsert(mc)
    sched = cls(table)
    last: dict[str, dict[str, Any]] = {}   # uid -> status of its last decision
    latencies: list[float] = []
    unschedulable = 0
    decisions = 0
    gc.collect()
    start = time.perf_counter()
    for op, arg in steps:
        if op == "forget":
            sched.forget(arg)
            last.pop(arg, None)
            continue
        uid = arg["metadata"]["uid"]
        status = last.get(uid)
        obj = {**arg, "status": status} if status else arg
        t0 = time.perf_counter()
        d = sched.schedule(obj)
        latencies.append(time.perf_counter() - t0)
        decisions += 1
        if d.scheduled:
            last[uid] = d.status()
        else:
            unschedulable += 1
    elapsed = time.perf_counter() - start
    over = overcommitted(table)
    if over:
        raise SystemExit(f"overcommitted: {over[:5]}")
    lat = np.array(latencies) * 1e6
    return {"decisions_per_s": decisions / elapsed, "decisions": decisions,
            "seconds": elapsed, "unschedulable": unschedulable,
            "p50_us": float(np.percentile(lat, 50)), "p99_us": float(np.percentile(lat, 99)),
            "request_cache_hits": sched.requests.hits}


def overcommitted(table: ClusterTable) -> list[str]:
    bad = []
    for row in table.rows().tolist():
        for t in range(len(TIERS)):
            if t == PREEMPTIBLE or not table.has_pool[row, t]:
                continue
            if ((table.used[row, t] + table.resv[row, t]) > table.alloc[row, t]).any():
                bad.append(f"{table.names[row]}/{TIERS[t]}")
    return bad


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="a small case for smoke tests")
    ap.add_argument("--decisions", type=int)
    ap.add_argument("--baseline-decisions", type=int)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    n = args.decisions or (2000 if args.quick else 20_000)
    nb = args.baseline_decisions or (100 if args.quick else 1000)
    members, steps = stream(n, args.seed)
    print(f"cluster scheduler: 100 member clusters, {n} decisions; python "
          f"{platform.python_version()}, {os.cpu_count()} cpus", file=sys.stderr)
    fast = run(ClusterScheduler, members, steps)
    print(f"vectorized: {fast['decisions_per_s']:,.0f} decisions/s (p50 {fast['p50_us']:.0f} "
          f"us, p99 {fast['p99_us']:.0f} us; {fast['unschedulable']} unschedulable)",
          file=sys.stderr)
    prefix: list[tuple[str, Any]] = []
    count = 0
    for step in steps:
        prefix.append(step)
        count += step[0] == "decide"
        if count >= nb:
            break
    base = run(ReferenceScheduler, members, prefix)
    print(f"baseline:   {base['decisions_per_s']:,.1f} decisions/s on {base['decisions']} "
          f"(p50 {base['p50_us']:.0f} us)", file=sys.stderr)
    result = {
        "decisions_per_s": round(fast["decisions_per_s"]),
        "baseline_decisions_per_s": round(base["decisions_per_s"], 1),
        "speedup": round(fast["decisions_per_s"] / base["decisions_per_s"], 1),
        "clusters": len(members), "decisions": fast["decisions"],
        "baseline_decisions": base["decisions"],
        "p50_us": round(fast["p50_us"]), "p99_us": round(fast["p99_us"]),
        "baseline_p50_us": round(base["p50_us"]),
        "unschedulable": fast["unschedulable"],
        "request_cache_hits": fast["request_cache_hits"],
    }
    print(orjson.dumps(result).decode())


if __name__ == "__main__":
    main()
