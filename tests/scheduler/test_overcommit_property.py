"""Property: whatever the interleaving of decisions, bindings, failures and deletions,
no node is ever given more than it can hold."""

from __future__ import annotations

import asyncio
import random
from collections import defaultdict

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pincompute.kube.backends.embedded import EmbeddedStore
from pincompute.kube.errors import Conflict
from pincompute.kube.resource import NAMESPACES, NODES, PODS
from pincompute.scheduler import PatchBinder, Scheduler
from pincompute.scheduler.framework import Code, NoEffects
from pincompute.scheduler.podinfo import PodInfo
from pincompute.scheduler.resources import pod_requests

from .support import eventually, framework, gang, info, node, pod, table_of

TIERS = ("reserved", "ondemand", "preemptible")

node_specs = st.lists(st.tuples(st.integers(1, 4), st.integers(1, 8), st.integers(1, 6),
                                st.integers(0, 2)), min_size=1, max_size=6)
pod_specs = st.lists(st.tuples(st.integers(100, 2500), st.integers(64, 3000),
                               st.integers(0, 1), st.sampled_from(TIERS),
                               st.sampled_from([None, "g1", "g2"])),
                     min_size=1, max_size=40)


def assert_within_allocatable(t: object) -> None:
    assert t.overcommitted() == []  # type: ignore[attr-defined]
    # And the arrays agree with an independent sum over the pods accounted.
    sums: dict[int, list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    for entry in t.pods.values():  # type: ignore[attr-defined]
        if entry.row >= 0:
            s = sums[entry.row]
            s[0] += entry.info.cpu
            s[1] += entry.info.memory
            s[2] += entry.info.gpu
            s[3] += 1
    for row in t.node_rows():  # type: ignore[attr-defined]
        cpu, mem, gpu, pods = sums[int(row)]
        assert (t.req_cpu[row], t.req_mem[row], t.req_gpu[row], t.req_pods[row]) == \
            (cpu, mem, gpu, pods)  # type: ignore[attr-defined]


@settings(max_examples=120, deadline=None)
@given(nodes=node_specs, pods=pod_specs, seed=st.integers(0, 2**32 - 1))
def test_decisions_with_random_binding_outcomes_never_overcommit(
        nodes: list, pods: list, seed: int) -> None:
    rng = random.Random(seed)
    t = table_of(*(node(f"n{i}", cpu=str(c), memory=f"{m}Gi", pods=p, gpu=g)
                   for i, (c, m, p, g) in enumerate(nodes)))
    effects = NoEffects()
    fw = framework(t, effects=effects)
    in_flight: list = []  # (pod, node, cycle state) decided but not yet bound

    def permit_done(wp: object, st: object) -> None:
        if st.ok:  # type: ignore[attr-defined]
            in_flight.append((wp.info, wp.node, wp.state))  # type: ignore[attr-defined]
        else:
            fw.unreserve(wp.state, wp.info, wp.node)  # type: ignore[attr-defined]

    for i, (cpu, mem, gpu, tier, group) in enumerate(pods):
        extra = gang(group, 2) if group else {}
        p = info(pod(f"p{i}", cpu=f"{cpu}m", memory=f"{mem}Mi", gpu=gpu, tier=tier, **extra))
        fw.pod_seen(p)
        d = fw.schedule(p)
        if d.status.code == Code.WAIT:
            fw.wait(d, permit_done)
        elif d.status.ok:
            in_flight.append((p, d.node, d.state))
        # Preemption victims terminate, now or later.
        for victim, _, _ in effects.evicted:
            for entry in list(t.pods.values()):
                if entry.info.key == victim and rng.random() < 0.5:
                    t.remove_pod(entry.info.uid)
        # Resolve some bindings: confirmed by the informer, or refused by the API.
        rng.shuffle(in_flight)
        for _ in range(rng.randint(0, len(in_flight))):
            done, where, state = in_flight.pop()
            if done.uid not in t.pods:
                continue
            if rng.random() < 0.2:
                fw.unreserve(state, done, where)
            else:
                t.add_pod(done, where, assumed=False)
        if rng.random() < 0.1 and t.pods:
            t.remove_pod(rng.choice(sorted(t.pods)))  # a pod finishes
        assert_within_allocatable(t)


class FlakyBinder(PatchBinder):
    """Refuses some bindings and delays others, in a reproducible order."""

    def __init__(self, client: object, rng: random.Random) -> None:
        super().__init__(client)  # type: ignore[arg-type]
        self.rng = rng

    async def bind(self, p: PodInfo, node_name: str) -> None:
        for _ in range(self.rng.randint(0, 3)):
            await asyncio.sleep(0)
        if self.rng.random() < 0.15:
            raise Conflict("simulated conflict")
        await super().bind(p, node_name)


async def _run_cluster(nodes: list, pods: list, seed: int) -> None:
    rng = random.Random(seed)
    store = await EmbeddedStore.open(path=None)
    client = store.client()
    await client.create(NAMESPACES, {"metadata": {"name": "default"}})
    for i, (c, m, p, g) in enumerate(nodes):
        await client.create(NODES, node(f"n{i}", cpu=str(c), memory=f"{m}Gi", pods=p, gpu=g))
    sched = Scheduler(client, binder=FlakyBinder(client, rng), initial_backoff=0.001,
                      max_backoff=0.005, bind_workers=8, record_scheduled_events=False)
    checked = sched.framework.schedule

    def schedule_and_check(p: PodInfo, state: object = None) -> object:
        decision = checked(p)
        assert sched.table.overcommitted() == []
        return decision

    sched.framework.schedule = schedule_and_check  # type: ignore[method-assign]
    task = asyncio.ensure_future(sched.run())
    try:
        await sched.pods_informer.wait_synced()
        for i, (cpu, mem, gpu, tier, _group) in enumerate(pods):
            body = pod(f"p{i}", cpu=f"{cpu}m", memory=f"{mem}Mi", gpu=gpu, tier=tier)
            body["metadata"].pop("uid")
            await client.create(PODS, body)
            if rng.random() < 0.3:
                await asyncio.sleep(0)
        await eventually(lambda: len(sched.pods_informer.keys()) == len(pods))
        while True:  # until refused bindings have been retried
            await sched.settle(timeout=20)
            if not sched.queue.counts()["backoff"]:
                break
            await asyncio.sleep(0.005)
        fits_somewhere = any(cpu <= c * 1000 and mem <= m * 1024 and gpu <= g
                             for cpu, mem, gpu, *_ in pods for c, m, _p, g in nodes)
        assert sched.scheduled > 0 or not fits_somewhere
        used: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0, 0])
        for p in (await client.list(PODS)).items:
            where = p["spec"].get("nodeName")
            if where:
                cpu, mem, gpu = pod_requests(p["spec"])
                u = used[where]
                u[0] += cpu
                u[1] += mem
                u[2] += gpu
                u[3] += 1
        for i, (c, m, pcount, g) in enumerate(nodes):
            cpu, mem, gpu, count = used[f"n{i}"]
            assert cpu <= c * 1000 and mem <= m * 2**30 and gpu <= g and count <= pcount
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await store.close()


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(nodes=node_specs, pods=pod_specs, seed=st.integers(0, 2**32 - 1))
def test_the_store_never_holds_an_overcommitted_node(nodes: list, pods: list, seed: int) -> None:
    asyncio.run(_run_cluster(nodes, pods, seed))
