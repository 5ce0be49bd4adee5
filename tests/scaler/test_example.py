"""examples/autoscaling: the PinScaler is valid and its app serves what it counts."""

from __future__ import annotations

import asyncio
import socket
import sys
from pathlib import Path

import httpx
import yaml

from pincompute.model.scaler import PinScalerSpec
from pincompute.node.metricsendpoint import PodSamples

EXAMPLE = Path(__file__).parents[2] / "examples" / "autoscaling"


def test_the_example_pinscaler_is_valid() -> None:
    doc = yaml.safe_load((EXAMPLE / "pinscaler.yaml").read_text())
    spec = PinScalerSpec.model_validate(doc["spec"])
    assert [m.type for m in spec.metrics or ()] == ["Pods", "Resource"]


async def test_the_example_app_counts_requests_in_the_prometheus_format() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = await asyncio.create_subprocess_exec(
        sys.executable, str(EXAMPLE / "requests_app.py"), str(port),
        stdout=asyncio.subprocess.PIPE)
    try:
        assert proc.stdout is not None
        await asyncio.wait_for(proc.stdout.readline(), 10)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
            for _ in range(3):
                assert (await client.get("/")).status_code == 200
            text = (await client.get("/metrics")).text
        samples = PodSamples()
        samples.ingest(text, now=0.0)
        samples.ingest(text.replace("http_requests_total 3", "http_requests_total 13"), now=2.0)
        assert samples.values == {"http_requests_total": 5.0}
    finally:
        proc.terminate()
        await proc.wait()
