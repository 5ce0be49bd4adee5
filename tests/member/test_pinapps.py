"""The PinApp operator: the rollout table and planner (pure), then reconcile tests on an
embedded member cluster with the scheduler, the provisioner and sim node agents — scaling,
rolling updates within maxSurge/maxUnavailable, Recreate, pause, stop/start, restart,
rollback, the progress deadline, in-place image updates, a manager killed mid-rollout, and a
drain held back by the disruption budget."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from pincompute.kube.objects import condition_true, get_condition
from pincompute.kube.protocol import KubeClient
from pincompute.kube.resource import EVENTS, NODES, PODS
from pincompute.member import apphistory
from pincompute.member.pinapps import add_pinapp_controller
from pincompute.member.pinpods import add_pinpod_controller
from pincompute.member.provisioner import mark_for_removal
from pincompute.member.rollout import (
    PHASES,
    STEPS,
    Bounds,
    Phase,
    Replica,
    Step,
    bounds,
    phase_of,
    plan,
)
from pincompute.model.disruption import evict, may_evict, required_available
from pincompute.model.registry import PINAPPS, PINPODS
from pincompute.model.wellknown import RESTARTED_AT_ANNOTATION, ROLLBACK_TO_ANNOTATION
from pincompute.runtime.manager import Manager
from tests.member.test_pinpods import Member, member_cluster
from tests.waiting import eventually

# --- the table and the planner (pure) -------------------------------------------------------------


def test_every_phase_has_a_step_and_facts() -> None:
    assert set(STEPS) == set(Phase) == set(PHASES)
    assert PHASES[Phase.FAILED].progressing == "False"
    assert PHASES[Phase.FAILED].reason == "ProgressDeadlineExceeded"
    assert STEPS[Phase.PAUSED] is Step.SCALE and STEPS[Phase.STOPPED] is Step.SCALE_TO_ZERO
    common = dict(stopped=False, paused=False, recreate=False, old=1, complete=False,
                  stalled_for=0.0, deadline=10.0)
    assert phase_of(**common) is Phase.PROGRESSING
    assert phase_of(**{**common, "stalled_for": 10.0}) is Phase.FAILED
    assert phase_of(**{**common, "recreate": True}) is Phase.RECREATING
    assert phase_of(**{**common, "old": 0, "recreate": True, "terminating": 1}) \
        is Phase.RECREATING
    assert phase_of(**{**common, "paused": True}) is Phase.PAUSED
    assert phase_of(**{**common, "stopped": True, "paused": True}) is Phase.STOPPED
    assert phase_of(**{**common, "old": 0, "complete": True}) is Phase.COMPLETE
    assert bounds(4, max_surge="25%", max_unavailable="25%") == Bounds(1, 1)
    assert bounds(3, max_surge="25%", max_unavailable="25%") == Bounds(1, 0)
    assert bounds(3, max_surge=0, max_unavailable=0) == Bounds(0, 1)


def simulate(replicas: list[Replica], *, want: int, b: Bounds, shape: str = "s2",
             steps: int = 50) -> list[tuple[int, int]]:
    """Run the planner against an ideal cluster (what is created becomes available at the
    next step); returns (total, available) after every step, asserting the bounds."""
    seen = []
    n = 0
    floor = min(want - b.unavailable, sum(r.available for r in replicas))
    for _ in range(steps):
        todo = plan(Step.ROLL, replicas, want=want, update_revision="r2", update_shape=shape,
                    current_revision="r1", bounds=b)
        if todo.empty:
            break
        replicas = [r for r in replicas if r.name not in todo.delete]
        replicas = [Replica(r.name, "r2", shape) if r.name in todo.in_place else r
                    for r in replicas]
        for _ in range(todo.create):
            n += 1
            replicas.append(Replica(f"new-{n}", "r2", shape))
        total = len(replicas)
        available = sum(r.available for r in replicas)
        assert total <= want + b.surge, (total, todo)
        assert available >= floor, (available, todo)
        seen.append((total, available))
        # The next step: everything comes up.
        replicas = [Replica(r.name, r.revision, r.shape, True, True) for r in replicas]
    assert sorted(r.revision for r in replicas) == ["r2"] * want
    return seen


def old(n: int, shape: str = "s1") -> list[Replica]:
    return [Replica(f"old-{i}", "r1", shape, True, True) for i in range(n)]


def test_a_rolling_update_stays_within_its_bounds_step_by_step() -> None:
    # maxUnavailable 0, maxSurge 1: one extra at a time, never one fewer available.
    steps = simulate(old(3), want=3, b=Bounds(1, 0))
    assert steps[0] == (4, 3) and all(total <= 4 and avail >= 3 for total, avail in steps)
    simulate(old(4), want=4, b=Bounds(1, 1))
    simulate(old(5), want=5, b=Bounds(0, 2))
    simulate(old(2), want=5, b=Bounds(2, 1))  # scaling up during the update


def test_images_only_is_in_place_within_max_unavailable_and_replaced_without_it() -> None:
    todo = plan(Step.ROLL, old(4, "s2"), want=4, update_revision="r2", update_shape="s2",
                current_revision="r1", bounds=Bounds(1, 1))
    assert todo.create == 0 and not todo.delete and len(todo.in_place) == 1
    steps = simulate(old(4, "s2"), want=4, b=Bounds(1, 1), shape="s2")
    assert all(total == 4 for total, _ in steps)  # no surge: in place
    # maxUnavailable 0 forbids taking a pod down in place: replaced through the surge.
    todo = plan(Step.ROLL, old(3, "s2"), want=3, update_revision="r2", update_shape="s2",
                current_revision="r1", bounds=Bounds(1, 0))
    assert todo.create == 1 and not todo.in_place


def test_recreate_and_scale_plans() -> None:
    mixed = [*old(2), Replica("n", "r2", "s2", True, True)]
    assert plan(Step.RECREATE, mixed, want=3, update_revision="r2", update_shape="s2",
                current_revision="r1", bounds=Bounds(0, 1)).delete == ["old-0", "old-1"]
    scale = plan(Step.SCALE, old(2), want=4, update_revision="r2", update_shape="s2",
                 current_revision="r1", bounds=Bounds(1, 1))
    assert (scale.create, scale.revision) == (2, "r1")  # paused: the current revision
    down = plan(Step.SCALE, [*old(2), Replica("sick", "r1", "s1")], want=2,
                update_revision="r2", update_shape="s2", current_revision="r1",
                bounds=Bounds(1, 1))
    assert down.delete == ["sick"]  # unavailable ones go first
    assert plan(Step.SCALE_TO_ZERO, old(2), want=0, update_revision="r2", update_shape="s2",
                current_revision="r1", bounds=Bounds(1, 1)).delete == ["old-0", "old-1"]


def test_history_keeps_the_limit_and_finds_rollbacks() -> None:
    history: list[dict[str, Any]] = []
    for i, rev in enumerate(["a", "b", "c", "d"]):
        history = apphistory.record(history, revision=rev, template={"n": i}, live={rev},
                                    limit=2, now="t")
    assert [e["revision"] for e in history] == ["b", "c", "d"]
    assert [e["number"] for e in history] == [2, 3, 4]
    assert apphistory.find(history, "")["revision"] == "c"  # type: ignore[index]
    assert apphistory.find(history, "2")["revision"] == "b"  # type: ignore[index]
    assert apphistory.find(history, "zzz") is None
    # A rollback to b makes it the latest, under a new number; a live revision stays.
    history = apphistory.record(history, revision="b", template={"n": 1}, live={"b", "d"},
                                limit=0, now="t")
    assert [(e["revision"], e["number"]) for e in history] == [("d", 4), ("b", 5)]


def test_the_budget_in_counts() -> None:
    assert required_available({"minAvailable": 2}, 5) == 2
    assert required_available({"minAvailable": "50%"}, 5) == 3  # rounds up, as a PDB's
    assert required_available({"maxUnavailable": 1}, 5) == 4
    assert required_available({"maxUnavailable": "50%"}, 5) == 3  # 2 may go: rounds down


# --- a member cluster ---------------------------------------------------------------------------

class AppMember(Member):
    async def start_operator(self) -> None:
        manager = Manager(name="operator", shutdown_timeout=5.0)
        add_pinpod_controller(manager, client=self.client, backend="embedded",
                              identity="test", failover_grace=1.0)
        add_pinapp_controller(manager, client=self.client, backend="embedded",
                              identity="test")
        self.operator = manager
        self._tasks["operator"] = asyncio.create_task(manager.run())
        await manager.wait_started()


@pytest.fixture
def node_dir() -> Iterator[Path]:
    root = Path(tempfile.mkdtemp(prefix="pincompute-pinapps-"))
    os.chmod(root, 0o711)
    try:
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
async def sim(node_dir: Path) -> AsyncIterator[Member]:
    member = await member_cluster(node_dir, runtime="sim", nodes=2)
    member.__class__ = AppMember
    await member.start_operator()
    try:
        yield member
    finally:
        await member.stop()
        await member.store.close()


def app(*, replicas: int = 3, image: str = "web:1", **spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"replicas": replicas, "template": {
        "metadata": {"labels": {"app": "web"}},
        "spec": {"containers": [
            {"name": "web", "image": image,
             "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}}}],
            "terminationGracePeriodSeconds": 1}}}
    body.update(spec)
    return {"metadata": {"name": "web", "namespace": "default"}, "spec": body}


async def get(client: KubeClient) -> dict[str, Any]:
    return await client.get(PINAPPS, "web", namespace="default")


async def pinpods(client: KubeClient) -> list[dict[str, Any]]:
    return [p for p in (await client.list(PINPODS, namespace="default")).items
            if not p["metadata"].get("deletionTimestamp")]


async def settled(client: KubeClient, replicas: int, *, image: str | None = None,
                  timeout: float = 30.0) -> dict[str, Any]:
    """The app once complete: ``replicas`` PinPods and pods, all updated and available."""
    async def check() -> dict[str, Any] | None:
        obj = await get(client)
        s = obj.get("status") or {}
        if s.get("observedGeneration") != obj["metadata"]["generation"]:
            return None
        if (s.get("replicas"), s.get("updatedReplicas"), s.get("availableReplicas")) != \
                (replicas, replicas, replicas):
            return None
        pods = (await client.list(PODS, namespace="default")).items
        if len(await pinpods(client)) != replicas or len(pods) != replicas:
            return None
        if image and any(p["spec"]["containers"][0]["image"] != image for p in pods):
            return None
        return obj

    return await eventually(check, timeout=timeout, what=f"{replicas} replicas settled")


async def reasons(client: KubeClient) -> list[str]:
    return [e["reason"] for e in (await client.list(EVENTS, namespace="default")).items
            if e["involvedObject"]["kind"] == "PinApp"]


async def has_event(client: KubeClient, reason: str) -> None:
    async def check() -> bool:
        return reason in await reasons(client)

    await eventually(check, what=f"a {reason} event")


async def test_scale_up_and_down(sim: Member) -> None:
    c = sim.client
    await c.create(PINAPPS, app(replicas=3), namespace="default")
    obj = await settled(c, 3)
    assert condition_true(obj, "Available") and obj["status"]["phase"] == "Running"
    assert get_condition(obj, "Progressing")["reason"] == "RolloutComplete"  # type: ignore[index]
    names = {p["metadata"]["name"] for p in await pinpods(c)}
    assert all(n.startswith("web-") for n in names)
    await c.patch(PINAPPS, "web", {"spec": {"replicas": 5}}, namespace="default")
    await settled(c, 5)
    assert names < {p["metadata"]["name"] for p in await pinpods(c)}  # the old ones kept
    await c.patch(PINAPPS, "web", {"spec": {"replicas": 1}}, namespace="default")
    await settled(c, 1)
    await has_event(c, "ScaledUp")
    await has_event(c, "ScaledDown")


async def test_a_rolling_update_respects_surge_and_unavailability(sim: Member) -> None:
    c = sim.client
    strategy = {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}}
    await c.create(PINAPPS, app(replicas=3, strategy=strategy), namespace="default")
    await settled(c, 3)
    # Every PinPod event the store sends: never more than 4 PinPods, never fewer than 3 ready.
    rv = (await c.list(PINPODS, namespace="default")).resource_version
    state = {p["metadata"]["name"]: p for p in await pinpods(c)}
    seen: list[tuple[int, int]] = []

    async def watch() -> None:
        async for event in c.watch(PINPODS, namespace="default", resource_version=rv):
            name = event.object["metadata"]["name"]
            if event.type == "DELETED" or event.object["metadata"].get("deletionTimestamp"):
                state.pop(name, None)
            elif event.type in ("ADDED", "MODIFIED"):
                state[name] = event.object
            seen.append((len(state), sum(condition_true(p, "Ready") for p in state.values())))

    task = asyncio.create_task(watch())
    # A change beyond images (env): the PinPods are replaced.
    body = app(replicas=3, strategy=strategy)
    body["spec"]["template"]["spec"]["containers"][0]["env"] = [{"name": "V", "value": "2"}]
    await c.patch(PINAPPS, "web", {"spec": {"template": body["spec"]["template"]}},
                  namespace="default")
    obj = await settled(c, 3)
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    assert seen and max(total for total, _ in seen) == 4, seen  # the surge was used
    assert all(total <= 4 and ready >= 3 for total, ready in seen), seen
    assert obj["status"]["currentRevision"] == obj["status"]["updateRevision"]
    assert [e["number"] for e in obj["status"]["revisions"]] == [1, 2]
    for reason in ("RolloutStarted", "RolloutCompleted"):
        await has_event(c, reason)


async def test_recreate(sim: Member) -> None:
    c = sim.client
    await c.create(PINAPPS, app(replicas=2, strategy={"type": "Recreate"}), namespace="default")
    await settled(c, 2)
    mixed: list[int] = []
    stop = asyncio.Event()

    async def observe() -> None:
        while not stop.is_set():
            pods = (await c.list(PODS, namespace="default")).items
            images = {p["spec"]["containers"][0]["image"] for p in pods}
            mixed.append(len(images))
            await asyncio.sleep(0.02)

    task = asyncio.create_task(observe())
    await c.patch(PINAPPS, "web", {"spec": {"template": app(image="web:2")["spec"]["template"]}},
                  namespace="default")
    await settled(c, 2, image="web:2")
    stop.set()
    await task
    assert max(mixed) == 1  # never old and new pods at once


async def test_pause_resume_stop_start(sim: Member) -> None:
    c = sim.client
    await c.create(PINAPPS, app(replicas=2), namespace="default")
    await settled(c, 2)
    await c.patch(PINAPPS, "web", {"spec": {"paused": True, "replicas": 3, "template":
                                            app(image="web:2")["spec"]["template"]}},
                  namespace="default")

    async def paused() -> dict[str, Any] | None:
        obj = await get(c)
        s = obj.get("status") or {}
        return obj if s.get("phase") == "Paused" and s.get("replicas") == 3 and \
            s.get("availableReplicas") == 3 else None

    obj = await eventually(paused, what="scaled while paused")
    assert obj["status"]["updatedReplicas"] == 0  # scaled with the current revision
    assert condition_true(obj, "Paused")
    await c.patch(PINAPPS, "web", {"spec": {"paused": False}}, namespace="default")
    await settled(c, 3, image="web:2")
    await c.patch(PINAPPS, "web", {"spec": {"stopped": True}}, namespace="default")

    async def stopped() -> dict[str, Any] | None:
        obj = await get(c)
        pods = (await c.list(PODS, namespace="default")).items
        return obj if obj["status"].get("phase") == "Stopped" and not pods and \
            not await pinpods(c) else None

    obj = await eventually(stopped, what="stopped: no PinPods, no pods")
    assert condition_true(obj, "Stopped") and obj["spec"]["replicas"] == 3
    await c.patch(PINAPPS, "web", {"spec": {"stopped": False}}, namespace="default")
    obj = await settled(c, 3, image="web:2")
    assert not condition_true(obj, "Stopped")
    for reason in ("Paused", "Resumed", "Stopped", "Started"):
        await has_event(c, reason)


async def test_restart_and_rollback(sim: Member) -> None:
    c = sim.client
    await c.create(PINAPPS, app(replicas=2), namespace="default")
    await settled(c, 2)
    before = {p["metadata"]["name"] for p in await pinpods(c)}
    await c.patch(PINAPPS, "web", {"spec": {"template": {"metadata": {"annotations": {
        RESTARTED_AT_ANNOTATION: "2026-01-01T00:00:00Z"}}}}}, namespace="default")

    async def restarted() -> bool:
        now = {p["metadata"]["name"] for p in await pinpods(c)}
        return len(now) == 2 and not now & before

    await eventually(restarted, what="every PinPod replaced")
    await settled(c, 2)
    await c.patch(PINAPPS, "web", {"spec": {"template": app(image="web:9")["spec"]["template"]}},
                  namespace="default")
    await settled(c, 2, image="web:9")
    # Roll back to revision 1 (by number), declaratively.
    await c.patch(PINAPPS, "web", {"metadata": {"annotations": {ROLLBACK_TO_ANNOTATION: "1"}}},
                  namespace="default")
    obj = await settled(c, 2, image="web:1")
    assert ROLLBACK_TO_ANNOTATION not in (obj["metadata"].get("annotations") or {})
    assert RESTARTED_AT_ANNOTATION not in (obj["spec"]["template"]["metadata"].get(
        "annotations") or {})
    assert obj["status"]["revisions"][-1]["number"] == 4
    await has_event(c, "Rollback")


async def test_progress_deadline(sim: Member) -> None:
    c = sim.client
    await c.create(PINAPPS, app(replicas=1, progressDeadlineSeconds=2), namespace="default")
    await settled(c, 1)
    body = app(replicas=1)
    body["spec"]["template"]["spec"]["containers"][0]["resources"] = {
        "requests": {"cpu": "64", "memory": "64Mi"}}  # fits no node: never ready
    await c.patch(PINAPPS, "web", {"spec": {"template": body["spec"]["template"]}},
                  namespace="default")

    async def stuck() -> dict[str, Any] | None:
        obj = await get(c)
        cond = get_condition(obj, "Progressing") or {}
        return obj if cond.get("status") == "False" else None

    obj = await eventually(stuck, timeout=15, what="Progressing False")
    assert get_condition(obj, "Progressing")["reason"] == "ProgressDeadlineExceeded"  # type: ignore[index]
    assert obj["status"]["phase"] == "Failed"
    assert obj["status"]["availableReplicas"] == 1  # the old replica still serves
    await has_event(c, "ProgressDeadlineExceeded")


async def test_an_image_change_is_made_in_place(sim: Member) -> None:
    c = sim.client
    strategy = {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 1}}
    await c.create(PINAPPS, app(replicas=3, strategy=strategy), namespace="default")
    await settled(c, 3)
    names = {p["metadata"]["name"] for p in await pinpods(c)}
    uids = {p["metadata"]["uid"] for p in (await c.list(PODS, namespace="default")).items}
    await c.patch(PINAPPS, "web", {"spec": {"template": app(image="web:2")["spec"]["template"]}},
                  namespace="default")
    await settled(c, 3, image="web:2")
    assert {p["metadata"]["name"] for p in await pinpods(c)} == names
    assert {p["metadata"]["uid"] for p in (await c.list(PODS, namespace="default")).items} \
        == uids  # the same pods, updated in place
    await has_event(c, "UpdatedInPlace")


async def test_a_manager_killed_mid_rollout_converges(sim: Member) -> None:
    c = sim.client
    strategy = {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 2, "maxUnavailable": 0}}
    # minReadySeconds slows the rollout down enough to kill the manager in its middle.
    await c.create(PINAPPS, app(replicas=4, strategy=strategy, minReadySeconds=1),
                   namespace="default")
    await settled(c, 4)
    body = app(replicas=4)
    body["spec"]["template"]["spec"]["containers"][0]["env"] = [{"name": "V", "value": "2"}]
    await c.patch(PINAPPS, "web", {"spec": {"template": body["spec"]["template"]}},
                  namespace="default")

    async def midway() -> bool:
        return len(await pinpods(c)) > 4

    await eventually(midway, what="the rollout under way")
    await sim.stop_operator()
    await sim.start_operator()
    obj = await settled(c, 4)
    assert obj["status"]["updatedReplicas"] == 4
    await asyncio.sleep(0.5)  # nothing more is created once settled
    assert len(await pinpods(c)) == 4
    assert len((await c.list(PODS, namespace="default")).items) == 4


async def test_a_drain_honours_the_disruption_budget(sim: Member) -> None:
    c = sim.client
    await c.create(PINAPPS, app(replicas=2, disruptionBudget={"minAvailable": 2}),
                   namespace="default")
    await settled(c, 2)
    # Drain the node of one of them: with minAvailable 2 of 2 nothing may go.
    pods = (await c.list(PODS, namespace="default")).items
    node = pods[0]["spec"]["nodeName"]
    available: list[int] = []
    stop = asyncio.Event()

    async def observe() -> None:
        while not stop.is_set():
            ready = [p for p in (await c.list(PODS, namespace="default")).items
                     if condition_true(p, "Ready") and not p["metadata"].get(
                         "deletionTimestamp")]
            available.append(len(ready))
            await asyncio.sleep(0.02)

    task = asyncio.create_task(observe())
    decision = await may_evict(c, pods[0])
    assert (decision.allowed, decision.reason) == (False, "BudgetExceeded"), decision
    await mark_for_removal(c, node)
    await asyncio.sleep(2.0)
    on_node = [p for p in (await c.list(PODS, namespace="default")).items
               if p["spec"].get("nodeName") == node]
    assert on_node and not any(p["metadata"].get("deletionTimestamp") for p in on_node)
    # Loosen the budget: the drain evicts one at a time, never below 1 available.
    await c.patch(PINAPPS, "web", {"spec": {"disruptionBudget": {"minAvailable": 1}}},
                  namespace="default")

    async def drained() -> bool:
        nodes = {n["metadata"]["name"] for n in (await c.list(NODES)).items}
        pods = (await c.list(PODS, namespace="default")).items
        return node not in {p["spec"].get("nodeName") for p in pods} and node not in nodes

    await eventually(drained, timeout=30, what="the node drained")
    await settled(c, 2)
    stop.set()
    await task
    assert min(available) >= 1


async def test_evictions_racing_for_the_last_room_take_it_once(sim: Member) -> None:
    # Three evictors at once (say a drain, a rotation and the API), room for one: the app's
    # lock makes each read see the deletes before it, so exactly one pod goes.
    c = sim.client
    await c.create(PINAPPS, app(replicas=3, disruptionBudget={"maxUnavailable": 1}),
                   namespace="default")
    await settled(c, 3)
    await sim.stop_operator()  # no successor comes back in between: the room stays taken
    pods = (await c.list(PODS, namespace="default")).items

    class RemoteApi:
        """The client as a remote API server answers: each list takes a moment on the
        network, so the evictors' reads interleave before any of their deletes."""

        def __getattr__(self, name: str) -> Any:
            return getattr(c, name)

        async def list(self, *args: Any, **kwargs: Any) -> Any:
            result = await c.list(*args, **kwargs)
            await asyncio.sleep(0.05)
            return result

    decisions = await asyncio.gather(*(evict(RemoteApi(), pod) for pod in pods))  # type: ignore[arg-type]
    assert sorted(d.allowed for d in decisions) == [False, False, True], decisions
    kept = [p for p in (await c.list(PODS, namespace="default")).items
            if p["metadata"]["uid"] in {q["metadata"]["uid"] for q in pods}
            and p["metadata"].get("deletionTimestamp") is None]
    assert len(kept) == 2  # the two refused pods are still there, untouched


