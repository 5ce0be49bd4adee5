"""Zone rollouts: the phase table, and a PinApp rolled zone by zone on a sim region."""

from __future__ import annotations

import datetime as dt

import pytest

from pincompute.federation.zonerollout import (
    DEADLINE_EXCEEDED,
    TRANSITIONS,
    ZoneState,
    step,
    zone_order,
)
from pincompute.kube.errors import NotFound
from pincompute.kube.objects import get_condition
from pincompute.kube.resource import NODES
from pincompute.model.registry import PINAPPS
from pincompute.model.wellknown import RESUME_ROLLOUT_ANNOTATION
from pincompute.region import Region
from tests.waiting import eventually

from .simregion import NS, pinapp, place, region

__all__ = ["region"]
pytestmark = pytest.mark.timeout(60)

T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
OLD, NEW = ZoneState(updated=False, available=False), ZoneState(updated=True, available=True)
ROLLING = ZoneState(updated=True, available=False)


def _at(seconds: float) -> dt.datetime:
    return T0 + dt.timedelta(seconds=seconds)


def test_the_phase_table() -> None:
    assert TRANSITIONS[("Progressing", "ZoneAvailable")] == "Soaking"
    assert TRANSITIONS[("Soaking", "Finished")] == "Complete"
    assert TRANSITIONS[("Progressing", "DeadlineExceeded")] == "Paused"
    assert TRANSITIONS[("Paused", "Resumed")] == "Progressing"
    assert zone_order(["c", "a", "b"], ["b"]) == ["b", "a", "c"]


def test_a_first_deployment_is_complete_at_once() -> None:
    s = step(revision="r1", zones={"a": NEW, "b": NEW}, previous=None, since=None, now=T0)
    assert s.status["phase"] == "Complete" and s.released == {"a", "b"}
    again = step(revision="r1", zones={"a": NEW, "b": NEW}, previous=s.status, since=None,
                 paused=True, now=_at(1))
    assert again.status == s.status and not again.events   # nothing to pause


def test_zones_go_one_at_a_time_in_order_then_soak() -> None:
    zones = {"a": OLD, "b": OLD, "c": OLD}
    s = step(revision="r2", zones=zones, previous={"revision": "r1", "phase": "Complete"},
             since=None, order=["b"], soak_seconds=5, now=T0)
    assert (s.status["phase"], s.status["currentZone"], s.released) == ("Progressing", "b",
                                                                         {"b"})
    assert s.status["pendingZones"] == ["a", "c"]
    zones["b"] = NEW
    s = step(revision="r2", zones=zones, previous=s.status, since=s.since, order=["b"],
             soak_seconds=5, now=_at(1))
    assert s.status["phase"] == "Soaking" and s.released == {"b"}
    assert s.requeue_after is not None and s.requeue_after <= 5.1
    s = step(revision="r2", zones=zones, previous=s.status, since=s.since, order=["b"],
             soak_seconds=5, now=_at(7))
    assert (s.status["phase"], s.status["currentZone"], s.released) == ("Progressing", "a",
                                                                         {"a", "b"})
    zones.update(a=NEW, c=NEW)
    s = step(revision="r2", zones=zones, previous=s.status, since=s.since, order=["b"],
             now=_at(20))
    assert s.status["phase"] == "Complete" and s.status["completedZones"] == ["b", "a", "c"]


def test_a_zone_past_its_deadline_pauses_until_resumed() -> None:
    zones = {"a": ROLLING, "b": OLD}
    s = step(revision="r2", zones=zones, previous={"revision": "r1"}, since=None,
             deadline_seconds=10, now=T0)
    s = step(revision="r2", zones=zones, previous=s.status, since=s.since,
             deadline_seconds=10, now=_at(11))
    assert (s.status["phase"], s.reason, s.released) == ("Paused", DEADLINE_EXCEEDED, {"a"})
    still = step(revision="r2", zones=zones, previous=s.status, since=s.since,
                 deadline_seconds=10, paused_reason=s.reason, now=_at(30))
    assert still.status["phase"] == "Paused"
    resumed = step(revision="r2", zones=zones, previous=s.status, since=s.since,
                   deadline_seconds=10, paused_reason=s.reason, resume=True, now=_at(31))
    assert resumed.status["phase"] == "Progressing" and resumed.resumed
    assert resumed.since is not None and resumed.since > (s.since or "")


