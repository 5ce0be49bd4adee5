"""PinCronJob: schedule arithmetic and hostile schedules without a cluster, then the operator
on an embedded cluster with an injected clock: runs on schedule, after downtime (the most
recent missed run, an Event with the misses), concurrency policies, trigger, history."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from pincompute.kube.backends.embedded import EmbeddedStore
from pincompute.kube.errors import Invalid, NotFound
from pincompute.kube.protocol import KubeClient
from pincompute.kube.resource import EVENTS, NAMESPACES
from pincompute.member.cronschedule import MISS_COUNT_CAP, latest_at_or_before, missed, next_after
from pincompute.member.pincronjobs import add_pincronjob_controller, job_name
from pincompute.model import registry
from pincompute.model.base import GROUP, VERSION
from pincompute.model.cron import cron_errors
from pincompute.model.registry import PINCRONJOBS, PINJOBS
from pincompute.model.wellknown import CRON_TRIGGER_ANNOTATION
from pincompute.runtime.manager import Manager
from tests.node.conftest import (  # noqa: F401 - make_agent and node_root are fixtures
    PYTHON,
    make_agent,
    node_root,
)
from tests.waiting import eventually, recorded

API = f"{GROUP}/{VERSION}"


def ts(text: str) -> float:
    return dt.datetime.fromisoformat(text).timestamp()


# --- schedules, without a cluster ---------------------------------------------------------------

def test_next_and_most_recent_in_a_time_zone() -> None:
    # 09:00 in Paris is 08:00 UTC in winter
    assert next_after("0 9 * * *", "Europe/Paris", ts("2026-01-10T00:00:00+00:00")) == \
        ts("2026-01-10T08:00:00+00:00")
    assert latest_at_or_before("0 9 * * *", "Europe/Paris", ts("2026-07-10T12:00:00+00:00")) == \
        ts("2026-07-10T07:00:00+00:00")  # summer time
    assert latest_at_or_before("*/5 * * * *", "UTC", ts("2026-01-01T00:10:00+00:00")) == \
        ts("2026-01-01T00:10:00+00:00")  # inclusive
    assert next_after("@hourly", "UTC", ts("2026-01-01T00:10:00+00:00")) == \
        ts("2026-01-01T01:00:00+00:00")


def test_missed_runs_after_a_long_downtime_cost_no_more_than_a_short_one() -> None:
    since = ts("2020-01-01T00:00:00+00:00")
    now = ts("2026-01-01T00:00:30+00:00")  # six years of every-minute runs
    started = time.perf_counter()
    m = missed("* * * * *", "UTC", since=since, now=now)
    assert time.perf_counter() - started < 0.5
    assert m is not None
    assert m.latest == ts("2026-01-01T00:00:00+00:00")
    assert m.first == ts("2020-01-01T00:01:00+00:00")
    assert (m.count, m.capped) == (MISS_COUNT_CAP, True)
    few = missed("*/10 * * * *", "UTC", since=ts("2026-01-01T00:00:00+00:00"),
                 now=ts("2026-01-01T00:35:00+00:00"))
    assert few is not None and (few.count, few.capped) == (3, False)
    assert few.first == ts("2026-01-01T00:10:00+00:00")
    assert missed("0 0 * * *", "UTC", since=now - 10, now=now) is None


@pytest.mark.parametrize("expr", [
    "0 0 30 2 *",                                   # never fires
    "0 0 31 4 *",
    ",".join(str(i % 60) for i in range(200)) + " * * * *",  # too many items
    "* " * 200,                                     # too long
    "CRON_TZ=UTC * * * * *",
    "* * * * * *",                                  # seconds
    "@every 5m",
])
def test_hostile_or_bad_schedules_are_refused(expr: str) -> None:
    started = time.perf_counter()
    assert cron_errors(expr) is not None
    assert time.perf_counter() - started < 0.5


async def test_the_store_refuses_a_schedule_that_never_fires(cluster: KubeClient) -> None:
    with pytest.raises(Invalid) as e:
        await cluster.create(PINCRONJOBS, cronjob("never", schedule="0 0 30 2 *"))
    assert "spec.schedule" in str(e.value)


# --- the operator, with an injected clock -----------------------------------------------------

class Clock:
    def __init__(self, start: float) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def cluster() -> AsyncIterator[KubeClient]:
    store = await EmbeddedStore.open(path=None)
    registry.install(store)
    client = store.client()
    await client.create(NAMESPACES, {"apiVersion": "v1", "kind": "Namespace",
                                     "metadata": {"name": "default"}})
    yield client
    await store.close()


class Operator:
    def __init__(self, client: KubeClient, clock: Clock) -> None:
        self.client = client
        self.clock = clock
        self.manager: Manager | None = None
        self.task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self.manager = Manager(name="member", shutdown_timeout=5.0)
        add_pincronjob_controller(self.manager, client=self.client, clock=self.clock,
                                  max_wait=0.05)
        self.task = asyncio.create_task(self.manager.run())

    async def stop(self) -> None:
        if self.manager is not None and self.task is not None:
            self.manager.stop()
            await self.task
        self.manager = self.task = None

    async def jobs(self) -> list[str]:
        return sorted(j["metadata"]["name"] for j in await self.client.list(
            PINJOBS, namespace="default"))

    async def events(self, name: str) -> list[dict[str, Any]]:
        return [e for e in await self.client.list(EVENTS, namespace="default")
                if e["involvedObject"]["name"] == name]


def cronjob(name: str, **spec: Any) -> dict[str, Any]:
    template = {"spec": {"containers": [{"name": "main", "image": "local",
                                         "command": ["true"]}]}}
    return {"apiVersion": API, "kind": "PinCronJob",
            "metadata": {"name": name, "namespace": "default"},
            "spec": {"jobTemplate": {"spec": {"template": template}}, **spec}}


async def finish(client: KubeClient, name: str, phase: str = "Succeeded") -> None:
    """Stand in for the PinJob operator: mark a job finished."""
    job = await client.get(PINJOBS, name, namespace="default")
    job["status"] = {"phase": phase, "completionTime": "2026-01-01T00:00:00Z"}
    await client.update_status(PINJOBS, job)


@pytest.fixture
async def operator(cluster: KubeClient) -> AsyncIterator[Operator]:
    op = Operator(cluster, Clock(time.time()))
    yield op
    await op.stop()


async def created_at(client: KubeClient, name: str) -> float:
    obj = await client.get(PINCRONJOBS, name, namespace="default")
    return ts(obj["metadata"]["creationTimestamp"].replace("Z", "+00:00"))


async def test_runs_on_schedule_with_idempotent_names(operator: Operator) -> None:
    await operator.client.create(PINCRONJOBS, cronjob("tick", schedule="*/5 * * * *"))
    t0 = await created_at(operator.client, "tick")
    operator.clock.now = t0
    await operator.start()
    await asyncio.sleep(0.2)
    assert await operator.jobs() == []
    first = next_after("*/5 * * * *", "UTC", t0)
    assert first is not None
    operator.clock.now = first + 1
    await eventually(operator.jobs, what="the first run")
    assert await operator.jobs() == [job_name("tick", first)]
    job = await operator.client.get(PINJOBS, job_name("tick", first), namespace="default")
    assert job["metadata"]["ownerReferences"][0]["kind"] == "PinCronJob"
    assert job["spec"]["tier"] == "ondemand"
    cron = await operator.client.get(PINCRONJOBS, "tick", namespace="default")
    assert cron["status"]["active"][0]["name"] == job_name("tick", first)
    # the second run: Allow runs beside the active first one
    operator.clock.now = first + 300 + 1

    async def two() -> bool:
        return len(await operator.jobs()) == 2
    await eventually(two, what="the second run")
    assert not any(e["reason"] == "MissedSchedules" for e in await operator.events("tick"))


async def test_downtime_runs_the_most_recent_missed_run_and_records_the_misses(
        operator: Operator) -> None:
    await operator.client.create(PINCRONJOBS, cronjob("nightly", schedule="*/10 * * * *"))
    t0 = await created_at(operator.client, "nightly")
    operator.clock.now = t0
    await operator.start()
    first = next_after("*/10 * * * *", "UTC", t0)
    assert first is not None
    operator.clock.now = first + 1
    await eventually(operator.jobs, what="the first run")
    await finish(operator.client, job_name("nightly", first))
    await operator.stop()  # the controller is down across 200 scheduled runs (~33 hours)
    operator.clock.now = first + 200 * 600 + 30
    await operator.start()
    latest = first + 200 * 600

    async def caught_up() -> bool:
        return job_name("nightly", latest) in await operator.jobs()
    await eventually(caught_up, what="the most recent missed run")
    assert await operator.jobs() == sorted([job_name("nightly", first),
                                            job_name("nightly", latest)])
    missed = await recorded(operator.client, reason="MissedSchedules", name="nightly")
    assert "200 scheduled runs" in missed[0]["message"]


async def test_starting_deadline_skips_a_late_run(operator: Operator) -> None:
    await operator.client.create(PINCRONJOBS, cronjob("strict", schedule="0 * * * *",
                                                      startingDeadlineSeconds=60))
    t0 = await created_at(operator.client, "strict")
    run = next_after("0 * * * *", "UTC", t0)
    assert run is not None
    operator.clock.now = run + 120  # came up two minutes late
    await operator.start()

    async def skipped() -> bool:
        return any(e["reason"] == "MissedSchedule" for e in await operator.events("strict"))
    await eventually(skipped, what="the MissedSchedule event")
    assert await operator.jobs() == []
    operator.clock.now = run + 3600 + 5  # the next one is on time
    await eventually(operator.jobs, what="the next run")


async def test_forbid_waits_and_replace_deletes(operator: Operator) -> None:
    for name, policy in (("forbid", "Forbid"), ("replace", "Replace")):
        await operator.client.create(PINCRONJOBS, cronjob(name, schedule="*/5 * * * *",
                                                          concurrencyPolicy=policy))
    t0 = max([await created_at(operator.client, "forbid"),
              await created_at(operator.client, "replace")])
    first = next_after("*/5 * * * *", "UTC", t0)
    assert first is not None
    operator.clock.now = first + 1
    await operator.start()

    async def two() -> bool:
        return len(await operator.jobs()) == 2
    await eventually(two, what="a run of each")
    operator.clock.now = first + 301
    await eventually(lambda: _has_event(operator, "forbid", "JobAlreadyActive"),
                     what="Forbid waiting")

    async def replaced() -> bool:
        return await operator.jobs() == sorted([job_name("forbid", first),
                                                job_name("replace", first + 300)])
    await eventually(replaced, what="Replace deleting the old run")
    await finish(operator.client, job_name("forbid", first))

    async def ran_late() -> bool:
        return job_name("forbid", first + 300) in await operator.jobs()
    await eventually(ran_late, what="the waiting run starting once the first ended")


async def _has_event(op: Operator, name: str, reason: str) -> bool:
    return any(e["reason"] == reason for e in await op.events(name))


async def test_manual_trigger_suspend_and_history_limits(operator: Operator) -> None:
    await operator.client.create(PINCRONJOBS, cronjob(
        "manual", schedule="0 0 1 1 *", suspend=True, successfulJobsHistoryLimit=1,
        failedJobsHistoryLimit=0))
    operator.clock.now = time.time()
    await operator.start()
    for i, outcome in enumerate(("Succeeded", "Succeeded", "Failed")):
        await operator.client.patch(PINCRONJOBS, "manual", {"metadata": {"annotations": {
            CRON_TRIGGER_ANNOTATION: f"nonce-{i}"}}}, namespace="default")

        async def made(i: int = i) -> list[str]:
            cron = await operator.client.get(PINCRONJOBS, "manual", namespace="default")
            return [n for n in await operator.jobs() if "manual-" in n] if \
                cron.get("status", {}).get("lastTrigger") == f"nonce-{i}" else []
        names = await eventually(made, what=f"trigger {i}")
        newest = [n for n in names if n not in getattr(operator, "_seen", set())]
        operator._seen = set(names)  # type: ignore[attr-defined]
        for name in newest:
            await finish(operator.client, name, outcome)

    async def pruned() -> bool:
        return len(await operator.jobs()) == 1
    await eventually(pruned, what="history limits applied")
    # suspended: the schedule never ran anything by itself
    assert all("manual-" in n for n in await operator.jobs())


# --- end to end: the cron job's runs are real processes ---------------------------------------

async def test_a_cron_job_fires_real_runs_on_schedule_and_after_downtime(
        cluster: KubeClient, make_agent: Any) -> None:  # noqa: F811
    from prometheus_client import CollectorRegistry

    from pincompute.member.pinjobs import add_pinjob_controller
    from pincompute.scheduler import Scheduler
    from pincompute.scheduler.metrics import SchedulerMetrics

    await make_agent("p1")
    clock = Clock(time.time())

    def manager() -> tuple[Manager, asyncio.Task[None]]:
        m = Manager(name="member", shutdown_timeout=5.0)
        Scheduler.attach(m, cluster, metrics=SchedulerMetrics(registry=CollectorRegistry()),
                         initial_backoff=0.05, max_backoff=0.3)
        add_pinjob_controller(m, client=cluster, backend="embedded", clock=clock)
        add_pincronjob_controller(m, client=cluster, clock=clock, max_wait=0.05)
        return m, asyncio.create_task(m.run())

    cron = cronjob("report", schedule="0 * * * *")
    cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["command"] = [
        PYTHON, "-c", "print('report done')"]
    await cluster.create(PINCRONJOBS, cron)
    t0 = await created_at(cluster, "report")
    first = next_after("0 * * * *", "UTC", t0)
    assert first is not None
    clock.now = first + 1
    m, task = manager()

    async def succeeded(name: str) -> bool:
        try:
            job = await cluster.get(PINJOBS, name, namespace="default")
        except NotFound:
            return False
        return (job.get("status") or {}).get("phase") == "Succeeded"

    try:
        await eventually(lambda: succeeded(job_name("report", first)), timeout=20,
                         what="the scheduled run to succeed")
        m.stop()
        await task
        clock.now = first + 5 * 3600 + 10  # down across four more runs
        m, task = manager()
        latest = first + 5 * 3600
        await eventually(lambda: succeeded(job_name("report", latest)), timeout=20,
                         what="the most recent missed run to succeed")
        names = [j["metadata"]["name"] for j in await cluster.list(PINJOBS,
                                                                  namespace="default")]
        assert sorted(names) == sorted([job_name("report", first), job_name("report", latest)])
        missed = await recorded(cluster, reason="MissedSchedules", name="report")
        assert missed[0]["message"].startswith("5 scheduled runs")

        async def success_recorded() -> bool:
            got = await cluster.get(PINCRONJOBS, "report", namespace="default")
            return bool((got.get("status") or {}).get("lastSuccessfulTime"))
        await eventually(success_recorded, what="lastSuccessfulTime")
    finally:
        m.stop()
        await task