# --- end to end, real processes ------------------------------------------------------------------

SERVER = """
import http.server, os, signal, sys, threading, time
version = os.environ["VERSION"]
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = version.encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a):
        pass
server = http.server.ThreadingHTTPServer((os.environ["PINCOMPUTE_POD_IP"], 8080), H)
def drain(*_):
    # Connection draining: keep serving a moment after SIGTERM, as a preStop sleep does,
    # so a client that listed this pod just before its deletion is still answered.
    threading.Thread(target=lambda: (time.sleep(1.0), server.shutdown()), daemon=True).start()
signal.signal(signal.SIGTERM, drain)
server.serve_forever()
"""


def web_app(version: str) -> dict[str, Any]:
    from tests.member.test_provisioner import PYTHON
    return {"metadata": {"name": "web", "namespace": "default"}, "spec": {
        "replicas": 3,
        "strategy": {"type": "RollingUpdate",
                     "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}},
        "template": {"metadata": {"labels": {"app": "web"}}, "spec": {
            "terminationGracePeriodSeconds": 5,
            "containers": [{
                "name": "web", "image": "python", "command": [PYTHON, "-c", SERVER],
                "env": [{"name": "VERSION", "value": version}],
                "ports": [{"name": "http", "containerPort": 8080}],
                "readinessProbe": {"httpGet": {"path": "/", "port": 8080},
                                   "periodSeconds": 1}}]}}}}


@pytest.fixture
async def processes(node_dir: Path) -> AsyncIterator[Member]:
    member = await member_cluster(node_dir, runtime="process", nodes=2)
    member.__class__ = AppMember
    await member.start_operator()
    try:
        yield member
    finally:
        await member.stop()
        await member.store.close()


@pytest.mark.slow
async def test_a_rolling_update_serves_every_request(processes: Member) -> None:
    """The client stands in for a Service: before each request it picks, round robin, one
    of the app's pods (the app's ``status.selector``) that is Ready and not being deleted
    (there is no load balancer yet; the endpoints a Service would route to are these).
    maxUnavailable 0 and maxSurge 1 with readiness probes: not one request may fail while v1
    becomes v2."""
    import httpx

    c = processes.client
    await c.create(PINAPPS, web_app("v1"), namespace="default")
    await settled(c, 3, timeout=60)
    served: list[str] = []
    failures: list[str] = []
    stop = asyncio.Event()

    selector = (await get(c))["status"]["selector"]

    async def poll() -> None:
        turn = 0
        # (a generous timeout: the servers run with their 100m's small CPU share and starve
        # on a loaded machine; a pod that is gone refuses the connection at once anyway)
        async with httpx.AsyncClient(timeout=10.0) as http:
            while not stop.is_set():
                pods = [p for p in (await c.list(PODS, namespace="default",
                                                 label_selector=selector)).items
                        if condition_true(p, "Ready") and not p["metadata"].get(
                            "deletionTimestamp") and p["status"].get("podIP")]
                if not pods:
                    failures.append("no ready pod")
                    await asyncio.sleep(0.05)
                    continue
                turn += 1
                ip = pods[turn % len(pods)]["status"]["podIP"]
                try:
                    response = await http.get(f"http://{ip}:8080/")
                    response.raise_for_status()
                    served.append(response.text)
                except httpx.HTTPError as exc:
                    failures.append(f"{ip}: {exc!r}")
                await asyncio.sleep(0.02)

    task = asyncio.create_task(poll())
    async def serving() -> bool:
        return len(served) > 10

    await eventually(serving, what="the client served")
    await c.patch(PINAPPS, "web", {"spec": {"template": web_app("v2")["spec"]["template"]}},
                  namespace="default")
    await settled(c, 3, timeout=90)

    async def only_v2() -> bool:
        return served[-5:] == ["v2"] * 5

    await eventually(only_v2, timeout=10, what="only v2 served")
    stop.set()
    await task
    assert not failures, failures[:5]
    assert "v1" in served and "v2" in served


@pytest.mark.slow
async def test_the_example_runs_as_written(processes: Member) -> None:
    """examples/pinapp.yaml: three replicas on one node's address space, each serving on its
    own pod address, the sidecar reading the log volume through the sandbox's paths."""
    import httpx
    import yaml

    example = yaml.safe_load((Path(__file__).parents[2] / "examples" / "pinapp.yaml")
                             .read_text())
    c = processes.client
    await c.create(PINAPPS, example, namespace="default")

    async def ready() -> dict[str, Any] | None:
        obj = await c.get(PINAPPS, "hello-web", namespace="default")
        return obj if (obj.get("status") or {}).get("availableReplicas") == 3 else None

    await eventually(ready, timeout=60, what="hello-web available")
    pods = (await c.list(PODS, namespace="default")).items
    async with httpx.AsyncClient(timeout=2.0) as http:
        for pod in pods:
            response = await http.get(f"http://{pod['status']['podIP']}:8080/")
            assert response.status_code == 200


def test_only_what_the_app_counts_of_a_pinpod_reaches_it() -> None:
    from pincompute.member.pinapps import replica_changed
    from pincompute.runtime.controller import Event

    def pinpod(*, ready: str = "True", node: str = "n1", since: str = "t1", **meta: object
               ) -> dict:
        return {"metadata": {"name": "web-1", "uid": "u1", "generation": 1,
                             "labels": {"pincompute.io/revision": "r1"}, **meta},
                "spec": {"containers": [{"name": "main", "image": "img:1"}]},
                "status": {"nodeName": node, "conditions": [
                    {"type": "Ready", "status": ready, "lastTransitionTime": since}]}}

    base = pinpod()
    # Placed on another node, pending failover noted: the app counts the same.
    assert not replica_changed(Event("update", pinpod(node="n2"), base))
    assert replica_changed(Event("update", pinpod(ready="False", since="t2"), base))
    assert replica_changed(Event("update", pinpod(since="t2"), base))  # Ready again, anew
    assert replica_changed(Event("update", pinpod(deletionTimestamp="now"), base))
    assert replica_changed(Event("add", base))
    assert replica_changed(Event("delete", base))
    relabelled = pinpod()
    relabelled["metadata"]["labels"]["pincompute.io/revision"] = "r2"
    assert replica_changed(Event("update", relabelled, base))
    stale = pinpod()
    stale["status"]["containerStatuses"] = [{"name": "main", "image": "img:0"}]
    assert replica_changed(Event("update", stale, base))  # no longer runs its spec
