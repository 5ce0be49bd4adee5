"""A pod's sandbox: which config objects it needs, and a set-up that fails then succeeds."""

from __future__ import annotations

from pincompute.kube.resource import CONFIGMAPS, PODS
from pincompute.node.podsandbox import config_references, retry_delay
from tests.waiting import recorded

from .conftest import container_status, eventually, get_pod, make_pod, py
from .test_agent import ready


def test_config_references_cover_env_env_from_and_volumes():
    pod = make_pod("p", [{
        "name": "main",
        "env": [{"name": "A", "valueFrom": {"configMapKeyRef": {"name": "cm-a", "key": "k"}}},
                {"name": "B", "valueFrom": {"secretKeyRef": {"name": "s-b", "key": "k"}}}],
        "envFrom": [{"configMapRef": {"name": "cm-c"}}]}],
        volumes=[{"name": "v", "configMap": {"name": "cm-v"}},
                 {"name": "w", "secret": {"secretName": "s-w"}}, {"name": "e", "emptyDir": {}}])
    assert config_references(pod) == {("ConfigMap", "cm-a"), ("Secret", "s-b"),
                                      ("ConfigMap", "cm-c"), ("ConfigMap", "cm-v"),
                                      ("Secret", "s-w")}
    assert config_references(make_pod("q", [{"name": "main"}])) == set()


def test_retry_delay_doubles_up_to_thirty_seconds():
    assert [retry_delay(n) for n in range(1, 8)] == [1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0]


async def test_a_failed_set_up_is_retried_until_it_succeeds(cluster, make_agent):
    agent = await make_agent()
    await cluster.create(PODS, make_pod("p", [{
        "name": "main", "command": py("import time; time.sleep(60)"),
        "volumeMounts": [{"name": "settings", "mountPath": "/etc/settings"}]}],
        volumes=[{"name": "settings", "configMap": {"name": "late"}}]), namespace="default")

    async def waiting_for_the_sandbox():
        pod = await get_pod(cluster, "p")
        return "late" in container_status(pod, "main").get("state", {}).get(
            "waiting", {}).get("message", "")

    await eventually(waiting_for_the_sandbox)
    worker = agent.find("default", "p")
    assert worker.sandbox is None and worker.sandbox_error
    await recorded(cluster, reason="FailedCreatePodSandBox", name="p")
    await cluster.create(CONFIGMAPS, {"apiVersion": "v1", "kind": "ConfigMap",
                                      "metadata": {"name": "late"}, "data": {"k": "v"}},
                         namespace="default")
    await eventually(ready(cluster, "p"))  # the next attempt (after 1 s) finds it
    assert worker.sandbox is not None and worker.sandbox_error is None
