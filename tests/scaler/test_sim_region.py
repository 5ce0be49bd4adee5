"""PinScaler in an embedded region of sim nodes: load rising and falling, scheduled floors.

The pods declare their CPU use over time (``sim.pincompute.io/cpu-profile``); the
nodes report it into their usage records, the host-side scaler folds them per
app and scales the host PinApp, whose replicas the federation spreads over the
zones.  The scaler's clock is injected: the schedule scenario moves it across a
window's start and end in New York time instead of waiting for 09:00.
"""

from __future__ import annotations

import datetime as dt
import time
import zoneinfo
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from pincompute.kube.objects import get_condition
from pincompute.kube.resource import EVENTS
from pincompute.model.registry import PINAPPS, PINSCALERS
from pincompute.region import Region
from tests.waiting import eventually

pytestmark = pytest.mark.slow

NS = "demo"


class Clock:
    """Real time plus an offset the test moves."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset

    def set(self, t: float) -> None:
        self.offset = t - time.time()


@pytest.fixture
async def clock() -> Clock:
    return Clock()


@pytest.fixture
async def region(tmp_path: Path, clock: Clock) -> AsyncIterator[Region]:
    region = await Region.open(tmp_path / "region", zones=2, nodes_per_cluster=2,
                               runtime="sim", lease_duration=3, health_port=None,
                               node_options={"usage_interval": 0.2},
                               controller_options={"pinscalers": {"interval": 0.2,
                                                                  "clock": clock}})
    await region.start()
    try:
        await region.ensure_project(NS)
        yield region
    finally:
        await region.close()


def pinapp(name: str, *, replicas: int, cpu_profile: str = "0") -> dict[str, Any]:
    return {"apiVersion": "pincompute.io/v1alpha1", "kind": "PinApp",
            "metadata": {"name": name, "namespace": NS},
            "spec": {"replicas": replicas, "template": {
                "metadata": {"annotations": {"sim.pincompute.io/cpu-profile": cpu_profile}},
                "spec": {"containers": [{"name": "main", "image": "web:1", "resources": {
                    "requests": {"cpu": "100m", "memory": "16Mi"}}}]}}}}


def scaler(name: str, target: str, **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "pincompute.io/v1alpha1", "kind": "PinScaler",
            "metadata": {"name": name, "namespace": NS},
            "spec": {"scaleTargetRef": {"name": target}, **spec}}


async def replicas(region: Region, app: str) -> int:
    obj = await region.host.client.get(PINAPPS, app, namespace=NS)
    return int(obj["spec"]["replicas"])


async def test_load_scales_up_fast_and_down_only_after_the_window(region: Region) -> None:
    host = region.host.client
    # each pod: 20m for 1 s, then 200m (200% of its request) until 4 s, then 20m again
    await host.create(PINAPPS, pinapp("web", replicas=2,
                                      cpu_profile="0=20m,1=20m,1.01=200m,4=200m,4.01=20m"))
    window = 3.0
    await host.create(PINSCALERS, scaler(
        "web", "web", minReplicas=2, maxReplicas=8, cooldownSeconds=0,
        metrics=[{"type": "Resource", "resource": {"name": "cpu",
                                                     "targetAverageUtilization": 50}}],
        behavior={"scaleUp": {"stabilizationWindowSeconds": 0,
                              "policies": [{"type": "Pods", "value": 10, "periodSeconds": 1}]},
                  "scaleDown": {"stabilizationWindowSeconds": int(window)}}))

    async def at(n: int) -> bool:
        return await replicas(region, "web") == n

    await eventually(lambda: at(8), timeout=15, what="the scale-up to the maximum")
    up_at = time.monotonic()

    async def up_recorded() -> dict[str, Any] | None:
        # the scaler writes the app's replicas first, then its own status
        obj = await host.get(PINSCALERS, "web", namespace=NS)
        reason = (obj.get("status") or {}).get("lastScaleReason") or ""
        return obj if reason.startswith("metrics above target") and \
            get_condition(obj, "ScalingLimited") is not None else None

    obj = await eventually(up_recorded, timeout=10, what="the scale-up in the status")
    limited = get_condition(obj, "ScalingLimited")
    assert limited is not None
    # the load falls (every pod 20m after its 4th second); the down window holds 8 meanwhile
    samples: list[tuple[float, int, int | None]] = []

    async def scaled_down() -> bool:
        s = await host.get(PINSCALERS, "web", namespace=NS)
        cpu = next((m for m in s["status"].get("currentMetrics") or ()
                    if m.get("name") == "cpu" and "current" in m), None)
        n = await replicas(region, "web")
        samples.append((time.monotonic(), n, int(cpu["current"]) if cpu else None))
        return n < 8

    await eventually(scaled_down, timeout=30, interval=0.1, what="the scale-down")
    low = [t for t, n, util in samples if util is not None and util < 45]
    assert low, samples
    t_down = samples[-1][0]
    assert t_down - low[0] >= window * 0.8, (t_down - low[0], samples)
    assert t_down > up_at
    await eventually(lambda: at(2), timeout=20, what="back to the minimum")

    async def events() -> list[str]:
        items = (await host.list(EVENTS, namespace=NS)).items
        return [e["message"] for e in items if e.get("reason") == "SuccessfulRescale"
                and e["involvedObject"]["name"] == "web"]

    await eventually(lambda: _at_least(events, 2), what="an Event per scaling")
    final = await host.get(PINSCALERS, "web", namespace=NS)
    assert get_condition(final, "AbleToScale")["status"] == "True"  # type: ignore[index]
    assert get_condition(final, "ScalingActive")["reason"] == "ValidMetricFound"  # type: ignore[index]


async def _at_least(fetch: Any, n: int) -> bool:
    return len(await fetch()) >= n


async def test_a_schedule_raises_the_floor_at_its_start_and_releases_it_at_its_end(
        region: Region, clock: Clock) -> None:
    host = region.host.client
    ny = zoneinfo.ZoneInfo("America/New_York")

    def new_york(hour: int, minute: int, second: int) -> float:
        return dt.datetime(2026, 12, 1, hour, minute, second, tzinfo=ny).timestamp()

    clock.set(new_york(8, 59, 50))
    await host.create(PINAPPS, pinapp("batch", replicas=1))
    await host.create(PINSCALERS, scaler(
        "batch", "batch", minReplicas=1, maxReplicas=6, metrics=[],
        behavior={"scaleDown": {"stabilizationWindowSeconds": 0}},
        schedules=[{"name": "office", "start": "0 9 * * *", "end": "0 17 * * *",
                    "timeZone": "America/New_York", "desiredReplicas": 5}]))

    async def status() -> dict[str, Any]:
        obj = await host.get(PINSCALERS, "batch", namespace=NS)
        return dict(obj.get("status") or {})

    await eventually(lambda: _has(status, "desiredReplicas"), what="a first evaluation")
    assert await replicas(region, "batch") == 1
    assert "activeSchedules" not in await status()
    clock.set(new_york(9, 0, 0))
    await eventually(lambda: _replicas_are(region, "batch", 5), timeout=10,
                     what="the floor of the open window")
    # The scaler writes the app's replicas, then its own status: wait for both.
    async def window_open() -> dict[str, Any] | None:
        s = await status()
        return s if s.get("activeSchedules") == ["office"] else None

    s = await eventually(window_open, timeout=10, what="the open window in the status")
    assert "schedule office" in s["lastScaleReason"]
    clock.set(new_york(16, 59, 0))
    assert await replicas(region, "batch") == 5
    clock.set(new_york(17, 0, 0))
    await eventually(lambda: _replicas_are(region, "batch", 1), timeout=10,
                     what="the floor released at the window's end")

    async def window_closed() -> bool:
        return "activeSchedules" not in await status()

    await eventually(window_closed, timeout=10, what="the closed window in the status")


async def _has(fetch: Any, key: str) -> bool:
    return key in await fetch()


async def _replicas_are(region: Region, app: str, n: int) -> bool:
    return await replicas(region, app) == n
