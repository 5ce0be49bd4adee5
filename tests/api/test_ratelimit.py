"""Rate limits: a burst over the budget gets 429 with Retry-After, and recovers."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx

from pincompute.api.context import ApiSettings
from tests.api.conftest import api_env
from tests.api.support import pinapp

A = "/api/v1/projects/demo"


async def test_burst_is_limited_and_recovers(region_dir: Path) -> None:
    settings = ApiSettings(requests_per_second=10, mutations_per_second=3,
                           unauthenticated_per_second=5)
    async with api_env(region_dir, settings=settings) as api:
        bob = await api.token(user="bob", project="demo", role="editor")
        async with api.as_token(bob) as c:
            codes = [r.status_code for r in await asyncio.gather(
                *(c.get(f"{A}/pinapps") for _ in range(30)))]
            assert codes.count(429) >= 15 and codes.count(200) >= 5, codes
            r = next(r for r in [await c.get(f"{A}/pinapps")] if r.status_code == 429)
            assert r.json()["reason"] == "TooManyRequests"
            retry = int(r.headers["Retry-After"])
            assert 1 <= retry <= 2
            # Another identity is not starved by bob's burst.
            assert (await api.client.get(f"{A}/pinapps")).status_code == 200
            await asyncio.sleep(2.1)
            assert (await c.get(f"{A}/pinapps")).status_code == 200

            # Mutations are limited per project too (3/s here), whoever makes them.
            await asyncio.sleep(1.1)
            codes = [(await c.post(f"{A}/pinapps", json=pinapp(f"a{i}"))).status_code
                     for i in range(6)]
            assert codes[:3] == [201, 201, 201] and 429 in codes[3:], codes
            r = await api.client.post(f"{A}/pinapps", json=pinapp("by-admin"))
            assert r.status_code == 429 and "project" in r.json()["message"]

        async with httpx.AsyncClient(base_url=api.url) as anon:
            codes = [(await anon.get(f"{A}/pinapps")).status_code for _ in range(10)]
            assert 429 in codes and codes[0] == 401
        metrics = (await api.client.get("/metrics")).text
        assert 'pincompute_api_rate_limited_total{budget="identity"}' in metrics
