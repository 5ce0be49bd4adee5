"""The node agent with the process runtime: real processes, probes, restarts, ordering, updates."""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

import httpx
import pytest

from pincompute.kube.errors import NotFound
from pincompute.kube.resource import CONFIGMAPS, PODS
from tests.waiting import recorded

from .conftest import PYTHON, container_status, eventually, get_pod, make_pod, py


def phase_is(cluster, name, *phases, namespace="default"):
    async def check():
        pod = await get_pod(cluster, name, namespace)
        return pod if (pod.get("status") or {}).get("phase") in phases else None
    return check


def ready(cluster, name, namespace="default"):
    async def check():
        pod = await get_pod(cluster, name, namespace)
        conds = {c["type"]: c["status"] for c in (pod.get("status") or {}).get("conditions")
                 or ()}
        return pod if conds.get("Ready") == "True" else None
    return check


def gone(cluster, name, namespace="default"):
    async def check():
        try:
            await get_pod(cluster, name, namespace)
        except NotFound:
            return True
        return False
    return check


HTTP_SERVER = [PYTHON, "-u", "-m", "http.server", "8080", "--bind", "$(PINCOMPUTE_POD_IP)"]


async def test_http_server_is_probed_ready_and_two_replicas_share_a_port(cluster, make_agent):
    await make_agent()
    for name in ("web-1", "web-2"):
        await cluster.create(PODS, make_pod(name, [{
            "name": "web", "command": HTTP_SERVER,
            "ports": [{"name": "http", "containerPort": 8080}],
            "readinessProbe": {"httpGet": {"port": 8080, "path": "/"}, "periodSeconds": 1},
            "livenessProbe": {"tcpSocket": {"port": "http"}, "periodSeconds": 1},
        }]), namespace="default")
    pods = [await eventually(ready(cluster, name)) for name in ("web-1", "web-2")]
    ips = {p["status"]["podIP"] for p in pods}
    assert len(ips) == 2, "each replica has an address of its own"
    async with httpx.AsyncClient(trust_env=False) as http:
        for ip in ips:
            resp = await http.get(f"http://{ip}:8080/")
            assert resp.status_code == 200
    status = container_status(pods[0], "web")
    assert status["started"] is True and status["restartCount"] == 0
    assert "running" in status["state"]


async def test_readiness_follows_the_probe(cluster, make_agent, node_root):
    await make_agent()
    flag = node_root / "flag"
    flag.write_text("ok")
    os.chmod(flag, 0o644)
    await cluster.create(PODS, make_pod("r", [{
        "name": "main", "command": ["sleep", "60"],
        "readinessProbe": {"exec": {"command": ["test", "-f", str(flag)]}, "periodSeconds": 1,
                           "failureThreshold": 1},
    }]), namespace="default")
    await eventually(ready(cluster, "r"))
    flag.unlink()

    async def unready():
        pod = await get_pod(cluster, "r")
        return not container_status(pod, "main").get("ready")

    await eventually(unready)
    pod = await get_pod(cluster, "r")
    assert pod["status"]["phase"] == "Running"
    assert container_status(pod, "main")["restartCount"] == 0


async def test_crashing_container_restarts_with_backoff(cluster, make_agent):
    agent = await make_agent()
    await cluster.create(PODS, make_pod("crash", [{
        "name": "main", "command": ["sh", "-c", "echo attempt; exit 3"]}]), namespace="default")

    async def restarted_three_times():
        pod = await get_pod(cluster, "crash")
        c = container_status(pod, "main")
        return pod if c.get("restartCount", 0) >= 3 else None

    pod = await eventually(restarted_three_times)
    c = container_status(pod, "main")
    assert c["lastState"]["terminated"]["exitCode"] == 3
    assert c["lastState"]["terminated"]["reason"] == "Error"
    assert pod["status"]["phase"] == "Running"
    # The delays double: 0.2, 0.4, 0.8, capped at 1.0 (FAST_BACKOFF).
    record = agent.find("default", "crash").records["main"]
    assert record.backoff.policy.initial == 0.2
    assert record.backoff.failures >= 3  # so the next wait is 0.2 * 2**3, capped at 1.0
    await recorded(cluster, reason="BackOff", name="crash")
    # The previous instance's log is kept.
    chunks = [c async for c in agent.logs.read(agent.find("default", "crash").log_dir, "main",
                                               previous=True)]
    assert b"".join(chunks) == b"attempt\n"


