"""Rate limits: a burst over the budget gets 429 with Retry-After, and recovers."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest

from pincompute.api.context import ApiSettings
from tests.api.conftest import api_env
from tests.api.support import pinapp

A = "/api/v1/projects/demo"


@pytest.mark.slow
async def test_burst_is_limited_and_recovers(region_dir: Path) -> None:
    settings = ApiSettings(requests_per_second=10, mutations_per_second=3,
                           unauthenticated_per_second=5)
    async with api_env(region_dir, settings=settings) as api:
        bob = await api.token(user="bob", project="demo", role="editor")
        async with api.as_token(bob) as c:
            # A burst: far more than 10 a second, until the budget refuses one.
            limited = None
            for _ in range(10):
                burst = await asyncio.gather(*(c.get(f"{A}/pinapps") for _ in range(30)))
                limited = next((r for r in burst if r.status_code == 429), None)
                if limited is not None:
                    break
            assert limited is not None, "30 requests at once never met the 10/s budget"
            assert limited.json()["reason"] == "TooManyRequests"
            retry = int(limited.headers["Retry-After"])
            assert 1 <= retry <= 2
            # Another identity is not starved by bob's burst.
            assert (await api.client.get(f"{A}/pinapps")).status_code == 200
            await asyncio.sleep(retry + 1)
            assert (await c.get(f"{A}/pinapps")).status_code == 200

        # Mutations are limited per project too (3/s here), whoever makes them: the
        # admin's own budget is untouched, the project's is spent by carl.
        carl = await api.token(user="carl", project="demo", role="editor")
        async with api.as_token(carl) as c:
            refused = None
            for round_ in range(5):
                answers = await asyncio.gather(
                    *(c.post(f"{A}/pinapps", json=pinapp(f"c{round_}-{i}")) for i in range(8)),
                    *(api.client.post(f"{A}/pinapps", json=pinapp(f"a{round_}-{i}"))
                      for i in range(2)))
                assert {r.status_code for r in answers} <= {201, 429}
                refused = next((r for r in answers[8:] if r.status_code == 429), None)
                if refused is not None:
                    break
            assert refused is not None and "project" in refused.json()["message"]

        async with httpx.AsyncClient(base_url=api.url) as anon:
            codes = [r.status_code for r in await asyncio.gather(
                *(anon.get(f"{A}/pinapps") for _ in range(30)))]
            assert 429 in codes and 401 in codes, codes
        metrics = (await api.client.get("/metrics")).text
        assert 'pincompute_api_rate_limited_total{budget="identity"}' in metrics
