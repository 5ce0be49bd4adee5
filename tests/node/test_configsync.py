"""Config volumes follow their objects on a real process node: a running pod reads a new
ConfigMap or Secret value within ~2 s of the change, and a reader loop in the pod never sees
a torn file; the discovery file is in every pod and follows its ConfigMap the same way."""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path
from typing import Any

from pincompute.kube.objects import deepcopy
from pincompute.kube.protocol import KubeClient
from pincompute.kube.resource import CONFIGMAPS, PODS, SECRETS
from pincompute.model.wellknown import DISCOVERY_CONFIGMAP, DISCOVERY_FILE_ENV, DISCOVERY_KEY
from pincompute.node import NodeAgent
from pincompute.node.runtimeapi import NodeClient
from tests.node.conftest import eventually, make_pod, py
from tests.node.test_agent import ready

SIZE = 200_000

# Reads the file in a tight loop; writes "seen <first char> <time>" on each change and
# "TORN" if a read was not one whole version (the right length, one repeated character).
READER = f"""
import os, sys, time
path = os.path.join(os.environ['PINCOMPUTE_ROOT'], sys.argv[1])
out = open(os.path.join(os.environ['PINCOMPUTE_ROOT'], 'out', 'seen'), 'a', buffering=1)
last = None
while True:
    try:
        with open(path) as f:
            text = f.read()
    except FileNotFoundError:
        continue
    if len(text) != {SIZE} or len(set(text)) != 1:
        out.write('TORN %d\\n' % len(text))
    elif text[0] != last:
        last = text[0]
        out.write('seen %s %f\\n' % (last, time.time()))
    time.sleep(0.002)
"""


def reader_pod(name: str, volume: dict[str, Any], file: str, *,
               mount: dict[str, Any] | None = None) -> dict[str, Any]:
    return make_pod(name, [{
        "name": "main", "command": [*py(READER), file],
        "volumeMounts": [mount or {"name": "cfg", "mountPath": "/config"},
                         {"name": "out", "mountPath": "/out"}]}],
        volumes=[{"name": "cfg", **volume}, {"name": "out", "emptyDir": {}}])


def seen_file(agent: NodeAgent, pod: str) -> Path:
    worker = agent.find("default", pod)
    assert worker is not None and worker.sandbox is not None
    return Path(worker.sandbox.extra["dir"]) / "volumes" / "out" / "seen"


def seen(agent: NodeAgent, pod: str) -> list[str]:
    try:
        return seen_file(agent, pod).read_text().splitlines()
    except FileNotFoundError:
        return []


async def change_and_time(agent: NodeAgent, pod: str, update: Any, char: str) -> float:
    """Apply ``update``; seconds until the pod saw ``char``."""
    started = time.time()
    await update()

    async def saw() -> float | None:
        for line in seen(agent, pod):
            parts = line.split()
            if parts[:2] == ["seen", char]:
                return float(parts[2])
        return None

    when = await eventually(saw, timeout=10)
    return when - started


async def test_a_running_pod_reads_a_changed_configmap_within_two_seconds(
        cluster: KubeClient, make_agent: Any) -> None:
    agent = await make_agent()
    await cluster.create(CONFIGMAPS, {"metadata": {"name": "settings"},
                                      "data": {"value": "a" * SIZE}}, namespace="default")
    await cluster.create(PODS, reader_pod("reader", {"configMap": {"name": "settings"}},
                                          "config/value"), namespace="default")
    await eventually(ready(cluster, "reader"))
    await eventually(lambda: _async(any(ln.startswith("seen a") for ln in seen(agent,
                                                                              "reader"))))
    for char in "bcd":
        async def update(char: str = char) -> None:
            cm = deepcopy(await cluster.get(CONFIGMAPS, "settings", namespace="default"))
            cm["data"]["value"] = char * SIZE
            await cluster.update(CONFIGMAPS, cm)

        assert await change_and_time(agent, "reader", update, char) < 2.0
    lines = seen(agent, "reader")
    assert not [ln for ln in lines if ln.startswith("TORN")]
    assert agent.configs is not None and agent.configs.rewrites >= 3


async def test_a_sub_path_mount_of_one_key_follows_the_configmap_too(
        cluster: KubeClient, make_agent: Any) -> None:
    agent = await make_agent()
    await cluster.create(CONFIGMAPS, {"metadata": {"name": "one"},
                                      "data": {"value": "a" * SIZE}}, namespace="default")
    await cluster.create(PODS, reader_pod(
        "subpath", {"configMap": {"name": "one"}}, "etc/app.conf",
        mount={"name": "cfg", "mountPath": "/etc/app.conf", "subPath": "value"}),
        namespace="default")
    await eventually(ready(cluster, "subpath"))

    async def update() -> None:
        cm = deepcopy(await cluster.get(CONFIGMAPS, "one", namespace="default"))
        cm["data"]["value"] = "k" * SIZE
        await cluster.update(CONFIGMAPS, cm)

    assert await change_and_time(agent, "subpath", update, "k") < 2.0
    assert not [ln for ln in seen(agent, "subpath") if ln.startswith("TORN")]