async def test_liveness_failure_restarts_the_container(cluster, make_agent):
    await make_agent()
    script = "touch $HOME/alive; sleep 0.5; rm $HOME/alive; exec sleep 60"
    await cluster.create(PODS, make_pod("live", [{
        "name": "main", "command": ["sh", "-c", script],
        "livenessProbe": {"exec": {"command": ["sh", "-c", "test -f $HOME/alive"]},
                          "initialDelaySeconds": 1, "periodSeconds": 1,
                          "failureThreshold": 2},
    }], terminationGracePeriodSeconds=1), namespace="default")

    async def restarted():
        pod = await get_pod(cluster, "live")
        return pod if container_status(pod, "main").get("restartCount", 0) >= 1 else None

    pod = await eventually(restarted)
    last = container_status(pod, "main")["lastState"]["terminated"]
    assert last["exitCode"] in (143, 137)
    await recorded(cluster, reason="Unhealthy", name="live",
                   match=lambda e: "Liveness probe failed" in e["message"])


@pytest.mark.parametrize(("policy", "code", "phase"), [
    ("Never", 0, "Succeeded"), ("Never", 1, "Failed"), ("OnFailure", 0, "Succeeded")])
async def test_restart_policy_decides_the_final_phase(cluster, make_agent, policy, code, phase):
    await make_agent()
    await cluster.create(PODS, make_pod("job", [{
        "name": "main", "command": ["sh", "-c", f"exit {code}"]}], restartPolicy=policy),
        namespace="default")
    pod = await eventually(phase_is(cluster, "job", "Succeeded", "Failed"))
    assert pod["status"]["phase"] == phase
    term = container_status(pod, "main")["state"]["terminated"]
    assert term["exitCode"] == code
    assert term["reason"] == ("Completed" if code == 0 else "Error")


async def test_on_failure_restarts_until_success(cluster, make_agent, node_root):
    await make_agent()
    counter = node_root / "count"
    counter.write_text("")
    os.chmod(counter, 0o666)
    script = f"echo x >> {counter}; test $(wc -l < {counter}) -ge 3"
    await cluster.create(PODS, make_pod("retry", [{
        "name": "main", "command": ["sh", "-c", script]}], restartPolicy="OnFailure"),
        namespace="default")
    pod = await eventually(phase_is(cluster, "retry", "Succeeded", "Failed"))
    assert pod["status"]["phase"] == "Succeeded"
    assert container_status(pod, "main")["restartCount"] == 2


SIDECAR_SCRIPT = textwrap.dedent("""
    import os, signal, sys, time
    name, rec = os.environ["NAME"], os.environ["REC"]
    def log(line):
        with open(rec + "/events", "a") as f:
            f.write(line + "\\n")
    def stop(*_):
        log("stop " + name)
        sys.exit(0)
    signal.signal(signal.SIGTERM, stop)
    log("start " + name)
    time.sleep(0.3)
    log("ready " + name)
    open(rec + "/ready-" + name, "w").close()
    while True:
        time.sleep(0.05)
""")


async def test_sidecars_start_in_order_before_main_and_stop_after_it(cluster, make_agent,
                                                                     node_root):
    await make_agent()
    rec = node_root / "rec"
    rec.mkdir(mode=0o777)
    os.chmod(rec, 0o777)

    def container(name: str, kind: str) -> dict:
        c = {"name": name, "type": kind, "command": py(SIDECAR_SCRIPT),
             "env": [{"name": "NAME", "value": name}, {"name": "REC", "value": str(rec)}]}
        # Ready once its SIGTERM handler is set and it has logged its start.
        c["readinessProbe"] = {"exec": {"command": ["test", "-f", f"{rec}/ready-{name}"]},
                               "periodSeconds": 1}
        return c

    # Spec order puts the main container first: ordering comes from the types.
    await cluster.create(PODS, make_pod("ordered", [
        container("app", "main"), container("proxy", "sidecar"),
        container("metrics", "sidecar")]), namespace="default")
    await eventually(ready(cluster, "ordered"))
    await cluster.delete(PODS, "ordered", namespace="default")
    await eventually(gone(cluster, "ordered"))
    lines = (rec / "events").read_text().split()
    events = [" ".join(lines[i:i + 2]) for i in range(0, len(lines), 2)]
    starts = [e for e in events if e.startswith("start")]
    stops = [e for e in events if e.startswith("stop")]
    assert starts == ["start proxy", "start metrics", "start app"]
    # Each sidecar was ready before the next container started.
    assert events.index("ready proxy") < events.index("start metrics")
    assert events.index("ready metrics") < events.index("start app")
    assert stops == ["stop app", "stop metrics", "stop proxy"]


