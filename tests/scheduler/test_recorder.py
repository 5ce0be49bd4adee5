from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from pincompute.kube.protocol import KubeClient
from pincompute.kube.resource import EVENTS, PODS
from pincompute.scheduler.recorder import Recorder, condition_patch

from .support import for_api, info, pod


@pytest.fixture
async def running(client: KubeClient) -> AsyncIterator[tuple[Recorder, list[bool]]]:
    busy = [False]
    rec = Recorder(client, workers=2, busy=lambda: busy[0])
    task = asyncio.ensure_future(rec.run())
    yield rec, busy
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


async def test_repeated_events_are_aggregated(client: KubeClient,
                                              running: tuple[Recorder, list[bool]]) -> None:
    rec, _ = running
    p = info(await client.create(PODS, for_api(pod("p"))))
    for _ in range(3):
        rec.event(p, "Warning", "FailedScheduling", "0/1 nodes are available: x.")
        await rec.flush()
    rec.event(p, "Normal", "Scheduled", "Successfully assigned default/p to n")
    await rec.flush()
    events = (await client.list(EVENTS, namespace="default")).items
    by_reason = {e["reason"]: e for e in events}
    assert len(events) == 2
    assert by_reason["FailedScheduling"]["count"] == 3
    assert by_reason["FailedScheduling"]["involvedObject"]["uid"] == p.uid
    assert by_reason["Scheduled"]["source"]["component"] == "pincompute-scheduler"


async def test_conditions_are_written_once_and_coalesced(
        client: KubeClient, running: tuple[Recorder, list[bool]]) -> None:
    rec, _ = running
    p = info(await client.create(PODS, for_api(pod("p"))))
    rec.pod_condition(p, status="False", reason="Unschedulable", message="first")
    rec.pod_condition(p, status="False", reason="Unschedulable", message="second")
    await rec.flush()
    got = await client.get(PODS, "p", namespace="default")
    conds = got["status"]["conditions"]
    assert [(c["type"], c["message"]) for c in conds] == [("PodScheduled", "second")]
    assert condition_patch(got, "PodScheduled", "False", "Unschedulable", "second") is None


async def test_events_wait_while_the_scheduler_is_busy(
        client: KubeClient, running: tuple[Recorder, list[bool]]) -> None:
    rec, busy = running
    p = info(await client.create(PODS, for_api(pod("p"))))
    busy[0] = True
    rec.event(p, "Normal", "Scheduled", "later")
    for _ in range(5):
        await asyncio.sleep(0)
    assert not (await client.list(EVENTS, namespace="default")).items
    busy[0] = False
    rec.kick()
    await rec.flush()
    assert len((await client.list(EVENTS, namespace="default")).items) == 1


async def test_the_event_backlog_is_bounded(client: KubeClient) -> None:
    rec = Recorder(client, max_pending=2, busy=lambda: True)
    p = info(pod("p"))
    for _ in range(5):
        rec.event(p, "Normal", "Scheduled", "x")
    assert rec.pending == 2 and rec.dropped == 3


async def test_writes_for_vanished_pods_are_not_errors(
        client: KubeClient, running: tuple[Recorder, list[bool]]) -> None:
    rec, _ = running
    rec.pod_condition(info(pod("ghost")), status="False", reason="Unschedulable", message="m")
    await rec.flush()
    assert rec.failed == 0
