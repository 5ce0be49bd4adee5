"""The node-local metrics endpoint: pushes with the pod's own URL, counters as rates."""

from __future__ import annotations

import httpx
import pytest

from pincompute.node.metricsendpoint import MetricsEndpoint, PodSamples

TEXT = """# TYPE http_requests counter
http_requests_total{code="200"} %d
http_requests_total{code="500"} 0
# TYPE queue_depth gauge
queue_depth 7
"""


def test_a_counter_becomes_its_rate_and_a_gauge_stays_a_value() -> None:
    samples = PodSamples()
    samples.ingest(TEXT % 100, now=10.0)
    assert samples.values == {"queue_depth": 7.0}
    samples.ingest(TEXT % 130, now=12.0)
    assert samples.values == {"queue_depth": 7.0, "http_requests_total": 15.0}
    samples.ingest(TEXT % 4, now=14.0)  # a restart: counts from zero
    assert samples.values["http_requests_total"] == 2.0


@pytest.fixture
async def endpoint() -> MetricsEndpoint:
    pods = [("uid-a", "demo", "a"), ("uid-b", "demo", "b")]
    ep = MetricsEndpoint(host="127.0.0.1", pods=lambda: pods, usage=lambda: {
        "demo/a": {"main": {"cpuMillis": 250, "memoryBytes": 1024}}})
    await ep.start()
    yield ep  # type: ignore[misc]
    await ep.stop()


async def test_a_pod_pushes_with_its_own_url_only(endpoint: MetricsEndpoint) -> None:
    async with httpx.AsyncClient() as client:
        r = await client.post(endpoint.push_url("uid-a"), content=TEXT % 1)
        assert r.status_code == 200 and r.json() == {"samples": 2}
        forged = endpoint.push_url("uid-a").replace("/uid-a/", "/uid-b/")
        assert (await client.post(forged, content=TEXT % 1)).status_code == 401
        bad = await client.post(endpoint.push_url("uid-b"), content="not { metrics")
        assert bad.status_code == 400
        assert endpoint.custom("uid-a") == {"queue_depth": 7.0}
        exposition = (await client.get(f"{endpoint.url}/metrics")).text
    assert 'pincompute_container_cpu_millicores{namespace="demo",pod="a",container="main"} 250' \
        in exposition
    assert 'pincompute_pod_custom_metric{namespace="demo",pod="a",metric="queue_depth"} 7.0' \
        in exposition
