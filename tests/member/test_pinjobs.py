"""PinJob: the state table and rules without a cluster, then the operator on an embedded
member cluster with sim node agents (exit codes and durations from pod annotations)."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from pincompute.kube.backends.embedded import EmbeddedStore
from pincompute.kube.errors import NotFound
from pincompute.kube.protocol import KubeClient
from pincompute.kube.resource import CONFIGMAPS, NAMESPACES, PODS
from pincompute.member.expectations import Expectations
from pincompute.member.jobstate import (
    TRANSITIONS,
    JobEvent,
    JobPhase,
    Observed,
    Slot,
    active_seconds,
    backoff_delay,
    decide,
    failure_action,
    format_index_set,
    group_slots,
    parse_index_set,
    success_by_policy,
    transition,
)
from pincompute.member.pinjobs import _by_live_owner, add_pinjob_controller
from pincompute.member.podtemplate import pod_for
from pincompute.model import registry
from pincompute.model.base import GROUP, VERSION
from pincompute.model.jobs import FailurePolicy, PinJobSpec, SuccessPolicy
from pincompute.model.registry import PINJOBS
from pincompute.model.wellknown import (
    JOB_RESTART_LABEL,
    JOB_TRACKING_FINALIZER,
    OWNER_UID_LABEL,
    SIM_ANNOTATION_PREFIX,
)
from pincompute.node.runtimeapi import NodeClient
from pincompute.runtime.manager import Manager
from pincompute.scheduler import Scheduler
from pincompute.scheduler.metrics import SchedulerMetrics
from tests.node.conftest import (  # noqa: F401 - make_agent and node_root are fixtures
    PYTHON,
    make_agent,
    node_root,
)
from tests.waiting import eventually, recorded

API = f"{GROUP}/{VERSION}"


# --- the table and the rules, without a cluster ---------------------------------------------

def test_the_job_state_table() -> None:
    P, E = JobPhase, JobEvent
    assert transition(P.PENDING, E.START) == (P.RUNNING, "PodsCreated")
    assert transition(P.RUNNING, E.SUSPEND) == (P.SUSPENDED, "JobSuspended")
    assert transition(P.SUSPENDED, E.RESUME) == (P.RUNNING, "JobResumed")
    assert transition(P.RUNNING, E.COMPLETE) == (P.SUCCEEDED, "CompletionsReached")
    assert transition(P.RUNNING, E.COMPLETE_BY_POLICY) == (P.SUCCEEDED, "SuccessPolicy")
    assert transition(P.RUNNING, E.FAIL_BACKOFF) == (P.FAILED, "BackoffLimitExceeded")
    assert transition(P.SUSPENDED, E.FAIL_DEADLINE) == (P.FAILED, "DeadlineExceeded")
    assert transition(P.RUNNING, E.RESTART) == (P.RUNNING, "JobRestarted")
    # terminal phases absorb everything
    for phase in (P.SUCCEEDED, P.FAILED):
        for event in E:
            assert transition(phase, event) == (phase, None)
            assert (phase, event) not in TRANSITIONS
    assert transition(P.SUSPENDED, E.START) == (P.SUSPENDED, None)


def _spec(**spec: Any) -> PinJobSpec:
    template = {"spec": {"containers": [{"name": "main", "image": "local"}]}}
    return PinJobSpec.model_validate({"template": template, **spec})


@pytest.mark.parametrize(("spec", "status", "observed", "phase", "event"), [
    ({"completions": 2}, {}, {"active": 0}, "Pending", JobEvent.START),
    ({"completions": 2, "suspend": True}, {}, {"active": 0}, "Pending", JobEvent.SUSPEND),
    ({"completions": 2, "suspend": True}, {}, {"active": 0}, "Suspended", None),
    ({"completions": 2}, {}, {"active": 0}, "Suspended", JobEvent.RESUME),
    ({"completions": 2}, {"succeeded": 1, "uncountedTerminatedPods": {"succeeded": ["u"]}},
     {"active": 0}, "Running", JobEvent.COMPLETE),
    ({"completions": 2, "backoffLimit": 1},
     {"failed": 1, "uncountedTerminatedPods": {"failed": ["u"]}}, {"active": 1}, "Running",
     JobEvent.FAIL_BACKOFF),
    ({"completions": 2, "backoffLimit": 1}, {"failed": 1}, {"active": 1, "restarts": 1},
     "Running", JobEvent.FAIL_BACKOFF),  # OnFailure restarts count
    ({}, {"succeeded": 1}, {"active": 1}, "Running", None),  # others still run
    ({}, {"succeeded": 1}, {"active": 0}, "Running", JobEvent.COMPLETE),
    ({"completions": 3, "completionMode": "Indexed"}, {"completedIndexes": "0-2"},
     {"active": 0}, "Running", JobEvent.COMPLETE),
    ({"completions": 3, "completionMode": "Indexed", "backoffLimitPerIndex": 0},
     {"completedIndexes": "0,2", "failedIndexes": "1"}, {"active": 0}, "Running",
     JobEvent.FAIL_INDEXES),
    ({"completions": 3, "completionMode": "Indexed", "backoffLimitPerIndex": 0,
      "maxFailedIndexes": 0}, {"failedIndexes": "1"}, {"active": 2}, "Running",
     JobEvent.FAIL_MAX_FAILED_INDEXES),
    ({"groups": [{"name": "leader"}, {"name": "worker", "replicas": 3}],
      "successPolicy": {"rules": [{"groups": ["leader"]}]}}, {"completedIndexes": "0"},
     {"active": 3}, "Running", JobEvent.COMPLETE_BY_POLICY),
    ({"completions": 1, "activeDeadlineSeconds": 10},
     {"startTime": "2026-01-01T00:00:00Z", "activeSeconds": 5}, {"active": 1}, "Running",
     JobEvent.FAIL_DEADLINE),  # 5 s before a suspension + 5 s since the resume
    ({"completions": 1}, {}, {"active": 1, "restart": "pod x failed"}, "Running",
     JobEvent.RESTART),
    ({"completions": 1}, {}, {"active": 1, "failure": (JobEvent.FAIL_POLICY, "x")},
     "Running", JobEvent.FAIL_POLICY),
    ({"completions": 1}, {"failed": 99}, {"active": 0}, "Succeeded", None),  # terminal
])
def test_decide(spec: dict[str, Any], status: dict[str, Any], observed: dict[str, Any],
                phase: str, event: JobEvent | None) -> None:
    now = dt.datetime(2026, 1, 1, 0, 0, 5, tzinfo=dt.UTC).timestamp()
    job = _spec(**spec)
    slots = group_slots([(g.name, g.replicas) for g in job.groups]) if job.groups else [
        Slot(i, None, i) for i in range(job.completions or 0)
    ] if job.completion_mode == "Indexed" else []
    got, message = decide(job, status, Observed(**observed), phase=JobPhase(phase), now=now,
                          slots=slots)
    assert got == event
    assert bool(message) == (event is not None)


def test_index_sets_and_slots() -> None:
    assert parse_index_set("0-2,5") == {0, 1, 2, 5}
    assert parse_index_set(None) == set()
    assert format_index_set({5, 0, 1, 2, 7, 8}) == "0-2,5,7-8"
    assert format_index_set([]) == ""
    slots = group_slots([("leader", 1), ("worker", 2)])
    assert [(s.index, s.group, s.local) for s in slots] == [
        (0, "leader", 0), (1, "worker", 0), (2, "worker", 1)]


def _failed_pod(code: int, *, conditions: list[dict[str, str]] | None = None) -> dict[str, Any]:
    return {"status": {"phase": "Failed", "conditions": conditions or [],
                       "containerStatuses": [
                           {"name": "main", "state": {"terminated": {"exitCode": code}}},
                           {"name": "proxy", "state": {"terminated": {"exitCode": 3}}}]}}


def test_failure_policy_rules_match_in_order() -> None:
    policy = FailurePolicy.model_validate({"maxRestarts": 2, "rules": [
        {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget"}]},
        {"action": "FailJob", "onExitCodes": {"operator": "In", "values": [42]}},
        {"action": "RestartJob", "onExitCodes": {"operator": "In", "values": [137]}},
        {"action": "Count", "onExitCodes": {"operator": "NotIn", "values": [42, 137]}},
    ]})
    sidecars = frozenset({"proxy"})
    assert failure_action(policy, _failed_pod(42), sidecars=sidecars) == "FailJob"
    assert failure_action(policy, _failed_pod(137), sidecars=sidecars) == "RestartJob"
    assert failure_action(policy, _failed_pod(1), sidecars=sidecars) == "Count"
    disrupted = _failed_pod(42, conditions=[{"type": "DisruptionTarget", "status": "True"}])
    assert failure_action(policy, disrupted, sidecars=sidecars) == "Ignore"
    # the sidecar's exit code 3 is not the main container's
    only_three = FailurePolicy.model_validate({"rules": [
        {"action": "FailJob", "onExitCodes": {"operator": "In", "values": [3]}}]})
    assert failure_action(only_three, _failed_pod(1), sidecars=sidecars) == "Count"
    assert failure_action(None, _failed_pod(1)) == "Count"


def test_success_policy_by_indexes_and_groups() -> None:
    groups = {"leader": [0], "worker": [1, 2]}
    by_index = SuccessPolicy.model_validate({"rules": [{"succeededIndexes": "1-2"}]})
    assert success_by_policy(by_index, {1, 2}, slots_by_group=groups)
    assert not success_by_policy(by_index, {0, 1}, slots_by_group=groups)
    count = SuccessPolicy.model_validate({"rules": [{"succeededCount": 2}]})
    assert success_by_policy(count, {0, 2}, slots_by_group=groups)
    all_workers = SuccessPolicy.model_validate({"rules": [{"groups": ["worker"]}]})
    assert not success_by_policy(all_workers, {0, 1}, slots_by_group=groups)
    assert success_by_policy(all_workers, {1, 2}, slots_by_group=groups)
    any_of = SuccessPolicy.model_validate(
        {"rules": [{"groups": ["leader", "worker"], "operator": "Any"}]})
    assert success_by_policy(any_of, {2}, slots_by_group=groups)
    assert not success_by_policy(any_of, set(), slots_by_group=groups)


def test_active_time_and_backoff() -> None:
    assert active_seconds(before=30.0, started=100.0, now=110.0) == 40.0
    assert active_seconds(before=30.0, started=None, now=110.0) == 30.0  # suspended
    assert [backoff_delay(n, base=10, cap=360) for n in range(6)] == [0, 10, 20, 40, 80, 160]
    assert backoff_delay(20, base=10, cap=360) == 360


# --- an embedded member cluster with sim nodes --------------------------------------------------

class Clock:
    def __init__(self) -> None:
        import time
        self.offset = 0.0
        self._time = time.time

    def __call__(self) -> float:
        return self._time() + self.offset


class Member:
    """An embedded member cluster; its manager (scheduler + PinJob operator) restarts."""

    def __init__(self, client: KubeClient) -> None:
        self.client = client
        self.clock = Clock()
        self.manager: Manager | None = None
        self.task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self.manager = Manager(name="member", shutdown_timeout=5.0)
        Scheduler.attach(self.manager, self.client,
                         metrics=SchedulerMetrics(registry=CollectorRegistry()),
                         initial_backoff=0.05, max_backoff=0.3)
        add_pinjob_controller(self.manager, client=self.client, backend="embedded",
                              clock=self.clock, backoff_base=0.1, backoff_cap=0.5)
        self.task = asyncio.create_task(self.manager.run())

    async def stop(self) -> None:
        if self.manager is not None and self.task is not None:
            self.manager.stop()
            await self.task
        self.manager = self.task = None

    async def job(self, name: str) -> dict[str, Any]:
        return await self.client.get(PINJOBS, name, namespace="default")

    async def pods(self, job: dict[str, Any]) -> list[dict[str, Any]]:
        listed = await self.client.list(
            PODS, namespace="default",
            label_selector=f"{OWNER_UID_LABEL}={job['metadata']['uid']}")
        return list(listed)

    async def finished(self, name: str, phase: str = "Succeeded") -> dict[str, Any]:
        async def check() -> dict[str, Any] | None:
            job = await self.job(name)
            status = job.get("status") or {}
            uncounted = status.get("uncountedTerminatedPods") or {}
            if status.get("phase") == phase and not uncounted.get("succeeded") and \
                    not uncounted.get("failed"):
                return job
            return None
        return await eventually(check, timeout=20, what=f"{name} {phase}")


@pytest.fixture
async def cluster() -> AsyncIterator[KubeClient]:
    store = await EmbeddedStore.open(path=None)
    registry.install(store)
    client = store.client()
    await client.create(NAMESPACES, {"apiVersion": "v1", "kind": "Namespace",
                                     "metadata": {"name": "default"}})
    yield client
    await store.close()


@pytest.fixture
async def member(cluster: KubeClient, make_agent: Any) -> AsyncIterator[Member]:  # noqa: F811
    await make_agent("n1", runtime="sim")
    m = Member(cluster)
    await m.start()
    yield m
    await m.stop()


def pinjob(name: str, *, sim: dict[str, str] | None = None, **spec: Any) -> dict[str, Any]:
    annotations = {SIM_ANNOTATION_PREFIX + k: v for k, v in (sim or {}).items()}
    template = {"metadata": {"annotations": annotations},
                "spec": {"containers": [{"name": "main", "image": "local",
                                         "command": ["true"]}]}}
    return {"apiVersion": API, "kind": "PinJob",
            "metadata": {"name": name, "namespace": "default"},
            "spec": {"template": template, **spec}}


# --- the operator ---------------------------------------------------------------------------------

async def test_non_indexed_job_runs_to_its_completions(member: Member) -> None:
    await member.client.create(PINJOBS, pinjob("sum", completions=5, parallelism=2,
                                               sim={"run-duration": "0.1"}))
    job = await member.finished("sum")
    status = job["status"]
    assert (status["succeeded"], status.get("failed", 0), status["active"]) == (5, 0, 0)
    assert status["startTime"] and status["completionTime"]
    assert any(c["type"] == "Complete" and c["status"] == "True" for c in status["conditions"])
    pods = await member.pods(job)
    assert len(pods) == 5  # no duplicates: exactly one pod per completion
    assert all(JOB_TRACKING_FINALIZER not in (p["metadata"].get("finalizers") or ())
               for p in pods)
    await recorded(member.client, reason="Created", name="sum")
    await recorded(member.client, reason="Succeeded", name="sum")


async def test_indexed_job_gives_each_pod_its_index(member: Member) -> None:
    await member.client.create(PINJOBS, pinjob("idx", completions=3, parallelism=3,
                                               completionMode="Indexed",
                                               sim={"run-duration": "0.05"}))
    job = await member.finished("idx")
    assert job["status"]["completedIndexes"] == "0-2"
    pods = {p["metadata"]["name"]: p for p in await member.pods(job)}
    assert sorted(pods) == ["idx-0", "idx-1", "idx-2"]
    env = {e["name"]: e["value"] for e in pods["idx-2"]["spec"]["containers"][0]["env"]}
    assert env["JOB_COMPLETION_INDEX"] == "2"


async def test_backoff_limit_fails_the_job(member: Member) -> None:
    await member.client.create(PINJOBS, pinjob("bad", completions=1, backoffLimit=2,
                                               sim={"run-duration": "0.01",
                                                    "exit-code": "1"}))
    job = await member.finished("bad", "Failed")
    assert job["status"]["failed"] == 3
    failed = next(c for c in job["status"]["conditions"] if c["type"] == "Failed")
    assert failed["reason"] == "BackoffLimitExceeded"
    await recorded(member.client, reason="Failed", name="bad",
                   match=lambda e: "BackoffLimitExceeded" in e["message"])
    assert len(await member.pods(job)) == 3


async def test_failure_policy_fail_job_and_ignore(member: Member) -> None:
    rules = {"rules": [{"action": "FailJob",
                        "onExitCodes": {"operator": "In", "values": [42]}}]}
    await member.client.create(PINJOBS, pinjob("fatal", completions=2, backoffLimit=6,
                                               failurePolicy=rules,
                                               sim={"run-duration": "0.01",
                                                    "exit-code": "42"}))
    job = await member.finished("fatal", "Failed")
    failed = next(c for c in job["status"]["conditions"] if c["type"] == "Failed")
    assert failed["reason"] == "PodFailurePolicy"
    assert "42" in failed["message"]


async def test_per_index_backoff_and_failed_indexes(member: Member) -> None:
    job = pinjob("perindex", completions=3, parallelism=3, completionMode="Indexed",
                 backoffLimitPerIndex=1, sim={"run-duration": "0.01"})
    # index 1 always fails (per-container override by pod annotation is not per index, so a
    # failure-policy rule routes exit 7 to FailIndex)
    job["spec"]["template"]["spec"]["containers"][0]["command"] = ["x"]
    job["spec"]["failurePolicy"] = {"rules": [
        {"action": "FailIndex", "onExitCodes": {"operator": "In", "values": [7]}}]}
    job["spec"]["template"]["metadata"]["annotations"][SIM_ANNOTATION_PREFIX + "exit-code"] = "7"
    await member.client.create(PINJOBS, job)
    done = await member.finished("perindex", "Failed")
    assert done["status"]["failedIndexes"] == "0-2"
    failed = next(c for c in done["status"]["conditions"] if c["type"] == "Failed")
    assert failed["reason"] == "FailedIndexes"


async def test_suspend_resume_and_deadline_not_counting_suspension(member: Member) -> None:
    await member.client.create(PINJOBS, pinjob("sleepy", completions=1,
                                               activeDeadlineSeconds=100, suspend=True))

    async def phase(p: str) -> bool:
        return (await member.job("sleepy")).get("status", {}).get("phase") == p

    await eventually(lambda: phase("Suspended"), what="suspended")
    job = await member.job("sleepy")
    assert await member.pods(job) == []
    member.clock.offset += 1000  # a long time suspended (queued) does not count
    await member.client.patch(PINJOBS, "sleepy", {"spec": {"suspend": False}},
                              namespace="default")
    await eventually(lambda: phase("Running"), what="running")
    await eventually(lambda: member.pods(job), what="a pod")
    # suspend again: the running pod is removed, uncounted
    await member.client.patch(PINJOBS, "sleepy", {"spec": {"suspend": True}},
                              namespace="default")
    await eventually(lambda: phase("Suspended"), what="suspended again")

    async def no_pods() -> bool:
        return not await member.pods(job)

    await eventually(no_pods, what="pods gone")
    member.clock.offset += 1000
    await member.client.patch(PINJOBS, "sleepy", {"spec": {"suspend": False}},
                              namespace="default")
    await eventually(lambda: phase("Running"), what="running again")
    status = (await member.job("sleepy"))["status"]
    assert status.get("failed", 0) == 0 and status["activeSeconds"] < 50
    member.clock.offset += 101  # now past the deadline in active time
    await member.client.patch(PINJOBS, "sleepy", {"metadata": {"labels": {"poke": "1"}}},
                              namespace="default")
    done = await member.finished("sleepy", "Failed")
    failed = next(c for c in done["status"]["conditions"] if c["type"] == "Failed")
    assert failed["reason"] == "DeadlineExceeded"
    await eventually(no_pods, what="pods removed at the deadline")


async def test_ttl_after_finished_deletes_the_job(member: Member) -> None:
    await member.client.create(PINJOBS, pinjob("brief", completions=1,
                                               ttlSecondsAfterFinished=0,
                                               sim={"run-duration": "0.01"}))

    async def gone() -> bool:
        try:
            await member.job("brief")
        except NotFound:
            return True
        return False

    await eventually(gone, timeout=20, what="the job deleted after its TTL")


async def test_groups_have_stable_names_env_and_a_discovery_file(member: Member) -> None:
    job = pinjob("set", groups=[{"name": "leader", "replicas": 1},
                                {"name": "worker", "replicas": 2}],
                 successPolicy={"rules": [{"groups": ["leader"]}]})
    job["spec"]["template"]["metadata"]["annotations"][
        SIM_ANNOTATION_PREFIX + "run-duration.main"] = "30"
    await member.client.create(PINJOBS, job)

    async def hosts() -> str | None:
        try:
            cm = await member.client.get(CONFIGMAPS, "set-hosts", namespace="default")
        except NotFound:
            return None
        text = cm["data"]["hosts"]
        return text if text.count("\n") == 3 else None

    text = await eventually(hosts, timeout=20, what="three hosts in the discovery file")
    names = [line.split()[1] for line in text.splitlines()]
    assert names == ["set-leader-0", "set-worker-0", "set-worker-1"]
    stored = await member.job("set")
    pods = {p["metadata"]["name"]: p for p in await member.pods(stored)}
    assert sorted(pods) == names
    for line in text.splitlines():
        ip, host = line.split()
        assert pods[host]["status"]["podIP"] == ip
        assert pods[host]["spec"]["hostname"] == host
        assert pods[host]["spec"]["subdomain"] == "set"
    env = {e["name"]: e["value"] for e in pods["set-worker-1"]["spec"]["containers"][0]["env"]}
    assert env["PINCOMPUTE_WORKER_HOSTS"] == "set-worker-0,set-worker-1"
    assert env["PINCOMPUTE_LEADER_HOSTS"] == "set-leader-0"
    assert env["JOB_COMPLETION_INDEX"] == "1" and env["PINCOMPUTE_JOB_GROUP"] == "worker"
    assert stored["status"]["hosts"]["set-worker-1"] == pods["set-worker-1"]["status"]["podIP"]


async def test_restart_job_rule_replaces_every_pod_up_to_max_restarts(member: Member) -> None:
    job = pinjob("flaky", groups=[{"name": "worker", "replicas": 2}],
                 failurePolicy={"maxRestarts": 1, "rules": [
                     {"action": "RestartJob", "onExitCodes": {"operator": "In",
                                                              "values": [137]}}]},
                 sim={"run-duration": "0.05", "exit-code": "137"})
    await member.client.create(PINJOBS, job)
    done = await member.finished("flaky", "Failed")
    assert done["status"]["restarts"] == 1
    failed = next(c for c in done["status"]["conditions"] if c["type"] == "Failed")
    assert failed["reason"] == "MaxRestartsExceeded"
    await recorded(member.client, reason="JobRestarted", name="flaky")


async def test_operator_restarts_mid_job_without_duplicate_or_lost_pods(
        member: Member) -> None:
    await member.client.create(PINJOBS, pinjob("long", completions=12, parallelism=3,
                                               sim={"run-duration": "0.15"}))

    async def some_done() -> bool:
        return ((await member.job("long")).get("status") or {}).get("succeeded", 0) >= 2

    for _ in range(3):  # kill the operator three times mid-way
        await eventually(some_done, what="progress")
        await member.stop()
        await asyncio.sleep(0.3)  # pods finish while nobody counts them
        await member.start()
    job = await member.finished("long")
    assert job["status"]["succeeded"] == 12 and job["status"].get("failed", 0) == 0
    pods = await member.pods(job)
    assert len(pods) == 12
    assert sorted(int(p["metadata"]["name"].rsplit("-", 1)[1]) for p in pods) == list(range(12))


async def test_a_pod_deleted_by_someone_else_counts_as_failed_and_is_replaced(
        member: Member) -> None:
    await member.client.create(PINJOBS, pinjob("victim", completions=1, backoffLimit=3,
                                               sim={"run-duration": "30"}))

    async def running() -> list[dict[str, Any]]:
        job = await member.job("victim")
        return [p for p in await member.pods(job)
                if (p.get("status") or {}).get("phase") == "Running"]

    first = (await eventually(running, what="a running pod"))[0]
    await member.client.delete(PODS, first["metadata"]["name"], namespace="default")

    async def replaced() -> dict[str, Any] | None:
        job = await member.job("victim")
        uids = [p["metadata"]["uid"] for p in await running()]
        new = len(uids) == 1 and uids[0] != first["metadata"]["uid"]
        return job if new and job["status"].get("failed") == 1 else None

    job = await eventually(replaced, timeout=20, what="the failure counted, a new pod")
    assert job["status"]["phase"] == "Running"

    async def old_gone() -> bool:
        try:
            await member.client.get(PODS, first["metadata"]["name"], namespace="default")
        except NotFound:
            return True
        return False

    await eventually(old_gone, what="the deleted pod released by the job")


async def test_a_pod_recorded_before_a_crash_is_released_and_counted_once(
        cluster: KubeClient) -> None:
    """The manager died after recording a finished pod in uncountedTerminatedPods and
    before releasing it: the next one releases it and counts it, once."""
    job = await cluster.create(PINJOBS, pinjob("crash", completions=2, parallelism=1))
    pod = pod_for(job["spec"]["template"], name="crash-0", namespace="default", owner=job,
                  backend="embedded", labels={JOB_RESTART_LABEL: "0"})
    pod["metadata"]["finalizers"] = [JOB_TRACKING_FINALIZER]
    pod = await cluster.create(PODS, pod)
    pod["status"] = {"phase": "Succeeded", "containerStatuses": [
        {"name": "main", "state": {"terminated": {"exitCode": 0}}}]}
    await cluster.update_status(PODS, pod)
    # exactly what the next pass computes before releasing: its first write is skipped
    job["status"] = {"phase": "Running", "startTime": "2026-01-01T00:00:00Z", "active": 0,
                     "ready": 0, "observedGeneration": job["metadata"]["generation"],
                     "uncountedTerminatedPods": {"succeeded": [pod["metadata"]["uid"]],
                                                 "failed": []}}
    await cluster.update_status(PINJOBS, job)
    member = Member(cluster)
    await member.start()
    try:
        async def counted() -> dict[str, Any] | None:
            status = (await member.job("crash")).get("status") or {}
            return status if status.get("succeeded") == 1 and \
                "uncountedTerminatedPods" not in status else None

        status = await eventually(counted, what="the recorded pod counted")
        got = await cluster.get(PODS, "crash-0", namespace="default")
        assert JOB_TRACKING_FINALIZER not in (got["metadata"].get("finalizers") or ())
        await asyncio.sleep(0.3)  # and never again
        assert (await member.job("crash"))["status"]["succeeded"] == 1
        assert status["phase"] == "Running"
    finally:
        await member.stop()


def test_expectations() -> None:
    now = [0.0]
    exp = Expectations(clock=lambda: now[0], ttl=10)
    exp.created("job", "a")
    assert exp.creations_pending("job", [])
    assert not exp.creations_pending("job", ["a"])
    exp.created("job", "b")
    now[0] = 11
    assert not exp.creations_pending("job", [])  # expired: the cache must have caught up
    exp.release("pod")
    assert exp.released("pod", still_held=True)
    assert not exp.released("pod", still_held=False)  # seen released: forgotten
    assert not exp.released("pod", still_held=True)


def test_a_pass_looks_again_only_at_held_or_unfinished_pods() -> None:
    def pod(phase: str, *, held: bool) -> dict[str, Any]:
        return {"metadata": {"labels": {OWNER_UID_LABEL: "job-uid"},
                             "finalizers": [JOB_TRACKING_FINALIZER] if held else []},
                "status": {"phase": phase}}

    assert _by_live_owner(pod("Running", held=True)) == ["job-uid"]
    assert _by_live_owner(pod("Succeeded", held=True)) == ["job-uid"]  # not counted yet
    assert _by_live_owner(pod("Running", held=False)) == ["job-uid"]  # still active
    assert _by_live_owner(pod("Succeeded", held=False)) == []  # counted: nothing left to tell
    assert _by_live_owner(pod("Failed", held=False)) == []
    assert _by_live_owner({"metadata": {}, "status": {"phase": "Running"}}) == []


async def test_a_long_job_names_its_pods_once_each(member: Member) -> None:
    # Every pass after the first finished pods were released looks only at the live ones
    # and continues the name search where the last one stopped: still one pod per
    # completion, no name reused.
    await member.client.create(PINJOBS, pinjob("long", completions=12, parallelism=3,
                                               sim={"run-duration": "0.02"}))
    job = await member.finished("long")
    assert (job["status"]["succeeded"], job["status"].get("failed", 0)) == (12, 0)
    names = sorted(p["metadata"]["name"] for p in await member.pods(job))
    assert names == sorted(f"long-{n}" for n in range(12))


# --- end to end: real processes ---------------------------------------------------------------

PARTIAL_SUM = """
import os
i = int(os.environ["JOB_COMPLETION_INDEX"])
n, parts = 1_000_000, 4
lo, hi = i * n // parts, (i + 1) * n // parts
print(f"partial {i} {sum(range(lo, hi))}", flush=True)
"""


async def test_an_indexed_job_of_real_processes_computes_a_sum(
        cluster: KubeClient, make_agent: Any) -> None:  # noqa: F811
    agent = await make_agent("p1")
    member = Member(cluster)
    await member.start()
    try:
        job = pinjob("sum", completions=4, parallelism=2, completionMode="Indexed")
        job["spec"]["template"]["spec"]["containers"][0]["command"] = [PYTHON, "-c",
                                                                       PARTIAL_SUM]
        await cluster.create(PINJOBS, job)
        done = await member.finished("sum")
        assert done["status"]["completedIndexes"] == "0-3"
        assert done["status"]["succeeded"] == 4
        client = NodeClient(agent.api_endpoint, agent.api_token)
        total = 0
        for pod in await member.pods(done):
            name = pod["metadata"]["name"]
            text = b"".join([c async for c in client.logs("default", name, "main")]).decode()
            _, index, value = text.split()
            assert f"sum-{index}" == name
            total += int(value)
        assert total == sum(range(1_000_000))
    finally:
        await member.stop()
