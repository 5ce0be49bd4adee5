from pincompute.node.containerlifecycle import State
from pincompute.node.containerruntime import ExitStatus
from pincompute.node.status import (
    ContainerFacts,
    Termination,
    container_status,
    phase,
    pod_status,
    same_status,
)


def facts(name="main", state=State.RUNNING, *, type_="main", ready=True, started=True,
          ever=True, code=None, last=None, **kw):
    term = Termination(ExitStatus(code, "Completed" if code == 0 else "Error", "", None,
                                  "t1"), "t0") if code is not None else None
    return ContainerFacts(name=name, type=type_, image="img", state=state, ready=ready,
                          started=started, restart_count=0, ever_started=ever,
                          termination=term, last_termination=last, **kw)


def test_container_states():
    assert container_status(facts(started_at="t0"), initialized=True)["state"] == {
        "running": {"startedAt": "t0"}}
    waiting = container_status(facts(state=State.WAITING, ever=False), initialized=False)
    assert waiting["state"] == {"waiting": {"reason": "PodInitializing"}}
    back = container_status(facts(state=State.BACKOFF, waiting_message="back-off 10s"),
                            initialized=True)
    assert back["state"]["waiting"] == {"reason": "CrashLoopBackOff", "message": "back-off 10s"}
    done = container_status(facts(state=State.TERMINATED, code=0), initialized=True)
    assert done["state"]["terminated"]["reason"] == "Completed"
    assert done["type"] == "main"


def test_phases():
    assert phase([facts(state=State.WAITING, ever=False)], initialized=True, finished=False,
                 failed_reason=None) == "Pending"
    assert phase([facts()], initialized=False, finished=False, failed_reason=None) == "Pending"
    assert phase([facts()], initialized=True, finished=False, failed_reason=None) == "Running"
    ok = [facts(state=State.TERMINATED, code=0),
          facts("side", State.TERMINATED, type_="sidecar", code=137)]
    assert phase(ok, initialized=True, finished=True, failed_reason=None) == "Succeeded"
    bad = [facts(state=State.TERMINATED, code=0), facts("b", State.TERMINATED, code=2)]
    assert phase(bad, initialized=True, finished=True, failed_reason=None) == "Failed"
    assert phase(ok, initialized=True, finished=True,
                 failed_reason="DeadlineExceeded") == "Failed"


def test_pod_status_keeps_foreign_conditions_and_transition_times():
    previous = {"phase": "Pending", "conditions": [
        {"type": "PodScheduled", "status": "True", "lastTransitionTime": "s"},
        {"type": "Ready", "status": "True", "lastTransitionTime": "keep"}], "qosClass": "X"}
    status = pod_status(previous, [facts()], initialized=True, finished=False, stopping=False,
                        host_ip="127.64.0.1", pod_ip="127.64.0.2", start_time="t")
    conds = {c["type"]: c for c in status["conditions"]}
    assert conds["PodScheduled"]["lastTransitionTime"] == "s"
    assert conds["Ready"]["lastTransitionTime"] == "keep"
    assert status["qosClass"] == "X"
    assert status["phase"] == "Running" and status["podIP"] == "127.64.0.2"
    stopping = pod_status(status, [facts()], initialized=True, finished=False, stopping=True,
                          host_ip="h", pod_ip="p", start_time="t")
    assert {c["type"]: c["status"] for c in stopping["conditions"]}["Ready"] == "False"
    assert not same_status(status, stopping)
    again = pod_status(status, [facts()], initialized=True, finished=False, stopping=False,
                       host_ip="127.64.0.1", pod_ip="127.64.0.2", start_time="t")
    assert same_status(status, again)