async def test_per_container_update_restarts_only_that_container(cluster, make_agent):
    agent = await make_agent()
    loop = "while True:\n import time, os; print(os.environ.get('VERSION'), flush=True); " \
           "time.sleep(0.2)"
    await cluster.create(PODS, make_pod("pair", [
        {"name": "a", "command": py(loop), "env": [{"name": "VERSION", "value": "1"}]},
        {"name": "b", "command": py(loop), "env": [{"name": "VERSION", "value": "1"}]},
    ]), namespace="default")
    pod = await eventually(ready(cluster, "pair"))
    a_id = container_status(pod, "a")["containerID"]
    b_id = container_status(pod, "b")["containerID"]
    worker = agent.find("default", "pair")
    a_pid = worker.records["a"].instance.pid

    pod["spec"]["containers"][1]["env"][0]["value"] = "2"
    await cluster.update(PODS, pod)

    async def b_replaced():
        p = await get_pod(cluster, "pair")
        b = container_status(p, "b")
        return p if b.get("restartCount") == 1 and b.get("ready") and \
            b.get("containerID") != b_id else None

    pod = await eventually(b_replaced)
    assert container_status(pod, "a")["containerID"] == a_id
    assert container_status(pod, "a")["restartCount"] == 0
    assert worker.records["a"].instance.pid == a_pid
    os.kill(a_pid, 0)  # still the same, living process
    assert pod["status"]["phase"] == "Running"

    async def b_runs_new_spec():
        chunks = [c async for c in agent.logs.read(worker.log_dir, "b")]
        return b"2\n" in b"".join(chunks)

    await eventually(b_runs_new_spec)


async def test_graceful_termination_then_sigkill(cluster, make_agent, node_root):
    await make_agent()
    rec = node_root / "rec"
    rec.mkdir(mode=0o777)
    os.chmod(rec, 0o777)
    # Each writes a file once its handler is set, and is ready only then (no race with
    # the SIGTERM).
    polite = ("import signal, sys, time\n"
              f"def bye(*_):\n open('{rec}/polite', 'w').write('bye'); sys.exit(0)\n"
              "signal.signal(signal.SIGTERM, bye)\n"
              f"open('{rec}/polite-armed', 'w').close()\n"
              "while True: time.sleep(0.05)")
    stubborn = ("import signal, time\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
                f"open('{rec}/stubborn-armed', 'w').close()\n"
                "while True: time.sleep(0.05)")

    def armed(name: str) -> dict:
        return {"exec": {"command": ["test", "-f", f"{rec}/{name}-armed"]}, "periodSeconds": 1}

    await cluster.create(PODS, make_pod("polite", [{"name": "main", "command": py(polite),
                                                    "readinessProbe": armed("polite")}]),
                         namespace="default")
    await cluster.create(PODS, make_pod("stubborn", [{"name": "main", "command": py(stubborn),
                                                      "readinessProbe": armed("stubborn")}],
                                        terminationGracePeriodSeconds=1), namespace="default")
    await eventually(ready(cluster, "polite"))
    await eventually(ready(cluster, "stubborn"))
    await cluster.delete(PODS, "polite", namespace="default")
    await cluster.delete(PODS, "stubborn", namespace="default")
    await eventually(gone(cluster, "polite"))
    await eventually(gone(cluster, "stubborn"))
    assert (rec / "polite").read_text() == "bye"


