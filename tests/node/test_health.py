from pincompute.node.health import (
    HealthReport,
    Thresholds,
    conditions,
    same_conditions,
    usage_pressure,
)


def by_type(conds):
    return {c["type"]: c for c in conds}


def test_healthy_node_is_ready():
    c = by_type(conditions(HealthReport()))
    assert c["Ready"]["status"] == "True"
    assert all(c[t]["status"] == "False" for t in ("MemoryPressure", "DiskPressure",
                                                   "PIDPressure", "Overloaded",
                                                   "RuntimeUnhealthy", "IsolationDegraded"))


def test_gates_and_runtime_failure_make_the_node_not_ready():
    c = by_type(conditions(HealthReport(dns_error="no dns")))
    assert (c["Ready"]["status"], c["Ready"]["reason"]) == ("False", "NodeHealthCheckFailed")
    assert "dns: no dns" in c["Ready"]["message"]
    c = by_type(conditions(HealthReport(runtime_error="fork failed")))
    assert c["Ready"]["reason"] == "RuntimeUnhealthy"
    assert c["RuntimeUnhealthy"]["status"] == "True"


def test_transition_times_move_only_on_flips_and_foreign_conditions_stay():
    first = [*conditions(HealthReport()), {"type": "KernelDeadlock", "status": "False"}]
    for cond in first:
        cond["lastTransitionTime"] = "old"
    same = conditions(HealthReport(), first)
    assert same_conditions(first, same)
    assert by_type(same)["Ready"]["lastTransitionTime"] == "old"
    assert "KernelDeadlock" in by_type(same)
    flipped = by_type(conditions(HealthReport(overloaded="busy"), first))
    assert flipped["Overloaded"]["lastTransitionTime"] != "old"
    assert flipped["Ready"]["lastTransitionTime"] == "old"


def test_usage_pressure():
    assert usage_pressure(cpu_used_millis=3000, memory_used=1, cpu_allocatable_millis=2000,
                          memory_allocatable=10, thresholds=Thresholds())[1]
    assert usage_pressure(cpu_used_millis=10, memory_used=11, cpu_allocatable_millis=2000,
                          memory_allocatable=10, thresholds=Thresholds()) == (
        "pods use 0Mi of 0Mi allocatable memory", None)


def test_the_isolation_condition_names_the_active_protections():
    c = by_type(conditions(HealthReport(isolation=("uid", "cgroups", "pid-namespace"))))
    assert c["IsolationDegraded"]["status"] == "False"
    assert c["IsolationDegraded"]["message"] == (
        "active protections: uid, cgroups, pid-namespace")
    c = by_type(conditions(HealthReport(degraded=("not running as root",))))
    assert c["IsolationDegraded"]["status"] == "True"
    assert c["IsolationDegraded"]["message"] == (
        "not running as root; active protections: none")
