"""Status aggregation: totals, per-cluster entries, conditions and forwarded events."""

from __future__ import annotations

import pytest

from pincompute.federation.eventforward import EventForwarder
from pincompute.federation.statusaggregation import aggregate, revision_of, shard_counts
from pincompute.kube.objects import condition_true, get_condition
from pincompute.kube.resource import EVENTS
from pincompute.model.registry import PINAPPS, PINJOBS
from pincompute.model.wellknown import FORWARDED_EVENT_LABEL, SIM_ANNOTATION_PREFIX
from pincompute.region import Region
from tests.waiting import eventually

from .simregion import NS, pinapp, place, region

__all__ = ["region"]
pytestmark = pytest.mark.timeout(60)


def _app_shard(replicas: int, ready: int, *, template: object = None,
               generation: int = 1) -> dict:
    return {"metadata": {"generation": generation},
            "spec": {"replicas": replicas, "template": template},
            "status": {"observedGeneration": 1, "replicas": replicas, "readyReplicas": ready,
                       "availableReplicas": ready, "updatedReplicas": replicas}}


def test_app_totals_count_only_shards_on_the_host_revision() -> None:
    host = {"spec": {"replicas": 5, "template": "new"}}
    placements = [{"cluster": "a", "replicas": 3}, {"cluster": "b", "replicas": 2}]
    out = aggregate("PinApp", host, placements,
                    {"a": _app_shard(3, 3, template="new"), "b": _app_shard(2, 1,
                                                                             template="old")},
                    {"a": "zone-a", "b": "zone-b"})
    assert (out["replicas"], out["readyReplicas"], out["availableReplicas"],
            out["updatedReplicas"], out["unavailableReplicas"]) == (5, 4, 4, 3, 1)
    assert out["updateRevision"] == revision_of("new")
    assert out["clusters"] == [
        {"cluster": "a", "zone": "zone-a", "replicas": 3, "readyReplicas": 3},
        {"cluster": "b", "zone": "zone-b", "replicas": 2, "readyReplicas": 1}]
    available = next(c for c in out["conditions"] if c["type"] == "Available")
    assert available["status"] is False and out["phase"] == "Progressing"


def test_a_missing_shard_is_listed_and_a_stale_status_is_not_ready() -> None:
    out = aggregate("PinApp", {"spec": {"replicas": 1, "template": "t"}},
                    [{"cluster": "a", "replicas": 1}], {"a": None}, {})
    assert out["clusters"] == [{"cluster": "a", "replicas": 0, "readyReplicas": 0,
                                "message": "shard not created yet"}]
    stale = _app_shard(1, 1, generation=2)
    assert not shard_counts("PinApp", stale).ready_enough


def test_job_totals_and_conditions() -> None:
    def job(phase: str, **status: int) -> dict:
        conditions = [{"type": "Complete", "status": "True"}] if phase == "Succeeded" else []
        return {"spec": {}, "status": {"phase": phase, "conditions": conditions, **status}}

    placements = [{"cluster": "a"}, {"cluster": "b"}]
    running = aggregate("PinJob", {"spec": {}}, placements,
                        {"a": job("Running", active=2), "b": job("Succeeded", succeeded=3)}, {})
    assert (running["active"], running["succeeded"], running["failed"],
            running["phase"]) == (2, 3, 0, "Running")
    assert running["conditions"] == []
    done = aggregate("PinJob", {"spec": {}}, placements,
                     {"a": job("Succeeded", succeeded=2), "b": job("Succeeded", succeeded=3)},
                     {})
    assert done["phase"] == "Succeeded"
    assert [c["type"] for c in done["conditions"]] == ["Complete"]
    failed = aggregate("PinJob", {"spec": {}}, placements,
                       {"a": job("Failed", failed=1), "b": job("Succeeded", succeeded=3)}, {})
    assert failed["phase"] == "Failed" and "a" in failed["conditions"][0]["message"]


