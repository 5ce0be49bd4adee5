"""The vectorized, cached scheduler and the cluster-by-cluster reference decide alike."""

from __future__ import annotations

import random

from pincompute.federation.clusterscheduler import (
    ClusterScheduler,
    ClusterTable,
    ReferenceScheduler,
)

from .support import app, job, member, training


def _clusters(rng: random.Random) -> list[dict]:
    out = []
    for i in range(24):
        extra: dict = {}
        if rng.random() < 0.2:
            extra["taints"] = [{"key": "dedicated", "value": "ml", "effect": "NoSchedule"}]
        if rng.random() < 0.1:
            extra["supportedKinds"] = ["PinApp"]
        if rng.random() < 0.3:
            extra["hardware"] = [{"name": "nvidia-a100"}]
        if rng.random() < 0.1:
            extra["unschedulable"] = True
        out.append(member(f"c{i:02d}", f"z{i % 3}", cpu=str(rng.choice([8, 16, 64])),
                          allocated={"cpu": str(rng.randint(0, 8))},
                          labels={"team": rng.choice(["a", "b"])},
                          tiers=rng.choice([("ondemand",), ("ondemand", "reserved")]),
                          costWeight=rng.choice([1, 2]), **extra))
    return out


def _workload(rng: random.Random, i: int) -> dict:
    placement: dict = {}
    if rng.random() < 0.3:
        placement["spread"] = [{"topology": "zone", "minGroups": 2}]
    if rng.random() < 0.3:
        placement["clusterSelector"] = {"matchLabels": {"team": rng.choice(["a", "b"])}}
    if rng.random() < 0.2:
        placement["tolerations"] = [{"key": "dedicated", "operator": "Exists"}]
    if rng.random() < 0.2:
        placement["hardware"] = ["nvidia-a100"]
    kind = rng.random()
    if kind < 0.6:
        return app(rng.randint(1, 20), placement=placement, uid=f"w{i}",
                   tier=rng.choice(["ondemand", "reserved"]), cpu=rng.choice(["500m", "2"]))
    if kind < 0.85:
        return job(rng.randint(1, 8), placement=placement, uid=f"w{i}")
    return training(rng.randint(1, 3), placement=placement, uid=f"w{i}")


def test_same_decisions_same_reasons() -> None:
    rng = random.Random(7)
    clusters = _clusters(rng)
    fast, slow = ClusterScheduler(ClusterTable()), ReferenceScheduler(ClusterTable())
    for mc in clusters:
        fast.table.upsert(mc)
        slow.table.upsert(mc)
    done: list[dict] = []
    generation: dict[str, int] = {}
    for i in range(200):
        if done and rng.random() < 0.4:
            # A re-decision: the same workload with its current placements, maybe rescaled.
            old = rng.choice(done)
            uid = old["metadata"]["uid"]
            generation[uid] = generation.get(uid, 1) + 1  # a new spec, a new generation
            obj = {**old, "metadata": {**old["metadata"], "generation": generation[uid]}}
            if obj["kind"] == "PinApp":
                obj["spec"] = {**obj["spec"], "replicas": rng.randint(1, 20)}
        else:
            obj = _workload(rng, i)
        a, b = fast.schedule(obj), slow.schedule(obj)
        assert a == b, i
        if a.scheduled:
            done.append({**obj, "status": a.status()})
    assert slow.vectorized is False
    assert sum(1 for o in done if o["metadata"]["generation"] > 1) > 20
