"""End to end with real processes and a real Prometheus server (Debian's ``prometheus``).

The example app (examples/autoscaling/requests_app.py) runs as a PinApp on a
process node and counts its requests; Prometheus scrapes it on a loopback port,
and a PinScaler scales on ``sum(rate(http_requests_total[2s]))`` per replica, and
on the same counter as the node-local endpoint scrapes it (a ``Pods`` metric).
Load on the app scales it out; stopping the load scales it back to the minimum,
only after the scale-down window.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from pincompute.kube.resource import CONFIGMAPS, PODS
from pincompute.model.registry import PINAPPS, PINSCALERS
from pincompute.model.usage import USAGE_NAMESPACE, from_configmap
from pincompute.region import Region
from tests.waiting import eventually

pytestmark = pytest.mark.slow

NS = "demo"
APP = Path(__file__).parents[2] / "examples" / "autoscaling" / "requests_app.py"
QUERY = "sum(rate(http_requests_total[2s])) or vector(0)"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def prometheus_binary() -> str:
    found = shutil.which("prometheus")
    if found is None:
        message = "Debian's prometheus is not installed (tools/system-deps.sh installs it)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return found


class Prometheus:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.targets = root / "targets.json"
        self.targets.write_text("[]")
        (root / "prometheus.yml").write_text(json.dumps({
            "global": {"scrape_interval": "500ms", "evaluation_interval": "1s"},
            "scrape_configs": [{
                "job_name": "requests-web", "scrape_interval": "500ms",
                "scrape_timeout": "400ms",
                "file_sd_configs": [{"files": [str(self.targets)], "refresh_interval": "1s"}],
            }]}))
        self.process: subprocess.Popen[bytes] | None = None
        self.log = open(root / "prometheus.log", "wb")

    def start(self) -> None:
        self.process = subprocess.Popen(
            [prometheus_binary(), f"--config.file={self.root / 'prometheus.yml'}",
             f"--storage.tsdb.path={self.root / 'data'}",
             f"--web.listen-address=127.0.0.1:{self.port}"],
            stdout=subprocess.DEVNULL, stderr=self.log)

    def scrape(self, address: str) -> None:
        tmp = self.root / "targets.json.tmp"
        tmp.write_text(json.dumps([{"targets": [address]}]))
        tmp.replace(self.targets)

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log.close()


@pytest.fixture
def prometheus() -> Iterator[Prometheus]:
    root = Path(tempfile.mkdtemp(prefix="pincompute-prom-"))
    server = Prometheus(root)
    server.start()
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
async def region(region_dir: Path) -> AsyncIterator[Region]:
    region = await Region.open(region_dir, zones=1, nodes_per_cluster=1, runtime="process",
                               lease_duration=4, health_port=None,
                               node_options={"probe_scale": 0.2, "usage_interval": 0.5},
                               controller_options={"pinscalers": {"interval": 0.5}})
    await region.start()
    try:
        await region.ensure_project(NS)
        yield region
    finally:
        await region.close()


def app(port: int) -> dict[str, Any]:
    # the source inline: a pod has its own /tmp (mount namespace) and uid, and may not
    # see the checkout either
    return {"apiVersion": "pincompute.io/v1alpha1", "kind": "PinApp",
            "metadata": {"name": "web", "namespace": NS},
            "spec": {"replicas": 1, "template": {
                "metadata": {"annotations": {"metrics.pincompute.io/port": str(port)}},
                "spec": {"containers": [{
                    "name": "web", "image": "python:3.11",
                    "command": ["python3", "-c", APP.read_text(), str(port)],
                    "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}},
                    "readinessProbe": {"httpGet": {"path": "/metrics", "port": port},
                                       "periodSeconds": 1}}]}}}}


async def test_load_scales_the_example_app_out_and_back(region: Region,
                                                         prometheus: Prometheus) -> None:
    port = free_port()
    host, member = region.host.client, region.members[0].client
    await host.create(PINAPPS, app(port))
    window = 3
    await host.create(PINSCALERS, {
        "apiVersion": "pincompute.io/v1alpha1", "kind": "PinScaler",
        "metadata": {"name": "web", "namespace": NS},
        "spec": {"scaleTargetRef": {"name": "web"}, "minReplicas": 1, "maxReplicas": 3,
                 "cooldownSeconds": 0,
                 "metrics": [
                     {"type": "Prometheus", "prometheus": {
                         "query": QUERY, "targetValue": "5", "targetType": "AverageValue",
                         "serverAddress": prometheus.url}},
                     {"type": "Pods", "pods": {"metric": "http_requests_total",
                                               "targetAverageValue": "5"}}],
                 "behavior": {"scaleDown": {"stabilizationWindowSeconds": window}}}})

    async def running_ip() -> str | None:
        for pod in (await member.list(PODS, namespace=NS)).items:
            ready = any(c.get("type") == "Ready" and c.get("status") == "True"
                        for c in (pod.get("status") or {}).get("conditions") or ())
            if ready and pod["status"].get("podIP"):
                return str(pod["status"]["podIP"])
        return None

    ip = await eventually(running_ip, timeout=30, what="the app's first pod ready")
    prometheus.scrape(f"{ip}:{port}")

    async def replicas() -> int:
        return int((await host.get(PINAPPS, "web", namespace=NS))["spec"]["replicas"])

    async def readings() -> dict[str, Any]:
        s = await host.get(PINSCALERS, "web", namespace=NS)
        return {m["type"]: m for m in (s.get("status") or {}).get("currentMetrics") or ()}

    async def prometheus_answers() -> bool:
        r = await readings()
        return "current" in r.get("Prometheus", {})

    await eventually(prometheus_answers, timeout=30, what="a value from Prometheus")
    assert await replicas() == 1

    stop = asyncio.Event()

    async def load() -> None:
        async with httpx.AsyncClient(timeout=2.0) as client:
            while not stop.is_set():
                with contextlib.suppress(httpx.HTTPError):
                    await client.get(f"http://{ip}:{port}/")
                await asyncio.sleep(0.02)

    loader = asyncio.create_task(load())
    try:
        await eventually(lambda: _equals(replicas, 3), timeout=30, interval=0.2,
                         what="the scale-out under load")

        async def both_ask_for_more() -> bool:
            r = await readings()
            return all(r.get(kind, {}).get("desiredReplicas", 0) > 1
                       for kind in ("Prometheus", "Pods"))

        # each source alone asks for more replicas: Prometheus' rate() and the node's own
        await eventually(both_ask_for_more, timeout=20, interval=0.2,
                         what="both metrics proposing a scale-out")

        async def measured() -> bool:
            # the node measured the real process: its memory (RSS or cgroup) and CPU
            for cm in (await member.list(CONFIGMAPS, namespace=USAGE_NAMESPACE)).items:
                usage = from_configmap(cm)
                for pod in usage.pods if usage is not None else ():
                    if pod.app == "web" and (pod.memory or 0) > 1 << 20 and pod.cpu:
                        return True
            return False

        await eventually(measured, timeout=10, what="the app's measured usage in the store")
    finally:
        stop.set()
        await loader
    stopped = time.monotonic()

    await eventually(lambda: _equals(replicas, 1), timeout=30, interval=0.2,
                     what="the scale-in after the load stopped")
    assert time.monotonic() - stopped >= window

    async def scale_in_recorded() -> bool:
        # the scaler writes the app's replicas first, then its own status
        s = await host.get(PINSCALERS, "web", namespace=NS)
        return ((s.get("status") or {}).get("lastScaleReason") or "").startswith(
            "metrics below target")

    await eventually(scale_in_recorded, timeout=10, what="the scale-in in the status")


async def _equals(fetch: Any, n: int) -> bool:
    return bool(await fetch() == n)