async def test_an_app_reaches_aggregated_availability_with_forwarded_events(
        region: Region) -> None:
    host = region.host.client
    await host.create(PINAPPS, pinapp(replicas=3), namespace=NS)
    await place(region, "web", {"zone-a-1": 1, "zone-b-1": 1, "zone-c-1": 1})

    async def available() -> dict | None:
        obj = await host.get(PINAPPS, "web", namespace=NS)
        return obj if condition_true(obj, "Available") and \
            obj["status"].get("phase") == "Running" else None

    obj = await eventually(available, what="Available on the host", timeout=30)
    status = obj["status"]
    assert (status["replicas"], status["readyReplicas"], status["updatedReplicas"]) == (3, 3, 3)
    assert [c["cluster"] for c in status["clusters"]] == ["zone-a-1", "zone-b-1", "zone-c-1"]
    assert get_condition(obj, "Progressing")["reason"] == "NewRevisionAvailable"

    async def forwarded() -> list:
        events = await host.list(EVENTS, namespace=NS, label_selector=FORWARDED_EVENT_LABEL)
        return [e for e in events if e["involvedObject"]["name"] == "web"]

    events = await eventually(forwarded, what="forwarded member events", timeout=15)
    assert all(e["message"].startswith(f"[{e['metadata']['labels'][FORWARDED_EVENT_LABEL]}]")
               for e in events)
    keys = [(e["metadata"]["labels"][FORWARDED_EVENT_LABEL], e["reason"]) for e in events]
    assert len(keys) == len(set(keys))   # one per cluster and reason

    # A restarted forwarder (nothing in memory) updates the same Events, adds none.
    fresh = EventForwarder(host=host, clusters=region.clusterset)
    shards = {m.name: await m.client.get(PINAPPS, "web", namespace=NS) for m in region.members}
    await fresh.forward(obj, shards)
    again = await forwarded()
    # (the region's own forwarder may add Events for reasons new since: compare by name)
    assert {e["metadata"]["name"] for e in events} <= {e["metadata"]["name"] for e in again}
    assert len({(e["metadata"]["labels"][FORWARDED_EVENT_LABEL], e["reason"])
                for e in again}) == len(again)


async def test_a_job_placed_whole_aggregates_to_complete(region: Region) -> None:
    host = region.host.client
    template = {"metadata": {"annotations": {SIM_ANNOTATION_PREFIX + "run-duration": "0.05"}},
                "spec": {"containers": [{"name": "main", "image": "local",
                                         "command": ["true"]}]}}
    await host.create(PINJOBS, {"apiVersion": "pincompute.io/v1alpha1", "kind": "PinJob",
                                "metadata": {"name": "batch", "namespace": NS},
                                "spec": {"completions": 2, "parallelism": 2,
                                         "template": template}}, namespace=NS)
    await place(region, "batch", {"zone-b-1": None}, resource=PINJOBS)

    async def complete() -> dict | None:
        obj = await host.get(PINJOBS, "batch", namespace=NS)
        done = condition_true(obj, "Complete") and obj["status"].get("succeeded") == 2
        return obj if done else None

    obj = await eventually(complete, what="the job Complete on the host", timeout=30)
    assert obj["status"]["succeeded"] == 2 and obj["status"]["phase"] == "Succeeded"
    assert obj["status"]["clusters"][0]["cluster"] == "zone-b-1"


def test_sidecar_shards_are_ready_once_observed_and_their_pods_sum() -> None:
    def shard(observed: int | None, injected: int) -> dict:
        status = {"injectedPods": injected, "matchedPods": injected}
        if observed is not None:
            status["observedGeneration"] = observed
        return {"metadata": {"generation": 1}, "spec": {}, "status": status}

    assert shard_counts("PinSidecar", shard(1, 2)).ready_enough
    assert not shard_counts("PinSidecar", shard(None, 0)).ready_enough
    placements = [{"cluster": "a"}, {"cluster": "b"}]
    out = aggregate("PinSidecar", {"spec": {}}, placements,
                    {"a": shard(1, 2), "b": shard(None, 0)}, {})
    assert (out["injectedPods"], out["matchedPods"]) == (2, 2)
    assert [(c["cluster"], c["readyReplicas"]) for c in out["clusters"]] == [("a", 1), ("b", 0)]


def test_a_training_shard_complete_by_its_phase_sums_its_roles() -> None:
    shard = {"metadata": {"generation": 1}, "spec": {},
             "status": {"observedGeneration": 1, "phase": "Succeeded",
                        "roles": {"master": {"active": 0, "succeeded": 1, "failed": 0},
                                  "worker": {"active": 0, "succeeded": 2, "failed": 0}}}}
    out = aggregate("PinTrainingJob", {"spec": {}}, [{"cluster": "a", "replicas": 3}],
                    {"a": shard}, {})
    assert out["phase"] == "Succeeded" and out["succeeded"] == 3
    assert any(c["type"] == "Complete" and c["status"] for c in out["conditions"])
    running = {**shard, "status": {**shard["status"], "phase": "Running"}}
    out = aggregate("PinTrainingJob", {"spec": {}}, [{"cluster": "a", "replicas": 3}],
                    {"a": running}, {})
    assert out["phase"] == "Running"