async def test_environment_has_downward_values_and_config(cluster, make_agent):
    agent = await make_agent()
    await cluster.create(CONFIGMAPS, {"apiVersion": "v1", "kind": "ConfigMap",
                                      "metadata": {"name": "settings"},
                                      "data": {"color": "blue"}}, namespace="default")
    await cluster.create(PODS, make_pod("envy", [{
        "name": "main", "command": ["sh", "-c", "env | sort; echo ARGS $(HI)"],
        "workingDir": "/work",
        "resources": {"limits": {"memory": "64Mi", "cpu": "250m"}},
        "env": [
            {"name": "GREETING", "value": "hello-$(POD)"},
            {"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
            {"name": "HI", "value": "hi-$(POD)"},
            {"name": "MY_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
            {"name": "MEM", "valueFrom": {"resourceFieldRef": {"resource": "limits.memory",
                                                               "divisor": "1Mi"}}},
            {"name": "COLOR", "valueFrom": {"configMapKeyRef": {"name": "settings",
                                                                "key": "color"}}},
        ]}], restartPolicy="Never"), namespace="default")
    pod = await eventually(phase_is(cluster, "envy", "Succeeded", "Failed"))
    assert pod["status"]["phase"] == "Succeeded"
    worker = agent.find("default", "envy")
    out = b"".join([c async for c in agent.logs.read(worker.log_dir, "main")]).decode()
    env = dict(line.split("=", 1) for line in out.splitlines() if "=" in line)
    assert env["POD"] == "envy"
    assert env["MY_IP"] == pod["status"]["podIP"]
    assert env["MEM"] == "64"
    assert env["COLOR"] == "blue"
    assert env["PINCOMPUTE_NODE_NAME"] == "n1"
    assert env["PWD"].endswith("/containers/main/work")
    # $(NAME) expands against the variables defined before it, as in Kubernetes: GREETING
    # names POD before POD exists, so it stays literal; HI comes after.
    assert env["GREETING"] == "hello-$(POD)"
    assert env["HI"] == "hi-envy"
    assert "ARGS hi-envy" in out


async def test_missing_config_waits_with_a_reason(cluster, make_agent):
    await make_agent()
    await cluster.create(PODS, make_pod("needs-config", [{
        "name": "main", "command": ["sleep", "60"],
        "env": [{"name": "X", "valueFrom": {"configMapKeyRef": {"name": "absent",
                                                                "key": "k"}}}]}]),
        namespace="default")

    async def waiting():
        pod = await get_pod(cluster, "needs-config")
        state = container_status(pod, "main").get("state") or {}
        return (state.get("waiting") or {}).get("reason") == "CreateContainerConfigError"

    await eventually(waiting)
    await cluster.create(CONFIGMAPS, {"apiVersion": "v1", "kind": "ConfigMap",
                                      "metadata": {"name": "absent"}, "data": {"k": "v"}},
                         namespace="default")
    await eventually(ready(cluster, "needs-config"))


async def test_host_network_is_for_system_pods_only(cluster, make_agent):
    agent = await make_agent()
    await cluster.create(PODS, make_pod("tenant", [{"name": "main", "command": ["sleep", "60"]}],
                                        networkMode="host"), namespace="default")
    pod = await eventually(phase_is(cluster, "tenant", "Failed"))
    assert pod["status"]["reason"] == "HostNetworkForbidden"
    await cluster.create(PODS, make_pod("daemon", [{"name": "main", "command": ["sleep", "60"]}],
                                        networkMode="host", namespace="pincompute-system"),
                         namespace="pincompute-system")
    pod = await eventually(ready(cluster, "daemon", "pincompute-system"))
    assert pod["status"]["podIP"] == pod["status"]["hostIP"] == agent.networking.node_ip


async def test_admission_rejects_pods_beyond_allocatable(cluster, make_agent):
    await make_agent(cpu="1")
    await cluster.create(PODS, make_pod("big", [{
        "name": "main", "command": ["sleep", "60"],
        "resources": {"requests": {"cpu": "2"}}}]), namespace="default")
    pod = await eventually(phase_is(cluster, "big", "Failed"))
    assert pod["status"]["reason"] == "OutOfcpu"


async def test_stopping_the_agent_stops_its_containers(cluster, make_agent, node_root):
    agent = await make_agent()
    await cluster.create(PODS, make_pod("p", [{"name": "main", "command": ["sleep", "60"]}]),
                         namespace="default")
    await eventually(ready(cluster, "p"))
    pid = agent.find("default", "p").records["main"].instance.pid
    await agent.stop()
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    # The pod object is left to the control plane (the node lifecycle controller).
    assert (await get_pod(cluster, "p"))["status"]["phase"] == "Running"
    assert not any(Path(node_root / "n1" / "pods").iterdir())


async def test_a_restarted_agent_runs_its_pods_again(cluster, make_agent):
    agent = await make_agent()
    await cluster.create(PODS, make_pod("p", [{"name": "main",
                                               "command": ["sh", "-c", "echo run; sleep 60"]}]),
                         namespace="default")
    await cluster.create(PODS, make_pod("done", [{"name": "main", "command": ["true"]}],
                                        restartPolicy="Never"), namespace="default")
    first = await eventually(ready(cluster, "p"))
    await eventually(phase_is(cluster, "done", "Succeeded"))
    await agent.stop()
    again = await make_agent()
    assert again.pod_cidr == agent.pod_cidr

    async def restarted():
        pod = await get_pod(cluster, "p")
        c = container_status(pod, "main")
        return pod if c.get("restartCount") == 1 and c.get("ready") else None

    pod = await eventually(restarted)
    assert pod["status"]["podIP"] == first["status"]["podIP"]
    # The finished pod stays finished; the previous instance's log is still there.
    assert (await get_pod(cluster, "done"))["status"]["phase"] == "Succeeded"
    worker = again.find("default", "p")
    previous = b"".join([c async for c in again.logs.read(worker.log_dir, "main",
                                                          previous=True)])
    assert previous == b"run\n"