def test_spec_paused_pauses_and_unpausing_resumes() -> None:
    zones = {"a": ROLLING, "b": OLD}
    s = step(revision="r2", zones=zones, previous={"revision": "r1"}, since=None, now=T0)
    s = step(revision="r2", zones=zones, previous=s.status, since=s.since, paused=True,
             now=_at(1))
    assert s.status["phase"] == "Paused"
    s = step(revision="r2", zones=zones, previous=s.status, since=s.since,
             paused_reason=s.reason, now=_at(2))
    assert s.status["phase"] == "Progressing"


async def _image(region: Region, cluster: str) -> str | None:
    try:
        shard = await region.member(cluster).client.get(PINAPPS, "web", namespace=NS)
    except NotFound:
        return None
    return shard["spec"]["template"]["spec"]["containers"][0]["image"]


async def test_a_new_template_rolls_zone_by_zone_and_pauses_on_a_failing_zone(
        region: Region) -> None:
    host = region.host.client
    clusters = ("zone-a-1", "zone-b-1", "zone-c-1")
    strategy = {"zoneRollout": {"order": ["zone-b", "zone-a"]}}
    # The deadline pauses the cordoned zone; every healthy zone (three at the start, three
    # after the resume) must finish within it, which a loaded machine may take seconds for.
    await host.create(PINAPPS, pinapp(replicas=3, strategy=strategy,
                                      progressDeadlineSeconds=5), namespace=NS)
    await place(region, "web", dict.fromkeys(clusters, 1))

    async def running() -> bool:
        obj = await host.get(PINAPPS, "web", namespace=NS)
        s = obj.get("status") or {}
        return s.get("availableReplicas") == 3 and (s.get("rollout") or {}).get(
            "phase") == "Complete"

    await eventually(running, what="the app available", timeout=30)
    # zone-b (first in order) cannot start new pods: its node is cordoned.
    await region.member("zone-b-1").client.patch(NODES, "zone-b-1-general-0",
                                                 {"spec": {"unschedulable": True}})
    obj = await host.get(PINAPPS, "web", namespace=NS)
    obj["spec"]["template"]["spec"]["containers"][0]["image"] = "web:2"
    await host.update(PINAPPS, obj)

    async def paused() -> dict | None:
        obj = await host.get(PINAPPS, "web", namespace=NS)
        rollout = obj["status"].get("rollout") or {}
        return obj if rollout.get("phase") == "Paused" else None

    obj = await eventually(paused, what="the rollout paused", timeout=20)
    assert obj["status"]["rollout"]["currentZone"] == "zone-b"
    assert get_condition(obj, "Progressing")["reason"] == DEADLINE_EXCEEDED
    assert [await _image(region, c) for c in clusters] == ["web:1", "web:2", "web:1"]
    assert obj["status"]["availableReplicas"] == 3   # the old pods kept serving

    # Fixed and resumed: zone b, then a, then c.
    await region.member("zone-b-1").client.patch(NODES, "zone-b-1-general-0",
                                                 {"spec": {"unschedulable": False}})
    await host.patch(PINAPPS, "web", {"metadata": {"annotations": {
        RESUME_ROLLOUT_ANNOTATION: "now"}}}, namespace=NS)

    async def complete() -> dict | None:
        obj = await host.get(PINAPPS, "web", namespace=NS)
        rollout = obj["status"].get("rollout") or {}
        return obj if rollout.get("phase") == "Complete" and \
            obj["status"].get("updatedReplicas") == 3 else None

    obj = await eventually(complete, what="the rollout complete", timeout=30)
    assert obj["status"]["rollout"]["completedZones"] == ["zone-b", "zone-a", "zone-c"]
    assert RESUME_ROLLOUT_ANNOTATION not in (obj["metadata"].get("annotations") or {})
    assert [await _image(region, c) for c in clusters] == ["web:2"] * 3
