"""The PinTrainingJob operator: the phase table and rendezvous as data; on an embedded member
cluster with sim nodes the gang is created and placed together with the right environment,
a worker killed by a signal restarts the gang, a bug fails the job, the master's success is
the job's, and a restarted manager converges without duplicate pods; with real processes the
example trains a linear model over TCP and the master's log holds the answer."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import CollectorRegistry

from pincompute.kube.backends.embedded import EmbeddedStore
from pincompute.kube.protocol import ADDED, KubeClient
from pincompute.kube.resource import CONFIGMAPS, EVENTS, NAMESPACES, PODS
from pincompute.member import rendezvous as rdv
from pincompute.member.pintrainingjobs import add_pintrainingjob_controller, exit_code
from pincompute.member.trainingphases import (
    TERMINAL,
    TRANSITIONS,
    Action,
    Facts,
    Observation,
    Phase,
    observe,
    retryable,
    step,
)
from pincompute.model import registry
from pincompute.model.registry import PINTRAININGJOBS
from pincompute.model.training import PinTrainingJobSpec
from pincompute.model.wellknown import (
    ATTEMPT_LABEL,
    POD_GROUP_LABEL,
    POD_GROUP_MIN_MEMBER_ANNOTATION,
    ROLE_LABEL,
)
from pincompute.node import NodeAgent
from pincompute.node import env as node_env
from pincompute.node.runtimeapi.client import NodeClient
from pincompute.runtime.manager import Manager
from pincompute.scheduler import Scheduler
from pincompute.scheduler.metrics import SchedulerMetrics
from tests.node.conftest import (  # noqa: F401 - fixtures
    eventually,
    make_agent,
    node_root,
)

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "pintrainingjob.yaml"
NS = "default"


# --- the table and the rules, without a cluster ------------------------------------------------

def test_the_table_is_total_and_terminal_phases_stay() -> None:
    assert {(p, o) for p in Phase for o in Observation} == set(TRANSITIONS)
    for phase in TERMINAL:
        assert all(TRANSITIONS[phase, o].phase is phase for o in Observation)


@pytest.mark.parametrize(("phase", "observation", "to", "action", "restart"), [
    (Phase.CREATED, Observation.EMPTY, Phase.CREATED, Action.CREATE, False),
    (Phase.CREATED, Observation.STARTING, Phase.CREATED, Action.NONE, False),
    (Phase.CREATED, Observation.ALL_RUNNING, Phase.RUNNING, Action.NONE, False),
    (Phase.RUNNING, Observation.RETRYABLE_FAILURE, Phase.RESTARTING, Action.NONE, True),
    (Phase.CREATED, Observation.RETRYABLE_FAILURE, Phase.RESTARTING, Action.NONE, True),
    (Phase.RUNNING, Observation.BACKOFF_EXCEEDED, Phase.FAILED, Action.DELETE_ACTIVE, False),
    (Phase.RUNNING, Observation.PERMANENT_FAILURE, Phase.FAILED, Action.DELETE_ACTIVE, False),
    (Phase.RUNNING, Observation.SUCCESS, Phase.SUCCEEDED, Action.DELETE_ACTIVE, False),
    (Phase.RESTARTING, Observation.STALE, Phase.RESTARTING, Action.DELETE_STALE, False),
    (Phase.RESTARTING, Observation.RETRYABLE_FAILURE, Phase.RESTARTING, Action.DELETE_STALE,
     False),
    (Phase.RESTARTING, Observation.EMPTY, Phase.CREATED, Action.CREATE, False),
    (Phase.RUNNING, Observation.SUSPEND, Phase.SUSPENDED, Action.DELETE_ALL, False),
    (Phase.SUSPENDED, Observation.STARTING, Phase.SUSPENDED, Action.DELETE_ALL, False),
    (Phase.SUSPENDED, Observation.EMPTY, Phase.CREATED, Action.CREATE, False),
])
def test_steps(phase: Phase, observation: Observation, to: Phase, action: Action,
               restart: bool) -> None:
    s = step(phase, observation)
    assert (s.phase, s.action, s.restart) == (to, action, restart)


def test_observations_rank_the_decisive_first() -> None:
    assert observe(Facts(success=True, permanent_failure=True)) is Observation.SUCCESS
    assert observe(Facts(permanent_failure=True, retryable_failure=True)) is \
        Observation.PERMANENT_FAILURE
    assert observe(Facts(retryable_failure=True)) is Observation.RETRYABLE_FAILURE
    assert observe(Facts(retryable_failure=True, restarts_left=False)) is \
        Observation.BACKOFF_EXCEEDED
    assert observe(Facts(in_place_exhausted=True, any_pods=True)) is \
        Observation.BACKOFF_EXCEEDED
    assert observe(Facts()) is Observation.EMPTY
    assert observe(Facts(any_pods=True, stale_pods=True, missing_pods=True)) is \
        Observation.STALE
    assert observe(Facts(any_pods=True, missing_pods=True)) is Observation.INCOMPLETE
    assert observe(Facts(any_pods=True)) is Observation.STARTING
    assert observe(Facts(any_pods=True, all_running=True)) is Observation.ALL_RUNNING
    assert observe(Facts(suspend=True, success=True)) is Observation.SUSPEND


def test_exit_codes() -> None:
    assert retryable(137, policy="ExitCode") and retryable(143, policy="ExitCode")
    assert not retryable(1, policy="ExitCode") and not retryable(127, policy="ExitCode")
    assert retryable(3, policy="ExitCode", extra=frozenset({3}))
    assert not retryable(137, policy="Never")
    assert retryable(None, policy="Never")  # evicted, node lost: not the program's fault
    pod = {"status": {"phase": "Failed", "containerStatuses": [
        {"name": "a", "state": {"terminated": {"exitCode": 0}}},
        {"name": "b", "state": {"terminated": {"exitCode": 137}}}]}}
    assert exit_code(pod) == 137
    assert exit_code({"status": {"phase": "Failed", "reason": "Evicted"}}) is None


def spec_of(framework: str, **roles: int) -> PinTrainingJobSpec:
    template = {"spec": {"containers": [{"name": "train", "image": "x"}]}}
    return PinTrainingJobSpec.model_validate({
        "framework": framework,
        "roles": {r: {"replicas": n, "template": template} for r, n in roles.items()}})


def test_pytorch_ranks_and_environment() -> None:
    spec = spec_of("pytorch", master=1, worker=3)
    members = rdv.members(spec)
    assert [(m.role, m.index, m.rank) for m in members] == [
        ("master", 0, 0), ("worker", 0, 1), ("worker", 1, 2), ("worker", 2, 3)]
    assert rdv.coordinator(spec) == ("master", 0)
    master = rdv.env_for(spec, members[0], job="t", attempt=2)
    assert master["MASTER_ADDR"] == {"fieldRef": {"apiVersion": "v1",
                                                  "fieldPath": "status.podIP"}}
    worker = rdv.env_for(spec, members[2], job="t", attempt=2)
    assert worker == {"MASTER_ADDR": {"configMapKeyRef": {"name": "t-rendezvous",
                                                          "key": "MASTER_ADDR.2"}},
                      "MASTER_PORT": "23456", "WORLD_SIZE": "4", "RANK": "2",
                      "LOCAL_RANK": "0"}
    assert rdv.rendezvous_data(spec, attempt=2, ips={}) is None
    data = rdv.rendezvous_data(spec, attempt=2, ips={("master", 0): "127.0.1.2"})
    assert data == {"MASTER_ADDR.2": "127.0.1.2"}
    assert rdv.addresses_of(data, attempt=2) == {"127.0.1.2"}
    assert rdv.addresses_of(data, attempt=3) == set()
    # without a master, worker 0 is rank 0 and the address others connect to
    alone = spec_of("pytorch", worker=2)
    assert rdv.coordinator(alone) == ("worker", 0)


def test_tf_config_is_valid_json_once_the_node_builds_the_environment() -> None:
    spec = spec_of("tensorflow", chief=1, worker=2, ps=1, evaluator=1)
    ips = {m.key: f"127.0.1.{m.rank + 2}" for m in rdv.members(spec)}
    data = rdv.rendezvous_data(spec, attempt=0, ips=ips)
    assert data is not None
    configs = {("ConfigMap", "t-rendezvous"): {"data": data}}
    for m in rdv.members(spec):
        env = rdv.env_for(spec, m, job="t", attempt=0)
        variables: list[dict[str, Any]] = [
            {"name": k, "value": v} if isinstance(v, str) else {"name": k, "valueFrom": v}
            for k, v in env.items()]
        container = {"name": "c", "env": variables}
        built = node_env.build({"metadata": {"name": "p", "namespace": NS}}, container,
                               base={}, configs=configs, node_allocatable={})
        tf = json.loads(built["TF_CONFIG"])
        assert tf["task"] == {"type": m.role, "index": m.index}
        assert tf["cluster"] == {"chief": ["127.0.1.2:2222"],
                                 "worker": ["127.0.1.3:2222", "127.0.1.4:2222"],
                                 "ps": ["127.0.1.5:2222"]}  # the evaluator is not a member


# --- an embedded member cluster with sim nodes -------------------------------------------------

class Cluster:
    """A member cluster: store, node agents, and a manager (scheduler + operator) that can be
    stopped and started again."""

    def __init__(self, client: KubeClient) -> None:
        self.client = client
        self.manager: Manager | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        manager = Manager(name="member", shutdown_timeout=5.0)
        Scheduler.attach(manager, self.client,
                         metrics=SchedulerMetrics(registry=CollectorRegistry()),
                         initial_backoff=0.1, max_backoff=0.5)
        add_pintrainingjob_controller(manager, client=self.client, backend="embedded",
                                      identity="test")
        self.manager = manager
        self._task = asyncio.create_task(manager.run())
        await manager.wait_started()

    async def stop(self) -> None:
        if self.manager is not None and self._task is not None:
            self.manager.stop()
            await self._task
        self.manager = self._task = None


@pytest.fixture
async def cluster() -> AsyncIterator[KubeClient]:  # the node fixtures' cluster, with our kinds
    store = await EmbeddedStore.open(path=None)
    registry.install(store)
    client = store.client()
    await client.create(NAMESPACES, {"metadata": {"name": NS}})
    yield client
    await store.close()


@pytest.fixture
async def member(cluster: KubeClient,
                 make_agent: Callable[..., Awaitable[NodeAgent]],  # noqa: F811
                 ) -> AsyncIterator[Cluster]:
    for name in ("n1", "n2"):
        await make_agent(name, runtime="sim", cpu="2")
    c = Cluster(cluster)
    await c.start()
    yield c
    await c.stop()


def job(name: str = "t", *, framework: str = "pytorch", worker: dict[str, Any] | None = None,
        master: dict[str, Any] | None = None, workers: int = 2, policy: str = "ExitCode",
        cpu: str = "500m", **spec: Any) -> dict[str, Any]:
    def role(replicas: int, annotations: dict[str, str] | None, policy: str) -> dict[str, Any]:
        return {"replicas": replicas, "restartPolicy": policy, "template": {
            "metadata": {"annotations": {"sim.pincompute.io/stop-delay": "0.05",
                                         **(annotations or {})}},
            "spec": {"terminationGracePeriodSeconds": 1, "containers": [
                {"name": "train", "image": "trainer", "resources": {
                    "requests": {"cpu": cpu, "memory": "64Mi"}}}]}}}
    first = "master" if framework == "pytorch" else "chief"
    return {"apiVersion": "pincompute.io/v1alpha1", "kind": "PinTrainingJob",
            "metadata": {"name": name, "namespace": NS},
            "spec": {"framework": framework,
                     "roles": {first: role(1, master, policy),
                               "worker": role(workers, worker, policy)}, **spec}}


async def get_job(client: KubeClient, name: str = "t") -> dict[str, Any]:
    return await client.get(PINTRAININGJOBS, name, namespace=NS)


async def pods_of(client: KubeClient) -> list[dict[str, Any]]:
    return (await client.list(PODS, namespace=NS)).items


async def phase_is(client: KubeClient, phase: str, name: str = "t") -> dict[str, Any] | None:
    got = await get_job(client, name)
    return got if (got.get("status") or {}).get("phase") == phase else None


async def events_of(client: KubeClient, reason: str) -> list[str]:
    items = (await client.list(EVENTS, namespace=NS)).items
    return [e["message"] for e in items if e["reason"] == reason]


async def event_of(client: KubeClient, reason: str,
                   match: Callable[[str], bool] = bool) -> list[str]:
    """Wait for an Event with ``reason`` whose message ``match``es: Events are recorded
    asynchronously, after the status write a test waits for."""
    async def found() -> list[str] | None:
        messages = await events_of(client, reason)
        return messages if any(match(m) for m in messages) else None

    return await eventually(found, timeout=10)


async def test_the_gang_is_created_and_placed_together_with_its_rendezvous(
        member: Cluster) -> None:
    client = member.client
    await client.create(PINTRAININGJOBS, job(), namespace=NS)
    running = await eventually(lambda: phase_is(client, "Running"), timeout=20)
    pods = {p["metadata"]["name"]: p for p in await pods_of(client)}
    assert sorted(pods) == ["t-master-0", "t-worker-0", "t-worker-1"]
    groups = {p["metadata"]["labels"][POD_GROUP_LABEL] for p in pods.values()}
    assert groups == {running["metadata"]["uid"]}
    assert {p["metadata"]["annotations"][POD_GROUP_MIN_MEMBER_ANNOTATION]
            for p in pods.values()} == {"3"}
    assert all(p["spec"].get("nodeName") for p in pods.values())
    assert running["status"]["roles"]["worker"] == {"active": 2, "succeeded": 0, "failed": 0,
                                                    "ready": 2}
    assert running["status"]["restarts"] == 0 and running["status"]["startTime"]

    cm = await client.get(CONFIGMAPS, "t-rendezvous", namespace=NS)
    master_ip = pods["t-master-0"]["status"]["podIP"]
    assert cm["data"] == {"MASTER_ADDR.0": master_ip}
    ranks = []
    for pod in pods.values():
        container = pod["spec"]["containers"][0]
        env = node_env.build(pod, container, base={},
                             configs={("ConfigMap", "t-rendezvous"): cm},
                             node_allocatable={})
        assert env["MASTER_ADDR"] == master_ip and env["MASTER_PORT"] == "23456"
        assert env["WORLD_SIZE"] == "3" and env["LOCAL_RANK"] == "0"
        ranks.append(int(env["RANK"]))
        assert pod["metadata"]["labels"][ATTEMPT_LABEL] == "0"
    assert sorted(ranks) == [0, 1, 2]
    await event_of(client, "Created", lambda m: "t-master-0, t-worker-0, t-worker-1" in m)


async def test_a_gang_that_cannot_fit_is_not_placed_at_all(member: Cluster) -> None:
    client = member.client
    # two nodes of 2 cpus; each pod fits alone, the five together do not
    await client.create(PINTRAININGJOBS, job(workers=4, cpu="1"), namespace=NS)

    async def all_created() -> list[dict[str, Any]] | None:
        pods = await pods_of(client)
        return pods if len(pods) == 5 else None

    await eventually(all_created, timeout=10)
    await asyncio.sleep(1.0)  # the scheduler tried every member meanwhile
    pods = await pods_of(client)
    assert not any(p["spec"].get("nodeName") for p in pods)
    assert (await get_job(client))["status"]["phase"] == "Created"


async def test_a_tensorflow_gang_gets_its_cluster_spec(member: Cluster) -> None:
    client = member.client
    await client.create(PINTRAININGJOBS, job(framework="tensorflow"), namespace=NS)
    await eventually(lambda: phase_is(client, "Running"), timeout=20)
    cm = await client.get(CONFIGMAPS, "t-rendezvous", namespace=NS)
    pods = {p["metadata"]["name"]: p for p in await pods_of(client)}
    for pod in pods.values():
        env = node_env.build(pod, pod["spec"]["containers"][0], base={},
                             configs={("ConfigMap", "t-rendezvous"): cm},
                             node_allocatable={})
        tf = json.loads(env["TF_CONFIG"])
        assert tf["cluster"]["chief"] == [f"{pods['t-chief-0']['status']['podIP']}:2222"]
        assert len(tf["cluster"]["worker"]) == 2
        assert tf["task"]["type"] == pod["metadata"]["labels"][ROLE_LABEL]


async def test_a_worker_killed_by_a_signal_restarts_the_gang_until_the_limit(
        member: Cluster) -> None:
    client = member.client
    doomed = {"sim.pincompute.io/run-duration": "0.8", "sim.pincompute.io/exit-code": "137"}
    await client.create(PINTRAININGJOBS, job(worker=doomed, backoffLimit=1), namespace=NS)
    first = {p["metadata"]["name"]: p["metadata"]["uid"] for p in
             await eventually(lambda: _pods_with_attempt(client, "0", 3), timeout=20)}
    second = {p["metadata"]["name"]: p["metadata"]["uid"] for p in
              await eventually(lambda: _pods_with_attempt(client, "1", 3), timeout=20)}
    assert set(first) == set(second) and not set(first.values()) & set(second.values())
    failed = await eventually(lambda: phase_is(client, "Failed"), timeout=20)
    assert failed["status"]["restarts"] == 1
    assert "exited with 137" in failed["status"]["message"]
    assert "backoffLimit (1) reached" in failed["status"]["message"]
    restarting = await event_of(client, "Restarting")
    assert len(restarting) == 1 and "t-worker-" in restarting[0]
    assert "exited with 137: restarting the gang (restart 1 of 1)" in restarting[0]
    await event_of(client, "Failed", lambda m: "BackoffLimitExceeded" in m)

    async def master_stopped() -> bool:
        return all(p["metadata"]["name"] != "t-master-0"
                   or p["status"].get("phase") in ("Succeeded", "Failed")
                   for p in await pods_of(client))

    await eventually(master_stopped, timeout=10)


async def _pods_with_attempt(client: KubeClient, attempt: str,
                             n: int) -> list[dict[str, Any]] | None:
    pods = [p for p in await pods_of(client)
            if p["metadata"]["labels"].get(ATTEMPT_LABEL) == attempt]
    return pods if len(pods) == n else None


async def test_restarts_in_place_count_against_the_limit(member: Cluster) -> None:
    client = member.client
    flaky = {"sim.pincompute.io/run-duration": "0.2", "sim.pincompute.io/exit-code": "1"}
    await client.create(PINTRAININGJOBS, job(worker=flaky, workers=1, policy="OnFailure",
                                             backoffLimit=1), namespace=NS)
    failed = await eventually(lambda: phase_is(client, "Failed"), timeout=20)
    assert failed["status"]["restarts"] == 0  # the node restarted the container, not us
    assert "containers restarted 2 times in place; backoffLimit (1) reached" in \
        failed["status"]["message"]


async def test_a_bug_fails_the_job_at_once(member: Cluster) -> None:
    client = member.client
    buggy = {"sim.pincompute.io/run-duration": "0.5", "sim.pincompute.io/exit-code": "1"}
    await client.create(PINTRAININGJOBS, job(worker=buggy, workers=1), namespace=NS)
    failed = await eventually(lambda: phase_is(client, "Failed"), timeout=20)
    assert failed["status"]["restarts"] == 0
    assert "exited with 1 (not retryable)" in failed["status"]["message"]
    await event_of(client, "Failed", lambda m: m.startswith("PermanentFailure: pod t-worker-0"))
    assert await events_of(client, "Restarting") == []


async def test_the_masters_success_is_the_jobs(member: Cluster) -> None:
    client = member.client
    done = {"sim.pincompute.io/run-duration": "1", "sim.pincompute.io/exit-code": "0"}
    await client.create(PINTRAININGJOBS, job(master=done), namespace=NS)
    succeeded = await eventually(lambda: phase_is(client, "Succeeded"), timeout=20)
    assert succeeded["status"]["completionTime"]
    assert "t-master-0 (master 0) succeeded" in succeeded["status"]["message"]

    async def workers_gone() -> list[dict[str, Any]] | None:
        pods = await pods_of(client)
        return pods if [p["metadata"]["name"] for p in pods] == ["t-master-0"] else None

    (master,) = await eventually(workers_gone, timeout=10)  # finished pods kept for logs
    assert master["status"]["phase"] == "Succeeded"
    await event_of(client, "Succeeded")


async def test_a_restarted_manager_converges_without_duplicate_pods(member: Cluster) -> None:
    client = member.client
    added: Counter[str] = Counter()
    rv = (await client.list(PODS, namespace=NS)).resource_version

    async def watch() -> None:
        async for event in client.watch(PODS, namespace=NS, resource_version=rv):
            if event.type == ADDED:
                added[event.object["metadata"]["name"]] += 1

    watcher = asyncio.create_task(watch())
    try:
        await client.create(PINTRAININGJOBS, job(workers=4), namespace=NS)
        await eventually(lambda: asyncio.sleep(0, result=sum(added.values()) >= 1),
                         interval=0.005)
        await member.stop()  # mid-way: some pods created, maybe not all
        await member.start()
        await eventually(lambda: phase_is(client, "Running"), timeout=20)
        await member.stop()
        await member.start()  # and once more when everything runs: nothing changes
        everyone = ["t-master-0"] + [f"t-worker-{i}" for i in range(4)]
        await eventually(lambda: asyncio.sleep(0, result=sorted(added) == everyone),
                         timeout=10)  # (the watch delivering every pod)
        await asyncio.sleep(0.5)  # (time for a duplicate to show)
        assert sorted(added) == everyone
        assert set(added.values()) == {1}
        assert (await get_job(client))["status"]["phase"] == "Running"
    finally:
        watcher.cancel()


async def test_a_manager_restarted_during_a_gang_restart_neither_skips_nor_repeats(
        member: Cluster) -> None:
    client = member.client
    added: Counter[str] = Counter()
    rv = (await client.list(PODS, namespace=NS)).resource_version

    async def watch() -> None:
        async for event in client.watch(PODS, namespace=NS, resource_version=rv):
            if event.type == ADDED:
                added[event.object["metadata"]["name"]] += 1

    watcher = asyncio.create_task(watch())
    try:
        doomed = {"sim.pincompute.io/run-duration": "0.8", "sim.pincompute.io/exit-code": "137"}
        await client.create(PINTRAININGJOBS, job(worker=doomed, workers=1, backoffLimit=2),
                            namespace=NS)
        await eventually(lambda: phase_is(client, "Restarting"), timeout=20, interval=0.01)
        await member.stop()
        await member.start()
        failed = await eventually(lambda: phase_is(client, "Failed"), timeout=30)
        assert failed["status"]["restarts"] == 2
        # every attempt created each pod exactly once: 3 attempts, 2 pods
        assert added == {"t-master-0": 3, "t-worker-0": 3}
        async def two_restarts() -> bool:
            return len(await events_of(client, "Restarting")) == 2

        await eventually(two_restarts, timeout=10)
    finally:
        watcher.cancel()


async def test_suspend_deletes_the_pods_and_resume_starts_afresh(member: Cluster) -> None:
    client = member.client
    await client.create(PINTRAININGJOBS, job(workers=1), namespace=NS)
    await eventually(lambda: phase_is(client, "Running"), timeout=20)
    first = {p["metadata"]["uid"] for p in await pods_of(client)}
    await client.patch(PINTRAININGJOBS, "t", {"spec": {"suspend": True}}, namespace=NS)
    await eventually(lambda: phase_is(client, "Suspended"), timeout=20)

    async def no_pods() -> bool:
        return not await pods_of(client)

    await eventually(no_pods, timeout=20)
    cm = await client.get(CONFIGMAPS, "t-rendezvous", namespace=NS)
    assert not cm.get("data")  # withdrawn: resumed pods never read the old address
    await client.patch(PINTRAININGJOBS, "t", {"spec": {"suspend": False}}, namespace=NS)
    resumed = await eventually(lambda: phase_is(client, "Running"), timeout=20)
    assert resumed["status"]["restarts"] == 0
    pods = await pods_of(client)
    assert len(pods) == 2 and not {p["metadata"]["uid"] for p in pods} & first
    await event_of(client, "Suspended")
    await event_of(client, "Resumed")


async def test_the_deadline_fails_the_job_and_the_ttl_deletes_it(member: Cluster) -> None:
    client = member.client
    await client.create(PINTRAININGJOBS, job(workers=1, activeDeadlineSeconds=1,
                                             ttlSecondsAfterFinished=1), namespace=NS)
    failed = await eventually(lambda: phase_is(client, "Failed"), timeout=20)
    assert "activeDeadlineSeconds (1s)" in failed["status"]["message"]
    await event_of(client, "Failed", lambda m: m.startswith("DeadlineExceeded"))

    async def deleted() -> bool:
        return not (await client.list(PINTRAININGJOBS, namespace=NS)).items

    await eventually(deleted, timeout=10)


# --- real processes: the example trains ----------------------------------------------------------

async def test_the_example_trains_a_linear_model_over_tcp(
        cluster: KubeClient,
        make_agent: Callable[..., Awaitable[NodeAgent]]) -> None:  # noqa: F811
    agents = [await make_agent(name) for name in ("n1", "n2")]
    member = Cluster(cluster)
    await member.start()
    try:
        obj = yaml.safe_load(EXAMPLE.read_text())
        await cluster.create(PINTRAININGJOBS, obj, namespace=NS)
        # (1.5 s alone; its 800 round trips between pods of small CPU shares crawl under load)
        await eventually(lambda: phase_is(cluster, "Succeeded", "linear-fit"), timeout=100)
        master = await cluster.get(PODS, "linear-fit-master-0", namespace=NS)
        agent = next(a for a in agents if a.name == master["spec"]["nodeName"])
        assert agent.api_endpoint is not None
        node = NodeClient(agent.api_endpoint, agent.api_token)
        log = b"".join([c async for c in node.logs(NS, "linear-fit-master-0", "train")])
        assert b"learned w=3.000 b=2.000 from 3 ranks" in log, log
    finally:
        await member.stop()
