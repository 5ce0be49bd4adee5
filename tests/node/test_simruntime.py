"""The sim runtime: declared lifecycles through the same pod worker."""

from __future__ import annotations

import asyncio
import signal

import pytest

from pincompute.kube.resource import PODS
from pincompute.node.containerruntime import StartError
from pincompute.node.simruntime import PREFIX, Behaviour, Profile, SimInstance

from .conftest import container_status, eventually, get_pod, make_pod
from .test_agent import phase_is, ready


def test_profiles():
    assert Profile.parse("250m", cpu=True).at(99) == 250
    ramp = Profile.parse("0=100m,10=1100m", cpu=True)
    assert [ramp.at(t) for t in (0, 5, 10, 20)] == [100, 600, 1100, 1100]
    loop = Profile.parse("0=0,10=100Mi,loop", cpu=False)
    assert loop.at(15) == pytest.approx(50 * 2**20)
    with pytest.raises(ValueError):
        Profile.parse("0=1,oops", cpu=True)


def test_behaviour_from_annotations_with_container_overrides_and_defaults():
    pod = {"metadata": {"annotations": {f"{PREFIX}run-duration": "5",
                                        f"{PREFIX}run-duration.worker": "1",
                                        f"{PREFIX}exit-code.worker": "2"}}}
    main = Behaviour.of(pod, "main", defaults={"start-delay": "0.5", "ready": "false"})
    worker = Behaviour.of(pod, "worker", defaults={})
    assert (main.run_duration, main.exit_code, main.start_delay, main.ready) == (
        5.0, 0, 0.5, False)
    assert (worker.run_duration, worker.exit_code) == (1.0, 2)
    with pytest.raises(StartError):
        Behaviour.of({"metadata": {"annotations": {f"{PREFIX}exit-code": "x"}}}, "m",
                     defaults={})


async def test_an_instance_tells_its_exit_on_the_loop_and_makes_a_future_only_if_asked():
    heard = []
    inst = SimInstance(container="main", attempt=0, behaviour=Behaviour(stop_delay=0.0))
    inst.on_exit(lambda tag, status: heard.append((tag, status.code, status.reason)), "a")
    assert not hasattr(inst, "__dict__") and inst._future is None
    inst.signal(signal.SIGTERM)
    assert heard == [] and inst.status is not None  # told on the loop, not inside signal()
    await asyncio.sleep(0)
    assert heard == [("a", 0, "Completed")]
    # Asked after the exit: a resolved future, and a listener registered late still hears.
    assert (await inst.exited).reason == "Completed"
    inst.on_exit(lambda status: heard.append(status.code))
    await asyncio.sleep(0)
    assert heard[-1] == 0
    # A future asked for before the exit resolves with it; abandon() silences the listener.
    killed = SimInstance(container="main", attempt=1, behaviour=Behaviour())
    pending = killed.exited
    killed.on_exit(lambda status: heard.append("abandoned"))
    killed.abandon()
    killed.signal(signal.SIGKILL)
    assert (await pending).code == 137
    await asyncio.sleep(0)
    assert "abandoned" not in heard


def sim_pod(name, annotations, **spec):
    return make_pod(name, [{"name": "main"}], metadata={"annotations": {
        f"{PREFIX}{k}": v for k, v in annotations.items()}}, **spec)


async def test_run_duration_and_exit_code_decide_the_phase(cluster, make_agent):
    await make_agent(runtime="sim")
    await cluster.create(PODS, sim_pod("ok", {"run-duration": "0.1"}, restartPolicy="Never"),
                         namespace="default")
    await cluster.create(PODS, sim_pod("bad", {"run-duration": "0.1", "exit-code": "3"},
                                       restartPolicy="Never"), namespace="default")
    assert (await eventually(phase_is(cluster, "ok", "Succeeded")))
    pod = await eventually(phase_is(cluster, "bad", "Failed"))
    assert container_status(pod, "main")["state"]["terminated"]["exitCode"] == 3


async def test_crash_loop_and_readiness_are_simulated(cluster, make_agent):
    await make_agent(runtime="sim")
    await cluster.create(PODS, sim_pod("loop", {"run-duration": "0.05", "exit-code": "1"}),
                         namespace="default")
    await cluster.create(PODS, sim_pod("never-ready", {"ready": "false"}), namespace="default")
    await cluster.create(PODS, sim_pod("slow", {"start-delay": "0.2", "ready-delay": "0.2"}),
                         namespace="default")

    async def looping():
        pod = await get_pod(cluster, "loop")
        return container_status(pod, "main").get("restartCount", 0) >= 2

    await eventually(looping)
    await eventually(ready(cluster, "slow"))
    pod = await get_pod(cluster, "never-ready")
    assert pod["status"]["phase"] == "Running"
    assert not container_status(pod, "main")["ready"]


async def test_sidecar_order_and_usage_profile(cluster, make_agent):
    agent = await make_agent(runtime="sim", sim_defaults={"ready-delay": "0.1"})
    pod = make_pod("p", [{"name": "app"}, {"name": "proxy", "type": "sidecar"}],
                   metadata={"annotations": {f"{PREFIX}cpu-profile.app": "300m",
                                             f"{PREFIX}memory-profile.app": "64Mi"}})
    await cluster.create(PODS, pod, namespace="default")
    await eventually(ready(cluster, "p"))
    worker = agent.find("default", "p")
    app = worker.records["app"].instance
    proxy = worker.records["proxy"].instance
    assert proxy.started_at <= app.started_at
    assert worker.usage()["app"] == {"cpuMillis": 300, "memoryBytes": 64 * 2**20,
                                     "cpuSeconds": 0.0}
    await cluster.delete(PODS, "p", namespace="default")

    async def gone():
        return not (await cluster.list(PODS, namespace="default")).items

    await eventually(gone)
