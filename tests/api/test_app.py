"""The app around the routes: probes, metrics by route template, unknown routes."""

from __future__ import annotations

import httpx

from tests.api.conftest import ApiEnv


async def test_probes_metrics_and_unknown_routes(api: ApiEnv) -> None:
    c = api.client
    await c.get("/api/v1/projects/demo/pinapps")
    await c.get("/api/v1/projects/demo/pinapps/x")
    async with httpx.AsyncClient(base_url=api.url) as anon:
        assert (await anon.get("/healthz")).text == "ok"
        assert (await anon.get("/readyz")).text == "ok"
        metrics = (await anon.get("/metrics")).text
        assert (await anon.get("/openapi.json")).json()["info"]["title"] == "PinCompute API"
    assert ('pincompute_api_request_duration_seconds_count{code="200",method="GET",'
            'route="/api/v1/projects/{project}/pinapps"} 1.0') in metrics
    assert 'route="/api/v1/projects/{project}/pinapps/{name}"' in metrics
    assert "pincompute_api_requests_in_flight" in metrics
    r = await c.get("/api/v1/nothing")
    assert r.status_code == 404 and r.json()["kind"] == "Status"
    r = await c.request("PATCH", "/api/v1/projects")
    assert r.status_code == 405 and r.json()["reason"] == "MethodNotAllowed"
    assert api.url.startswith("http://127.0.0.1:")