async def test_secret_volumes_follow_their_secret_too(cluster: KubeClient,
                                                     make_agent: Any) -> None:
    agent = await make_agent()

    def secret(char: str) -> dict[str, Any]:
        return {"metadata": {"name": "creds"},
                "data": {"value": base64.b64encode((char * SIZE).encode()).decode()}}

    await cluster.create(SECRETS, secret("a"), namespace="default")
    await cluster.create(PODS, reader_pod("sreader", {"secret": {"secretName": "creds"}},
                                          "config/value"), namespace="default")
    await eventually(ready(cluster, "sreader"))

    async def update() -> None:
        current = await cluster.get(SECRETS, "creds", namespace="default")
        new = secret("z")
        new["metadata"] = current["metadata"]
        await cluster.update(SECRETS, new)

    assert await change_and_time(agent, "sreader", update, "z") < 2.0
    assert not [ln for ln in seen(agent, "sreader") if ln.startswith("TORN")]


async def test_an_optional_configmap_created_later_appears_in_the_volume(
        cluster: KubeClient, make_agent: Any) -> None:
    agent = await make_agent()
    await cluster.create(PODS, reader_pod(
        "late", {"configMap": {"name": "later", "optional": True}}, "config/value"),
        namespace="default")
    await eventually(ready(cluster, "late"))

    async def create() -> None:
        await cluster.create(CONFIGMAPS, {"metadata": {"name": "later"},
                                          "data": {"value": "q" * SIZE}}, namespace="default")

    assert await change_and_time(agent, "late", create, "q") < 2.0
    await cluster.delete(CONFIGMAPS, "later", namespace="default")
    worker = agent.find("default", "late")
    assert worker is not None and worker.sandbox is not None
    volume = Path(worker.sandbox.extra["dir"]) / "config" / "cfg"

    async def emptied() -> bool:
        return not (volume / "value").exists()

    await eventually(emptied, timeout=15)


async def test_every_pod_gets_the_discovery_file_and_sees_it_change(
        cluster: KubeClient, make_agent: Any) -> None:
    agent = await make_agent()
    script = ("import json, os, time\n"
              f"path = os.environ['{DISCOVERY_FILE_ENV}']\n"
              "linked = os.path.join(os.environ['PINCOMPUTE_ROOT'], "
              "'etc/pincompute/discovery', 'endpoints.json')\n"
              "print('same', open(path).read() == open(linked).read(), flush=True)\n"
              "last = None\n"
              "while True:\n"
              "    doc = json.load(open(path))\n"
              "    if doc != last:\n"
              "        last = doc\n"
              "        print('doc', json.dumps(doc, sort_keys=True), flush=True)\n"
              "    time.sleep(0.01)\n")
    await cluster.create(PODS, make_pod("client", [{"name": "main", "command": py(script)}]),
                         namespace="default")
    await eventually(ready(cluster, "client"))
    api = NodeClient(agent.api_endpoint, agent.api_token)

    async def output() -> str:
        return b"".join([c async for c in api.logs("default", "client", "main")]).decode()

    async def shows(text: str) -> bool:
        return text in await output()

    await eventually(lambda: shows("doc {}"))
    assert "same True" in await output()
    doc = {"web": [{"ip": "127.0.0.9", "ports": [{"port": 80, "protocol": "TCP"}],
                    "zone": "z", "node": "n1", "pod": "web-0"}]}
    await cluster.create(CONFIGMAPS, {"metadata": {"name": DISCOVERY_CONFIGMAP},
                                      "data": {DISCOVERY_KEY: json.dumps(doc)}},
                         namespace="default")
    await eventually(lambda: shows(f"doc {json.dumps(doc, sort_keys=True)}"), timeout=10)


async def _async(value: Any) -> Any:
    return value


async def test_a_pod_mounting_over_etc_still_starts_and_finds_the_file(
        cluster: KubeClient, make_agent: Any) -> None:
    """A container mounting a volume at ``/etc`` keeps it; the variable names the file."""
    agent = await make_agent()
    script = (f"import os; print(open(os.environ['{DISCOVERY_FILE_ENV}']).read().strip(), "
              "os.path.exists(os.path.join(os.environ['PINCOMPUTE_ROOT'], 'etc', 'pincompute')),"
              " flush=True); import time; time.sleep(3600)")
    await cluster.create(PODS, make_pod("etc", [{
        "name": "main", "command": py(script),
        "volumeMounts": [{"name": "etc", "mountPath": "/etc"}]}],
        volumes=[{"name": "etc", "emptyDir": {}}]), namespace="default")
    await eventually(ready(cluster, "etc"))
    api = NodeClient(agent.api_endpoint, agent.api_token)

    async def printed() -> str:
        return b"".join([c async for c in api.logs("default", "etc", "main")]).decode()

    assert (await eventually(printed)).split() == ["{}", "False"]
