"""The admission controller on an embedded host: statuses, project usage, reclaim, restart."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest

from pincompute.federation.admission.controller import add_admission_controller
from pincompute.federation.admission.queue import AdmissionQueues
from pincompute.kube import objects
from pincompute.kube.backends.embedded import EmbeddedStore
from pincompute.kube.protocol import KubeClient
from pincompute.kube.resource import NAMESPACES
from pincompute.model import registry
from pincompute.model.registry import PINAPPS, PINTRAININGJOBS, PROJECTS
from pincompute.runtime.manager import Manager

from .workloads import pod_spec


@asynccontextmanager
async def admission(host: KubeClient, **options: Any) -> AsyncIterator[AdmissionQueues]:
    queues = AdmissionQueues(backoff_base=options.pop("backoff_base", 0.5))
    manager = Manager(name="test", shutdown_timeout=5.0)
    add_admission_controller(manager, host=host, queues=queues, **options)
    task = asyncio.create_task(manager.run())
    await manager.wait_started()
    try:
        yield queues
    finally:
        manager.stop()
        await task


@pytest.fixture
async def host() -> AsyncIterator[KubeClient]:
    store = await EmbeddedStore.open(path=None)
    registry.install(store, resources=registry.HOST_RESOURCES)
    client = store.client()
    await client.create(NAMESPACES, {"metadata": {"name": "team"}})
    yield client
    await store.close()


async def project(host: KubeClient, quota: dict[str, Any]) -> None:
    await host.create(PROJECTS, {"metadata": {"name": "team"}, "spec": {"quota": quota}})


async def submit(host: KubeClient, name: str, *, replicas: int = 1, cpu: str = "1",
                 tier: str = "ondemand") -> None:
    await host.create(PINAPPS, {"metadata": {"name": name, "namespace": "team"},
                                "spec": {"tier": tier, "replicas": replicas,
                                         "template": {"spec": pod_spec(cpu)}}})


async def eventually(get: Callable[[], Any], check: Callable[[Any], bool],
                     timeout: float = 20.0) -> Any:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        value = await get()
        if check(value):
            return value
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out; last: {value}")
        await asyncio.sleep(0.05)


def app_of(host: KubeClient, name: str) -> Callable[[], Any]:
    return lambda: host.get(PINAPPS, name, namespace="team")


def state(obj: dict[str, Any]) -> str | None:
    return ((obj.get("status") or {}).get("admission") or {}).get("state")


def cond(obj: dict[str, Any], type_: str) -> dict[str, Any]:
    c = objects.get_condition(obj, type_)
    assert c is not None, (type_, obj.get("status"))
    return c


async def test_quota_exhaustion_queues_the_next_workload_with_reason_and_position(
        host: KubeClient) -> None:
    await project(host, {"ondemand": {"cpu": "12"}})
    async with admission(host):
        await submit(host, "a", replicas=10)
        a = await eventually(app_of(host, "a"), lambda o: state(o) == "Admitted")
        await submit(host, "b", replicas=4)
        await submit(host, "c", replicas=1)
        b = await eventually(app_of(host, "b"), lambda o: state(o) == "Queued")
        c = await eventually(app_of(host, "c"), lambda o: state(o) == "Queued" and
                             o["status"]["admission"].get("position") == 2)
    assert cond(a, "Admitted")["status"] == "True" and a["status"]["tier"] == "ondemand"
    assert a["status"]["admission"]["chargedTier"] == "ondemand"
    queued = cond(b, "Queued")
    assert queued["status"] == "True" and queued["reason"] == "QuotaExceeded"
    assert "cpu: requested 4, used 10 of 12 (ondemand)" in queued["message"]
    assert "position 1 in queue team/ondemand" in queued["message"]
    assert b["status"]["admission"]["position"] == 1
    assert "raised to cpu 14" in b["status"]["admission"]["hint"]
    assert cond(b, "Admitted")["status"] == "False"
    assert cond(c, "Queued")["reason"] == "WaitingInQueue"
    proj = await host.get(PROJECTS, "team")
    assert proj["status"]["usage"]["ondemand"]["cpu"] == "10"
    assert proj["status"]["queued"] == {"reserved": 0, "ondemand": 2, "preemptible": 0}


async def test_deleting_and_raising_quota_admit_in_order_and_survive_a_restart(
        host: KubeClient) -> None:
    await project(host, {"ondemand": {"cpu": "4"}})
    async with admission(host):
        for name in ("a", "b", "c"):
            await submit(host, name, replicas=3)
        await eventually(app_of(host, "c"), lambda o: state(o) == "Queued" and
                         o["status"]["admission"].get("position") == 2)
        assert state(await host.get(PINAPPS, "a", namespace="team")) == "Admitted"
    # A new controller (a restart) charges what the statuses record: nothing new fits.
    async with admission(host) as queues:
        # (c's status is the previous controller's: the new one charges in the background)
        await eventually(lambda: asyncio.sleep(0, result=queues.ledger.account(
            "team", "ondemand").used[0]), lambda used: used == 3000)
        await asyncio.sleep(0.3)  # and nothing more is admitted
        assert queues.ledger.account("team", "ondemand").used[0] == 3000
        assert state(await host.get(PINAPPS, "b", namespace="team")) == "Queued"
        await host.delete(PINAPPS, "a", namespace="team")
        await eventually(app_of(host, "b"), lambda o: state(o) == "Admitted")
        assert state(await host.get(PINAPPS, "c", namespace="team")) == "Queued"
        proj = await host.get(PROJECTS, "team")
        proj["spec"]["quota"] = {"ondemand": {"cpu": "6"}}
        await host.update(PROJECTS, proj)
        await eventually(app_of(host, "c"), lambda o: state(o) == "Admitted")


async def test_preemptible_is_reclaimed_when_a_reserved_workload_arrives(
        host: KubeClient) -> None:
    await project(host, {"reserved": {"cpu": "4"}, "ondemand": {"cpu": "0"},
                         "preemptible": {"cpu": "0"}})
    async with admission(host, backoff_base=1.0):
        await submit(host, "batch", tier="preemptible", replicas=4)
        batch = await eventually(app_of(host, "batch"), lambda o: state(o) == "Admitted")
        assert batch["status"]["admission"]["chargedTier"] == "reserved"
        assert cond(batch, "Admitted")["reason"] == "Borrowing"
        await host.create(PINTRAININGJOBS, {
            "metadata": {"name": "train", "namespace": "team"},
            "spec": {"tier": "reserved", "framework": "pytorch", "roles": {
                "master": {"template": {"spec": pod_spec("1")}},
                "worker": {"replicas": 2, "template": {"spec": pod_spec("1")}}}}})
        train = await eventually(lambda: host.get(PINTRAININGJOBS, "train", namespace="team"),
                                 lambda o: state(o) == "Admitted")
        batch = await host.get(PINAPPS, "batch", namespace="team")
        # Recorded before the reclaimer's Admitted: the victim is Preempted in its status.
        assert state(batch) == "Preempted"
        assert cond(batch, "Preempted")["status"] == "True"
        assert "team/train" in cond(batch, "Preempted")["message"]
        assert cond(batch, "Queued")["reason"] == "BackingOff"
        assert batch["status"]["admission"]["preemptions"] == 1
        assert train["status"]["admission"]["charged"]["cpu"] == "3"
        # Freed room later goes to the batch job again, after its back-off, if it fits.
        await host.delete(PINTRAININGJOBS, "train", namespace="team")
        batch = await eventually(app_of(host, "batch"), lambda o: state(o) == "Admitted")
        assert cond(batch, "Preempted")["status"] == "False"


async def test_concurrent_submissions_never_exceed_the_quota(host: KubeClient) -> None:
    await project(host, {"ondemand": {"cpu": "10"}})
    async with admission(host):
        await asyncio.gather(*(submit(host, f"w{i}", replicas=1 + i % 3) for i in range(24)))
        apps = await eventually(lambda: host.list(PINAPPS, namespace="team"), lambda items: all(
            state(o) in ("Admitted", "Queued") for o in items.items))
        await asyncio.sleep(0.3)
        apps = await host.list(PINAPPS, namespace="team")
    admitted = [o for o in apps.items if state(o) == "Admitted"]
    assert sum(o["spec"]["replicas"] for o in admitted) <= 10
    assert admitted
